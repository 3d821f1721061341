"""pre_meeting_90min end to end: attendees enriched from the CRM, history and the open deal, the
briefing DM (urgent within 2 h of the meeting, held by quiet hours otherwise), and a deleted event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, insert, select, update

from tests.fakes.slack import Call
from tests.integration.sequences.conftest import World, wait_delivered, wait_job
from tests.support.engine import job_row, step_rows
from tests.support.waiting import wait_for
from worker.db import transaction
from worker.engine.events import fire_event
from worker.models import CalendarEvent, SlackOutbox, User, steps, utcnow
from worker.ops.seed import demo_id

pytestmark = pytest.mark.slow

PRICING = demo_id("event", "globex-pricing")
STEPS = ("enrich-attendees", "pull-crm-history", "research-company-news", "generate-briefing", "deliver-slack-briefing")
ZONES = {"alice": "America/New_York", "bruno": "Europe/Berlin"}


# --------------------------------------------------------------------------- helpers


def _hhmm(at: datetime) -> str:
    return f"{at:%H:%M}"


@pytest.fixture
def quiet_now(world: World) -> Iterator[Any]:
    """`quiet_now("alice")`: that rep's quiet hours cover now (1 h ago -> 2 h ahead, local); restored after.
    Returns the instant the quiet hours end (UTC)."""
    users = User.__table__
    saved: dict[uuid.UUID, Any] = {}

    def make(who: str) -> datetime:
        local = datetime.now(UTC).astimezone(ZoneInfo(ZONES[who])).replace(second=0, microsecond=0)
        start, end = local - timedelta(hours=1), local + timedelta(hours=2)
        with transaction() as conn:
            saved[world.user(who)] = conn.execute(
                select(users.c.quiet_hours).where(users.c.id == world.user(who))
            ).scalar()
            conn.execute(
                update(users)
                .where(users.c.id == world.user(who))
                .values(quiet_hours={"start": _hhmm(start), "end": _hhmm(end)})
            )
        return end.astimezone(UTC)

    try:
        yield make
    finally:
        with transaction() as conn:
            for user_id, hours in saved.items():
                conn.execute(update(users).where(users.c.id == user_id).values(quiet_hours=hours))


@pytest.fixture
def new_event(world: World) -> Iterator[Any]:
    """`new_event(owner, contact_email, starts_in)`: a two-person calendar event; deleted after (with
    the Slack messages of its jobs, so a held brief never surfaces in another test)."""
    made: list[uuid.UUID] = []

    def make(owner: str, guest: dict[str, str], starts_in: timedelta) -> uuid.UUID:
        event_id = uuid.uuid4()
        start = utcnow() + starts_in
        owner_email = f"{owner}@northwind.example"
        with transaction() as conn:
            conn.execute(
                insert(CalendarEvent.__table__).values(
                    id=event_id,
                    org_id=world.org_id,
                    user_id=world.user(owner),
                    deal_id=None,
                    external_id=f"gcal-test-{event_id.hex[:8]}",
                    title=f"Check-in with {guest['name']}",
                    start_at=start,
                    end_at=start + timedelta(minutes=30),
                    attendees=[
                        {"name": owner.capitalize(), "email": owner_email, "internal": True},
                        {**guest, "internal": False},
                    ],
                    attendees_count=2,
                    created_at=utcnow(),
                )
            )
        made.append(event_id)
        return event_id

    try:
        yield make
    finally:
        with transaction() as conn:
            conn.execute(delete(CalendarEvent.__table__).where(CalendarEvent.id.in_(made)))


def _delete_event(event_id: uuid.UUID) -> None:
    with transaction() as conn:
        conn.execute(delete(CalendarEvent.__table__).where(CalendarEvent.id == event_id))


def _outbox(job_id: uuid.UUID) -> list[Any]:
    with transaction() as conn:
        return list(conn.execute(select(SlackOutbox.__table__).where(SlackOutbox.job_id == job_id)))


def _dm_traffic(w: World, who: str) -> list[Call]:
    """Every Slack call about `who`'s DM: conversations.open for them, and posts/edits in the channel."""
    dm, slack_user = w.dm(who), f"U0{who.upper()[:6]}"
    return [
        c
        for c in w.slack.calls()
        if c.params.get("channel") == dm or (c.method == "conversations.open" and c.params.get("users") == slack_user)
    ]


def _brief(w: World, event_id: uuid.UUID, who: str) -> uuid.UUID:
    return fire_event(w.event("pre_meeting_90min", {"calendar_event_id": str(event_id)}, user=who)).job_id


# --------------------------------------------------------------------------- tests


