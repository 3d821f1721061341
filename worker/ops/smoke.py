"""`proactive smoke`: fire every sequence end to end against fixture records, in dry-run (README.md#smoke-test).

The fixtures live in the org itself (a smoke rep, company, contact, deal, meeting with a transcript,
calendar event, inbound email, campaign with a reply), all named `[smoke] …` with ids derived from
the org id, so repeated runs reuse them. Jobs fired with source `smoke` run in dry-run: Slack goes
to the console inbox, nothing is emailed or put in a calendar. Each event is reported as passed
(completed), paused (awaiting approval, with its kind), skipped (gated, with the reason) or failed
(with step and error), with steps completed / total and its duration. Once reported, the jobs it
left paused or running are cancelled (reason `smoke`), so nothing of a smoke run lingers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.db import session_factory, transaction
from worker.engine import registry
from worker.engine.events import fire_event
from worker.engine.executor import request_cancel
from worker.engine.payloads import EventType
from worker.engine.states import JOB_ACTIVE, JobStatus, StepStatus
from worker.errors import InvalidEvent
from worker.integrations import IntegrationStatus
from worker.models import (
    Activity,
    CalendarEvent,
    Campaign,
    CampaignReply,
    Company,
    Contact,
    Deal,
    Email,
    Integration,
    Meeting,
    Org,
    ScheduledEvent,
    User,
    approvals,
    jobs,
    steps,
    utcnow,
)

SMOKE_NAMESPACE = uuid.UUID("0b5e7f2a-9c1d-4e8b-a6f3-5d2c8e1b7a90")
# How long each event may take to reach a final or paused state (seconds).
DEFAULT_TIMEOUT_S = 30.0
POLL_S = 0.05

SMOKE_TRANSCRIPT = """\
[00:00:02] Smoke Rep: Thanks for joining. What does your team need to fix this quarter?
[00:00:08] Sam Smoke: Our dispatch process is manual; we have a budget of about twenty thousand.
[00:00:15] Smoke Rep: Who else is involved in the decision?
[00:00:19] Sam Smoke: Our CFO signs off, and we want to decide by end of month.
[00:00:25] Smoke Rep: I'll send you a proposal by Friday.
[00:00:30] Smoke Rep: Let's schedule a follow-up call next week to review it.
[00:00:36] Sam Smoke: Sounds good, I'll share our volumes tomorrow.
"""


def smoke_id(org_id: uuid.UUID, *parts: str) -> uuid.UUID:
    """The stable id of a smoke fixture record of this org."""
    return uuid.uuid5(SMOKE_NAMESPACE, "/".join((str(org_id), *parts)))


@dataclass(frozen=True)
class Fixtures:
    org_id: uuid.UUID
    rep_id: uuid.UUID
    company_id: uuid.UUID
    contact_id: uuid.UUID
    deal_id: uuid.UUID
    meeting_id: uuid.UUID
    event_id: uuid.UUID
    email_id: uuid.UUID
    campaign_id: uuid.UUID


def _ensure(session: Session, model: type, obj_id: uuid.UUID, fresh: dict[str, Any], **values: Any) -> None:
    row = session.get(model, obj_id)
    if row is None:
        session.add(model(id=obj_id, **values, **fresh))
    else:
        for key, value in fresh.items():
            setattr(row, key, value)


def ensure_fixtures(org_id: uuid.UUID, now: datetime | None = None) -> Fixtures:
    """Create (or refresh the times of) the org's smoke fixture records."""
    now = now or utcnow()
    f = Fixtures(
        org_id,
        *(smoke_id(org_id, k) for k in ("rep", "company", "contact", "deal", "meeting", "event", "email", "campaign")),
    )
    with session_factory().begin() as s:
        org = s.get(Org, org_id)
        if org is None:
            raise InvalidEvent(f"unknown org {org_id}")
        domain = f"smoke-{org_id.hex[:8]}.example"
        _ensure(
            s,
            User,
            f.rep_id,
            {},
            org_id=org_id,
            email=f"smoke-rep@{domain}",
            name="Smoke Rep",
            role="member",
            timezone=org.timezone,
            opted_out_sequences=[],
            briefing_time="08:00",
        )
        _ensure(
            s,
            Company,
            f.company_id,
            {},
            org_id=org_id,
            name="[smoke] Smoke Test Co",
            domain=domain,
            industry="logistics",
            employees=120,
            notes="smoke fixture",
        )
        s.flush()
        _ensure(
            s,
            Contact,
            f.contact_id,
            {},
            org_id=org_id,
            company_id=f.company_id,
            email=f"sam@{domain}",
            name="Sam Smoke",
            title="Head of Operations",
        )
        s.flush()
        _ensure(
            s,
            Deal,
            f.deal_id,
            {"last_activity_at": now - timedelta(days=30), "close_date": (now + timedelta(days=5)).date()},
            org_id=org_id,
            company_id=f.company_id,
            name="[smoke] Dispatch pilot",
            stage="proposal",
            value=Decimal(24000),
            currency="USD",
            owner_id=f.rep_id,
            primary_contact_id=f.contact_id,
            stage_changed_at=now - timedelta(days=45),
            created_at=now - timedelta(days=60),
        )
        s.flush()
        _ensure(
            s,
            Activity,
            smoke_id(org_id, "activity"),
            {"occurred_at": now - timedelta(days=30)},
            org_id=org_id,
            deal_id=f.deal_id,
            contact_id=f.contact_id,
            company_id=f.company_id,
            user_id=f.rep_id,
            kind="email",
            direction="outbound",
            subject="[smoke] Intro",
        )
        people = [
            {"name": "Smoke Rep", "email": f"smoke-rep@{domain}", "internal": True},
            {"name": "Sam Smoke", "email": f"sam@{domain}", "internal": False},
        ]
        _ensure(
            s,
            Meeting,
            f.meeting_id,
            {"start_at": now - timedelta(minutes=40), "end_at": now - timedelta(minutes=10)},
            org_id=org_id,
            user_id=f.rep_id,
            deal_id=f.deal_id,
            company_id=f.company_id,
            external_id=f"smoke-{org_id.hex[:8]}",
            title="[smoke] Discovery call",
            attendees=people,
            attendees_count=2,
            transcript=SMOKE_TRANSCRIPT,
        )
        _ensure(
            s,
            CalendarEvent,
            f.event_id,
            {"start_at": now + timedelta(minutes=60), "end_at": now + timedelta(minutes=90)},
            org_id=org_id,
            user_id=f.rep_id,
            deal_id=f.deal_id,
            external_id=f"smoke-{org_id.hex[:8]}",
            title="[smoke] Pricing review",
            attendees=people,
            attendees_count=2,
        )
        _ensure(
            s,
            Email,
            f.email_id,
            {"received_at": now - timedelta(minutes=5)},
            org_id=org_id,
            user_id=f.rep_id,
            contact_id=f.contact_id,
            message_id=f"smoke-{org_id.hex[:8]}",
            thread_id=f"smoke-thread-{org_id.hex[:8]}",
            from_addr=f"sam@{domain}",
            to_addrs=[f"smoke-rep@{domain}"],
            subject="[smoke] Question about pricing",
            snippet="Could you send the pricing breakdown?",
            body="Hi, could you send me the pricing breakdown per depot before our call? Thanks, Sam",
        )
        integration = s.execute(
            select(Integration.id).where(Integration.org_id == org_id, Integration.provider == "instantly")
        ).first()
        if integration is None:
            s.add(
                Integration(
                    id=smoke_id(org_id, "instantly"),
                    org_id=org_id,
                    provider="instantly",
                    status=IntegrationStatus.ACTIVE,
                    account="[smoke]",
                    scopes=[],
                )
            )
        _ensure(
            s,
            Campaign,
            f.campaign_id,
            {},
            org_id=org_id,
            owner_id=f.rep_id,
            external_id=f"smoke-{org_id.hex[:8]}",
            name="[smoke] Outbound",
            status="active",
            metrics={"sent": 200, "opened": 70, "replied": 6, "bounced": 3},
        )
        s.flush()
        _ensure(
            s,
            CampaignReply,
            smoke_id(org_id, "reply"),
            {"received_at": now - timedelta(hours=1)},
            org_id=org_id,
            campaign_id=f.campaign_id,
            external_id=f"smoke-reply-{org_id.hex[:8]}",
            from_email=f"sam@{domain}",
            subject="Re: [smoke] Outbound",
            body="Interested, can you send more details?",
            status="open",
        )
    return f


