"""email_received end to end: classify the inbound email, match it to the CRM, take its intent's branch.

Each test fires one email of the seeded demo org (or an email given by content) and checks the job's
end state, every step's status and skip reason, the outputs that matter, the exact Slack calls (the
email_preview approval in the rep's DM, replaced once decided) and the Gmail sends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from tests.fakes.google import SentMessage
from tests.fakes.slack import Call
from tests.integration.sequences.conftest import World, children, wait_delivered, wait_job
from tests.support.engine import job_row, pending_approval, step_rows
from tests.support.waiting import wait_for
from worker.db import transaction
from worker.engine.approvals import decide
from worker.engine.events import fire_event
from worker.models import Activity, Company, Contact
from worker.ops.seed import demo_id
from worker.ops.seed_content import EMAILS

pytestmark = pytest.mark.slow

STEPS = (
    "classify-email-intent",
    "match-to-crm-contact",
    "draft-reply",
    "review-reply",
    "send-reply",
    "book-meeting",
    "record-contact-status",
)
EMAIL_BUTTONS = ["email_send_now", "email_edit", "email_send_later", "email_cancel"]
GMAIL_SEND = r"/gmail/v1/users/me/messages/send"
NOT_A_BOOKING = ("skipped", "not_a_booking_request")
NOT_OOO = ("skipped", "not_ooo_or_unsubscribe")
NO_REPLY = [
    ("skipped", "no_reply_needed"),
    ("skipped", "upstream_skipped:draft-reply"),
    ("skipped", "upstream_skipped:review-reply"),
]


def stored_email(key: str) -> dict[str, Any]:
    """The seeded email `key` as the event handles it (see worker/ops/seed.py)."""
    _key, _user, _contact, sender, subject, body, _hours = next(e for e in EMAILS if e[0] == key)
    return {
        "from": sender.split("<")[-1].rstrip(">"),
        "subject": subject,
        "body": body,
        "thread_id": f"thread-{key}",
        "rfc822": f"<{key}@mail.example>",
    }


def fire_stored(w: World, key: str, user: str) -> uuid.UUID:
    return fire_event(w.event("email_received", {"email_id": str(demo_id("email", key))}, user=user)).job_id


def states(job_id: uuid.UUID) -> dict[str, tuple[str, str | None]]:
    """(status, reason) of every current step run of the job."""
    return {name: (row.status, row.reason) for name, row in step_rows(job_id).items()}


def approval_post(w: World, who: str, approval_id: uuid.UUID) -> Call:
    """The one chat.postMessage of this approval in `who`'s DM (waits for its delivery)."""

    def posted() -> list[Call]:
        return [
            c
            for c in w.slack.calls("chat.postMessage", channel=w.dm(who))
            if f"approval:{approval_id}" in [b.get("block_id") for b in c.params.get("blocks") or []]
        ]

    found = wait_for(posted, what=f"approval {approval_id} posted to {who}")
    assert len(found) == 1 and found[0].ok
    return found[0]


def approval_updates(w: World, who: str, post: Call, count: int = 1) -> list[Call]:
    """The `count` chat.updates of the approval message (waits for them): the decision, then, for an
    email sent after its Undo window, "Sent" (the Undo button must not outlive the send)."""
    found = wait_for(
        lambda: (
            (u := w.slack.calls("chat.update", channel=w.dm(who), ts=post.response["ts"])) and len(u) >= count and u
        ),
        what=f"approval message replaced {count}x",
    )
    assert len(found) == count and all(c.ok for c in found)
    return found


