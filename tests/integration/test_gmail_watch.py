"""Gmail watch renewal (worker.google.watch, `proactive gmail renew`, the daily task's body with its
retries within the day) on PostgreSQL, through the real google-auth and googleapiclient against the
fake Google."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.fakes.google import FakeGoogle, google_error
from tests.support.engine import TestOrg, make_org
from tests.support.google import connect, credentials
from worker.config import reset_settings
from worker.crons import tasks as crons
from worker.db import transaction
from worker.google import watch as gmail_watch
from worker.google.watch import due, renew_due, renew_one
from worker.models import CronRun, Integration, SlackOutbox, utcnow
from worker.ops.cli import main

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("pg")]

TOPIC = "projects/proactive-test/topics/gmail-push"
WATCH = "/gmail/v1/users/me/watch"
integrations = Integration.__table__


@pytest.fixture
def google(fake_google: FakeGoogle) -> Iterator[FakeGoogle]:
    """The fake Google with GMAIL_PUBSUB_TOPIC set."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GMAIL_PUBSUB_TOPIC", TOPIC)
        reset_settings()
        yield fake_google
    reset_settings()


def stored(integration_id: uuid.UUID) -> Any:
    with transaction() as conn:
        return conn.execute(select(integrations).where(integrations.c.id == integration_id)).one()


def answered_expiry(watch: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(watch["expiration"]) / 1000, UTC)


# --------------------------------------------------------------------------- due


def test_due_selects_active_google_watches_expiring_within_a_day(org: TestOrg) -> None:
    now = utcnow()
    soon = connect(org, "soon@example.com", now + timedelta(hours=23))
    connect(org, "later@example.com", now + timedelta(hours=25))
    expired = connect(org, "expired@example.com", now - timedelta(hours=1))
    never = connect(org, "never@example.com", None)
    connect(org, "revoked@example.com", now + timedelta(hours=1), status="revoked")
    connect(org, "instantly@example.com", now + timedelta(hours=1), provider="instantly")
    other_org = make_org()
    elsewhere = connect(other_org, "elsewhere@example.com", now + timedelta(hours=1))

    with transaction() as conn:
        rows = due(conn, now, org_id=org.id)
        everywhere = {r.id for r in due(conn, now)}
        of_other = [r.id for r in due(conn, now, org_id=other_org.id)]
        all_active = {r.account for r in due(conn, now, within=None, org_id=org.id)}

    assert [r.id for r in rows] == [never, expired, soon]  # never watched first, then soonest
    by_id = {r.id: r for r in rows}
    assert by_id[soon].account == "soon@example.com"
    assert by_id[soon].user_id == org.rep and by_id[soon].org_id == org.id
    assert by_id[soon].watch_expiration == now + timedelta(hours=23)
    assert by_id[never].watch_expiration is None
    assert {never, expired, soon, elsewhere} <= everywhere
    assert of_other == [elsewhere]
    assert all_active == {"soon@example.com", "later@example.com", "expired@example.com", "never@example.com"}


def test_due_window_is_configurable(org: TestOrg) -> None:
    now = utcnow()
    in_two_days = connect(org, "two-days@example.com", now + timedelta(hours=47))
    with transaction() as conn:
        assert [r.id for r in due(conn, now, org_id=org.id)] == []
        assert [r.id for r in due(conn, now, within=timedelta(hours=48), org_id=org.id)] == [in_two_days]


# --------------------------------------------------------------------------- renewing


def test_renew_stores_the_expiry_and_the_first_history_id(google: FakeGoogle, org: TestOrg) -> None:
    google.history_id = "4242"
    integration_id = connect(org, "rep@example.com", None, creds=credentials(google, "rep@example.com"))
    before = utcnow()

    result = renew_one(org.id, integration_id, utcnow())

    (watch,) = google.watches
    expiry = answered_expiry(watch)
    assert result.error is None and result.ok
    assert (result.integration_id, result.org_id, result.user_id) == (integration_id, org.id, org.rep)
    assert (result.account, result.old_expiry, result.new_expiry) == ("rep@example.com", None, expiry)
    assert before + timedelta(days=7) - timedelta(seconds=1) <= expiry <= utcnow() + timedelta(days=7)
    (request,) = google.requests_to("POST", WATCH)
    assert request.json == {"topicName": TOPIC, "labelIds": ["INBOX"], "labelFilterBehavior": "include"}
    assert watch["mailbox"] == "rep@example.com"
    row = stored(integration_id)
    assert row.watch_expiration == expiry
    assert row.history_id == "4242"
    assert (row.status, row.last_error) == ("active", None)


