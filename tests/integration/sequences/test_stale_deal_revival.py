"""stale_deal_revival end to end: score the stall, review the re-engagement email in Slack, send it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from tests.integration.sequences.conftest import World, wait_delivered, wait_job
from tests.support.engine import approvals_of, job_row, pending_approval, step_rows
from tests.support.waiting import wait_for
from worker.db import transaction
from worker.engine.approvals import decide
from worker.engine.events import fire_event
from worker.models import Activity, Deal, utcnow
from worker.ops.seed import demo_id

pytestmark = pytest.mark.slow
HOOLI = demo_id("deal", "hooli-rollout")  # bruno's, silent for 21 days, 31 days in demo
STEPS = (
    "research-trigger-events",
    "analyse-stall-reason",
    "draft-reengagement",
    "review-reengagement",
    "send-reengagement",
)
EMAIL_ACTIONS = ["email_send_now", "email_edit", "email_send_later", "email_cancel"]
SUBJECT = "Hooli rollout: one question"
BODY = "Hi Gavin,\n\nIs phase 1 of the store rollout still on your list for this quarter?\n\nBest,\nBruno"


@pytest.fixture
def hooli(w: World) -> Iterator[uuid.UUID]:
    """hooli-rollout as seeded; the activities a test adds or sends are taken back afterwards (other
    tests and modules count on the deal being silent)."""
    with transaction() as conn:
        silent_since = conn.execute(select(Deal.last_activity_at).where(Deal.id == HOOLI)).scalar_one()
        before = list(conn.execute(select(Activity.id).where(Activity.org_id == w.org_id)).scalars())
    yield HOOLI
    with transaction() as conn:
        conn.execute(delete(Activity.__table__).where(Activity.org_id == w.org_id, Activity.id.not_in(before)))
        conn.execute(update(Deal.__table__).where(Deal.id == HOOLI).values(last_activity_at=silent_since))


def _note(w: World, company: str, contact: str, subject: str, days_ago: int) -> None:
    """A CRM note on a contact and their company (not on a deal), `days_ago` days old."""
    with transaction() as conn:
        conn.execute(
            Activity.__table__.insert().values(
                id=uuid.uuid4(), org_id=w.org_id, company_id=demo_id("company", company),
                contact_id=demo_id("contact", contact), kind="note", subject=subject,
                occurred_at=utcnow() - timedelta(days=days_ago),
            )
        )  # fmt: skip


@pytest.fixture
def orphan_deal(w: World) -> Iterator[Deal]:
    """A long-silent deal of bruno's with no primary contact (and no company)."""
    now = utcnow()
    deal_id = uuid.uuid4()
    values: dict[str, Any] = dict(
        id=deal_id, org_id=w.org_id, name=f"Orphan renewal {deal_id.hex[:6]}", stage="demo", value=Decimal(20000),
        currency="USD", owner_id=w.user("bruno"), primary_contact_id=None, company_id=None,
        last_activity_at=now - timedelta(days=30), stage_changed_at=now - timedelta(days=40),
        created_at=now - timedelta(days=90),
    )  # fmt: skip
    with transaction() as conn:
        conn.execute(Deal.__table__.insert().values(**values))
    yield Deal(**values)
    with transaction() as conn:
        conn.execute(delete(Deal.__table__).where(Deal.id == deal_id))


def _actions(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["action_id"], e["value"]) for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _review_posted(w: World, key: str) -> Any:
    """The one review message, in `key`'s DM opened with conversations.open (and nowhere else)."""
    posted = wait_for(lambda: w.slack.calls("chat.postMessage"), what="review posted")
    assert [(c.method, c.params.get("users") or c.params.get("channel")) for c in w.slack.calls()] == [
        ("conversations.open", f"U0{key.upper()}"),
        ("chat.postMessage", w.dm(key)),
    ]
    return posted[0]


