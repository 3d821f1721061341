"""Behaviour fixes that pure code shows: the debrief waits for the coaching tip, a lost race
reads "already approved by …" and is a refusal (exit 1), the Gmail watch's retry delays, and
gunicorn's refusals written as the app's JSON errors."""

from __future__ import annotations

import inspect
import json
import socket
from datetime import UTC, datetime

import pytest

from sequences.meeting_ended import SEQUENCE as MEETING_ENDED
from worker.engine.dag import plan
from worker.engine.states import StepStatus
from worker.errors import AlreadyDecided, UserError
from worker.google import watch as gmail_watch

S = StepStatus
NOTIFY, COACHING = "notify-slack-summary", "coaching-micro-feedback"
AT = datetime(2026, 11, 25, 17, 3, 9, tzinfo=UTC)


# --------------------------------------------------------------------------- meeting_ended: the tip in the debrief


def _all_but_coaching_ended() -> dict[str, str]:
    """Every step before the debrief succeeded, except the coaching tip (given by each test)."""
    before = MEETING_ENDED.ancestors(NOTIFY)
    return {name: S.SUCCEEDED for name in before if name != COACHING}


def test_the_debrief_depends_on_the_coaching_tip() -> None:
    assert COACHING in MEETING_ENDED.step(NOTIFY).deps
    assert MEETING_ENDED.step(COACHING).critical is False  # best-effort: its failure never stops the job


@pytest.mark.parametrize("coaching", [S.QUEUED, S.RUNNING])
def test_the_debrief_waits_while_the_tip_is_being_written(coaching: str) -> None:
    statuses = {**_all_but_coaching_ended(), COACHING: coaching}

    assert NOTIFY not in plan(MEETING_ENDED, statuses).queue


@pytest.mark.parametrize("coaching", [S.SUCCEEDED, S.FAILED, S.SKIPPED])
def test_the_debrief_goes_out_once_the_tip_ended_however_it_ended(coaching: str) -> None:
    statuses = {**_all_but_coaching_ended(), COACHING: coaching}

    assert NOTIFY in plan(MEETING_ENDED, statuses).queue


# --------------------------------------------------------------------------- a lost race


@pytest.mark.parametrize(
    ("decision", "words"),
    [("approve", "approved"), ("send_now", "sent"), ("reject", "rejected"), ("cancelled", "closed")],
)
def test_a_lost_race_says_what_the_winner_did_in_the_past_tense(decision: str, words: str) -> None:
    err = AlreadyDecided(decision, "Alice Moreau", AT)

    assert str(err) == f"already {words} by Alice Moreau at 2026-11-25 17:03:09 UTC"


def test_a_lost_race_is_a_refusal_not_bad_input() -> None:
    err = AlreadyDecided("approve", "Alice", AT)

    assert err.exit_code == 1 and err.http_status == 409
    assert UserError.exit_code == 2  # bad input keeps its code


# --------------------------------------------------------------------------- Gmail watch retries


def test_a_failed_renewal_is_retried_with_backoff_within_the_day() -> None:
    delays = [gmail_watch.retry_delay_s(n) for n in range(1, len(gmail_watch.RETRY_DELAYS_S) + 2)]

    assert delays[:-1] == sorted(delays[:-1]) and delays[-1] is None
    assert sum(d or 0 for d in delays) < 24 * 3600
    assert gmail_watch.TELL_AFTER == 2


# --------------------------------------------------------------------------- gunicorn's own refusals


def test_gunicorn_still_writes_its_refusals_through_write_error() -> None:
    """The replacement is only reached while every worker's handle_error calls util.write_error."""
    from gunicorn.workers.base import Worker

    assert "util.write_error(client, status_int, reason, mesg)" in inspect.getsource(Worker.handle_error)


@pytest.mark.parametrize(
    ("status", "reason", "mesg", "code"),
    [
        (400, "Bad Request", "Invalid HTTP Header: 'X-Trace\\x01'", "bad_request"),
        (431, "Request Header Fields Too Large", "Error parsing headers: 'limit request headers fields'", None),
        (500, "Internal Server Error", "", "internal_error"),
    ],
)
def test_a_refusal_before_the_app_is_the_apps_json_error(status: int, reason: str, mesg: str, code: str | None) -> None:
    from gunicorn import util

    from webhooks import gunicorn_conf

    assert util.write_error is gunicorn_conf.write_json_error  # installed when gunicorn loads the file
    ours, theirs = socket.socketpair()
    with ours, theirs:
        gunicorn_conf.write_json_error(ours, status, reason, mesg)
        ours.shutdown(socket.SHUT_WR)
        raw = b"".join(iter(lambda: theirs.recv(65536), b""))
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    answer = json.loads(body)

    assert lines[0] == f"HTTP/1.1 {status} {reason}"
    assert headers["Content-Type"] == "application/json" and int(headers["Content-Length"]) == len(body)
    assert answer["error"] == (code or "request_header_fields_too_large")
    assert answer["request_id"] == headers["X-Request-Id"] and len(answer["request_id"]) == 32
    assert answer["message"] == (mesg if status < 500 else "something went wrong; the request id helps us find it")


# --------------------------------------------------------------------------- the brief's approver filter on SQLite


def test_the_approver_filter_runs_on_sqlite_too() -> None:
    """The embedded default (SQLite) has no JSONB: the brief's filter uses json_each there."""
    import uuid

    from sqlalchemy import create_engine, insert, select

    from sequences.skills.briefing.morning import approver_is
    from worker.models import Approval

    engine = create_engine("sqlite://")
    table = Approval.__table__
    rep, other = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        table.create(conn)  # alone: SQLite does not check the foreign keys here
        org = uuid.uuid4()
        rows = {"mine": [rep], "shared": [other, rep], "theirs": [other], "nobody": []}
        ids = {name: uuid.uuid4() for name in rows}
        for name, approvers in rows.items():
            conn.execute(
                insert(table).values(
                    id=ids[name],
                    org_id=org,
                    job_id=uuid.uuid4(),
                    step_run_id=uuid.uuid4(),
                    step="review",
                    kind="email_preview",
                    status="pending",
                    approver_user_ids=[str(u) for u in approvers],
                    expires_at=AT,
                )
            )
        found = set(conn.execute(select(table.c.id).where(approver_is(conn, rep))).scalars())

    assert found == {ids["mine"], ids["shared"]}
