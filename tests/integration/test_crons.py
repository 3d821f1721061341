"""The cron bodies in this process, with a pinned `now` (README.md#crons): catch-up and lateness, slot rows
claimed once and taken over when failed or stale, the brief's outbox dedupe, local Mondays, the
stale-deal and meeting-prep selections, and the settings warnings `proactive jobs` shows.

The module has its own PostgreSQL database and Redis DB (tests.support.private_backend): the
bodies publish steps after commit, and nothing here consumes them. No tick is called: ticks scan
every org and publish fan-out tasks; the per-org and per-rep bodies are what is tested.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select, update

from tests.conftest import Backend
from tests.support.private_backend import private_backend
from worker.crons import slots as cs
from worker.crons import tasks as crons
from worker.db import transaction
from worker.models import CalendarEvent, CronRun, Deal, Integration, Org, SlackOutbox, User, jobs, utcnow
from worker.ops.cli import main

pytestmark = pytest.mark.postgres

TUESDAY = datetime(2026, 11, 24, tzinfo=UTC)
MONDAY = datetime(2026, 11, 30, tzinfo=UTC)
STALE_AFTER = timedelta(minutes=10)  # a `running` slot row this old is taken over (pinned, not imported)


@pytest.fixture(scope="module", autouse=True)
def crons_env(tmp_home: Path) -> Iterator[Backend]:
    """The module's own database and Redis DB; messages stay in the console outbox (no token)."""
    with private_backend(tmp_home, "cron_bodies", {"PROACTIVE_DRY_RUN": "1", "SLACK_BOT_TOKEN": ""}) as backend:
        yield backend


# --------------------------------------------------------------------------- seeding and reading


def seed_org(
    *, tz: str = "UTC", settings: dict[str, Any] | None = None, instantly: bool = False, enabled: bool = True
) -> uuid.UUID:
    """A new org, enabled unless told (optionally with an active Instantly integration)."""
    org_id = uuid.uuid4()
    with transaction() as conn:
        conn.execute(
            insert(Org).values(
                id=org_id, name=f"Cron org {org_id.hex[:6]}", timezone=tz, settings=settings or {}, enabled=enabled
            )
        )
        if instantly:
            conn.execute(insert(Integration).values(id=uuid.uuid4(), org_id=org_id, provider="instantly"))
    return org_id


def seed_user(org_id: uuid.UUID, *, tz: str | None = "UTC", at: str = "08:00") -> uuid.UUID:
    """A rep of `org_id` in zone `tz` with briefing time `at`."""
    user_id = uuid.uuid4()
    with transaction() as conn:
        conn.execute(
            insert(User).values(
                id=user_id,
                org_id=org_id,
                email=f"{user_id.hex[:8]}@crons.example",
                name=f"Rep {user_id.hex[:4]}",
                role="member",
                timezone=tz,
                briefing_time=at,
                opted_out_sequences=[],
                max_notifications_per_hour=0,
            )
        )
    return user_id


def seed_deal(
    org_id: uuid.UUID,
    owner: uuid.UUID | None,
    *,
    silent_days: float | None,
    now: datetime,
    stage: str = "proposal",
    created_days: float = 90,
) -> uuid.UUID:
    """A deal whose last activity was `silent_days` before `now` (None: never, then its age counts)."""
    deal_id = uuid.uuid4()
    with transaction() as conn:
        conn.execute(
            insert(Deal).values(
                id=deal_id,
                org_id=org_id,
                name=f"Deal {deal_id.hex[:4]}",
                stage=stage,
                owner_id=owner,
                last_activity_at=None if silent_days is None else now - timedelta(days=silent_days),
                created_at=now - timedelta(days=created_days),
            )
        )
    return deal_id