def _decided_update(w: World, key: str, posted: Any, *, undo: bool = False) -> Any:
    """The chat.update that replaced the review once decided: buttons gone; or, for an approved email,
    only Undo while it waits for its Undo window, then a second one saying it was sent (no buttons)."""
    count = 2 if undo else 1
    updates = wait_for(lambda: len(u := w.slack.calls("chat.update")) >= count and u, what="review replaced")
    assert len(updates) == count
    for call in updates:
        assert (call.params["channel"], call.params["ts"]) == (w.dm(key), posted.response["ts"])
    assert [a for a, _v in _actions(updates[0].params["blocks"])] == (["email_undo"] if undo else [])
    if undo:
        assert _actions(updates[1].params["blocks"]) == [] and updates[1].params["text"].startswith("Email sent to")
    return updates[0]


def test_edit_sends_the_edited_email_as_the_owner_after_the_undo_window(w: World, hooli: uuid.UUID):
    job = fire_event(w.event("stale_deal_revival", {"deal_id": str(hooli)}, user="bruno")).job_id
    assert wait_job(job, "awaiting_approval") == "awaiting_approval"
    rows = step_rows(job)
    assert [rows[s].status for s in STEPS[:4]] == ["succeeded"] * 3 + ["awaiting_approval"]
    assert "send-reengagement" not in rows
    stall = rows["analyse-stall-reason"].output
    score = stall["analysis"]["score"]
    assert stall["days_silent"] == 21 and stall["deal_name"] == "Store rollout, phase 1"
    assert score >= 50 and stall["analysis"]["reengage"] is True
    assert stall["analysis"]["reasons"][:2] == ["silent for 21 days (+29)", "31 days in demo, usually 14 (+25)"]

    approval = pending_approval(job)
    assert approval.kind == "email_preview" and approval.approver_user_ids == [str(w.user("bruno"))]
    preview = approval.preview
    assert preview["to"] == "gavin@hooli.example" and preview["stall_score"] == score
    assert preview["stall_reasons"] == stall["analysis"]["reasons"] and preview["body"].startswith("Hi Gavin,")

    posted = _review_posted(w, "bruno")
    shown = json.dumps(posted.params["blocks"])
    assert posted.params["text"] == "Re-engage Store rollout, phase 1: review email to gavin@hooli.example"
    assert f"{score}/100" in shown and "silent for 21 days (+29)" in shown and "Hooli Retail" in shown
    assert _actions(posted.params["blocks"]) == [(a, str(approval.id)) for a in EMAIL_ACTIONS]
    assert w.google.sent == []  # nothing leaves before the decision

    decision = decide(approval.id, "edit", user_id=w.user("bruno"), data={"subject": SUBJECT, "body": BODY})
    assert wait_job(job) == "completed"
    rows = step_rows(job)
    assert [rows[s].status for s in STEPS] == ["succeeded"] * 5
    assert rows["send-reengagement"].started_at >= decision.decided_at + timedelta(seconds=0.5)  # the undo window

    assert [(r.method, r.path) for r in w.google.requests] == [("POST", "/gmail/v1/users/me/messages/send")]
    assert len(w.google.sent) == 1
    sent = w.google.sent[0]
    assert (sent.mime["From"], sent.mime["To"], sent.mime["Subject"]) == (
        "bruno@northwind.example",
        "gavin@hooli.example",
        SUBJECT,
    )
    assert sent.mime.get_payload(decode=True).decode().replace("\r\n", "\n").strip() == BODY
    assert rows["send-reengagement"].output == {
        "sent_to": "gavin@hooli.example",
        "result": {"id": sent.id, "threadId": sent.thread_id},
    }

    with transaction() as conn:
        logged = conn.execute(
            select(Activity.__table__).where(Activity.deal_id == hooli, Activity.created_at >= decision.decided_at)
        ).all()
        last_activity = conn.execute(select(Deal.last_activity_at).where(Deal.id == hooli)).scalar_one()
    assert [(a.kind, a.direction, a.subject, a.body, a.contact_id) for a in logged] == [
        ("email", "outbound", SUBJECT, BODY, demo_id("contact", "gavin"))
    ]
    assert last_activity == logged[0].occurred_at

    replaced = _decided_update(w, "bruno", posted, undo=True)
    # after an approved send the message offers Undo until the email goes out
    assert "Sending email to gavin@hooli.example (undo available)" in replaced.params["text"]
    assert "email_undo" in str(replaced.params["blocks"])
    assert [c.method for c in w.slack.calls()] == [
        "conversations.open",
        "chat.postMessage",
        "chat.update",
        "chat.update",
    ]
    wait_delivered(job)


