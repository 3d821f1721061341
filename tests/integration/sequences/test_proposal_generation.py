"""proposal_generation end to end: draft from the deal's records, review in Slack, email on approval."""

from __future__ import annotations

import base64
import email

import pytest
from sqlalchemy import select

from tests.integration.sequences.conftest import World, wait_delivered, wait_job
from tests.support.engine import pending_approval, step_rows
from tests.support.waiting import wait_for
from worker.db import transaction
from worker.engine.approvals import decide
from worker.engine.events import fire_event
from worker.models import Proposal
from worker.ops.seed import demo_id

pytestmark = pytest.mark.slow
INITECH = {"deal_id": str(demo_id("deal", "initech-platform")), "contact_id": str(demo_id("contact", "bill"))}


def test_approve_and_send_emails_the_contact_the_proposal_link(w: World):
    job = fire_event(w.event("proposal_generation", INITECH)).job_id
    assert wait_job(job, "awaiting_approval") == "awaiting_approval"
    approval = pending_approval(job)
    assert approval.kind == "proposal_review"
    posted = wait_for(lambda: w.slack.calls("chat.postMessage", channel=w.dm("alice")), what="review posted")
    assert len(posted) == 1
    action_ids = [e["action_id"] for b in posted[0].params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert action_ids == ["prop_approve_send", "prop_edit", "prop_share_link", "prop_skip"]

    decide(approval.id, "approve_send", user_id=w.user("alice"))
    assert wait_job(job) == "completed"
    rows = step_rows(job)
    assert [
        rows[s].status
        for s in (
            "select-proposal-template",
            "populate-proposal",
            "generate-custom-sections",
            "present-for-review",
            "send-proposal",
        )
    ] == ["succeeded"] * 5
    assert len(w.google.sent) == 1
    sent = email.message_from_bytes(base64.urlsafe_b64decode(w.google.sent[0].raw + "=="))
    assert sent["To"] == "bill@initech.example"
    with transaction() as conn:
        proposal = conn.execute(select(Proposal.__table__).where(Proposal.job_id == job)).one()
    assert proposal.status == "sent" and proposal.link in sent.get_payload(decode=True).decode()
    updates = wait_for(lambda: w.slack.calls("chat.update", channel=w.dm("alice")), what="review replaced")
    assert "Approved and sent by" in updates[-1].params["text"]
    wait_delivered(job)


def test_skip_cancels_and_sends_nothing(w: World):
    job = fire_event(w.event("proposal_generation", INITECH)).job_id
    assert wait_job(job, "awaiting_approval") == "awaiting_approval"
    decide(pending_approval(job).id, "skip", user_id=w.user("alice"))
    assert wait_job(job) == "cancelled"
    assert step_rows(job)["send-proposal"].status == "skipped"
    assert w.google.sent == []


def test_a_deleted_deal_fails_with_a_message_naming_it(w: World):
    ghost = "00000000-0000-4000-8000-000000000001"
    job = fire_event(w.event("proposal_generation", {"deal_id": ghost})).job_id
    assert wait_job(job) == "failed"
    row = step_rows(job)["select-proposal-template"]
    assert row.error_class == "permanent" and f"deal {ghost} not found" in row.error
