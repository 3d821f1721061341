"""campaign_daily_check end to end: Instantly analytics and replies in, one report DM per campaign owner out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from tests.fakes.instantly import API_KEY, FakeInstantly, analytics, campaign, email_item, instantly_error
from tests.integration.sequences.conftest import World, wait_delivered, wait_job
from tests.support.engine import job_row, make_org, step_rows
from worker.db import transaction
from worker.engine.events import fire_event
from worker.models import Campaign, CampaignReply, utcnow
from worker.ops.seed import demo_id

pytestmark = pytest.mark.slow
Q4, HEALTH = demo_id("campaign", "q4-logistics"), demo_id("campaign", "healthcare-pilot")  # alice's, bruno's
STEPS = ("fetch-campaign-metrics", "classify-replies", "build-report", "deliver-campaign-slack")
MAILBOX = "outreach@northwind-mail.example"
REPLY_ACTIONS = ["camp_draft_response", "camp_view_thread", "camp_mark_closed", "camp_add_nurture"]
CAMPAIGN_ACTIONS = ["camp_apply_suggestion", "camp_keep_testing"]


def _at(hours_ago: float) -> str:
    return (utcnow() - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def instantly(w: World) -> Iterator[FakeInstantly]:
    """The org's two campaigns active in Instantly (plus a paused one), their analytics, no emails yet."""
    fake = w.instantly
    fake.campaigns[:] = [
        campaign("inst-q4-logistics", "Q4 logistics outbound"),
        campaign("inst-healthcare-pilot", "Healthcare scheduling pilot"),
        campaign("inst-paused", "Paused experiment", status=2),
    ]
    fake.analytics[:] = [
        # 1,410 delivered: open 21.3 %, reply 1.1 % (< 2 %), bounce 6.0 % (> 5 %) -> underperforming
        analytics("inst-q4-logistics", "Q4 logistics outbound", sent=1500, opened=300, replied=15, bounced=90),
        # 485 delivered: open 47.4 %, reply 4.1 %, bounce 3.0 % (> 2 %) -> warning
        analytics("inst-healthcare-pilot", "Healthcare scheduling pilot", sent=500, opened=230, replied=20, bounced=15),
        analytics("inst-paused", "Paused experiment", sent=10, opened=1, replied=0, bounced=0, status=2),
    ]
    fake.emails[:] = []
    with transaction() as conn:
        seeded = conn.execute(select(Campaign.id, Campaign.metrics).where(Campaign.org_id == w.org_id)).all()
        replies = conn.execute(
            select(CampaignReply.id, CampaignReply.classification).where(CampaignReply.org_id == w.org_id)
        ).all()
    yield fake
    fake.campaigns.clear()
    fake.analytics.clear()
    fake.emails.clear()
    with transaction() as conn:  # the seeded numbers and replies again, for the next test and module
        for campaign_id, metrics in seeded:
            conn.execute(update(Campaign.__table__).where(Campaign.id == campaign_id).values(metrics=metrics))
        table = CampaignReply.__table__
        for reply_id, label in replies:
            conn.execute(update(table).where(table.c.id == reply_id).values(classification=label))
        kept = [reply_id for reply_id, _ in replies]
        conn.execute(
            delete(CampaignReply.__table__).where(CampaignReply.org_id == w.org_id, CampaignReply.id.not_in(kept))
        )


# key, lead, campaign, hours ago, subject, text; newest first, as `sort_order=desc` asks.
REPLIES = (
    ("pos", "dana@fleetco.example", "inst-q4-logistics", 1, "Re: Faster dispatch",
     "Yes, this looks interesting. Can we set up a call next week to talk pricing?"),
    ("ours", MAILBOX, "inst-q4-logistics", 1.5, "Faster dispatch", "Following up on my note."),  # we sent it
    ("neg", "rob@haulco.example", "inst-q4-logistics", 2, "Re: Faster dispatch",
     "Not interested, thanks. We are happy with our current provider."),
    ("ooo", "mia@clinic.example", "inst-healthcare-pilot", 3, "Automatic reply: Out of office",
     "I am out of the office until Monday 30 November with limited access to email."),
    ("unsub", "ken@careco.example", "inst-healthcare-pilot", 4, "Re: Scheduling pilot",
     "Please unsubscribe me from this list."),
    ("old", "old@lead.example", "inst-q4-logistics", 30, "Re: Faster dispatch", "Sure, call me."),  # before the window
)  # fmt: skip


