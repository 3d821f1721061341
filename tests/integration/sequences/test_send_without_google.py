"""An approved send for a rep without a Google connection is never reported as success.

meeting_ended for Alice with her Google integration gone, the follow-up approved through
`approvals.decide` (what a Slack click calls), on PostgreSQL + Redis with a real worker and the fake
Slack and Google: the send waits for Google (job running, the approval's Slack message edited to say
so with Alice's absolute, signed connect link, one DM with the same kind of link); the link works
against the web app; connecting Google through the real OAuth callback sends the email once and the
message says it was sent. A job that waited longer than the give-up fails, naming the step, and the
message says "Not sent" with the link; one cancelled while it waits says "Not sent" too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import delete, select, update

from tests.fakes.google import CLIENT_ID, CLIENT_SECRET
from tests.fakes.slack import Call
from tests.integration.sequences.conftest import World, _connect_google, children, wait_delivered, wait_job
from tests.integration.sequences.test_meeting_ended import demo_data_restored  # noqa: F401 (autouse)
from tests.support.engine import approvals_of, job_row, pending_approval, step_rows
from tests.support.waiting import wait_for
from webhooks import create_app
from worker.config import get_settings
from worker.db import transaction
from worker.engine.approvals import decide
from worker.engine.events import fire_event
from worker.engine.executor import REVOKED_GIVE_UP, WAITING_FOR_CONNECT, request_cancel
from worker.google import oauth as google_oauth
from worker.models import Integration, SlackOutbox, jobs, utcnow
from worker.ops.seed import demo_id
from worker.ops.views import job_detail

pytestmark = pytest.mark.slow

APP_URL = "https://proactive.test"
SECRET = "oauth-state-" + uuid.uuid4().hex
GLOBEX = demo_id("meeting", "globex-discovery")
HANK = "hank@globex.example"
ALICE_MAILBOX = "alice@northwind.example"
SEND = "send-followup-email"
LINK = re.compile(r"<(https://proactive\.test/oauth/google/start\?token=[^|>]+)\|([^>]+)>")
integrations = Integration.__table__


@pytest.fixture(scope="module")
def extra_env() -> dict[str, str]:
    """Signed connect links under APP_URL, and the OAuth client the fake Google knows."""
    return {
        "OAUTH_STATE_SECRET": SECRET,
        "APP_URL": APP_URL,
        "GOOGLE_CLIENT_ID": CLIENT_ID,
        "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
    }


@pytest.fixture
def alice_without_google(w: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Alice has no Google integration during the test; the seeded one is back after it."""
    monkeypatch.setitem(w.google.busy, "primary", [])  # her calendar, for the calendar_find_times follow-up
    alice = (integrations.c.org_id == w.org_id) & (integrations.c.user_id == w.user("alice"))
    with transaction() as conn:
        conn.execute(delete(integrations).where(alice, integrations.c.provider == "google"))
    try:
        yield
    finally:
        with transaction() as conn:
            conn.execute(delete(integrations).where(alice, integrations.c.provider == "google"))
        _connect_google(w.google, w.seed)


def _approved_review(w: World) -> tuple[uuid.UUID, Any]:
    """A meeting_ended job for the Globex call, its follow-up approved with Send now; (job, approval)."""
    job = fire_event(w.event("meeting_ended", {"meeting_id": str(GLOBEX)})).job_id
    assert wait_job(job, "awaiting_approval", "failed", "completed") == "awaiting_approval"
    approval = pending_approval(job)
    assert approval.step == "review-followup-email"
    wait_delivered(job)
    return job, approval


def _approval(job: uuid.UUID) -> Any:
    (row,) = approvals_of(job)
    return row


def _edits(w: World, approval: Any) -> list[Call]:
    return w.slack.calls("chat.update", channel=w.dm("alice"), ts=approval.slack_ts)


def _line(call: Call) -> str:
    """The outcome line of an edited approval message (its last context block)."""
    contexts = [b for b in call.params.get("blocks") or [] if b["type"] == "context"]
    return contexts[-1]["elements"][0]["text"] if contexts else ""


def _edit_saying(w: World, approval: Any, words: str) -> Call:
    """Wait until the approval's message was edited to say `words`; that edit."""
    return wait_for(
        lambda: next((c for c in reversed(_edits(w, approval)) if words in (c.params.get("text") or "")), None),
        what=f"approval message edited to say {words!r}",
    )