def buttons(call: Call) -> list[tuple[str, str]]:
    """(action_id, value) of every element of the message's actions blocks."""
    return [
        (e["action_id"], e.get("value")) for b in call.params["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]


def slack_methods(w: World) -> list[tuple[str, str | None]]:
    """Every Slack call of this test: method and its channel (users for conversations.open)."""
    return [(c.method, c.params.get("channel") or c.params.get("users")) for c in w.slack.calls()]


def decoded_body(sent: SentMessage) -> str:
    """The plain-text body as written (the MIME is SMTP-encoded with CRLF line ends)."""
    return sent.mime.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n").strip()


def next_on_or_after(today: date, month: int, day: int) -> date:
    this_year = date(today.year, month, day)
    return this_year if this_year >= today else date(today.year + 1, month, day)


@pytest.fixture
def gmail_company(w: World) -> Iterator[uuid.UUID]:
    """A company of the org whose domain is gmail.com: a free-mail sender must still not match it."""
    company_id = uuid.uuid4()
    with transaction() as conn:
        conn.execute(
            Company.__table__.insert().values(
                id=company_id, org_id=w.org_id, name="Gmail Lookalike", domain="gmail.com"
            )
        )
    try:
        yield company_id
    finally:
        with transaction() as conn:
            conn.execute(delete(Company.__table__).where(Company.id == company_id))


@pytest.fixture
def pepper_active(w: World) -> Iterator[uuid.UUID]:
    """Pepper (Stark) active before the test and again after it (her status is shared seeded data)."""
    pepper = demo_id("contact", "pepper")
    active = update(Contact.__table__).where(Contact.id == pepper).values(status="active", status_until=None)
    with transaction() as conn:
        conn.execute(active)
    try:
        yield pepper
    finally:
        with transaction() as conn:
            conn.execute(active)


def test_a_question_is_drafted_edited_and_sent_once_in_its_thread(w: World):
    email = stored_email("email-globex-question")
    job = fire_stored(w, "email-globex-question", "alice")
    assert wait_job(job, "awaiting_approval") == "awaiting_approval"

    got = states(job)
    assert [got[s] for s in STEPS[:3]] == [("succeeded", None)] * 3
    assert got["review-reply"][0] == "awaiting_approval" and "send-reply" not in got
    assert got["book-meeting"] == NOT_A_BOOKING and got["record-contact-status"] == NOT_OOO
    rows = step_rows(job)
    classified = rows["classify-email-intent"].output
    assert classified["intent"]["intent"] == "reply_required"
    assert classified["email"]["email_id"] == str(demo_id("email", "email-globex-question"))
    assert rows["match-to-crm-contact"].output == {
        "contact_id": str(demo_id("contact", "hank")),
        "contact_name": "Hank Scorpio",
        "company_id": str(demo_id("company", "globex")),
        "company_name": "Globex Logistics",
        "deal_id": str(demo_id("deal", "globex-fleet")),
        "free_mail": False,
    }
    draft = rows["draft-reply"].output
    assert draft["subject"] == "Re: Intro and next steps" and draft["body"].startswith("Hi Hank,")

    approval = pending_approval(job)
    assert approval.kind == "email_preview" and approval.approver_user_ids == [str(w.user("alice"))]
    preview = approval.preview
    assert (preview["to"], preview["subject"], preview["thread"]) == (email["from"], draft["subject"], True)
    assert preview["context"] == "Reply to Hank Scorpio (Globex Logistics)"
    assert preview["deal_id"] == str(demo_id("deal", "globex-fleet"))
    post = approval_post(w, "alice", approval.id)
    assert buttons(post) == [(a, str(approval.id)) for a in EMAIL_BUTTONS]
    assert w.google.sent == []

    edited = {"subject": "Re: Driver app licences", "body": "Hi Hank,\n\nLicences are included. Breakdown attached.\n"}
    decided = decide(approval.id, "edit", user_id=w.user("alice"), data=edited)
    assert wait_job(job) == "completed"

    got = states(job)
    assert [got[s] for s in STEPS[:5]] == [("succeeded", None)] * 5
    assert got["book-meeting"] == NOT_A_BOOKING and got["record-contact-status"] == NOT_OOO
    send = step_rows(job)["send-reply"]
    assert send.started_at - decided.decided_at >= timedelta(seconds=0.5)  # the undo window (0.5 s here)
    assert send.output["to"] == "hank@globex.example" and send.output["subject"] == edited["subject"]

    assert len(w.google.sent) == 1
    sent = w.google.sent[0]
    assert sent.thread_id == email["thread_id"]
    [request] = w.google.requests_to("POST", GMAIL_SEND)
    assert request.json["threadId"] == email["thread_id"]
    assert sent.mime["To"] == "hank@globex.example" and sent.mime["From"] == "alice@northwind.example"
    assert sent.mime["Subject"] == edited["subject"]
    assert sent.mime["In-Reply-To"] == email["rfc822"] and sent.mime["References"] == email["rfc822"]
    assert decoded_body(sent) == edited["body"].strip()
    assert [r.path for r in w.google.requests] == ["/gmail/v1/users/me/messages/send"]

    activity_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{job}:send-reply:0:email")
    with transaction() as conn:
        activity = conn.execute(select(Activity.__table__).where(Activity.id == activity_id)).one()
    assert (activity.deal_id, activity.contact_id, activity.subject) == (
        demo_id("deal", "globex-fleet"),
        demo_id("contact", "hank"),
        edited["subject"],
    )

    replaced, sent_note = approval_updates(w, "alice", post, count=2)
    assert "Sending email to hank@globex.example (undo available)" in replaced.params["text"]
    assert [a for a, _v in buttons(replaced)] == ["email_undo"]  # the Undo window, nothing else
    assert sent_note.params["text"] == "Email sent to hank@globex.example" and buttons(sent_note) == []
    assert "edited and approved by @Alice Moreau" in str(sent_note.params["blocks"])
    wait_delivered(job)
    dm = w.dm("alice")
    assert slack_methods(w) == [
        ("conversations.open", "U0ALICE"),
        ("chat.postMessage", dm),
        ("chat.update", dm),
        ("chat.update", dm),
    ]


def test_a_booking_request_hands_off_to_calendar_find_times(w: World):
    email = stored_email("email-initech-booking")
    w.google.busy["primary"] = []  # the follow-up reads alice's calendar
    job = fire_stored(w, "email-initech-booking", "alice")
    assert wait_job(job) == "completed"

    got = states(job)
    assert [got[s] for s in STEPS[:2]] == [("succeeded", None)] * 2
    assert [got[s] for s in ("draft-reply", "review-reply", "send-reply")] == NO_REPLY
    assert got["book-meeting"] == ("succeeded", None) and got["record-contact-status"] == NOT_OOO
    rows = step_rows(job)
    assert rows["classify-email-intent"].output["intent"]["intent"] == "booking_request"
    match = rows["match-to-crm-contact"].output
    assert (match["contact_name"], match["company_name"], match["deal_id"]) == (
        "Bill Lumbergh",
        "Initech Software",
        str(demo_id("deal", "initech-platform")),
    )

    [child] = children(job)
    assert (child.event_type, child.source, child.depth, child.user_id) == (
        "calendar_find_times",
        "chain",
        1,
        w.user("alice"),
    )
    assert child.idempotency_key == f"calendar_find_times:{job}:0"
    assert child.payload == {
        "scheduling_text": email["body"],
        "contact_id": str(demo_id("contact", "bill")),
        "deal_id": str(demo_id("deal", "initech-platform")),
    }
    assert rows["book-meeting"].output == {"scheduling_text": email["body"]}

    assert wait_job(child.id, "awaiting_approval") == "awaiting_approval"
    parsed = step_rows(child.id)["parse-scheduling-request"].output["request"]
    assert (parsed["duration_minutes"], parsed["part_of_day"], parsed["weekdays"]) == (60, "afternoon", [1, 2])
    child_approval = pending_approval(child.id)
    post = approval_post(w, "alice", child_approval.id)
    wait_delivered(child.id)
    assert slack_methods(w) == [("conversations.open", "U0ALICE"), ("chat.postMessage", post.params["channel"])]
    assert w.google.sent == []


def test_an_out_of_office_reply_marks_the_contact_until_its_return_date(w: World, pepper_active: uuid.UUID):
    pepper = pepper_active
    job = fire_stored(w, "email-stark-ooo", "bruno")
    assert wait_job(job) == "completed"

    got = states(job)
    assert [got[s] for s in STEPS[:2]] == [("succeeded", None)] * 2
    assert [got[s] for s in ("draft-reply", "review-reply", "send-reply")] == NO_REPLY
    assert got["book-meeting"] == NOT_A_BOOKING and got["record-contact-status"] == ("succeeded", None)
    rows = step_rows(job)
    assert rows["classify-email-intent"].output["intent"]["intent"] == "out_of_office"
    back = next_on_or_after(rows["record-contact-status"].started_at.astimezone(UTC).date(), 12, 7)
    assert rows["record-contact-status"].output == {
        "contact_id": str(pepper),
        "status": "out_of_office",
        "until": back.isoformat(),
    }
    with transaction() as conn:
        contact = conn.execute(select(Contact.__table__).where(Contact.id == pepper)).one()
    assert contact.status == "out_of_office"
    assert contact.status_until == datetime.combine(back, time(9), tzinfo=UTC)
    assert w.slack.calls() == [] and w.google.requests == []
    assert children(job) == []


def test_an_unknown_free_mail_sender_matches_nothing_and_is_still_drafted(w: World, gmail_company: uuid.UUID):
    job = fire_stored(w, "email-gmail-lead", "bruno")
    assert wait_job(job, "awaiting_approval") == "awaiting_approval"

    got = states(job)
    assert [got[s] for s in STEPS[:3]] == [("succeeded", None)] * 3
    assert got["review-reply"][0] == "awaiting_approval"
    assert got["book-meeting"] == NOT_A_BOOKING and got["record-contact-status"] == NOT_OOO
    rows = step_rows(job)
    assert rows["classify-email-intent"].output["intent"]["intent"] == "reply_required"
    assert rows["match-to-crm-contact"].output == {
        "contact_id": None,
        "contact_name": None,
        "company_id": None,
        "company_name": None,
        "deal_id": None,
        "free_mail": True,
    }
    draft = rows["draft-reply"].output
    assert draft["subject"] == "Re: Pricing for a small team?"
    assert "What would your starter plan cost us per month?" in draft["body"] and draft["body"].endswith("Bruno")

    approval = pending_approval(job)
    assert approval.approver_user_ids == [str(w.user("bruno"))]
    assert approval.preview["to"] == "sam.rivera@gmail.com" and approval.preview["deal_id"] is None
    assert approval.preview["context"] == "Reply to sam.rivera@gmail.com"
    post = approval_post(w, "bruno", approval.id)
    assert buttons(post) == [(a, str(approval.id)) for a in EMAIL_BUTTONS]

    decide(approval.id, "cancel", user_id=w.user("bruno"))
    assert wait_job(job) == "cancelled"
    got = states(job)
    assert got["review-reply"] == ("cancelled", "Bruno Keller chose Cancel")
    assert got["send-reply"] == ("skipped", "job_cancelled")
    [replaced] = approval_updates(w, "bruno", post)
    assert "Cancelled by @Bruno Keller" in replaced.params["text"] and buttons(replaced) == []
    wait_delivered(job)
    dm = w.dm("bruno")
    assert slack_methods(w) == [("conversations.open", "U0BRUNO"), ("chat.postMessage", dm), ("chat.update", dm)]
    assert w.google.sent == []


def test_an_email_given_by_content_is_classified_matched_and_answered_unthreaded(w: World):
    payload = {
        "from_email": "Hank Scorpio <hank@globex.example>",
        "subject": "Security review",
        "body": "Hi Alice, could you send me your SOC 2 report before Friday?",
    }
    job = fire_event(w.event("email_received", payload)).job_id
    assert wait_job(job, "awaiting_approval") == "awaiting_approval"

    rows = step_rows(job)
    email = rows["classify-email-intent"].output["email"]
    assert (email["email_id"], email["from_email"], email["from_name"], email["thread_id"]) == (
        None,
        "hank@globex.example",
        "Hank Scorpio",
        None,
    )
    assert rows["classify-email-intent"].output["intent"]["intent"] == "reply_required"
    assert rows["match-to-crm-contact"].output["contact_id"] == str(demo_id("contact", "hank"))
    assert (rows["book-meeting"].status, rows["book-meeting"].reason) == NOT_A_BOOKING
    approval = pending_approval(job)
    assert approval.preview["subject"] == "Re: Security review" and approval.preview["thread"] is False
    post = approval_post(w, "alice", approval.id)

    decide(approval.id, "send_now", user_id=w.user("alice"))
    assert wait_job(job) == "completed"
    assert step_rows(job)["send-reply"].status == "succeeded"
    [sent] = w.google.sent
    [request] = w.google.requests_to("POST", GMAIL_SEND)
    assert "threadId" not in request.json
    assert sent.mime["To"] == "hank@globex.example" and sent.mime["Subject"] == "Re: Security review"
    assert sent.mime["In-Reply-To"] is None and sent.mime["References"] is None
    assert "could you send me your SOC 2 report before Friday?" in decoded_body(sent)
    undo, sent_note = approval_updates(w, "alice", post, count=2)
    assert "(undo available)" in undo.params["text"] and "Email sent to" in sent_note.params["text"]
    wait_delivered(job)
    dm = w.dm("alice")
    assert slack_methods(w) == [
        ("conversations.open", "U0ALICE"),
        ("chat.postMessage", dm),
        ("chat.update", dm),
        ("chat.update", dm),
    ]


def test_an_unknown_email_id_fails_classification_permanently(w: World):
    ghost = "00000000-0000-4000-8000-00000000e1a1"
    job = fire_event(w.event("email_received", {"email_id": ghost})).job_id
    assert wait_job(job) == "failed"

    rows = step_rows(job)
    classify = rows["classify-email-intent"]
    assert (classify.status, classify.error_class, classify.attempt) == ("failed", "permanent", 1)
    assert f"email {ghost} not found" in classify.error
    assert {n: (r.status, r.reason) for n, r in rows.items() if n != "classify-email-intent"} == {
        n: ("skipped", "job_failed") for n in STEPS[1:]
    }
    failed = job_row(job)
    assert failed.error_step == "classify-email-intent" and ghost in failed.error
    assert w.slack.calls() == [] and w.google.requests == []
