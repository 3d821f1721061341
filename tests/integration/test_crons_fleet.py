"""The crons under a real fleet: two Beat processes (one by mistake) with a 1-second schedule, two
worker processes, and a settable clock walked through simulated slots of a Monday morning.
Every slot's work must happen exactly once (README.md#crons).

The module has its own PostgreSQL database and Redis DB: the ticks scan every org, so they must not
see the other tests' orgs.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from tests.conftest import Backend
from tests.support.private_backend import private_backend
from tests.support.waiting import wait_for
from tests.support.workers import BeatProcess, WorkerProcess
from worker.db import transaction
from worker.models import CalendarEvent, CronRun, Deal, Integration, Org, SlackOutbox, User, jobs

pytestmark = pytest.mark.slow

MONDAY = datetime(2026, 11, 30, tzinfo=UTC)
# (name, zone, briefing time) -> every one of them is due at 08:00-08:30 UTC on that Monday
REPS = [
    ("utc", "UTC", "08:00"),
    ("new-york", "America/New_York", "03:00"),  # EST: 08:00 UTC
    ("kolkata", "Asia/Kolkata", "13:30"),  # +05:30: 08:00 UTC
    ("berlin", "Europe/Berlin", "09:15"),  # CET: 08:15 UTC
    ("broken", "Mars/Olympus", "08:30"),  # unreadable zone: the org's (UTC) is used, a warning kept
]


@pytest.fixture(scope="module")
def fleet_env(tmp_home: Path) -> Iterator[Backend]:
    """The module's own database and Redis DB, a settable cron clock and a 1-second Beat schedule."""
    clock = tmp_home / f"clock-crons-{uuid.uuid4().hex[:10]}"
    env = {
        "PROACTIVE_CRON_CLOCK_FILE": str(clock),
        "PROACTIVE_BEAT_TICK_S": "1",
        "PROACTIVE_DRY_RUN": "1",
        "SLACK_BOT_TOKEN": "",
    }
    with private_backend(tmp_home, "crons", env) as backend:
        yield backend