def test_renewal_keeps_the_stored_history_id(google: FakeGoogle, org: TestOrg) -> None:
    old_expiry = utcnow() + timedelta(hours=2)
    integration_id = connect(
        org,
        "rep@example.com",
        old_expiry,
        creds=credentials(google, "rep@example.com"),
        history_id="500",
        last_error="an earlier failure",
    )
    google.history_id = "999"

    result = renew_one(org.id, integration_id, utcnow())

    assert result.ok, result.error
    assert result.old_expiry == old_expiry
    row = stored(integration_id)
    assert row.history_id == "500"  # history sync owns it: overwriting would skip unsynced mail
    assert row.watch_expiration == answered_expiry(google.watches[0]) > old_expiry
    assert row.last_error is None


def test_an_error_is_stored_and_the_others_are_still_renewed(google: FakeGoogle, org: TestOrg) -> None:
    now = utcnow()
    first = connect(org, "first@example.com", None, creds=credentials(google, "first@example.com"))
    failing_expiry = now - timedelta(hours=2)
    failing = connect(org, "failing@example.com", failing_expiry, creds=credentials(google, "failing@example.com"))
    last = connect(org, "last@example.com", now - timedelta(hours=1), creds=credentials(google, "last@example.com"))
    message = "User not authorized to perform this action."
    google.watch_errors["failing@example.com"] = google_error(403, message, "forbidden", state="PERMISSION_DENIED")

    results = renew_due(now, org_id=org.id)

    assert [(r.integration_id, r.ok) for r in results] == [(first, True), (failing, False), (last, True)]
    assert message in (results[1].error or "")
    assert results[1].new_expiry is None and results[1].old_expiry == failing_expiry
    row = stored(failing)
    assert message in (row.last_error or "")
    assert "ya29." not in row.last_error and "1//" not in row.last_error  # never a token
    assert (row.watch_expiration, row.status) == (failing_expiry, "active")  # the old expiry is kept
    assert {w["mailbox"] for w in google.watches} == {"first@example.com", "last@example.com"}
    assert stored(first).watch_expiration > now + timedelta(days=6)
    assert stored(last).watch_expiration > now + timedelta(days=6)