def test_trigger_events_of_this_deal_shown_to_the_owner_and_cancel_ends_the_job(w: World, hooli: uuid.UUID):
    _note(w, "hooli", "gavin", "Gavin Belson promoted to chairman", days_ago=3)
    _note(w, "vandelay", "art", "Vandelay Imports announced new funding", days_ago=2)  # another deal's news
    job = fire_event(w.event("stale_deal_revival", {"deal_id": str(hooli)}, user="maya")).job_id  # an admin asks
    assert wait_job(job, "awaiting_approval") == "awaiting_approval"
    rows = step_rows(job)
    triggers = rows["research-trigger-events"].output
    assert [e.split(": ", 1)[1] for e in triggers["trigger_events"]] == ["Gavin Belson promoted to chairman"]
    assert triggers["signals"] == ["job_change"]
    analysis = rows["analyse-stall-reason"].output["analysis"]
    assert "signal job change (+10)" in analysis["reasons"] and analysis["angle"] == "trigger"

    approval = pending_approval(job)
    assert approval.approver_user_ids == [str(w.user("bruno")), str(w.user("maya"))]  # the deal owner first
    assert approval.preview["trigger_events"] == triggers["trigger_events"]
    posted = _review_posted(w, "bruno")
    shown = json.dumps(posted.params["blocks"])
    assert "Gavin Belson promoted to chairman" in shown and "Vandelay" not in shown

    decide(approval.id, "cancel", user_id=w.user("bruno"))
    assert wait_job(job) == "cancelled"
    rows = step_rows(job)
    assert [rows[s].status for s in STEPS[:3]] == ["succeeded"] * 3
    assert rows["review-reengagement"].status == "cancelled"
    assert (rows["send-reengagement"].status, rows["send-reengagement"].reason) == ("skipped", "job_cancelled")
    assert "Bruno Keller chose Cancel" in (job_row(job).reason or "")
    assert approvals_of(job)[0].status == "rejected"
    replaced = _decided_update(w, "bruno", posted)
    assert "Cancelled by @Bruno Keller" in replaced.params["text"]
    assert w.google.requests == [] and w.google.sent == []
    with transaction() as conn:
        assert conn.execute(select(Deal.last_activity_at).where(Deal.id == hooli)).scalar_one() < utcnow() - timedelta(
            days=20
        )


def test_a_recently_active_deal_is_left_alone(w: World):
    job = fire_event(w.event("stale_deal_revival", {"deal_id": str(demo_id("deal", "vandelay-starter"))})).job_id
    assert wait_job(job) == "completed"
    rows = step_rows(job)
    assert [(rows[s].status, rows[s].reason) for s in STEPS] == [
        ("succeeded", None),
        ("succeeded", None),
        ("skipped", "score_below_threshold"),
        ("skipped", "upstream_skipped:draft-reengagement"),
        ("skipped", "upstream_skipped:review-reengagement"),
    ]
    analysis = rows["analyse-stall-reason"].output["analysis"]
    assert analysis["score"] < 50 and analysis["reengage"] is False
    assert analysis["recommendation"].startswith("no action")
    assert approvals_of(job) == []
    assert w.slack.calls() == [] and w.google.requests == []


def test_a_deal_without_a_primary_contact_fails_the_draft_naming_what_is_missing(w: World, orphan_deal: Deal):
    job = fire_event(w.event("stale_deal_revival", {"deal_id": str(orphan_deal.id)}, user="bruno")).job_id
    assert wait_job(job) == "failed"
    rows = step_rows(job)
    assert rows["analyse-stall-reason"].status == "succeeded"
    assert rows["analyse-stall-reason"].output["analysis"]["score"] >= 50
    draft = rows["draft-reengagement"]
    assert draft.status == "failed" and draft.error_class == "permanent" and draft.attempt == 1
    assert f"deal {orphan_deal.name!r} has no contact" in draft.error
    assert job_row(job).error_step == "draft-reengagement"
    assert [(rows[s].status, rows[s].reason) for s in STEPS[3:]] == [("skipped", "job_failed")] * 2
    assert approvals_of(job) == [] and w.slack.calls() == [] and w.google.requests == []
