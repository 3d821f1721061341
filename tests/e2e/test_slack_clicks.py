"""Slack clicks end to end: the real app under gunicorn on 127.0.0.1, a real `celery worker`,
PostgreSQL, Redis, and the fake Slack (Web API + response_urls) and Google of the sequence tests'
world. Every request is a vendor sample with our ids, signed as Slack signs it, sent over HTTP.
gunicorn is always stopped (its whole process group).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from tests.fakes.slack import Call
from tests.integration import conftest as integration
from tests.integration.sequences import conftest as sequence_world
from tests.integration.sequences.conftest import FINAL, World, wait_job
from tests.support.engine import pending_approval, step_rows
from tests.support.slack import SIGNING_SECRET, click, form_body, sample, signed_headers, submission
from tests.support.waiting import wait_for
from worker.db import transaction
from worker.engine.events import fire_event
from worker.models import AuditLog, approvals, utcnow
from worker.ops.seed import demo_id

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# The sequence tests' world (PostgreSQL, Redis, one worker, fake Slack/Google), with our extra_env.
pg = integration.pg
world = sequence_world.world
w = sequence_world.w

REPO = Path(__file__).resolve().parents[2]
INITECH = {"deal_id": str(demo_id("deal", "initech-platform")), "contact_id": str(demo_id("contact", "bill"))}
GLOBEX_QUESTION = {"email_id": str(demo_id("email", "email-globex-question"))}
ALICE, BRUNO = "U0ALICE", "U0BRUNO"
CLICKS = 100  # concurrent clicks on one approval
ACK_DEADLINE_S = 3.0  # Slack shows an error when the answer takes longer
START_TIMEOUT_S = 30.0  # gunicorn boot on a loaded 2-core box
STOP_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def extra_env() -> dict[str, str]:
    return {"SLACK_SIGNING_SECRET": SIGNING_SECRET, "PROACTIVE_UNDO_WINDOW_S": "1"}


@dataclass
class Web:
    """The gunicorn server and an HTTP client for it."""

    url: str
    log_path: Path
    http: httpx.Client

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.http.post(self.url + path, content=body, headers=headers)

    def click(self, payload: dict[str, Any]) -> httpx.Response:
        body = form_body(payload)
        return self.post("/slack/interactive", body, signed_headers(body))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def web(world: World) -> Iterator[Web]:
    """`gunicorn 'webhooks:create_app()'` (2 processes x 16 threads) with the world's environment."""
    port = _free_port()
    log_path = world.backend.log_dir / f"gunicorn-slack-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        "2",
        "-k",
        "gthread",
        "--threads",
        "16",
        "-b",
        f"127.0.0.1:{port}",
        "webhooks:create_app()",
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            args,
            cwd=REPO,
            env={**os.environ, **world.backend.env, "PYTHONPATH": str(REPO)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    http = httpx.Client(timeout=10.0)
    server = Web(f"http://127.0.0.1:{port}", log_path, http)
    try:
        verification = json.dumps(sample("url_verification.json")).encode()

        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{log_path.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                headers = signed_headers(verification, content_type="application/json")
                return server.post("/slack/events", verification, headers).status_code == 200
            return False

        wait_for(answers, timeout_s=START_TIMEOUT_S, what="gunicorn answering /slack/events")
        yield server
    finally:
        http.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT_S)


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Review:
    job_id: uuid.UUID
    approval_id: str
    channel: str
    ts: str


def open_review(w: World, event_type: str, payload: dict[str, Any]) -> Review:
    job = fire_event(w.event(event_type, payload)).job_id
    status = wait_job(job, "awaiting_approval", *FINAL)
    assert status == "awaiting_approval", (status, {s: (r.status, r.error) for s, r in step_rows(job).items()})
    approval = pending_approval(job)

    def posted() -> Call | None:
        return next(
            (
                c
                for c in w.slack.calls("chat.postMessage")
                if c.ok and f"approval:{approval.id}" in [b.get("block_id") for b in c.params.get("blocks") or []]
            ),
            None,
        )

    call = wait_for(posted, what=f"approval {approval.id} posted to Slack")
    return Review(job, str(approval.id), call.response["channel"], call.response["ts"])


def click_on(w: World, review: Review, action_id: str, user: str = ALICE, **kw: Any) -> tuple[dict[str, Any], str]:
    url = w.slack.response_url(review.channel, review.ts)
    payload = click(
        action_id, review.approval_id, user=user, response_url=url, channel=review.channel, message_ts=review.ts, **kw
    )
    return payload, url


def approval_row(approval_id: str) -> Any:
    with transaction() as conn:
        return conn.execute(select(approvals).where(approvals.c.id == uuid.UUID(approval_id))).one()


def ephemeral_text(w: World, url: str) -> str:
    [answer] = wait_for(lambda: w.slack.responses(ephemeral=True, url=url), what=f"ephemeral answer to {url}")
    return answer.params["text"]


def has_buttons(message: dict[str, Any]) -> bool:
    return any(b.get("type") == "actions" for b in message.get("blocks") or [])


def acked(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.content == b"" and response.elapsed.total_seconds() < ACK_DEADLINE_S


# --------------------------------------------------------------------------- tests


def test_a_proposal_goes_from_the_approve_click_to_the_sent_email(w: World, web: Web):
    review = open_review(w, "proposal_generation", INITECH)
    payload, url = click_on(w, review, "prop_approve_send")

    assert acked(web.click(payload))
    assert wait_job(review.job_id) == "completed"
    [sent] = w.google.sent
    assert sent.mime["To"] == "bill@initech.example"
    assert step_rows(review.job_id)["send-proposal"].output["action"] == "sent"
    final = wait_for(
        lambda: (m := w.slack.messages[(review.channel, review.ts)]) and not has_buttons(m) and m,
        what="the review replaced",
    )
    assert "Approved and sent by @Alice Moreau at" in final["text"]
    assert w.slack.responses(ephemeral=True, url=url) == []
    row = wait_for(lambda: (r := approval_row(review.approval_id)).response_url and r, what="click URL kept")
    assert (row.decision, row.decided_by, row.response_url) == ("approve_send", w.user("alice"), url)


def test_a_hundred_concurrent_clicks_resume_the_job_once(w: World, web: Web):
    review = open_review(w, "proposal_generation", INITECH)
    clicks = [click_on(w, review, "prop_approve_send") for _ in range(CLICKS)]

    with ThreadPoolExecutor(max_workers=CLICKS) as pool:
        responses = list(pool.map(lambda c: web.click(c[0]), clicks))
    assert [r.status_code for r in responses] == [200] * CLICKS
    assert all(acked(r) for r in responses), max(r.elapsed.total_seconds() for r in responses)

    assert wait_job(review.job_id) == "completed"
    urls = {url for _payload, url in clicks}
    answered = wait_for(
        lambda: (found := w.slack.responses(ephemeral=True)) and len(found) >= CLICKS - 1 and found,
        what=f"{CLICKS - 1} 'already decided' answers",
    )
    assert len(answered) == CLICKS - 1
    assert all("already approved and sent by Alice Moreau at" in c.params["text"] for c in answered)
    answered_urls = {u for u in urls for c in answered if u.endswith(c.params["_path"])}
    [winner] = urls - answered_urls
    row = wait_for(lambda: (r := approval_row(review.approval_id)).response_url and r, what="winner's URL kept")
    assert (row.status, row.response_url) == ("approved", winner) and row.resumed_at is not None
    with transaction() as conn:
        decisions = conn.execute(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.target_id == review.approval_id, AuditLog.action == "approval.approve_send")
        ).scalar_one()
    assert decisions == 1
    send = step_rows(review.job_id)["send-proposal"]
    assert (send.status, send.attempt) == ("succeeded", 1) and len(w.google.sent) == 1


def test_a_click_by_someone_who_may_not_decide_changes_nothing(w: World, web: Web):
    review = open_review(w, "proposal_generation", INITECH)
    payload, url = click_on(w, review, "prop_approve_send", user=BRUNO)

    assert acked(web.click(payload))
    assert "not yours to decide" in ephemeral_text(w, url)
    row = approval_row(review.approval_id)
    assert (row.status, row.decision, row.decided_by) == ("pending", None, None)
    assert has_buttons(w.slack.messages[(review.channel, review.ts)]) and w.google.sent == []

    skip, _ = click_on(w, review, "prop_skip")
    assert acked(web.click(skip))
    assert wait_job(review.job_id) == "cancelled" and w.google.sent == []


def test_a_click_on_an_expired_approval_is_answered_expired(w: World, web: Web):
    review = open_review(w, "proposal_generation", INITECH)
    with transaction() as conn:
        conn.execute(
            update(approvals)
            .where(approvals.c.id == uuid.UUID(review.approval_id))
            .values(expires_at=utcnow() - timedelta(seconds=5))
        )
    payload, url = click_on(w, review, "prop_approve_send")

    assert acked(web.click(payload))
    assert "This request expired at" in ephemeral_text(w, url)
    assert approval_row(review.approval_id).decision is None and w.google.sent == []


def test_the_edit_modal_round_trip_sends_the_edited_email(w: World, web: Web):
    review = open_review(w, "email_received", GLOBEX_QUESTION)
    payload, _url = click_on(w, review, "email_edit", trigger_id=f"{time.time():.0f}.42.edit")

    assert acked(web.click(payload))
    [opened] = wait_for(lambda: w.slack.calls("views.open"), what="views.open")
    view = opened.params["view"]
    prefilled = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"}
    assert prefilled["subject"] == "Re: Intro and next steps" and prefilled["body"].startswith("Hi Hank,")

    empty = form_body(submission(view, user=ALICE, subject="", body="Hi"))
    assert web.post("/slack/interactive", empty, signed_headers(empty)).json() == {
        "response_action": "errors",
        "errors": {"subject": "The subject cannot be empty."},
    }
    good = form_body(submission(view, user=ALICE, subject="Re: Licences", body="Hi Hank,\n\nIncluded.\n\nAlice"))
    assert acked(web.post("/slack/interactive", good, signed_headers(good)))
    assert wait_job(review.job_id) == "completed"
    [sent] = w.google.sent
    assert sent.mime["Subject"] == "Re: Licences" and "Included." in sent.mime.get_payload(decode=True).decode()