def _replies(tag: str) -> list[dict[str, Any]]:
    """GET /emails items for REPLIES, their ids prefixed with `tag` (unique per test)."""
    return [
        email_item(f"{tag}-{key}", sender=sender, mailbox=MAILBOX, lead="dana@fleetco.example" if key == "ours"
                   else sender, campaign_id=cid, at=_at(hours_ago), subject=subject, text=text)
        for key, sender, cid, hours_ago, subject, text in REPLIES
    ]  # fmt: skip


def _fire(w: World) -> uuid.UUID:
    return fire_event(w.event("campaign_daily_check", {}, user=None)).job_id


def _stored_replies(w: World, tag: str) -> dict[str, Any]:
    """The org's stored replies from `_replies(tag)`, by their key ("pos", "neg", ...)."""
    with transaction() as conn:
        rows = conn.execute(
            select(CampaignReply.__table__).where(
                CampaignReply.org_id == w.org_id, CampaignReply.external_id.like(f"{tag}-%")
            )
        ).all()
    return {r.external_id.removeprefix(f"{tag}-"): r for r in rows}


def _buttons(blocks: list[dict[str, Any]], prefix: str) -> dict[str, list[tuple[str, str]]]:
    """Actions blocks whose block_id starts with `prefix` ("reply:" / "campaign:"), by the id after it."""
    return {
        b["block_id"].removeprefix(prefix): [(e["action_id"], e["value"]) for e in b["elements"]]
        for b in blocks
        if b["type"] == "actions" and b["block_id"].startswith(prefix)
    }


def test_report_per_owner_with_metrics_replies_and_reply_buttons(w: World, instantly: FakeInstantly):
    tag = f"t{uuid.uuid4().hex[:8]}"
    instantly.emails[:] = _replies(tag)
    job = _fire(w)
    assert wait_job(job) == "completed"
    rows = step_rows(job)
    assert [rows[s].status for s in STEPS] == ["succeeded"] * 4
    assert rows["fetch-campaign-metrics"].output["source"] == "instantly"

    # Exactly the documented Instantly calls, with the org's key.
    assert [(r.method, r.path) for r in instantly.requests] == [
        ("GET", "/api/v2/campaigns"),
        ("GET", "/api/v2/campaigns/analytics"),
        ("GET", "/api/v2/emails"),
    ]
    assert {r.headers["authorization"] for r in instantly.requests} == {f"Bearer {API_KEY}"}
    assert instantly.requests[0].arg("status") == "1"
    assert (instantly.requests[2].arg("email_type"), instantly.requests[2].arg("sort_order")) == ("received", "desc")

    with transaction() as conn:
        campaigns = {
            c.external_id: c for c in conn.execute(select(Campaign.__table__).where(Campaign.org_id == w.org_id))
        }
    assert campaigns["inst-q4-logistics"].metrics == {
        "sent": 1500,
        "opened": 300,
        "replied": 15,
        "bounced": 90,
        "unsubscribed": 2,
    }
    assert campaigns["inst-healthcare-pilot"].metrics == {
        "sent": 500,
        "opened": 230,
        "replied": 20,
        "bounced": 15,
        "unsubscribed": 2,
    }
    assert "inst-paused" not in campaigns  # not active in Instantly: neither fetched nor created

    stored = _stored_replies(w, tag)
    assert {k: (r.campaign_id, r.from_email, r.classification, r.status) for k, r in stored.items()} == {
        "pos": (Q4, "dana@fleetco.example", "positive", "open"),
        "neg": (Q4, "rob@haulco.example", "negative", "open"),
        "ooo": (HEALTH, "mia@clinic.example", "out_of_office", "open"),
        "unsub": (HEALTH, "ken@careco.example", "unsubscribe", "open"),
    }  # our own email and the one older than the window are not replies to report
    classified = rows["classify-replies"].output["replies"]
    labels = {r["reply_id"]: r["classification"]["label"] for r in classified}
    assert {labels[str(r.id)] for r in stored.values()} == {"positive", "negative", "out_of_office", "unsubscribe"}

    report = {c["campaign_id"]: c for c in rows["build-report"].output["campaigns"]}
    assert {k: (c["status"], c["open_rate"], c["reply_rate"], c["bounce_rate"]) for k, c in report.items()} == {
        str(Q4): ("underperforming", 21.3, 1.1, 6.0),
        str(HEALTH): ("warning", 47.4, 4.1, 3.0),
    }
    assert report[str(Q4)]["reasons"] == ["reply rate 1.1 % is below 2 %", "bounce rate 6.0 % is above 5 %"]
    assert report[str(HEALTH)]["reasons"] == ["bounce rate 3.0 % is above 2 %"]
    assert rows["deliver-campaign-slack"].output == {
        "messages": 2,
        "owners": sorted([str(w.user("alice")), str(w.user("bruno"))]),
    }

    wait_delivered(job)
    calls = w.slack.calls()
    assert sorted(c.params["users"] for c in calls if c.method == "conversations.open") == ["U0ALICE", "U0BRUNO"]
    posts = {c.params["channel"]: c.params for c in calls if c.method == "chat.postMessage"}
    assert sorted(c.method for c in calls) == ["chat.postMessage"] * 2 + ["conversations.open"] * 2
    alice, bruno = posts[w.dm("alice")], posts[w.dm("bruno")]

    assert "(1 underperforming)" in alice["text"] and "Q4 logistics outbound" in str(alice["blocks"])
    assert "Healthcare scheduling pilot" not in str(alice["blocks"])
    assert "(1 warning)" in bruno["text"] and "Healthcare scheduling pilot" in str(bruno["blocks"])
    assert "Q4 logistics outbound" not in str(bruno["blocks"])
    assert _buttons(alice["blocks"], "campaign:") == {str(Q4): [(a, str(Q4)) for a in CAMPAIGN_ACTIONS]}
    assert _buttons(bruno["blocks"], "campaign:") == {str(HEALTH): [(a, str(HEALTH)) for a in CAMPAIGN_ACTIONS]}

    # Reply buttons (value = the reply's id) on the replies to answer, in their campaign owner's report only.
    for post, campaign_id in ((alice, Q4), (bruno, HEALTH)):
        to_answer = {
            r["reply_id"]
            for r in classified
            if r["campaign_id"] == str(campaign_id) and r["classification"]["label"] in ("positive", "other")
        }
        assert _buttons(post["blocks"], "reply:") == {rid: [(a, rid) for a in REPLY_ACTIONS] for rid in to_answer}
    assert str(stored["pos"].id) in _buttons(alice["blocks"], "reply:")
    answered_nowhere = {str(stored[k].id) for k in ("neg", "ooo", "unsub")}
    assert not answered_nowhere & (set(_buttons(alice["blocks"], "reply:")) | set(_buttons(bruno["blocks"], "reply:")))


