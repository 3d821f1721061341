"""Behaviour fixes, checked on PostgreSQL: the morning brief finds the rep's approvals in a busy org,
reminders count the rep's working hours and reach every approver, a race-losing `proactive approve`
is a refusal (exit 1) that reads "already approved by …", and `proactive smoke` ends the jobs it
leaves paused once it has reported.

The module has its own database and Redis DB (tests.support.private_backend): the sweeper's reminder
pass reads every org, and the smoke test's in-process worker consumes the module's broker alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.conftest import Backend
from tests.support.private_backend import private_backend
from worker.db import session_factory, transaction
from worker.engine import sweeper
from worker.models import Approval, Org, SequenceJob, SlackOutbox, StepRun, User, approvals, jobs, utcnow
from worker.ops.cli import main
from worker.ops.inprocess import EmbeddedWorker
from worker.ops.smoke import run_smoke

pytestmark = pytest.mark.postgres

FRIDAY = datetime(2025, 1, 3, tzinfo=UTC)  # a Friday, long before any other row of the module
APPROVAL_STEP = ("calendar_find_times", "present-time-options", "calendar_slots")


@pytest.fixture(scope="module", autouse=True)
def backend(tmp_home: Path) -> Iterator[Backend]:
    """The module's own database and Redis DB; messages stay in the console outbox (no token)."""
    with private_backend(tmp_home, "fixes", {"SLACK_BOT_TOKEN": ""}) as chosen:
        yield chosen


# --------------------------------------------------------------------------- seeding and reading


def seed_org(*zones: str) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A new org in UTC with one member per zone; returns the org and the members' ids."""
    org_id, users = uuid.uuid4(), [uuid.uuid4() for _ in zones]
    with session_factory().begin() as s:
        s.add(Org(id=org_id, name=f"Busy org {org_id.hex[:6]}", timezone="UTC", settings={}))
        s.flush()
        for user_id, tz in zip(users, zones, strict=True):
            s.add(
                User(
                    id=user_id,
                    org_id=org_id,
                    email=f"{user_id.hex[:8]}@fixes.example",
                    name=f"Rep {user_id.hex[:4]}",
                    role="member",
                    timezone=tz,
                    opted_out_sequences=[],
                )
            )
    return org_id, users


def seed_approval(
    org_id: uuid.UUID,
    approvers: list[uuid.UUID],
    created_at: datetime,
    *,
    title: str = "",
    status: str = "pending",
    decided_by: uuid.UUID | None = None,
) -> uuid.UUID:
    """A paused calendar_find_times job with one approval (pending, or decided by `decided_by`)."""
    event_type, step, kind = APPROVAL_STEP
    job_id, step_id, approval_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with session_factory().begin() as s:
        s.add(
            SequenceJob(
                id=job_id,
                org_id=org_id,
                user_id=approvers[0],
                event_type=event_type,
                source="api",
                payload={},
                idempotency_key=f"fixes:{job_id}",
                status="awaiting_approval",
                created_at=created_at,
            )
        )
        s.flush()
        s.add(StepRun(id=step_id, org_id=org_id, job_id=job_id, step=step, status="awaiting_approval"))
        s.flush()
        s.add(
            Approval(
                id=approval_id,
                org_id=org_id,
                job_id=job_id,
                step_run_id=step_id,
                step=step,
                kind=kind,
                status=status,
                approver_user_ids=[str(u) for u in approvers],
                preview={"title": title} if title else {},
                decision="approve" if decided_by else None,
                decided_by=decided_by,
                decided_at=created_at + timedelta(minutes=5) if decided_by else None,
                expires_at=created_at + timedelta(days=7),
                created_at=created_at,
            )
        )
    return approval_id