def seed_event(org_id: uuid.UUID, user_id: uuid.UUID, start_at: datetime, attendees: int = 2) -> uuid.UUID:
    """A calendar event of `user_id` starting at `start_at` with `attendees` people."""
    event_id = uuid.uuid4()
    with transaction() as conn:
        conn.execute(
            insert(CalendarEvent).values(
                id=event_id,
                org_id=org_id,
                user_id=user_id,
                title=f"Meeting {event_id.hex[:4]}",
                start_at=start_at,
                end_at=start_at + timedelta(minutes=30),
                attendees=[{"email": f"p{i}@x.example"} for i in range(attendees)],
                attendees_count=attendees,
            )
        )
    return event_id


def slot_row(key: str) -> Any:
    """The cron_runs row `key` (None when absent)."""
    with transaction() as conn:
        return conn.execute(select(CronRun).where(CronRun.slot_key == key)).first()


def put_slot_row(key: str, status: str, started_at: datetime) -> None:
    """A cron_runs row as a crashed (`running`) or failed process leaves it."""
    with transaction() as conn:
        conn.execute(
            insert(CronRun).values(
                id=uuid.uuid4(), task="test", slot_key=key, status=status, counts={"old": True}, started_at=started_at
            )
        )


def briefs(user_id: uuid.UUID) -> list[str]:
    """The dedupe keys of the morning briefs queued for `user_id`."""
    with transaction() as conn:
        return list(
            conn.execute(
                select(SlackOutbox.dedupe_key).where(
                    SlackOutbox.user_id == user_id, SlackOutbox.kind == crons.BRIEF_KIND
                )
            ).scalars()
        )


def fired(org_id: uuid.UUID, event_type: str) -> list[Any]:
    """The jobs of `event_type` in `org_id` (user, key, payload)."""
    with transaction() as conn:
        return conn.execute(
            select(jobs.c.user_id, jobs.c.idempotency_key, jobs.c.payload).where(
                jobs.c.org_id == org_id, jobs.c.event_type == event_type
            )
        ).all()