def smoke_events(f: Fixtures, run: str) -> dict[str, dict[str, Any]]:
    """One event envelope per event type, referencing the fixtures (keys unique to this run)."""
    rep = str(f.rep_id)
    payloads: dict[str, tuple[str | None, dict[str, Any]]] = {
        EventType.MEETING_ENDED: (rep, {"meeting_id": str(f.meeting_id)}),
        EventType.PRE_MEETING_90MIN: (rep, {"calendar_event_id": str(f.event_id)}),
        EventType.EMAIL_RECEIVED: (rep, {"email_id": str(f.email_id)}),
        EventType.PROPOSAL_GENERATION: (rep, {"deal_id": str(f.deal_id), "contact_id": str(f.contact_id)}),
        EventType.CALENDAR_FIND_TIMES: (
            rep,
            {
                "scheduling_text": "30 minutes next week, afternoon",
                "contact_id": str(f.contact_id),
                "deal_id": str(f.deal_id),
            },
        ),
        EventType.STALE_DEAL_REVIVAL: (rep, {"deal_id": str(f.deal_id)}),
        EventType.CAMPAIGN_DAILY_CHECK: (None, {"campaign_ids": [str(f.campaign_id)]}),
        EventType.COACHING_WEEKLY: (rep, {}),
        EventType.DEAL_RISK_SCAN: (None, {"deal_ids": [str(f.deal_id)]}),
    }
    return {
        t.value: {
            "type": t.value,
            "source": "smoke",
            "org_id": str(f.org_id),
            "user_id": user,
            "payload": payload,
            "idempotency_key": f"smoke:{run}:{t.value}",
        }
        for t, (user, payload) in payloads.items()
    }