def test_globex_pricing_brief_is_posted_at_once_even_in_quiet_hours(w: World, quiet_now: Any):
    quiet_now("alice")  # starts in ~75 min: the brief is urgent, quiet hours do not hold it
    job = _brief(w, PRICING, "alice")
    assert wait_job(job) == "completed"
    rows = step_rows(job)
    assert {s: rows[s].status for s in STEPS} == dict.fromkeys(STEPS, "succeeded")

    enriched = rows["enrich-attendees"].output
    assert enriched["attendees"] == [
        {"email": "alice@northwind.example", "name": "Alice Moreau", "title": None, "company": None, "internal": True},
        {
            "email": "hank@globex.example",
            "name": "Hank Scorpio",
            "title": "COO",
            "company": "Globex Logistics",
            "internal": False,
        },
    ]
    assert enriched["contact_ids"] == [str(demo_id("contact", "hank"))]
    assert enriched["company_id"] == str(demo_id("company", "globex"))
    assert enriched["company"]["name"] == "Globex Logistics" and enriched["company"]["industry"] == "logistics"

    history = rows["pull-crm-history"].output
    deal = history["deal"]
    assert history["deal_id"] == str(demo_id("deal", "globex-fleet"))
    assert (deal["name"], deal["stage"], deal["value"], deal["currency"]) == (
        "Fleet telematics, 40 depots",
        "negotiation",
        84000.0,
        "USD",
    )
    subjects = {(h["kind"], h["subject"]) for h in history["history"]}
    assert {("meeting", "Discovery call"), ("email", "Follow-up: pricing")} <= subjects  # the seeded touches
    assert "Send Globex depot rollout plan" in history["open_tasks"]

    brief = rows["generate-briefing"].output
    assert brief["meeting_title"] == "Pricing walkthrough — Globex"
    assert brief["deal"]["name"] == "Fleet telematics, 40 depots"
    assert "Negotiation: resolve the open points and agree on a signature date" in brief["talking_points"]
    assert any(p.startswith("Senior attendee: Hank Scorpio (COO)") for p in brief["talking_points"])
    assert brief["questions"][-1] == "What would be a good next step after today?"
    assert rows["deliver-slack-briefing"].output["urgent"] is True

    delivered = wait_delivered(job)
    assert [(r.kind, r.status, r.urgent, r.error) for r in delivered] == [("pre_meeting_briefing", "sent", True, None)]
    traffic = _dm_traffic(w, "alice")
    assert [c.method for c in traffic] == ["conversations.open", "chat.postMessage"]
    assert traffic[0].response["channel"]["id"] == w.dm("alice")
    post = traffic[1]
    assert post.ok and post.response["ts"] == delivered[0].ts
    assert post.params["text"] == "Brief for Pricing walkthrough — Globex with Globex Logistics"
    shown = str(post.params["blocks"])
    for fragment in ("Hank Scorpio", "COO at Globex Logistics", "Fleet telematics, 40 depots", "Negotiation"):
        assert fragment in shown
    assert not any(b["type"] == "actions" for b in post.params["blocks"])
    assert w.google.requests == []


def test_brief_five_hours_ahead_waits_for_the_end_of_quiet_hours(w: World, quiet_now: Any, new_event: Any):
    quiet_end = quiet_now("bruno")
    event_id = new_event("bruno", {"name": "Pepper Potts", "email": "pepper@stark-energy.example"}, timedelta(hours=5))
    job = _brief(w, event_id, "bruno")
    try:
        assert wait_job(job) == "completed"
        rows = step_rows(job)
        assert {s: rows[s].status for s in STEPS} == dict.fromkeys(STEPS, "succeeded")
        # Held until quiet hours end, but never later than 2 h before the meeting: queued for that instant.
        assert rows["deliver-slack-briefing"].output["urgent"] is True
        assert rows["enrich-attendees"].output["attendees"][1]["company"] == "Stark Energy"
        with transaction() as conn:
            start = conn.execute(select(CalendarEvent.start_at).where(CalendarEvent.id == event_id)).scalar_one()
        held = wait_for(lambda: [r for r in _outbox(job) if r.not_before], what="brief queued for later")
        assert [(r.kind, r.status, r.urgent, r.ts, r.not_before) for r in held] == [
            ("pre_meeting_briefing", "pending", True, None, min(quiet_end, start - timedelta(hours=2)))
        ]
        assert _dm_traffic(w, "bruno") == []  # not even a conversations.open
        assert w.slack.calls("chat.postMessage") == []
    finally:
        with transaction() as conn:
            conn.execute(delete(SlackOutbox.__table__).where(SlackOutbox.job_id == job))


def test_deleted_event_fails_the_briefing_naming_the_event(w: World, new_event: Any):
    event_id = new_event("alice", {"name": "Hank Scorpio", "email": "hank@globex.example"}, timedelta(minutes=80))
    _delete_event(event_id)
    job = _brief(w, event_id, "alice")
    assert wait_job(job) == "failed"
    rows = step_rows(job)
    message = f"PermanentError: calendar event {event_id} not found in this org (deleted?)"
    enrich, briefing = rows["enrich-attendees"], rows["generate-briefing"]
    assert (enrich.status, enrich.error_class, enrich.error) == ("failed", "permanent", message)  # best-effort
    assert (briefing.status, briefing.error_class, briefing.error, briefing.attempt) == (
        "failed",
        "permanent",
        message,
        1,
    )
    history, news = rows["pull-crm-history"], rows["research-company-news"]  # best-effort, run without enrich
    assert (history.status, history.error_class, history.error, history.attempt) == ("failed", "permanent", message, 1)
    assert (news.status, news.output) == ("succeeded", {"news": []})
    assert (rows["deliver-slack-briefing"].status, rows["deliver-slack-briefing"].reason) == ("skipped", "job_failed")
    row = job_row(job)
    assert (row.error_step, row.error) == ("generate-briefing", message)
    with transaction() as conn:
        errors = [e for (e,) in conn.execute(select(steps.c.error).where(steps.c.job_id == job))]
    assert not any("KeyError" in (e or "") for e in errors)  # every step says what is missing
    assert _outbox(job) == [] and _dm_traffic(w, "alice") == []