def brief_key(start: datetime, org_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return cs.slot_key("morning-brief", start, org_id, user_id)


# --------------------------------------------------------------------------- morning brief


def test_a_brief_more_than_2_h_late_is_skipped_and_one_within_2_h_is_queued() -> None:
    org = seed_org()
    late, in_time = seed_user(org), seed_user(org)
    start = TUESDAY + timedelta(hours=8)  # both are due at 08:00 UTC

    late_counts = crons.morning_brief_user(org, late, start, start + timedelta(hours=2, seconds=1))
    in_time_counts = crons.morning_brief_user(org, in_time, start, start + timedelta(hours=2))  # exactly 2 h: sent

    assert late_counts == {"brief": "skipped", "why": "more than 2 h late"}
    assert slot_row(brief_key(start, org, late)).counts == late_counts
    assert slot_row(brief_key(start, org, late)).status == "done"
    assert briefs(late) == []
    assert in_time_counts == {"brief": "queued", "day": "2026-11-24"}
    assert briefs(in_time) == [f"morning-brief:{in_time}:2026-11-24"]
    assert fired(org, "coaching_weekly") == []  # a Tuesday


def test_one_brief_per_slot_and_per_local_day() -> None:
    org = seed_org()
    rep = seed_user(org, at="08:00")
    first_slot = TUESDAY + timedelta(hours=8)

    first = crons.morning_brief_user(org, rep, first_slot, first_slot + timedelta(minutes=1))
    again = crons.morning_brief_user(org, rep, first_slot, first_slot + timedelta(minutes=2))

    assert first["brief"] == "queued"
    assert again == {"skipped": "slot already handled"}
    assert slot_row(brief_key(first_slot, org, rep)).counts == first  # the second call wrote nothing
    assert len(briefs(rep)) == 1

    # The rep moves the briefing to 08:30 the same day: a new slot, but the day's brief was sent.
    with transaction() as conn:
        conn.execute(update(User).where(User.id == rep).values(briefing_time="08:30"))
    later_slot = TUESDAY + timedelta(hours=8, minutes=30)
    later = crons.morning_brief_user(org, rep, later_slot, later_slot + timedelta(minutes=1))

    assert later == {"brief": "duplicate", "day": "2026-11-24"}
    assert briefs(rep) == [f"morning-brief:{rep}:2026-11-24"]


def test_a_slot_not_due_for_the_rep_sends_nothing() -> None:
    org = seed_org()
    rep = seed_user(org, at="09:00")
    start = TUESDAY + timedelta(hours=8)

    counts = crons.morning_brief_user(org, rep, start, start + timedelta(minutes=1))

    assert counts == {"brief": "skipped", "why": "briefing time changed: not due in this slot"}
    assert briefs(rep) == []


def test_a_taken_over_brief_slot_does_not_send_twice() -> None:
    org = seed_org()
    rep = seed_user(org)
    start = TUESDAY + timedelta(hours=8)
    crons.morning_brief_user(org, rep, start, start + timedelta(minutes=1))
    with transaction() as conn:  # as if the process died after the outbox insert but failed the slot
        crons.finish_slot(conn, brief_key(start, org, rep), {"error": "boom"}, start, crons.RunStatus.FAILED)

    retried = crons.morning_brief_user(org, rep, start, start + timedelta(minutes=5))

    assert retried == {"brief": "duplicate", "day": "2026-11-24"}
    assert slot_row(brief_key(start, org, rep)).status == "done"
    assert len(briefs(rep)) == 1


def test_coaching_weekly_on_the_reps_local_monday_only() -> None:
    org = seed_org()
    tokyo = seed_user(org, tz="Asia/Tokyo", at="08:00")  # Monday 08:00 JST = Sunday 23:00 UTC
    utc_rep = seed_user(org, tz="UTC", at="23:00")  # the same slot, but on Sunday
    sunday_23 = MONDAY - timedelta(hours=1)
    assert sunday_23.weekday() == 6

    tokyo_counts = crons.morning_brief_user(org, tokyo, sunday_23, sunday_23 + timedelta(minutes=3))
    utc_counts = crons.morning_brief_user(org, utc_rep, sunday_23, sunday_23 + timedelta(minutes=3))

    assert tokyo_counts["day"] == "2026-11-30" and tokyo_counts["brief"] == "queued"
    assert tokyo_counts["coaching_weekly"] == {"fired": 1, "duplicates": 0, "gated": 0}
    assert utc_counts["day"] == "2026-11-29" and "coaching_weekly" not in utc_counts
    coaching = fired(org, "coaching_weekly")
    assert [(r.user_id, r.idempotency_key, r.payload) for r in coaching] == [
        (tokyo, f"coaching_weekly:{tokyo}:2026-W48", {"week": "2026-W48"})  # the week that ended
    ]

    # Tuesday in Tokyo (Monday 23:00 UTC): a brief, no digest.
    monday_23 = MONDAY + timedelta(hours=23)
    tuesday = crons.morning_brief_user(org, tokyo, monday_23, monday_23 + timedelta(minutes=3))
    assert tuesday == {"brief": "queued", "day": "2026-12-01"}
    assert len(fired(org, "coaching_weekly")) == 1


def test_morning_brief_org_counts_due_reps_and_checks_campaigns_once_a_day() -> None:
    org = seed_org(instantly=True)
    seed_user(org, at="08:00")
    seed_user(org, tz="Europe/Berlin", at="09:00")  # CET: 08:00 UTC
    seed_user(org, at="08:15")
    quiet_org = seed_org()  # no Instantly: no campaign check
    seed_user(quiet_org, at="08:00")
    eight, quarter_past = TUESDAY + timedelta(hours=8), TUESDAY + timedelta(hours=8, minutes=15)

    counts = crons.morning_brief_org(org, eight, eight + timedelta(minutes=1))
    again = crons.morning_brief_org(org, eight, eight + timedelta(minutes=2))
    later = crons.morning_brief_org(org, quarter_past, quarter_past + timedelta(minutes=1))
    quiet = crons.morning_brief_org(quiet_org, eight, eight + timedelta(minutes=1))

    assert counts == {"users_due": 2, "campaign_daily_check": {"fired": 1, "duplicates": 0, "gated": 0}}
    assert again == {"skipped": "slot already handled"}
    assert later == {"users_due": 1, "campaign_daily_check": {"fired": 0, "duplicates": 1, "gated": 0}}
    assert quiet == {"users_due": 1, "campaign_daily_check": None}
    checks = fired(org, "campaign_daily_check")
    assert [(r.idempotency_key, r.payload) for r in checks] == [
        (f"campaign_daily_check:{org}:2026-11-24", {"date": "2026-11-24"})
    ]
    assert fired(quiet_org, "campaign_daily_check") == []


# --------------------------------------------------------------------------- slot rows


def test_claim_slot_takes_over_failed_and_stale_rows_only() -> None:
    now = TUESDAY + timedelta(hours=12)
    prefix = f"test-claim:{uuid.uuid4().hex[:8]}"
    put_slot_row(f"{prefix}:failed", "failed", now - timedelta(minutes=1))
    put_slot_row(f"{prefix}:stale", "running", now - STALE_AFTER - timedelta(seconds=1))
    put_slot_row(f"{prefix}:edge", "running", now - STALE_AFTER)  # exactly STALE_AFTER: still alive
    put_slot_row(f"{prefix}:fresh", "running", now - timedelta(minutes=1))
    put_slot_row(f"{prefix}:done", "done", now - timedelta(days=1))

    with transaction() as conn:
        claimed = {
            name: crons.claim_slot(conn, "test", f"{prefix}:{name}", now)
            for name in ("failed", "stale", "edge", "fresh", "done", "new")
        }

    assert claimed == {"failed": True, "stale": True, "edge": False, "fresh": False, "done": False, "new": True}
    for name in ("failed", "stale", "new"):
        row = slot_row(f"{prefix}:{name}")
        assert (row.status, row.started_at, row.finished_at) == ("running", now, None)
    assert slot_row(f"{prefix}:fresh").started_at == now - timedelta(minutes=1)
    assert slot_row(f"{prefix}:done").status == "done"

    with transaction() as conn:  # a second process right after: everything is taken
        again = [crons.claim_slot(conn, "test", f"{prefix}:{n}", now) for n in ("failed", "stale", "new")]
        crons.finish_slot(conn, f"{prefix}:new", {"n": 3}, now + timedelta(seconds=5))
    assert again == [False, False, False]
    row = slot_row(f"{prefix}:new")
    assert (row.status, row.counts, row.finished_at) == ("done", {"n": 3}, now + timedelta(seconds=5))


# --------------------------------------------------------------------------- stale deals


def test_stale_deals_respects_days_inactive_and_skips_closed_and_ownerless_deals() -> None:
    now = TUESDAY + timedelta(hours=9, minutes=5)
    org = seed_org(settings={"days_inactive": 14})
    rep = seed_user(org)
    stale = seed_deal(org, rep, silent_days=15, now=now)
    never_touched = seed_deal(org, rep, silent_days=None, created_days=20, now=now)
    seed_deal(org, rep, silent_days=13, now=now)  # quiet, but not for 14 days
    seed_deal(org, rep, silent_days=None, created_days=10, now=now)  # new, never touched
    seed_deal(org, rep, silent_days=40, stage="closed_won", now=now)
    seed_deal(org, rep, silent_days=40, stage="closed_lost", now=now)
    seed_deal(org, None, silent_days=40, now=now)  # no owner

    counts = crons.stale_deals_org(org, date(2026, 11, 24), now)
    again = crons.stale_deals_org(org, date(2026, 11, 24), now + timedelta(hours=1))

    assert counts == {"days_inactive": 14, "stale_deals": 2, "fired": 3, "duplicates": 0, "gated": 0}
    assert again == {"skipped": "slot already handled"}
    revivals = fired(org, "stale_deal_revival")
    assert {r.payload["deal_id"] for r in revivals} == {str(stale), str(never_touched)}
    assert {r.user_id for r in revivals} == {rep}
    scans = fired(org, "deal_risk_scan")
    assert [(s.idempotency_key, s.payload) for s in scans] == [
        (f"deal_risk_scan:{org}:2026-11-24", {"date": "2026-11-24"})
    ]
    assert slot_row(f"stale-deals:2026-11-24:{org}").counts == counts


@pytest.mark.parametrize("setting", ["abc", 0, 1000, True])
def test_an_invalid_days_inactive_falls_back_to_7_with_a_warning(setting: object) -> None:
    now = TUESDAY + timedelta(hours=9, minutes=5)
    org = seed_org(settings={"days_inactive": setting})
    rep = seed_user(org)
    eight_days = seed_deal(org, rep, silent_days=8, now=now)
    seed_deal(org, rep, silent_days=6, now=now)

    counts = crons.stale_deals_org(org, date(2026, 11, 24), now)

    assert counts["days_inactive"] == cs.DEFAULT_DAYS_INACTIVE
    assert counts["warnings"] == [f"invalid days_inactive {str(setting)!r}"]
    assert [r.payload["deal_id"] for r in fired(org, "stale_deal_revival")] == [str(eight_days)]
    assert len(fired(org, "deal_risk_scan")) == 1


def test_an_unreadable_scan_hour_or_org_zone_is_kept_as_a_warning_of_the_org_scan() -> None:
    now = TUESDAY + timedelta(hours=9, minutes=5)
    org = seed_org(settings={"stale_deals_hour": "noon"}, tz="Mars/Olympus")

    counts = crons.stale_deals_org(org, date(2026, 11, 24), now)

    assert counts["warnings"] == ["invalid stale_deals_hour 'noon'", "invalid org time zone 'Mars/Olympus': UTC used"]


# --------------------------------------------------------------------------- meeting prep


def test_meeting_prep_window_bounds_and_attendees() -> None:
    start = TUESDAY + timedelta(hours=10)
    org, other_org = seed_org(), seed_org()
    rep, other_rep = seed_user(org), seed_user(other_org)
    too_soon = seed_event(org, rep, start + timedelta(minutes=29))
    first_in = seed_event(org, rep, start + timedelta(minutes=30))
    last_in = seed_event(org, rep, start + timedelta(minutes=119))
    too_late = seed_event(org, rep, start + timedelta(minutes=120))
    alone = seed_event(org, rep, start + timedelta(minutes=60), attendees=1)
    seed_event(other_org, other_rep, start + timedelta(minutes=60))

    counts = crons.meeting_prep_org(org, start, start + timedelta(seconds=10))
    again = crons.meeting_prep_org(org, start, start + timedelta(seconds=20))

    assert counts == {"calendar_events": 2, "fired": 2, "duplicates": 0, "gated": 0}
    assert again == {"skipped": "slot already handled"}
    preps = fired(org, "pre_meeting_90min")
    prepared = {r.payload["calendar_event_id"] for r in preps}
    assert prepared == {str(first_in), str(last_in)}
    assert not prepared & {str(too_soon), str(too_late), str(alone)}
    assert {(r.user_id, r.idempotency_key) for r in preps} == {
        (rep, f"pre_meeting:{first_in}:{rep}"),
        (rep, f"pre_meeting:{last_in}:{rep}"),
    }
    assert fired(other_org, "pre_meeting_90min") == []
    assert slot_row(cs.slot_key("meeting-prep", start, other_org)) is None

    # The next slot sees the 119-min meeting again (now 89 min ahead): a duplicate, not a new job.
    next_slot = start + cs.PREP_SLOT
    later = crons.meeting_prep_org(org, next_slot, next_slot + timedelta(seconds=10))
    assert later == {"calendar_events": 2, "fired": 1, "duplicates": 1, "gated": 0}  # + the 120-min one
    assert len(fired(org, "pre_meeting_90min")) == 3


def test_meeting_prep_leaves_disabled_orgs_alone() -> None:
    start = TUESDAY + timedelta(hours=10)
    org = seed_org(enabled=False)
    rep = seed_user(org)
    seed_event(org, rep, start + timedelta(minutes=60))

    counts = crons.meeting_prep_org(org, start, start + timedelta(seconds=10))

    assert counts == {"calendar_events": 0, "fired": 0, "duplicates": 0, "gated": 0}
    assert fired(org, "pre_meeting_90min") == []


# --------------------------------------------------------------------------- warnings


def test_cron_warnings_names_the_invalid_time_zone_user_once() -> None:
    org, other_org = seed_org(), seed_org()
    broken = seed_user(org, tz="Mars/Olympus", at="08:00")
    fine = seed_user(org, tz="Europe/Paris", at="09:00")
    elsewhere = seed_user(other_org, tz="Nowhere/Else", at="08:00")
    since = TUESDAY
    for day in range(2):  # two local days: two slot rows with the same warning
        start = TUESDAY + timedelta(days=day, hours=8)
        assert crons.morning_brief_user(org, broken, start, start + timedelta(minutes=1))["brief"] == "queued"
        assert "warnings" not in crons.morning_brief_user(org, fine, start, start + timedelta(minutes=1))
    crons.morning_brief_user(other_org, elsewhere, TUESDAY + timedelta(hours=8), TUESDAY + timedelta(hours=9))

    with transaction() as conn:
        found = crons.cron_warnings(conn, org, since=since)
        every_org = crons.cron_warnings(conn, since=since)
        too_recent = crons.cron_warnings(conn, org, since=TUESDAY + timedelta(days=3))

    assert [(w["subject"], w["org_id"], w["warnings"]) for w in found] == [
        (str(broken), str(org), ["invalid time zone 'Mars/Olympus'"])
    ]
    assert found[0]["at"] == (TUESDAY + timedelta(days=1, hours=8, minutes=1)).isoformat()  # the newest
    assert {str(broken), str(elsewhere)} <= {w["subject"] for w in every_org}
    assert too_recent == []


def test_jobs_status_skipped_prints_the_cron_settings_problems() -> None:
    now = utcnow()  # `proactive jobs` shows the last 7 days of the wall clock
    start = cs.slot_start(now - timedelta(minutes=20), cs.MORNING_SLOT)
    org = seed_org(settings={"days_inactive": "soon"})
    broken = seed_user(org, tz="Mars/Olympus", at=f"{start:%H:%M}")
    assert crons.morning_brief_user(org, broken, start, now)["warnings"] == ["invalid time zone 'Mars/Olympus'"]
    crons.stale_deals_org(org, now.date(), now)
    with transaction() as conn:  # one skipped job, so the table has a row too
        conn.execute(
            insert(jobs).values(
                id=uuid.uuid4(),
                org_id=org,
                event_type="deal_risk_scan",
                source="cli",
                payload={},
                idempotency_key=f"skipped:{uuid.uuid4()}",
                depth=0,
                iteration=0,
                status="skipped",
                reason="sequence disabled",
                trace_id=uuid.uuid4().hex,
                cancel_requested=False,
                paused_ms=0,
                created_at=now,
                updated_at=now,
                finished_at=now,
            )
        )
    runner = CliRunner()

    skipped = runner.invoke(main, ["jobs", "--status", "skipped", "--org", str(org)])
    failed = runner.invoke(main, ["jobs", "--status", "failed", "--org", str(org)])
    as_json = runner.invoke(main, ["jobs", "--status", "skipped", "--org", str(org), "--json"])

    assert skipped.exit_code == 0, skipped.output
    lines = skipped.output.splitlines()
    assert lines[0].startswith("JOB") and "sequence disabled" in lines[1]
    heading = lines.index("Settings problems met by the crons (last 7 days):")
    problems = lines[heading + 1 :]
    assert len(problems) == 2
    by_subject = {line.split()[0]: line for line in problems}
    assert set(by_subject) == {str(broken), str(org)}
    assert "invalid time zone 'Mars/Olympus'" in by_subject[str(broken)]
    assert "invalid days_inactive 'soon'" in by_subject[str(org)]
    assert all(f"org {org}" in line for line in problems)
    assert failed.exit_code == 0 and "Settings problems" not in failed.output
    assert failed.output.strip() == "no jobs"
    rows = json.loads(as_json.output)  # --json stays the list of jobs it always was
    assert isinstance(rows, list) and [r["status"] for r in rows] == ["skipped"]