@dataclass
class SmokeLine:
    """The outcome of one event."""

    event_type: str
    outcome: str  # passed | paused | skipped | failed
    job_id: str | None
    status: str
    steps_completed: int
    steps_total: int
    duration_ms: int
    detail: str = ""


def _observe(job_id: uuid.UUID) -> tuple[str, str | None, str | None, str | None, int, int]:
    with transaction() as conn:
        job = conn.execute(
            select(jobs.c.status, jobs.c.reason, jobs.c.error, jobs.c.error_step, jobs.c.event_type).where(
                jobs.c.id == job_id
            )
        ).one()
        rows = list(conn.execute(select(steps.c.status).where(steps.c.job_id == job_id, steps.c.superseded.is_(False))))
        kind = conn.execute(
            select(approvals.c.kind).where(approvals.c.job_id == job_id, approvals.c.status == "pending")
        ).scalar()
    try:
        total = len(registry.get(job.event_type).steps)
    except registry.UnknownSequence:
        total = len(rows)
    completed = sum(1 for (st,) in rows if st in (StepStatus.SUCCEEDED, StepStatus.SKIPPED))
    detail = kind if job.status == JobStatus.AWAITING_APPROVAL else (job.reason or "")
    if job.status in (JobStatus.FAILED, JobStatus.TIMEOUT, JobStatus.EXPIRED):
        detail = f"{job.error_step or '?'}: {(job.error or job.reason or '')[:200]}"
    return job.status, detail, job.error_step, job.reason, completed, total