def test_a_rate_limited_fetch_is_retried_and_the_job_completes(w: World, instantly: FakeInstantly):
    tag = f"t{uuid.uuid4().hex[:8]}"
    instantly.emails[:] = _replies(tag)[:1]
    instantly.script(
        "GET",
        r"/api/v2/campaigns",
        instantly_error(429, "Too Many Requests", "Rate limit exceeded", {"Retry-After": "1"}),
    )
    job = _fire(w)
    assert wait_job(job) == "completed"
    fetch = step_rows(job)["fetch-campaign-metrics"]
    # the rate-limited try is given back: the success is the step's first counted attempt
    assert (fetch.status, fetch.attempt, fetch.error_class) == ("succeeded", 1, "rate_limited")
    assert fetch.error.startswith("RateLimited: instantly HTTP 429")
    assert [(r.path, r.arg("status")) for r in instantly.requests] == [
        ("/api/v2/campaigns", "1"),
        ("/api/v2/campaigns", "1"),
        ("/api/v2/campaigns/analytics", None),
        ("/api/v2/emails", None),
    ]
    assert fetch.started_at - fetch.queued_at >= timedelta(seconds=1)  # the second attempt waited Retry-After
    assert {k: r.classification for k, r in _stored_replies(w, tag).items()} == {"pos": "positive"}
    assert len(wait_delivered(job)) == 2


def test_an_org_without_instantly_fails_the_fetch_for_good(w: World, instantly: FakeInstantly):
    org = make_org()
    job = fire_event(
        {
            "type": "campaign_daily_check",
            "source": "api",
            "org_id": str(org.id),
            "payload": {},
            "idempotency_key": f"test:{uuid.uuid4().hex}",
        }
    ).job_id
    assert wait_job(job) == "failed"
    rows = step_rows(job)
    fetch = rows["fetch-campaign-metrics"]
    assert (fetch.status, fetch.error_class, fetch.attempt) == ("failed", "permanent", 1)
    assert "no active Instantly integration" in fetch.error
    assert [(rows[s].status, rows[s].reason) for s in STEPS[1:]] == [("skipped", "job_failed")] * 3
    assert job_row(job).error_step == "fetch-campaign-metrics"
    assert instantly.requests == [] and w.slack.calls() == []
