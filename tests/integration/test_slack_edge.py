"""The Slack edge in process: the real Flask app (test client) in front of PostgreSQL, Redis, a real
worker and the fake Slack/Google of the sequence tests' world.

Every request body is built from a vendor sample (tests/support/slack.py) and signed exactly as
Slack signs it; the approvals are real ones, opened by the demo org's sequences.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, event, func, insert, select, update

from tests.conftest import apply_env
from tests.fakes.slack import Call
from tests.integration.sequences import conftest as sequence_world
from tests.integration.sequences.conftest import World, wait_job
from tests.support.engine import pending_approval, step_rows
from tests.support.slack import (
    SAMPLES,
    SIGNING_SECRET,
    click,
    form_body,
    sample,
    signature,
    signed_headers,
    slot_state,
    submission,
)
from tests.support.waiting import wait_for
from webhooks import create_app
from worker.db import get_engine, transaction
from worker.engine.approvals import DecidedBy, decided_content
from worker.engine.events import fire_event
from worker.models import (
    AuditLog,
    Campaign,
    CampaignReply,
    NurtureEntry,
    Org,
    RejectedEvent,
    SlackEventSeen,
    SlackOutbox,
    User,
    approvals,
    jobs,
    utcnow,
)
from worker.ops.seed import demo_id
from worker.slack import replace as slack_replace
from worker.slack.delivery import replace_message
from worker.worktime import next_working_morning

pytestmark = pytest.mark.slow

# The sequence tests' world (PostgreSQL, Redis, one worker, fake Slack/Google), with our extra_env.
world = sequence_world.world
w = sequence_world.w

INITECH = {"deal_id": str(demo_id("deal", "initech-platform")), "contact_id": str(demo_id("contact", "bill"))}
BILL = {"contact_id": str(demo_id("contact", "bill")), "deal_id": str(demo_id("deal", "initech-platform"))}
# The module's shared review is on another of alice's deals: one live proposal per rep and deal
# (docs/events.md), and the tests open their own INITECH reviews while it stays open.
GLOBEX = {"deal_id": str(demo_id("deal", "globex-fleet")), "contact_id": str(demo_id("contact", "hank"))}
GLOBEX_QUESTION = {"email_id": str(demo_id("email", "email-globex-question"))}
INSERT_EVENT = r"/calendar/v3/calendars/primary/events"
ALICE, BRUNO = "U0ALICE", "U0BRUNO"
outbox = SlackOutbox.__table__


@pytest.fixture(scope="module")
def extra_env() -> dict[str, str]:
    """The signing secret of these tests, and an undo window long enough to click Undo in."""
    return {"SLACK_SIGNING_SECRET": SIGNING_SECRET, "PROACTIVE_UNDO_WINDOW_S": "3"}


@pytest.fixture(scope="module")
def client(world: World) -> FlaskClient:
    """The real app, in this process (its Celery publishes reach the world's worker)."""
    return create_app().test_client()


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Review:
    """An open approval and where its message sits in the fake Slack."""

    job_id: uuid.UUID
    approval: Any
    channel: str
    ts: str

    @property
    def id(self) -> str:
        return str(self.approval.id)


def _block_ids(call: Call) -> list[str]:
    return [b.get("block_id") for b in call.params.get("blocks") or []]


def open_review(w: World, event_type: str, payload: dict[str, Any], user: str = "alice") -> Review:
    """Fire the event, wait for its approval and for the approval's Slack message."""
    job = fire_event(w.event(event_type, payload, user=user)).job_id
    assert wait_job(job, "awaiting_approval") == "awaiting_approval"
    approval = pending_approval(job)

    def post() -> Call | None:
        return next(
            (c for c in w.slack.calls("chat.postMessage") if f"approval:{approval.id}" in _block_ids(c) and c.ok),
            None,
        )

    posted = wait_for(post, what=f"approval {approval.id} posted")
    return Review(job, approval, posted.response["channel"], posted.response["ts"])


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send(client: FlaskClient, path: str, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(path, data=body, headers=headers)


def post_click(client: FlaskClient, payload: dict[str, Any]) -> Any:
    body = form_body(payload)
    return send(client, "/slack/interactive", body, signed_headers(body))


def click_on(w: World, review: Review, action_id: str, user: str = ALICE, **kw: Any) -> tuple[dict[str, Any], str]:
    """A click on the review's message with its own response_url; (payload, response_url)."""
    url = w.slack.response_url(review.channel, review.ts)
    payload = click(
        action_id, review.id, user=user, response_url=url, channel=review.channel, message_ts=review.ts, **kw
    )
    return payload, url


def approval_row(approval_id: str | uuid.UUID) -> Any:
    with transaction() as conn:
        return conn.execute(select(approvals).where(approvals.c.id == uuid.UUID(str(approval_id)))).one()


def audits(target_id: str, action: str) -> int:
    with transaction() as conn:
        return conn.execute(
            select(func.count()).select_from(AuditLog).where(AuditLog.target_id == target_id, AuditLog.action == action)
        ).scalar_one()


def rejected_since(since: datetime, **match: Any) -> list[Any]:
    table = RejectedEvent.__table__
    with transaction() as conn:
        rows = conn.execute(select(table).where(table.c.created_at >= since).order_by(table.c.created_at)).all()
    return [r for r in rows if all(getattr(r, k) == v for k, v in match.items())]


def ephemeral(w: World, url: str) -> str:
    """The text of the one ephemeral answer posted to `url` (waits for it)."""
    calls = wait_for(lambda: w.slack.responses(ephemeral=True, url=url), what=f"an ephemeral answer to {url}")
    assert len(calls) == 1
    return calls[0].params["text"]


def message(w: World, review: Review) -> dict[str, Any]:
    return w.slack.messages[(review.channel, review.ts)]


def has_buttons(msg: dict[str, Any]) -> bool:
    return any(b.get("type") == "actions" for b in msg.get("blocks") or [])


def outbox_row(approval_id: str | uuid.UUID) -> Any:
    with transaction() as conn:
        return conn.execute(
            select(outbox).where(outbox.c.approval_id == uuid.UUID(str(approval_id)), outbox.c.kind == "approval")
        ).one()


def finish(review: Review) -> None:
    """Skip a review the tests left open, so its job ends."""
    from worker.engine.approvals import decide

    decide(review.approval.id, "skip", user_id=uuid.UUID(review.approval.approver_user_ids[0]))
    wait_job(review.job_id)


# --------------------------------------------------------------------------- signing


def test_the_signer_reproduces_slacks_published_vector():
    vector = sample("signing_vector.json")
    got = signature(vector["signing_secret"], vector["timestamp"], vector["body"].encode())
    assert got == vector["expected_signature"] == vector["headers"]["X-Slack-Signature"]
    assert signature(vector["signing_secret"], vector["timestamp"], (vector["body"] + "------").encode()) != got


# --------------------------------------------------------------------------- clicks


def test_a_signed_click_records_the_decision_once_and_replaces_the_message(w: World, client: FlaskClient):
    review = open_review(w, "proposal_generation", INITECH)
    payload, url = click_on(w, review, "prop_approve_send")

    response = post_click(client, payload)
    assert (response.status_code, response.data) == (200, b"")
    decided = approval_row(review.id)
    assert (decided.status, decided.decision, decided.decided_by) == ("approved", "approve_send", w.user("alice"))

    again, again_url = click_on(w, review, "prop_approve_send")
    assert post_click(client, again).status_code == 200
    assert "already approved and sent by Alice Moreau at" in ephemeral(w, again_url)
    assert audits(review.id, "approval.approve_send") == 1

    assert wait_job(review.job_id) == "completed"
    assert len(w.google.sent) == 1 and w.google.sent[0].mime["To"] == "bill@initech.example"
    final = wait_for(lambda: not has_buttons(message(w, review)) and message(w, review), what="message replaced")
    assert "Approved and sent by @Alice Moreau at" in final["text"]
    assert w.slack.responses(ephemeral=True, url=url) == []  # the winner gets no ephemeral answer
    assert approval_row(review.id).resumed_at is not None


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("bad signature", "does not match"),
        ("missing signature", "missing X-Slack-Signature"),
        ("missing timestamp", "missing X-Slack-Request-Timestamp"),
        ("stale timestamp", "more than 300 s"),
        ("future timestamp", "more than 300 s"),
        ("non-numeric timestamp", "not a number"),
    ],
)
def test_a_request_slack_did_not_sign_is_refused_and_changes_nothing(
    w: World, client: FlaskClient, shared_review: Review, case: str, reason: str
):
    since = utcnow()
    payload, url = click_on(w, shared_review, "prop_approve_send")
    body = form_body(payload)
    now = int(time.time())
    headers = signed_headers(body)
    if case == "bad signature":
        headers = {**signed_headers(body + b"x"), "X-Slack-Request-Timestamp": headers["X-Slack-Request-Timestamp"]}
    elif case == "missing signature":
        del headers["X-Slack-Signature"]
    elif case == "missing timestamp":
        del headers["X-Slack-Request-Timestamp"]
    elif case == "stale timestamp":
        headers = signed_headers(body, timestamp=now - 301)
    elif case == "future timestamp":
        headers = signed_headers(body, timestamp=now + 301)
    else:
        headers = {**headers, "X-Slack-Request-Timestamp": f"{now}abc"}
        headers["X-Slack-Signature"] = signature(SIGNING_SECRET, headers["X-Slack-Request-Timestamp"], body)

    response = send(client, "/slack/interactive", body, headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_signature"
    [refused] = rejected_since(since, source="slack:action", error_type="InvalidSignature")
    assert reason in refused.reason
    # kept as sent, but for the credentials in it (the response_url, Slack's verification token)
    stored = json.loads(parse_qs(refused.body)["payload"][0])
    assert stored == {**payload, "response_url": "(redacted)", "token": "(redacted)"} and url not in refused.body
    assert "x-slack-signature" not in {k.lower() for k in (refused.headers or {})}
    assert approval_row(shared_review.id).status == "pending"
    assert audits(shared_review.id, "approval.approve_send") == 0
    assert w.slack.responses(url=url) == []


@pytest.fixture(scope="module")
def shared_review(world: World) -> Iterator[Review]:
    """One pending proposal review that refused requests must leave alone."""
    review = open_review(world, "proposal_generation", GLOBEX)
    yield review
    finish(review)


def test_wrong_content_type_and_invalid_json_are_precise_4xx(w: World, client: FlaskClient):
    since = utcnow()
    as_json = json.dumps(click("prop_skip", str(uuid.uuid4()), user=ALICE)).encode()
    wrong_type = send(client, "/slack/interactive", as_json, signed_headers(as_json, content_type="application/json"))
    bad_json = b"payload=%7Bnot+json"
    broken = send(client, "/slack/interactive", bad_json, signed_headers(bad_json))
    assert (wrong_type.status_code, broken.status_code) == (415, 400)
    reasons = [r.reason for r in rejected_since(since, source="slack:action", error_type="InvalidPayload")]
    assert reasons == [
        "expected application/x-www-form-urlencoded, got application/json",
        "the payload is not valid JSON",
    ]


def test_an_unknown_action_is_acknowledged_recorded_and_answered(w: World, client: FlaskClient):
    since = utcnow()
    url = w.slack.response_url()
    response = post_click(client, click("orch_launch_rockets", str(uuid.uuid4()), user=ALICE, response_url=url))
    assert (response.status_code, response.data) == (200, b"")
    [refused] = rejected_since(since, source="slack:action", error_type="UnknownAction")
    assert refused.reason == "unknown action 'orch_launch_rockets'"
    assert json.loads(refused.body)["actions"][0]["action_id"] == "orch_launch_rockets"
    assert "does not know this button" in ephemeral(w, url)


@pytest.mark.parametrize(("team", "user", "org_known"), [("T0NOWHERE1", ALICE, False), ("T0DEMO0001", "U0GHOST", True)])
def test_an_unknown_team_or_user_changes_nothing_and_is_told_so(
    w: World, client: FlaskClient, shared_review: Review, team: str, user: str, org_known: bool
):
    since = utcnow()
    url = w.slack.response_url(shared_review.channel, shared_review.ts)
    payload = click("prop_approve_send", shared_review.id, user=user, team=team, response_url=url)
    assert post_click(client, payload).status_code == 200
    [refused] = rejected_since(since, source="slack:action", error_type="UnknownSlackUser")
    assert refused.org_id == (w.org_id if org_known else None)
    assert "not linked to a Proactive user" in ephemeral(w, url)
    assert approval_row(shared_review.id).status == "pending"


def test_a_non_approver_changes_nothing_and_is_told_not_yours(w: World, client: FlaskClient, shared_review: Review):
    since = utcnow()
    payload, url = click_on(w, shared_review, "prop_approve_send", user=BRUNO)
    assert post_click(client, payload).status_code == 200
    assert "not yours to decide" in ephemeral(w, url)
    row = approval_row(shared_review.id)
    assert (row.status, row.decision, row.response_url) == ("pending", None, None)
    [refused] = rejected_since(since, source="slack:action", error_type="NotAuthorized")
    assert refused.org_id == w.org_id and "Bruno Keller may not decide" in refused.reason
    assert has_buttons({"blocks": outbox_row(shared_review.id).blocks})  # the buttons are still there


def test_a_click_on_an_expired_request_is_answered_expired(w: World, client: FlaskClient):
    review = open_review(w, "proposal_generation", INITECH)
    past = utcnow() - timedelta(minutes=1)
    with transaction() as conn:
        conn.execute(update(approvals).where(approvals.c.id == review.approval.id).values(expires_at=past))
    payload, url = click_on(w, review, "prop_approve_send")
    assert post_click(client, payload).status_code == 200
    assert "This request expired at" in ephemeral(w, url)
    assert approval_row(review.id).decision is None
    assert w.google.sent == []
    from worker.engine.executor import request_cancel

    request_cancel(review.job_id, actor="tests")  # frees the deal: one live proposal per rep and deal


def test_a_button_of_another_kind_is_refused(w: World, client: FlaskClient, shared_review: Review):
    payload, url = click_on(w, shared_review, "email_send_now")
    assert post_click(client, payload).status_code == 200
    assert "email_send_now does not apply to a proposal_review request" in ephemeral(w, url)
    assert approval_row(shared_review.id).status == "pending"


def test_choosing_a_slot_decides_nothing_and_send_invite_carries_the_chosen_slot(w: World, client: FlaskClient):
    w.google.busy["primary"] = []  # alice's calendar is free all next week
    review = open_review(w, "calendar_find_times", {**BILL, "scheduling_text": "An hour next week, afternoons"})
    slots = review.approval.preview["slots"]
    assert len(slots) >= 2
    chosen = slots[1]["start"]
    state = slot_state(review.id, chosen)

    radio, radio_url = click_on(w, review, "cal_select_slot", state=state)
    radio["actions"][0].update(
        type="radio_buttons", selected_option=state[f"approval:{review.id}"]["cal_select_slot"]["selected_option"]
    )
    assert post_click(client, radio).status_code == 200
    assert approval_row(review.id).status == "pending" and w.slack.responses(url=radio_url) == []

    payload, _url = click_on(w, review, "cal_send_invite", state=state)
    assert post_click(client, payload).status_code == 200
    row = approval_row(review.id)
    assert (row.decision, row.decision_data) == ("send_invite", {"slot": chosen})
    assert wait_job(review.job_id) == "completed"
    [inserted] = w.google.requests_to("POST", INSERT_EVENT)
    start = datetime.fromisoformat(inserted.json["start"]["dateTime"].replace("Z", "+00:00"))
    assert start == datetime.fromisoformat(chosen)


def test_send_later_snoozes_the_send_to_the_reps_next_working_morning(w: World, client: FlaskClient):
    review = open_review(w, "email_received", GLOBEX_QUESTION)
    payload, _url = click_on(w, review, "email_send_later")
    assert post_click(client, payload).status_code == 200
    decided = approval_row(review.id)
    assert (decided.decision, decided.decision_data) == ("send_later", None)
    send_step = wait_for(lambda: step_rows(review.job_id).get("send-reply"), what="send-reply queued")
    morning = next_working_morning(decided.decided_at, ZoneInfo("America/New_York"))
    assert (send_step.status, send_step.not_before) == ("queued", morning) and w.google.sent == []


def test_a_click_while_the_database_is_down_is_answered_503(w: World, client: FlaskClient, shared_review: Review):
    payload, url = click_on(w, shared_review, "prop_approve_send")
    with pytest.MonkeyPatch.context() as mp:
        apply_env(mp, {**w.backend.env, "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/x"})
        try:
            response = post_click(client, payload)
        finally:
            mp.undo()
            apply_env(mp, w.backend.env)
    assert (response.status_code, response.get_json()["error"]) == (503, "unavailable")
    assert response.headers["Retry-After"] == "5"
    assert approval_row(shared_review.id).status == "pending" and w.slack.responses(url=url) == []


# --------------------------------------------------------------------------- the Edit modal


def test_edit_opens_a_prefilled_modal_whose_submission_is_validated_and_becomes_the_decision(
    w: World, client: FlaskClient
):
    review = open_review(w, "email_received", GLOBEX_QUESTION)
    preview = review.approval.preview
    payload, url = click_on(w, review, "email_edit", trigger_id="12345.98765.edit")
    response = post_click(client, payload)
    assert (response.status_code, response.data) == (200, b"")

    [opened] = wait_for(lambda: w.slack.calls("views.open"), what="views.open called")
    assert opened.params["trigger_id"] == "12345.98765.edit" and opened.ok
    view = opened.params["view"] if isinstance(opened.params["view"], dict) else json.loads(opened.params["view"])
    assert view["callback_id"] == "approval_edit"
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert inputs["subject"]["initial_value"] == preview["subject"]
    assert inputs["body"]["initial_value"] == preview["body"] and inputs["body"]["multiline"] is True

    empty = form_body(submission(view, user=ALICE, subject="Re: Licences", body="   "))
    refused = send(client, "/slack/interactive", empty, signed_headers(empty))
    assert refused.status_code == 200
    assert refused.get_json() == {"response_action": "errors", "errors": {"body": "The message cannot be empty."}}
    too_long = form_body(submission(view, user=ALICE, subject="x" * 251, body="Hi"))
    assert "subject" in send(client, "/slack/interactive", too_long, signed_headers(too_long)).get_json()["errors"]
    assert approval_row(review.id).status == "pending"

    edited = {"subject": "Re: Driver app licences", "body": "Hi Hank,\n\nLicences are included.\n\nAlice"}
    good = form_body(submission(view, user=ALICE, **edited))
    accepted = send(client, "/slack/interactive", good, signed_headers(good))
    assert (accepted.status_code, accepted.data) == (200, b"")
    row = approval_row(review.id)
    assert (row.status, row.decision, row.decision_data) == ("approved", "edit", edited)
    assert wait_job(review.job_id, timeout_s=40) == "completed"
    [sent] = w.google.sent
    assert sent.mime["Subject"] == edited["subject"] and "Licences are included." in sent.mime.get_payload()
    assert w.slack.responses(ephemeral=True, url=url) == []


def test_edit_by_someone_else_opens_nothing(w: World, client: FlaskClient, shared_review: Review):
    payload, url = click_on(w, shared_review, "prop_edit", user=BRUNO)
    assert post_click(client, payload).status_code == 200
    assert "not yours to decide" in ephemeral(w, url)
    assert w.slack.calls("views.open") == []


def test_undo_within_the_window_cancels_the_send(w: World, client: FlaskClient):
    review = open_review(w, "email_received", GLOBEX_QUESTION)
    payload, _ = click_on(w, review, "email_send_now")
    assert post_click(client, payload).status_code == 200
    undo = click(
        "email_undo",
        review.id,
        user=ALICE,
        response_url=w.slack.response_url(review.channel, review.ts),
        channel=review.channel,
        message_ts=review.ts,
    )
    assert post_click(client, undo).status_code == 200
    assert wait_job(review.job_id) == "cancelled"
    assert step_rows(review.job_id)["send-reply"].status in ("skipped", "cancelled")
    final = wait_for(lambda: "not sent" in message(w, review)["text"] and message(w, review), what="undone shown")
    assert not has_buttons(final) and w.google.sent == []


# --------------------------------------------------------------------------- who replaces the message


def _decide_without_resume(review: Review, user_id: uuid.UUID, decision: str = "approve_send") -> None:
    """Record a decision the way decide() does, but publish no resume: the click is ahead of the worker."""
    with transaction() as conn:
        conn.execute(
            update(approvals)
            .where(approvals.c.id == review.approval.id)
            .values(status="approved", decision=decision, decided_by=user_id, decided_at=utcnow())
        )


def test_a_click_ahead_of_the_worker_replaces_the_message_through_its_response_url(w: World):
    review = open_review(w, "proposal_generation", INITECH)
    wait_for(lambda: outbox_row(review.id).status == "sent", what="review delivered")
    _decide_without_resume(review, w.user("alice"))
    url = w.slack.response_url(review.channel, review.ts)

    assert (
        slack_replace.replace_clicked_message(review.approval.id, url, time.time(), org_id=w.org_id) == "response_url"
    )
    [replaced] = w.slack.responses(ephemeral=False, url=url)
    row, a = outbox_row(review.id), approval_row(review.id)
    with transaction() as conn:
        expected = decided_content(conn, a)
    assert replaced.params["text"] == expected["text"] == row.text and replaced.params["blocks"] == row.blocks
    assert (row.status, row.revision, row.lease_expires_at) == ("sent", 1, None)
    assert (a.response_url, a.response_url_uses) == (url, 1)
    assert not has_buttons(message(w, review))
    finish_job(review.job_id)


def test_a_click_answer_told_its_decider_and_job_builds_the_same_message_without_reading_them(w: World):
    """The decision hands the click's answer its decider's name and its job's event type and
    definition (`DecidedBy`, in the slack_replace message): the replacement is the one built from the
    rows, and neither the job nor the user is read for it."""
    review = open_review(w, "proposal_generation", INITECH)
    wait_for(lambda: outbox_row(review.id).status == "sent", what="review delivered")
    _decide_without_resume(review, w.user("alice"))
    with transaction() as conn:
        job = conn.execute(select(jobs).where(jobs.c.id == review.job_id)).one()
        alice = conn.execute(select(User.name).where(User.id == w.user("alice"))).scalar_one()
    by = DecidedBy(w.user("alice"), alice, job.event_type, job.definition_hash)
    assert DecidedBy.from_args(json.loads(json.dumps(by.as_args()))) == by  # as a task message carries it
    url = w.slack.response_url(review.channel, review.ts)
    sent: list[str] = []
    listen = (get_engine(), "before_cursor_execute", lambda *a, **k: sent.append(a[2]))
    event.listen(*listen)
    try:
        outcome = slack_replace.replace_clicked_message(review.approval.id, url, time.time(), org_id=w.org_id, by=by)
    finally:
        event.remove(*listen)
    assert outcome == "response_url"
    assert sent and not [q for q in sent if "FROM sequence_jobs" in q or "FROM users" in q]
    [replaced] = w.slack.responses(ephemeral=False, url=url)
    with transaction() as conn:
        expected = decided_content(conn, approval_row(review.id))
    assert expected is not None and "alice" in expected["text"].lower()
    assert (replaced.params["text"], replaced.params["blocks"]) == (expected["text"], expected["blocks"])
    assert outbox_row(review.id).text == expected["text"]
    finish_job(review.job_id)


def test_when_the_delivery_holds_the_message_the_click_leaves_it_alone(w: World):
    review = open_review(w, "proposal_generation", INITECH)
    wait_for(lambda: outbox_row(review.id).status == "sent", what="review delivered")
    _decide_without_resume(review, w.user("alice"))
    held_until = utcnow() + timedelta(seconds=30)
    with transaction() as conn:
        conn.execute(
            update(outbox).where(outbox.c.approval_id == review.approval.id).values(lease_expires_at=held_until)
        )
    url = w.slack.response_url(review.channel, review.ts)
    assert slack_replace.replace_clicked_message(review.approval.id, url, time.time(), org_id=w.org_id) == "delivering"
    assert w.slack.responses(url=url) == [] and outbox_row(review.id).revision == 0
    with transaction() as conn:
        conn.execute(update(outbox).where(outbox.c.approval_id == review.approval.id).values(lease_expires_at=None))
    finish_job(review.job_id)


def test_content_replaced_while_the_click_posts_is_delivered_after_it(w: World, monkeypatch):
    review = open_review(w, "proposal_generation", INITECH)
    wait_for(lambda: outbox_row(review.id).status == "sent", what="review delivered")
    _decide_without_resume(review, w.user("alice"))
    url = w.slack.response_url(review.channel, review.ts)
    newer = {"text": "Changed while the click was answered", "blocks": []}
    real_post = slack_replace.post_to_response_url

    def post_while_the_worker_replaces(target: str, body: dict[str, Any]) -> None:
        with transaction() as conn:  # the worker's replacement lands during our POST
            replace_message(conn, w.org_id, review.approval.id, newer)
        real_post(target, body)

    monkeypatch.setattr(slack_replace, "post_to_response_url", post_while_the_worker_replaces)
    assert (
        slack_replace.replace_clicked_message(review.approval.id, url, time.time(), org_id=w.org_id) == "response_url"
    )
    updated = wait_for(
        lambda: [c for c in w.slack.calls("chat.update", channel=review.channel, ts=review.ts) if c.ok],
        what="the delivery's chat.update with the newer content",
    )
    assert updated[-1].params["text"] == newer["text"] and message(w, review)["text"] == newer["text"]
    wait_for(lambda: outbox_row(review.id).status == "sent", what="row delivered again")
    finish_job(review.job_id)


@pytest.mark.parametrize("why", ["five uses taken", "thirty minutes old"])
def test_a_used_up_response_url_falls_back_to_chat_update(w: World, why: str):
    review = open_review(w, "proposal_generation", INITECH)
    wait_for(lambda: outbox_row(review.id).status == "sent", what="review delivered")
    _decide_without_resume(review, w.user("alice"))
    url = w.slack.response_url(review.channel, review.ts)
    issued = utcnow() - (timedelta(minutes=31) if why == "thirty minutes old" else timedelta(seconds=1))
    with transaction() as conn:
        conn.execute(
            update(approvals)
            .where(approvals.c.id == review.approval.id)
            .values(response_url=url, response_url_at=issued, response_url_uses=5 if why == "five uses taken" else 0)
        )
    assert slack_replace.replace_clicked_message(review.approval.id, None, org_id=w.org_id) == "chat.update"
    assert w.slack.responses(url=url) == []
    [updated] = w.slack.calls("chat.update", channel=review.channel, ts=review.ts)
    assert updated.ok and not has_buttons(message(w, review)) and "Approved and sent by" in updated.params["text"]
    finish_job(review.job_id)


def finish_job(job_id: uuid.UUID) -> None:
    """Let the worker apply a decision recorded behind its back (what the sweeper would do)."""
    from worker.engine.publish import publish_resume

    with transaction() as conn:
        ids = conn.execute(select(approvals.c.id).where(approvals.c.job_id == job_id)).scalars().all()
    for approval_id in ids:
        publish_resume(approval_id)
    wait_job(job_id)  # ended: the next test's review of the same deal is not `already_live`
    wait_job(job_id)


# --------------------------------------------------------------------------- campaign buttons


@dataclass(frozen=True)
class CampaignFixture:
    campaign_id: uuid.UUID
    reply_id: uuid.UUID
    email: str


@pytest.fixture
def campaign(w: World) -> Iterator[CampaignFixture]:
    """A campaign of alice's with one open reply (its own rows: the seeded ones stay untouched)."""
    campaign_id, reply_id = uuid.uuid4(), uuid.uuid4()
    email = f"lead-{reply_id.hex[:8]}@prospect.example"
    with transaction() as conn:
        conn.execute(
            insert(Campaign.__table__).values(
                id=campaign_id,
                org_id=w.org_id,
                owner_id=w.user("alice"),
                external_id=f"test-{campaign_id}",
                name="Edge test campaign",
                status="active",
                metrics={"sent": 10},
                created_at=utcnow(),
            )
        )
        conn.execute(
            insert(CampaignReply.__table__).values(
                id=reply_id,
                org_id=w.org_id,
                campaign_id=campaign_id,
                external_id=f"test-{reply_id}",
                from_email=email,
                subject="Re: Dispatch",
                body="Sounds good, can we talk Thursday?",
                status="open",
                classification="positive",
                received_at=utcnow(),
                created_at=utcnow(),
            )
        )
    yield CampaignFixture(campaign_id, reply_id, email)
    with transaction() as conn:
        conn.execute(delete(NurtureEntry.__table__).where(NurtureEntry.campaign_id == campaign_id))
        conn.execute(delete(Campaign.__table__).where(Campaign.id == campaign_id))


def reply_status(reply_id: uuid.UUID) -> str:
    with transaction() as conn:
        return conn.execute(select(CampaignReply.status).where(CampaignReply.id == reply_id)).scalar_one()


def camp_click(w: World, client: FlaskClient, action_id: str, value: uuid.UUID, user: str = ALICE) -> str:
    url = w.slack.response_url()
    assert (
        post_click(
            client, click(action_id, str(value), user=user, response_url=url, block_id=f"reply:{value}")
        ).status_code
        == 200
    )
    return url


def test_reply_buttons_show_close_and_nurture_the_reply(w: World, client: FlaskClient, campaign: CampaignFixture):
    thread = ephemeral(w, camp_click(w, client, "camp_view_thread", campaign.reply_id))
    assert "Sounds good, can we talk Thursday?" in thread and campaign.email in thread

    assert "nurture queue" in ephemeral(w, camp_click(w, client, "camp_add_nurture", campaign.reply_id))
    ephemeral(w, camp_click(w, client, "camp_add_nurture", campaign.reply_id))
    with transaction() as conn:
        entries = conn.execute(
            select(NurtureEntry.__table__).where(NurtureEntry.campaign_id == campaign.campaign_id)
        ).all()
    assert [(e.email, e.added_by) for e in entries] == [(campaign.email, w.user("alice"))]
    assert reply_status(campaign.reply_id) == "nurture"

    assert "closed" in ephemeral(w, camp_click(w, client, "camp_mark_closed", campaign.reply_id))
    assert reply_status(campaign.reply_id) == "closed"
    assert audits(str(campaign.reply_id), "campaign_reply.close") == 1


def test_draft_response_fires_email_received_with_the_replys_content(
    w: World, client: FlaskClient, campaign: CampaignFixture
):
    assert "Drafting a response" in ephemeral(w, camp_click(w, client, "camp_draft_response", campaign.reply_id))
    with transaction() as conn:
        job = conn.execute(select(jobs).where(jobs.c.idempotency_key == f"email:reply:{campaign.reply_id}")).one()
    assert (job.event_type, job.source, job.user_id) == ("email_received", "slack:action", w.user("alice"))
    assert job.payload == {
        "from_email": campaign.email,
        "subject": "Re: Dispatch",
        "body": "Sounds good, can we talk Thursday?",
        "campaign_reply_id": str(campaign.reply_id),
    }
    assert reply_status(campaign.reply_id) == "drafted"
    assert "already being drafted" in ephemeral(w, camp_click(w, client, "camp_draft_response", campaign.reply_id))
    wait_job(job.id, "awaiting_approval", "completed", "failed")


def test_campaign_choices_are_kept_and_others_cannot_click(w: World, client: FlaskClient, campaign: CampaignFixture):
    assert "apply the suggestion" in ephemeral(w, camp_click(w, client, "camp_apply_suggestion", campaign.campaign_id))
    with transaction() as conn:
        metrics = conn.execute(select(Campaign.metrics).where(Campaign.id == campaign.campaign_id)).scalar_one()
    assert metrics["suggestion_decision"]["choice"] == "apply_suggestion" and metrics["sent"] == 10
    assert audits(str(campaign.campaign_id), "campaign.apply_suggestion") == 1

    since = utcnow()
    assert "not yours" in ephemeral(w, camp_click(w, client, "camp_mark_closed", campaign.reply_id, user=BRUNO))
    assert reply_status(campaign.reply_id) == "open"
    assert [r.error_type for r in rejected_since(since, source="slack:action")] == ["NotAuthorized"]


def test_a_reply_of_another_org_is_not_found(w: World, client: FlaskClient):
    org_id, campaign_id, reply_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with transaction() as conn:
        conn.execute(
            insert(Org.__table__).values(
                id=org_id, name="Other org", timezone="UTC", enabled=True, settings={}, created_at=utcnow()
            )
        )
        conn.execute(
            insert(Campaign.__table__).values(
                id=campaign_id,
                org_id=org_id,
                external_id="x",
                name="Theirs",
                status="active",
                metrics={},
                created_at=utcnow(),
            )
        )
        conn.execute(
            insert(CampaignReply.__table__).values(
                id=reply_id,
                org_id=org_id,
                campaign_id=campaign_id,
                external_id="x",
                from_email="a@b.example",
                subject="s",
                body="secret text",
                status="open",
                received_at=utcnow(),
                created_at=utcnow(),
            )
        )
    try:
        text = ephemeral(w, camp_click(w, client, "camp_view_thread", reply_id, user="U0MAYA"))
        assert "no longer exists" in text and "secret text" not in text
    finally:
        with transaction() as conn:
            conn.execute(delete(Org.__table__).where(Org.id == org_id))


# --------------------------------------------------------------------------- the Events API


def test_url_verification_is_answered_with_the_challenge(client: FlaskClient):
    body = json.dumps(sample("url_verification.json")).encode()
    response = send(client, "/slack/events", body, signed_headers(body, content_type="application/json"))
    expected = (SAMPLES / "url_verification.expected_response_body.txt").read_text().strip()
    assert response.status_code == 200 and response.get_data(as_text=True) == expected


def test_a_retried_event_is_acknowledged_and_ignored(client: FlaskClient, caplog: pytest.LogCaptureFixture):
    event_id = f"Ev{uuid.uuid4().hex[:10].upper()}"
    body = json.dumps(
        {
            "token": "x",
            "team_id": "T0DEMO0001",
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": {"type": "app_home_opened", "user": ALICE, "channel": "D1", "tab": "home"},
        }
    ).encode()
    first = send(client, "/slack/events", body, signed_headers(body, content_type="application/json"))
    with caplog.at_level(logging.INFO, logger="webhooks.slack"):
        retried = send(
            client,
            "/slack/events",
            body,
            {
                **signed_headers(body, content_type="application/json"),
                "X-Slack-Retry-Num": "1",
                "X-Slack-Retry-Reason": "http_timeout",
            },
        )
    assert (first.status_code, retried.status_code) == (200, 200)
    assert [r.getMessage() for r in caplog.records if event_id in r.getMessage()] == [
        f"Slack event {event_id} delivered again (retry 1): ignored"
    ]
    with transaction() as conn:
        seen = conn.execute(select(SlackEventSeen.__table__).where(SlackEventSeen.event_id == event_id)).all()
    assert [(s.event_id, s.team_id) for s in seen] == [(event_id, "T0DEMO0001")]