def run_smoke(
    org_id: uuid.UUID,
    *,
    sequences: Sequence[str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_line: Callable[[SmokeLine], None] | None = None,
) -> list[SmokeLine]:
    """Fire the chosen event types (all nine by default) and wait for each; returns one line each."""
    fixtures = ensure_fixtures(org_id)
    events = smoke_events(fixtures, uuid.uuid4().hex[:8])
    chosen = list(sequences) if sequences else list(events)
    unknown = [t for t in chosen if t not in events]
    if unknown:
        raise InvalidEvent(f"unknown sequence(s): {', '.join(unknown)} (one of {', '.join(events)})")
    started: list[tuple[str, uuid.UUID | None, float, str | None]] = []
    for event_type in chosen:
        t0 = time.monotonic()
        try:
            started.append((event_type, fire_event(events[event_type]).job_id, t0, None))
        except InvalidEvent as err:
            started.append((event_type, None, t0, str(err)))
    results: dict[int, SmokeLine] = {}
    for index, (event_type, job_id, _t0, error) in enumerate(started):
        if job_id is None:
            results[index] = SmokeLine(event_type, "failed", None, "rejected", 0, 0, 0, error or "")
            if on_line:
                on_line(results[index])
    while len(results) < len(started):  # watch every job at once; each has its own deadline
        for index, (event_type, job_id, t0, _error) in enumerate(started):
            if index in results or job_id is None:
                continue
            status, detail, *_rest, completed, total = _observe(job_id)
            late = time.monotonic() > t0 + timeout_s
            if status in (JobStatus.QUEUED, JobStatus.RUNNING) and not late:
                continue
            outcome = {"completed": "passed", "awaiting_approval": "paused", "skipped": "skipped"}.get(status, "failed")
            if status in (JobStatus.QUEUED, JobStatus.RUNNING):
                detail = f"still {status} after {timeout_s:g} s"
            results[index] = SmokeLine(
                event_type,
                outcome,
                str(job_id),
                status,
                completed,
                total,
                int((time.monotonic() - t0) * 1000),
                detail or "",
            )
            if on_line:
                on_line(results[index])
        if len(results) < len(started):
            time.sleep(POLL_S)
    lines = [results[i] for i in range(len(started))]
    end_unfinished(org_id, lines)
    return lines


def end_unfinished(org_id: uuid.UUID, lines: Sequence[SmokeLine]) -> list[str]:
    """Once reported, cancel this run's jobs that did not end (paused on an approval, or still
    running at the deadline) through the engine's cancel (reason `smoke`): their approvals are
    cancelled and their messages replaced like any cancel, so no reminder or expiry reaches the smoke
    rep later. The run's follow-ups not fired yet are dropped too (marked handled, error `smoke`).
    Returns the ids of the jobs asked to end."""
    from sqlalchemy import update

    ended = []
    for line in lines:
        if line.job_id and line.status in JOB_ACTIVE:
            request_cancel(uuid.UUID(line.job_id), org_id=org_id, actor="smoke", reason="smoke")
            ended.append(line.job_id)
    parents = [uuid.UUID(line.job_id) for line in lines if line.job_id]
    if parents:
        scheduled = ScheduledEvent.__table__
        with transaction() as conn:
            conn.execute(
                update(scheduled)
                .where(
                    scheduled.c.org_id == org_id,
                    scheduled.c.parent_job_id.in_(parents),
                    scheduled.c.fired_at.is_(None),
                )
                .values(fired_at=utcnow(), error="smoke: the run's follow-up, not fired")
            )
    return ended


def summary(lines: Sequence[SmokeLine]) -> str:
    """`N passed, N paused, N skipped, N failed`."""
    count = {k: sum(1 for line in lines if line.outcome == k) for k in ("passed", "paused", "skipped", "failed")}
    return ", ".join(f"{n} {k}" for k, n in count.items())


def as_dicts(lines: Sequence[SmokeLine]) -> list[dict[str, Any]]:
    """JSON-ready lines (CLI --json, the admin API)."""
    return [asdict(line) for line in lines]