def reminders(approval_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """The reminders queued for one approval: (user, dedupe key)."""
    with transaction() as conn:
        rows = conn.execute(
            select(SlackOutbox.user_id, SlackOutbox.dedupe_key).where(
                SlackOutbox.approval_id == approval_id, SlackOutbox.kind == "approval_reminder"
            )
        ).all()
    return sorted((r.user_id, r.dedupe_key) for r in rows)


# --------------------------------------------------------------------------- morning brief


def test_the_brief_shows_the_reps_approvals_however_busy_the_org(monkeypatch: pytest.MonkeyPatch) -> None:
    from sequences.skills.briefing import morning as morning_brief

    monkeypatch.setattr(morning_brief, "PENDING_APPROVALS_MAX", 3)  # as if the org had 500 older ones
    org_id, (rep, colleague) = seed_org("UTC", "UTC")
    for n in range(4):  # the colleague's, all older than the rep's
        seed_approval(org_id, [colleague], FRIDAY + timedelta(minutes=n), title=f"Colleague's request {n}")
    seed_approval(org_id, [colleague, rep], FRIDAY + timedelta(hours=1), title="Shared request")
    seed_approval(org_id, [rep], FRIDAY + timedelta(hours=2), title="Rep's own request")
    now = FRIDAY + timedelta(days=1)

    with transaction() as conn:
        user = dict(conn.execute(select(User.id, User.name).where(User.id == rep)).one()._mapping)
        message = morning_brief.morning_brief_message(conn, org_id, user, now, ZoneInfo("UTC"))

    text = str(message)
    assert "Rep's own request" in text and "Shared request" in text
    assert "Colleague's request" not in text


# --------------------------------------------------------------------------- reminders


def test_a_reminder_counts_the_reps_working_hours_and_reaches_every_approver() -> None:
    org_id, (rep, manager) = seed_org("UTC", "Asia/Tokyo")
    late_friday = seed_approval(org_id, [rep, manager], FRIDAY + timedelta(hours=22), title="Times for Globex")
    saturday = FRIDAY + timedelta(days=1, hours=10)  # 12 clock hours later, 2 working hours

    sweeper.nudge(saturday)
    assert reminders(late_friday) == []  # the weekend does not count

    monday = FRIDAY + timedelta(days=3, hours=2)  # Friday 22:00-24:00 + Monday 00:00-02:00 UTC (the rep's zone)
    sweeper.nudge(monday - timedelta(seconds=1))
    assert reminders(late_friday) == []
    sweeper.nudge(monday)

    assert reminders(late_friday) == sorted(
        [(rep, f"approval-nudge:{late_friday}:{rep}"), (manager, f"approval-nudge:{late_friday}:{manager}")]
    )
    with transaction() as conn:
        texts = conn.execute(select(SlackOutbox.text).where(SlackOutbox.approval_id == late_friday)).scalars().all()
        nudged_at = conn.execute(select(approvals.c.nudged_at).where(approvals.c.id == late_friday)).scalar()
    assert all(t.startswith("Reminder: a calendar slots request (Times for Globex) is waiting") for t in texts)
    assert nudged_at == monday

    sweeper.nudge(monday + timedelta(hours=1))  # once per approver
    assert len(reminders(late_friday)) == 2


def test_a_reminder_counts_in_the_first_approvers_zone() -> None:
    org_id, (tokyo_rep,) = seed_org("Asia/Tokyo")
    # Friday 23:00 in Tokyo: 1 working hour on Friday, 3 more from Monday 00:00 Tokyo (Sunday 15:00 UTC)
    opened = seed_approval(org_id, [tokyo_rep], FRIDAY + timedelta(hours=14))
    due = FRIDAY + timedelta(days=2, hours=18)

    sweeper.nudge(due - timedelta(minutes=1))
    assert reminders(opened) == []
    sweeper.nudge(due)
    assert [user for user, _key in reminders(opened)] == [tokyo_rep]


# --------------------------------------------------------------------------- a lost race on the CLI


def test_a_race_losing_approve_is_refused_with_exit_1() -> None:
    org_id, (rep, colleague) = seed_org("UTC", "UTC")
    decided = seed_approval(org_id, [rep, colleague], FRIDAY, status="approved", decided_by=colleague)

    result = CliRunner().invoke(main, ["approve", str(decided), "--as", str(rep)])

    assert result.exit_code == 1, result.output
    assert f"already approved by Rep {colleague.hex[:4]} at 2025-01-03 00:05:00 UTC" in result.output
    rejected = CliRunner().invoke(main, ["reject", str(decided), "--as", str(rep)])
    assert rejected.exit_code == 1 and "already approved by" in rejected.output


# --------------------------------------------------------------------------- smoke


def _job(job_id: str) -> Any:
    with transaction() as conn:
        return conn.execute(select(jobs.c.status, jobs.c.reason).where(jobs.c.id == uuid.UUID(job_id))).one()


def test_smoke_drops_the_follow_ups_its_jobs_scheduled() -> None:
    """A follow-up a smoke job scheduled (delay_minutes) is not fired later for the smoke rep."""
    from worker.models import ScheduledEvent
    from worker.ops.smoke import SmokeLine, end_unfinished

    org_id, _users = seed_org("UTC")
    parent, other = uuid.uuid4(), uuid.uuid4()
    scheduled = ScheduledEvent.__table__
    with transaction() as conn:
        for n, owner in enumerate((parent, other)):
            conn.execute(
                scheduled.insert().values(
                    id=uuid.uuid4(),
                    org_id=org_id,
                    parent_job_id=owner,
                    idempotency_key=f"follow-up-{n}-{owner}",
                    event={},
                    fire_at=utcnow() + timedelta(days=3),
                    created_at=utcnow(),
                )
            )
    end_unfinished(org_id, [SmokeLine("coaching_weekly", "passed", str(parent), "completed", 4, 4, 10)])
    with transaction() as conn:
        rows = dict(
            conn.execute(
                select(scheduled.c.parent_job_id, scheduled.c.fired_at).where(scheduled.c.org_id == org_id)
            ).all()
        )
    assert rows[parent] is not None and rows[other] is None  # only the run's own follow-up is dropped


def test_smoke_ends_the_jobs_it_left_paused_once_reported() -> None:
    org_id, _users = seed_org("UTC")
    reported: list[tuple[str, str]] = []

    with EmbeddedWorker():
        lines = run_smoke(
            org_id,
            sequences=["calendar_find_times", "coaching_weekly"],
            timeout_s=60,
            on_line=lambda line: reported.append((line.event_type, _job(line.job_id).status)),
        )

    paused, finished = lines
    assert (paused.outcome, paused.status) == ("paused", "awaiting_approval"), paused
    assert finished.outcome in ("passed", "skipped"), finished
    assert ("calendar_find_times", "awaiting_approval") in reported  # reported before it was ended
    assert tuple(_job(paused.job_id)) == ("cancelled", "smoke")
    with transaction() as conn:
        left = conn.execute(
            select(approvals.c.id, approvals.c.status).where(approvals.c.job_id == uuid.UUID(paused.job_id))
        ).all()
        replaced = (
            conn.execute(
                select(SlackOutbox.text).where(SlackOutbox.approval_id == left[0].id, SlackOutbox.kind == "approval")
            )
            .scalars()
            .all()
        )
    assert [a.status for a in left] == ["cancelled"]  # nothing left to remind about or expire
    assert len(replaced) == 1 and "closed" in replaced[0].lower(), replaced
    assert _job(finished.job_id).status in ("completed", "skipped")  # a finished job is left alone