def test_an_unexpected_failure_does_not_stop_the_others(
    google: FakeGoogle, org: TestOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = connect(org, "broken@example.com", None, creds=credentials(google, "broken@example.com"))
    fine = connect(org, "fine@example.com", utcnow(), creds=credentials(google, "fine@example.com"))
    real_watch = gmail_watch._watch

    def watch(row: Any, topic: str) -> Any:
        if row.id == broken:
            raise RuntimeError("boom")
        return real_watch(row, topic)

    monkeypatch.setattr(gmail_watch, "_watch", watch)
    results = renew_due(utcnow(), org_id=org.id)

    assert [(r.integration_id, r.ok, r.error) for r in results] == [
        (broken, False, "RuntimeError: boom"),
        (fine, True, None),
    ]


def test_a_refused_refresh_token_marks_the_integration_revoked(google: FakeGoogle, org: TestOrg) -> None:
    old_expiry = utcnow() + timedelta(hours=1)
    revoked = connect(org, "gone@example.com", old_expiry, creds=credentials(google, "gone@example.com", revoked=True))

    (result,) = renew_due(utcnow(), org_id=org.id)

    assert (result.integration_id, result.ok) == (revoked, False)
    assert "invalid_grant" in (result.error or "")
    row = stored(revoked)
    assert row.status == "revoked"
    assert "invalid_grant" in (row.last_error or "")
    assert row.watch_expiration == old_expiry
    assert len(google.requests_to("POST", "/token")) >= 1
    assert google.requests_to("POST", WATCH) == [] and google.watches == []
    with transaction() as conn:  # its user is asked once to reconnect
        dms = conn.execute(select(SlackOutbox.kind, SlackOutbox.user_id).where(SlackOutbox.org_id == org.id)).all()
        assert [(d.kind, d.user_id) for d in dms] == [("reconnect", org.rep)]
        assert due(conn, utcnow(), org_id=org.id) == []
    renew_due(utcnow(), org_id=org.id)  # already revoked: not due, no second DM
    with transaction() as conn:
        assert len(conn.execute(select(SlackOutbox.id).where(SlackOutbox.org_id == org.id)).all()) == 1


def test_a_missing_topic_is_an_error_without_a_call(fake_google: FakeGoogle, org: TestOrg) -> None:
    old_expiry = utcnow() + timedelta(hours=1)
    integration_id = connect(org, "rep@example.com", old_expiry, creds=credentials(fake_google, "rep@example.com"))

    (result,) = renew_due(utcnow(), org_id=org.id)

    assert not result.ok
    assert (result.error or "").startswith("GMAIL_PUBSUB_TOPIC is not set: set it")
    assert fake_google.requests == []
    row = stored(integration_id)
    assert (row.watch_expiration, row.status, row.last_error) == (old_expiry, "active", None)


def test_a_malformed_topic_is_refused_by_gmail_and_stored(
    google: FakeGoogle, org: TestOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMAIL_PUBSUB_TOPIC", "gmail-push")  # not projects/P/topics/T
    reset_settings()
    integration_id = connect(org, "rep@example.com", None, creds=credentials(google, "rep@example.com"))

    result = renew_one(org.id, integration_id, utcnow())

    assert not result.ok
    assert "HTTP 400: Invalid topicName" in (result.error or "")
    (request,) = google.requests_to("POST", WATCH)
    assert request.json["topicName"] == "gmail-push"
    row = stored(integration_id)
    assert (row.status, row.watch_expiration) == ("active", None)
    assert "Invalid topicName" in (row.last_error or "")


def test_an_integration_of_another_org_is_not_renewed(google: FakeGoogle, org: TestOrg) -> None:
    integration_id = connect(org, "rep@example.com", None, creds=credentials(google, "rep@example.com"))
    other = make_org()

    result = renew_one(other.id, integration_id, utcnow())

    assert not result.ok and result.error == "no such integration in this org"
    assert google.requests == []
    assert stored(integration_id).watch_expiration is None


# --------------------------------------------------------------------------- CLI


def test_cli_prints_the_table_and_exits_1_when_one_failed(google: FakeGoogle, org: TestOrg) -> None:
    now = utcnow()
    connect(org, "ok@example.com", None, creds=credentials(google, "ok@example.com"))
    connect(org, "bad@example.com", now + timedelta(hours=3), creds=credentials(google, "bad@example.com"))
    connect(org, "not-due@example.com", now + timedelta(days=3), creds=credentials(google, "not-due@example.com"))
    google.watch_errors["bad@example.com"] = google_error(500, "Backend Error", "backendError")
    runner = CliRunner()

    result = runner.invoke(main, ["gmail", "renew", "--org", str(org.id)])

    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["USER", "OLD", "EXPIRY", "NEW", "EXPIRY", "RESULT"]
    table = {line.split()[0]: line for line in lines[1:3]}
    assert set(table) == {"ok@example.com", "bad@example.com"}
    assert table["ok@example.com"].split()[1] == "never" and table["ok@example.com"].endswith("  ok")
    assert "HTTP 500: Backend Error" in table["bad@example.com"]
    assert lines[3] == "1 renewed, 1 failed"
    for column in ("OLD EXPIRY", "NEW EXPIRY", "RESULT"):  # aligned under the header
        at = lines[0].index(column)
        assert all(line[at - 2 : at] == "  " and line[at] != " " for line in lines[1:3])

    del google.watch_errors["bad@example.com"]
    again = runner.invoke(main, ["gmail", "renew", "--org", f"Test org {org.id.hex[:6]}", "--all", "--json"])

    assert again.exit_code == 0, again.output
    renewed = json.loads(again.output)
    assert {r["account"] for r in renewed} == {"ok@example.com", "bad@example.com", "not-due@example.com"}
    assert all(r["ok"] and r["error"] is None and r["new_expiry"] for r in renewed)


def test_cli_with_nothing_due_exits_0(google: FakeGoogle, org: TestOrg) -> None:
    connect(org, "fresh@example.com", utcnow() + timedelta(days=5), creds=credentials(google, "fresh@example.com"))

    result = CliRunner().invoke(main, ["gmail", "renew", "--org", str(org.id)])

    assert (result.exit_code, result.output.strip()) == (0, "no Gmail watch to renew")
    assert google.requests == []


# --------------------------------------------------------------------------- the daily task: retried within the day


def slot(org: TestOrg, integration_id: uuid.UUID, now: datetime) -> Any:
    """The day's cron_runs row of one integration's renewal."""
    with transaction() as conn:
        return conn.execute(
            select(CronRun.status, CronRun.counts).where(
                CronRun.slot_key == f"gmail-watch:{now.date().isoformat()}:{integration_id}"
            )
        ).one()


def told(org: TestOrg) -> list[Any]:
    """The DMs queued in the org: kind, user and text."""
    with transaction() as conn:
        return conn.execute(
            select(SlackOutbox.kind, SlackOutbox.user_id, SlackOutbox.text).where(SlackOutbox.org_id == org.id)
        ).all()


def test_a_failed_renewal_is_retried_within_the_day_and_the_user_told_after_two(
    google: FakeGoogle, org: TestOrg
) -> None:
    now = datetime.combine(utcnow().date(), time(12), tzinfo=UTC)  # the retries below stay in one UTC day
    integration_id = connect(
        org, "rep@example.com", now + timedelta(hours=2), creds=credentials(google, "rep@example.com")
    )
    google.watch_errors["rep@example.com"] = google_error(
        403, "Topic not found", "forbidden", state="PERMISSION_DENIED"
    )

    first = crons.gmail_watch_one(org.id, integration_id, now)

    assert (first["ok"], first["failures"], first["retry_in_s"]) == (False, 1, gmail_watch.RETRY_DELAYS_S[0])
    assert slot(org, integration_id, now).status == "failed"  # not done: the retry takes the row over
    assert told(org) == []  # one failure: nobody bothered yet

    second = crons.gmail_watch_one(org.id, integration_id, now + timedelta(minutes=1))

    assert (second["failures"], second["retry_in_s"], second["told_user"]) == (2, gmail_watch.RETRY_DELAYS_S[1], True)
    ((kind, user_id, text),) = told(org)
    assert (kind, user_id) == ("reconnect", org.rep)
    assert "rep@example.com" in text and "2 failures today" in text and "Topic not found" in text
    assert "/oauth/google/start" in text or "/oauth/google/connect" in text  # what to do if it goes on

    third = crons.gmail_watch_one(org.id, integration_id, now + timedelta(minutes=6))
    assert third["failures"] == 3 and "told_user" not in third and len(told(org)) == 1  # told once

    del google.watch_errors["rep@example.com"]
    fixed = crons.gmail_watch_one(org.id, integration_id, now + timedelta(minutes=16))

    assert fixed["ok"] and "retry_in_s" not in fixed
    assert slot(org, integration_id, now).status == "done"
    assert crons.gmail_watch_one(org.id, integration_id, now + timedelta(minutes=30)) == {
        "skipped": "slot already handled"
    }
    assert len(google.watches) == 1


def test_the_last_retry_of_the_day_schedules_no_other(google: FakeGoogle, org: TestOrg) -> None:
    now = utcnow()
    integration_id = connect(org, "rep@example.com", None, creds=credentials(google, "rep@example.com"))
    google.watch_errors["rep@example.com"] = google_error(500, "Backend Error", "backendError")

    delays = [crons.gmail_watch_one(org.id, integration_id, now)["retry_in_s"] for _ in range(4)]

    assert delays == [*gmail_watch.RETRY_DELAYS_S, None]  # tomorrow's renewal tries again
    assert slot(org, integration_id, now).counts["failures"] == 4


def test_missing_credentials_ask_the_user_to_reconnect(google: FakeGoogle, org: TestOrg) -> None:
    now = utcnow()
    integration_id = connect(org, "rep@example.com", None, creds=None)

    for minutes in (0, 1):
        crons.gmail_watch_one(org.id, integration_id, now + timedelta(minutes=minutes))

    ((kind, user_id, text),) = told(org)
    assert (kind, user_id) == ("reconnect", org.rep) and "Reconnect Google to fix it: " in text


def test_a_revoked_integration_is_not_retried(google: FakeGoogle, org: TestOrg) -> None:
    now = utcnow()
    revoked = connect(org, "gone@example.com", None, creds=credentials(google, "gone@example.com", revoked=True))

    counts = crons.gmail_watch_one(org.id, revoked, now)

    assert counts["ok"] is False and "retry_in_s" not in counts  # its user was asked to reconnect already
    assert slot(org, revoked, now).status == "done"
    assert [(k, u) for k, u, _t in told(org)] == [("reconnect", org.rep)]


def test_the_task_puts_the_retry_on_the_broker_with_its_delay(google: FakeGoogle, org: TestOrg, pg: Any) -> None:
    """The Celery task (run here, in-process) publishes the next try with the delay as its ETA; the
    message is taken back off the broker so no later worker runs it."""
    import base64

    import redis

    integration_id = connect(org, "rep@example.com", None, creds=credentials(google, "rep@example.com"))
    google.watch_errors["rep@example.com"] = google_error(500, "Backend Error", "backendError")
    broker = redis.Redis.from_url(pg.env["BROKER_URL"])
    before = utcnow()

    counts = crons.gmail_watch_one_task(str(org.id), str(integration_id))

    ours = []
    for raw in broker.lrange("steps", 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        if message["headers"]["task"] == "proactive.cron.gmail_watch_one" and args[1] == str(integration_id):
            ours.append((raw, args, datetime.fromisoformat(message["headers"]["eta"])))
    for raw, _args, _eta in ours:
        broker.lrem("steps", 0, raw)
    assert counts["retry_in_s"] == gmail_watch.RETRY_DELAYS_S[0]
    ((_raw, args, eta),) = ours
    assert args == [str(org.id), str(integration_id)]
    assert before + timedelta(seconds=gmail_watch.RETRY_DELAYS_S[0]) <= eta <= utcnow() + timedelta(minutes=1)