def _link_in(call: Call) -> tuple[str, str]:
    """(url, label) of the connect link in an edited message."""
    found = LINK.search(_line(call))
    assert found, _line(call)
    return found.group(1), found.group(2)


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def test_the_send_waits_for_google_then_goes_out_once_after_the_connect(w: World, alice_without_google: None):
    job, review = _approved_review(w)
    decide(review.id, "send_now", user_id=w.user("alice"))

    # the send waits: not completed, not failed; the reason says why
    parked = wait_for(
        lambda: (s := step_rows(job).get(SEND)) is not None and s.error_class == "not_connected" and s,
        what="the send parked",
    )
    assert parked.status == "queued" and parked.attempt == 0  # waiting uses no attempt
    assert parked.error == "GoogleNotConnected: Alice Moreau has no Google connection"
    row = job_row(job)
    assert (row.status, row.reason) == ("running", WAITING_FOR_CONNECT)

    # the approval's message (buttons already replaced) now says it was not sent yet, with her link
    approval = _approval(job)
    waiting = _edit_saying(w, approval, "waiting for Google")
    assert "Approved — waiting for Google" in _line(waiting)
    url, label = _link_in(waiting)
    assert label == "connect here" and _line(waiting).endswith("and it will be sent")
    assert url.startswith(f"{APP_URL}/oauth/google/start?token=")  # absolute, from APP_URL
    grant = google_oauth.read_connect_token(_token(url), utcnow())
    assert (grant.org_id, grant.user_id) == (w.org_id, w.user("alice"))
    assert not any(b["type"] == "actions" for b in waiting.params["blocks"])  # nothing left to click

    # one DM asks her to connect, with the same kind of link
    with transaction() as conn:
        dms = list(
            conn.execute(
                select(SlackOutbox.__table__).where(
                    SlackOutbox.kind == "reconnect", SlackOutbox.job_id == job, SlackOutbox.user_id == w.user("alice")
                )
            )
        )
    assert len(dms) == 1 and f"connect here: {APP_URL}/oauth/google/start?token=" in dms[0].text

    # the timeline and the API show it waiting, not done
    detail = _detail(job)
    send = next(s for s in detail["steps"] if s["step"] == SEND)
    assert send["waiting"] is True and send["not_before"] is not None
    assert detail["status"] == "running" and detail["errors"] == 0

    # the link works: the web app checks its signature and sends the browser to Google's consent screen
    browser = create_app().test_client()
    started = browser.get(urlsplit(url).path + "?" + urlsplit(url).query)
    assert started.status_code == 302, started.get_data(as_text=True)
    consent = urlsplit(started.headers["Location"])
    assert f"{consent.scheme}://{consent.netloc}{consent.path}" == get_settings().google_auth_uri
    state = parse_qs(consent.query)["state"][0]
    assert parse_qs(consent.query)["client_id"] == [CLIENT_ID]

    # she connects (Google's redirect back to the callback): the waiting send goes out at once, once
    code = w.google.issue_code(ALICE_MAILBOX, redirect_uri=f"{APP_URL}/oauth/google/callback")
    connected = browser.get(f"/oauth/google/callback?code={code}&state={state}")
    assert connected.status_code == 200, connected.get_data(as_text=True)
    assert wait_job(job) == "completed"
    assert len(w.google.sent) == 1 and w.google.sent[0].mime["To"] == HANK
    send_row = step_rows(job)[SEND]
    assert (send_row.status, send_row.attempt) == ("succeeded", 1)
    assert job_row(job).reason is None

    sent = _edit_saying(w, approval, f"Email sent to {HANK}")
    assert _edits(w, approval)[-1] == sent  # the last word on the message
    assert not any(b["type"] == "actions" for b in sent.params["blocks"])
    for kid in children(job):  # the follow-ups post their own reviews: let them settle
        assert wait_job(kid.id, "awaiting_approval", "completed", "failed") == "awaiting_approval"
        wait_delivered(kid.id)


def test_a_send_that_waited_too_long_fails_the_job_and_says_not_sent(w: World, alice_without_google: None):
    job, review = _approved_review(w)
    with transaction() as conn:  # as if the job had been waiting for longer than the give-up
        conn.execute(
            update(jobs).where(jobs.c.id == job).values(created_at=utcnow() - REVOKED_GIVE_UP - timedelta(hours=1))
        )
    decide(review.id, "send_now", user_id=w.user("alice"))
    assert wait_job(job) == "failed"
    row = job_row(job)
    assert (row.error_step, row.error) == (SEND, "GoogleNotConnected: Alice Moreau has no Google connection")
    assert step_rows(job)[SEND].status == "failed" and w.google.sent == []

    not_sent = _edit_saying(w, _approval(job), "Not sent")
    assert "Not sent: Google was still not connected after waiting" in _line(not_sent)
    url, label = _link_in(not_sent)
    assert label == "connect Google" and _line(not_sent).endswith("then send it yourself")
    assert google_oauth.read_connect_token(_token(url), utcnow()).user_id == w.user("alice")

    detail = _detail(job)
    assert detail["status"] == "failed" and detail["errors"] == 1
    assert detail["failed_steps"] == [
        {"step": SEND, "error": row.error, "error_class": "not_connected"},
    ]
    assert children(job) == []  # a failed job fires no follow-ups


def _detail(job: uuid.UUID) -> dict[str, Any]:
    with transaction() as conn:
        return job_detail(conn, job)


def test_cancelling_a_job_that_waits_for_google_says_not_sent(w: World, alice_without_google: None):
    job, review = _approved_review(w)
    decide(review.id, "send_now", user_id=w.user("alice"))
    approval = _approval(job)
    _edit_saying(w, approval, "waiting for Google")

    assert request_cancel(job, actor="tests").immediate  # nothing runs while it waits: it ends at once
    assert wait_job(job) == "cancelled"
    assert step_rows(job)[SEND].status == "skipped"
    not_sent = _edit_saying(w, approval, "Not sent")
    assert _line(not_sent) == (
        ":warning: Not sent: the job was cancelled while it waited for Google — send it yourself if it is still wanted"
    )
    assert w.google.sent == []