def set_clock(env: Backend, when: datetime) -> None:
    """Move the cron bodies' clock (atomically: write, then rename)."""
    path = Path(env.env["PROACTIVE_CRON_CLOCK_FILE"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(when.isoformat())
    tmp.replace(path)


def seed_world() -> dict[str, Any]:
    """An org (UTC) with five reps in four zones, a 2-person meeting at 09:45 UTC, a deal silent for
    30 days, an Instantly integration; a second org, disabled, that must never be touched."""
    org_id, off_org = uuid.uuid4(), uuid.uuid4()
    reps = {name: uuid.uuid4() for name, _, _ in REPS}
    with transaction() as conn:
        conn.execute(
            insert(Org),
            [
                {"id": org_id, "name": "Crons Inc", "timezone": "UTC", "settings": {}, "enabled": True},
                {"id": off_org, "name": "Disabled Inc", "timezone": "UTC", "settings": {}, "enabled": False},
            ],
        )
        conn.execute(
            insert(User),
            [
                {
                    "id": reps[n],
                    "org_id": org_id,
                    "email": f"{n}@crons.example",
                    "name": n.title(),
                    "role": "member",
                    "timezone": tz,
                    "briefing_time": at,
                    "opted_out_sequences": [],
                    "max_notifications_per_hour": 0,
                }
                for n, tz, at in REPS
            ]
            + [
                {
                    "id": uuid.uuid4(),
                    "org_id": off_org,
                    "email": "off@off.example",
                    "name": "Off",
                    "role": "member",
                    "timezone": "UTC",
                    "briefing_time": "08:00",
                    "opted_out_sequences": [],
                    "max_notifications_per_hour": 0,
                }
            ],
        )
        meeting = uuid.uuid4()
        conn.execute(
            insert(CalendarEvent).values(
                id=meeting,
                org_id=org_id,
                user_id=reps["utc"],
                title="Pricing call",
                start_at=MONDAY + timedelta(hours=9, minutes=45),
                end_at=MONDAY + timedelta(hours=10, minutes=15),
                attendees=[{"email": "a@x.example"}, {"email": "b@y.example"}],
                attendees_count=2,
            )
        )
        conn.execute(
            insert(CalendarEvent).values(  # one attendee: no briefing
                id=uuid.uuid4(),
                org_id=org_id,
                user_id=reps["utc"],
                title="Focus time",
                start_at=MONDAY + timedelta(hours=9),
                end_at=MONDAY + timedelta(hours=10),
                attendees=[],
                attendees_count=1,
            )
        )
        deal = uuid.uuid4()
        conn.execute(
            insert(Deal).values(
                id=deal,
                org_id=org_id,
                name="Quiet deal",
                stage="proposal",
                owner_id=reps["berlin"],
                last_activity_at=MONDAY - timedelta(days=30),
                created_at=MONDAY - timedelta(days=60),
            )
        )
        conn.execute(insert(Integration).values(id=uuid.uuid4(), org_id=org_id, provider="instantly", status="active"))
    return {"org": org_id, "off_org": off_org, "reps": reps, "meeting": meeting, "deal": deal}


def cron_rows(prefix: str) -> list[Any]:
    with transaction() as conn:
        return conn.execute(
            select(CronRun.slot_key, CronRun.status, CronRun.counts).where(CronRun.slot_key.like(prefix + "%"))
        ).all()


def done(prefix: str, n: int) -> bool:
    rows = cron_rows(prefix)
    return len(rows) >= n and all(r.status == "done" for r in rows)


def test_two_beats_two_workers_every_slot_once(fleet_env: Backend) -> None:
    world = seed_world()
    org = world["org"]
    set_clock(fleet_env, MONDAY + timedelta(hours=7, minutes=59, seconds=30))
    log_dir = fleet_env.log_dir
    procs: list[WorkerProcess] = []
    try:
        for i in range(2):
            procs.append(
                WorkerProcess(fleet_env.env, log_dir, f"cron-worker-{i}", queues="steps,slow,edge,beat").start()
            )
        for i in range(2):
            procs.append(BeatProcess(fleet_env.env, log_dir, f"cron-beat-{i}").start())

        def at(hh: int, mm: int) -> str:
            return f"2026-11-30T{hh:02d}:{mm:02d}Z"

        # 07:59:30: the catch-up window (06:00-07:45) has nobody due.
        wait_for(lambda: done(f"morning-brief:{at(7, 45)}", 1), timeout_s=30, what="the 07:45 slot")
        # Walk the morning: each slot's ticks (every second, from two Beats) run many times.
        for hh, mm, users_due in ((8, 0, 3), (8, 15, 1), (8, 30, 1), (8, 45, 0), (9, 0, 0)):
            set_clock(fleet_env, MONDAY + timedelta(hours=hh, minutes=mm, seconds=10))
            expected = 1 + (1 if users_due else 0) + users_due  # tick row + org row + a row per rep
            wait_for(
                lambda hh=hh, mm=mm, n=expected: done(f"morning-brief:{at(hh, mm)}", n),
                timeout_s=30,
                what=f"morning brief {hh:02d}:{mm:02d}",
            )
            wait_for(
                lambda hh=hh, mm=mm: done(f"meeting-prep:{at(hh, mm if mm in (0, 30) else mm - 15)}", 1),
                timeout_s=30,
                what="meeting prep tick",
            )
        wait_for(lambda: done("stale-deals:2026-11-30", 1), timeout_s=30, what="stale-deal scan at 09:00")
        # Let the duplicate ticks of the last clock value keep coming for a few more Beat rounds.
        seen = len(Path(procs[2].log_path).read_text().splitlines())
        wait_for(
            lambda: len(Path(procs[2].log_path).read_text().splitlines()) > seen + 10,
            timeout_s=30,
            what="more duplicate ticks",
        )
        wait_for(lambda: _jobs_settled(org), timeout_s=60, what="cron jobs to settle")
    finally:
        for p in reversed(procs):
            p.stop()

    with transaction() as conn:
        briefs = Counter(
            conn.execute(
                select(SlackOutbox.user_id).where(SlackOutbox.org_id == org, SlackOutbox.kind == "morning_brief")
            ).scalars()
        )
        fired = Counter(conn.execute(select(jobs.c.event_type).where(jobs.c.org_id == org)).scalars())
        keys = conn.execute(select(jobs.c.idempotency_key).where(jobs.c.org_id == org)).scalars().all()
        untouched = conn.execute(
            select(func.count()).select_from(jobs).where(jobs.c.org_id == world["off_org"])
        ).scalar()
        off_briefs = conn.execute(
            select(func.count()).select_from(SlackOutbox).where(SlackOutbox.org_id == world["off_org"])
        ).scalar()
    assert briefs == Counter(world["reps"].values())  # one brief per rep, none twice
    assert fired["coaching_weekly"] == len(REPS)  # Monday: one digest per rep
    assert fired["campaign_daily_check"] == 1  # once per org per local day
    assert fired["pre_meeting_90min"] == 1  # the 2-person meeting, seen by three ticks
    assert fired["stale_deal_revival"] == 1 and fired["deal_risk_scan"] == 1
    assert f"coaching_weekly:{world['reps']['utc']}:2026-W48" in keys  # the week that just ended
    assert untouched == 0 and off_briefs == 0
    broken = [r for r in cron_rows("morning-brief:") if r.slot_key.endswith(str(world["reps"]["broken"]))]
    assert [r.counts.get("warnings") for r in broken] == [["invalid time zone 'Mars/Olympus'"]]
    worker_logs = procs[0].log() + procs[1].log()
    assert worker_logs.count(f"user {world['reps']['broken']}: invalid time zone") == 1  # logged once
    assert "Traceback" not in worker_logs


def _jobs_settled(org: uuid.UUID) -> bool:
    with transaction() as conn:
        open_jobs = conn.execute(
            select(func.count()).select_from(jobs).where(jobs.c.org_id == org, jobs.c.status.in_(("queued", "running")))
        ).scalar()
    return open_jobs == 0
