"""Benchmark: the cron ticks at scale — 10,000 reps in 50 orgs across 20 time zones, and
50,000 calendar events, on PostgreSQL + Redis (a fresh database, a Redis DB of its own).

1. Morning brief: for each of `--slots` busy 15-minute slots, the real tick
   (`crons.morning_brief_tick`: find the orgs with reps due, publish one task per org) and then
   every org body (`crons.morning_brief_org`: claim the org's slot row, select its due reps,
   publish one task per rep), timed together: "select the right users and enqueue their work".
   Checked: the reps published are exactly those a brute-force walk over every rep finds due.
   Steady state: before each measured tick, the tick of the slot before runs (untimed), so the
   measured one has only its own slot to handle (the 2-hour catch-up window is settled).
   Baseline in the same run: that brute force itself (load every rep, evaluate each in Python,
   publish one task per due rep): what the tick would cost without selecting by settings.
2. Meeting prep: the real tick (`crons.meeting_prep_tick`: which orgs have 2+-attendee events
   starting in 30-120 min) over 50,000 events, then the org bodies (fire `pre_meeting_90min` per
   event), timed separately; checked: one job per event in the window.
3. EXPLAIN (ANALYZE) of the two selecting queries, printed for the closing note.

Run from the repo root: ``.venv/bin/python -m bench.crons [--users 10000] [--orgs 50] [--events 50000]
[--write]``. No worker runs: the published messages are counted in Redis and the DB is dropped.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from bench.harness import (
    BENCHMARKS_MD,
    Backends,
    bench_env,
    fresh_db_name,
    pick_redis_db,
    section_text,
    use_env,
    write_section,
)

ZONES = [
    "UTC", "Europe/London", "Europe/Berlin", "Europe/Helsinki", "Europe/Moscow", "Asia/Dubai", "Asia/Kolkata",
    "Asia/Kathmandu", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland", "America/Sao_Paulo",
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Anchorage",
    "Pacific/Honolulu", "Africa/Lagos",
]  # fmt: skip
BRIEFING_TIMES = ["07:30", "07:45", "08:00", "08:00", "08:00", "08:15", "08:30", "09:00"]
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # a Monday morning in Europe, evening before in the Americas
BENCH_DOC = "## Crons (bench/crons.py)"


def say(text: str) -> None:
    print(text, flush=True)


def seed(users: int, orgs: int, events: int, rng: random.Random) -> dict[str, Any]:
    """Orgs (each with a home zone), reps spread over the 20 zones (10% without a zone: the org's
    applies), and calendar events over the next 7 days (1-4 attendees)."""
    from worker.db import transaction  # after use_env: worker modules read the settings at import
    from worker.models import CalendarEvent, Org, User

    org_ids = [uuid.uuid4() for _ in range(orgs)]
    org_rows = [
        {"id": o, "name": f"Bench org {i}", "timezone": ZONES[i % len(ZONES)], "settings": {}, "enabled": True}
        for i, o in enumerate(org_ids)
    ]
    user_rows = []
    for i in range(users):
        org = org_ids[i % orgs]
        user_rows.append(
            {
                "id": uuid.uuid4(),
                "org_id": org,
                "email": f"rep{i}@bench.example",
                "name": f"Rep {i}",
                "role": "member",
                "timezone": None if i % 10 == 0 else rng.choice(ZONES),
                "briefing_time": rng.choice(BRIEFING_TIMES),
                "opted_out_sequences": [],
                "max_notifications_per_hour": 10,
            }
        )
    event_rows = []
    for i in range(events):
        user = user_rows[rng.randrange(users)]
        start = NOW + timedelta(minutes=rng.randrange(0, 7 * 24 * 60))
        n = rng.randint(1, 4)
        event_rows.append(
            {
                "id": uuid.uuid4(),
                "org_id": user["org_id"],
                "user_id": user["id"],
                "external_id": f"ev{i}",
                "title": f"Meeting {i}",
                "start_at": start,
                "end_at": start + timedelta(minutes=30),
                "attendees": [{"email": f"p{k}@x.example"} for k in range(n)],
                "attendees_count": n,
            }
        )
    with transaction() as conn:
        conn.execute(insert(Org), org_rows)
        for i in range(0, len(user_rows), 2000):
            conn.execute(insert(User), user_rows[i : i + 2000])
        for i in range(0, len(event_rows), 5000):
            conn.execute(insert(CalendarEvent), event_rows[i : i + 5000])
        conn.exec_driver_sql("ANALYZE")
    return {"orgs": org_rows, "users": user_rows, "events": event_rows}


def due_by_brute_force(world: dict[str, Any], start: datetime) -> set[str]:
    """Every rep evaluated one by one (the reference answer)."""
    from worker.crons import slots as cs  # after use_env (settings read at import)

    org_tz = {o["id"]: o["timezone"] for o in world["orgs"]}
    due = set()
    for u in world["users"]:
        sched = cs.user_schedule(u["timezone"], org_tz[u["org_id"]], u["briefing_time"])
        if cs.brief_day(sched.at, sched.tz, start, cs.MORNING_SLOT) is not None:
            due.add(str(u["id"]))
    return due


def drain(redis: Any, task: str) -> list[list[Any]]:
    """Pop every message on the `steps` queue; the args of those for `task`."""
    out = []
    while (raw := redis.rpop("steps")) is not None:
        msg = json.loads(raw)
        if msg["headers"]["task"] == task:
            out.append(json.loads(base64.b64decode(msg["body"]))[0])
    return out


def busiest_slots(world: dict[str, Any], count: int) -> list[datetime]:
    """The `count` 15-minute slots (of the day after NOW) with the most reps due."""
    from worker.crons import slots as cs  # after use_env (settings read at import)

    sizes = []
    for i in range(96):
        start = NOW + i * cs.MORNING_SLOT
        sizes.append((len(due_by_brute_force(world, start)), start))
    sizes.sort(key=lambda s: (-s[0], s[1]))
    return [s for _, s in sizes[:count]]


def bench_morning(world: dict[str, Any], redis: Any, slots: list[datetime]) -> list[str]:
    """The morning-brief tick and org bodies per slot, against the brute force; checked against it."""
    from worker.celery_app import celery_app  # after use_env (settings read at import)
    from worker.crons import slots as cs
    from worker.crons import tasks as crons
    from worker.db import transaction
    from worker.models import Org, User

    lines = ["slot (UTC)          reps due  orgs   tick+orgs s  baseline s  ratio  published ok"]
    ratios, totals = [], []
    for start in sorted(slots):
        expected = due_by_brute_force(world, start)
        now = start + timedelta(seconds=30)
        # steady state: the tick of the slot before has run (the catch-up window is settled)
        crons.morning_brief_tick(now - cs.MORNING_SLOT)
        drain(redis, "")
        t0 = time.perf_counter()
        crons.morning_brief_tick(now)
        orgs = drain(redis, "proactive.cron.morning_brief_org")
        for org_id, slot_iso in orgs:
            crons.morning_brief_org(uuid.UUID(org_id), datetime.fromisoformat(slot_iso), now)
        took = time.perf_counter() - t0
        published = {args[1] for args in drain(redis, "proactive.cron.morning_brief_user")}
        # baseline: brute force over every rep, one task per due rep
        t1 = time.perf_counter()
        with transaction() as conn:
            rows = conn.execute(
                select(User.id, User.org_id, User.timezone, User.briefing_time, Org.timezone.label("org_tz")).join(
                    Org, Org.id == User.org_id
                )
            ).all()
        for r in rows:
            sched = cs.user_schedule(r.timezone, r.org_tz, r.briefing_time)
            if cs.brief_day(sched.at, sched.tz, start, cs.MORNING_SLOT) is not None:
                celery_app.send_task(
                    "proactive.cron.morning_brief_user", (str(r.org_id), str(r.id), start.isoformat()), queue="steps"
                )
        base = time.perf_counter() - t1
        drain(redis, "")
        ok = published == expected
        ratios.append(took / base)
        totals.append(took)
        lines.append(
            f"{start:%Y-%m-%d %H:%M}  {len(expected):>8}  {len(orgs):>4}  {took:>11.3f}  {base:>10.3f}  "
            f"{took / base:>5.2f}x  {len(published):>9} {'yes' if ok else 'NO'}"
        )
        if not ok:
            lines.append(f"  MISMATCH: {len(published - expected)} extra, {len(expected - published)} missing")
    lines.append(
        f"worst tick+orgs {max(totals):.3f} s (target < 2 s); median ratio to brute force "
        f"{statistics.median(ratios):.2f}x"
    )
    return lines


def bench_prep(world: dict[str, Any], redis: Any) -> list[str]:
    """The meeting-prep tick over every event, then the org bodies; one job per event in the window."""
    from worker.crons import slots as cs  # after use_env (settings read at import)
    from worker.crons import tasks as crons
    from worker.db import transaction
    from worker.models import jobs

    lines = ["tick at (UTC)       events in window  orgs  tick s  org bodies s  jobs fired  ok"]
    worst = 0.0
    for hours in (3, 27, 51):
        now = NOW + timedelta(hours=hours, seconds=20)
        start = cs.slot_start(now, cs.PREP_SLOT)
        lo, hi = cs.prep_window(start)
        expected = sum(1 for e in world["events"] if lo <= e["start_at"] < hi and e["attendees_count"] > 1)
        drain(redis, "")
        t0 = time.perf_counter()
        crons.meeting_prep_tick(now)
        took = time.perf_counter() - t0
        worst = max(worst, took)
        orgs = drain(redis, "proactive.cron.meeting_prep_org")
        t1 = time.perf_counter()
        for org_id, slot_iso in orgs:
            crons.meeting_prep_org(uuid.UUID(org_id), datetime.fromisoformat(slot_iso), now)
        bodies = time.perf_counter() - t1
        drain(redis, "")
        with transaction() as conn:
            fired = conn.execute(
                select(func.count())
                .select_from(jobs)
                .where(jobs.c.event_type == "pre_meeting_90min", jobs.c.created_at == now)
            ).scalar()
        lines.append(
            f"{now:%Y-%m-%d %H:%M}  {expected:>16}  {len(orgs):>4}  {took:>6.3f}  {bodies:>12.3f}  {fired:>10}  "
            f"{'yes' if fired == expected else 'NO'}"
        )
    lines.append(f"worst tick {worst:.3f} s over {len(world['events']):,} events (target < 1 s)")
    return lines


def explain() -> list[str]:
    """EXPLAIN ANALYZE of the selecting queries, as PostgreSQL plans them here."""
    from worker.crons import slots as cs  # after use_env (settings read at import)
    from worker.crons import tasks as crons
    from worker.db import get_engine

    start = NOW + timedelta(hours=2)
    out = []
    with get_engine().connect() as conn:
        triples = crons._due_triples(conn, start)
        for title, query in (
            ("meeting-prep window", crons._prep_events_query(cs.slot_start(start, cs.PREP_SLOT))),
            ("morning-brief reps due", crons._due_users_query(triples)),
        ):
            compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) {compiled}").all()
            out.append(f"EXPLAIN {title}:")
            out.extend("  " + (r[0] if len(r[0]) <= 150 else r[0][:150] + " ...") for r in plan)
    return out


def main(argv: list[str] | None = None) -> int:
    """Seed the world, measure both ticks, print (and maybe write) the result."""
    p = argparse.ArgumentParser(prog="python -m bench.crons", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--orgs", type=int, default=50)
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--slots", type=int, default=3, help="busiest morning-brief slots measured (default 3)")
    p.add_argument("--redis-db", type=int, default=None)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--write", action="store_true", help="write the result into BENCHMARKS.md")
    args = p.parse_args(argv)
    db = Backends(fresh_db_name(), pick_redis_db(args.redis_db))
    use_env(bench_env(db, SLACK_BOT_TOKEN="", PROACTIVE_DRY_RUN="1"))
    try:
        db.create()
        rng = random.Random(args.seed)
        t0 = time.perf_counter()
        world = seed(args.users, args.orgs, args.events, rng)
        say(
            f"seeded {args.users:,} reps in {args.orgs} orgs over {len(ZONES)} zones and {args.events:,} events "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        slots = busiest_slots(world, args.slots)
        head = [
            f"Crons benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} cores "
            f"(load avg {os.getloadavg()[0]:.2f} at start), Python {platform.python_version()}, "
            f"PostgreSQL {db.pg_version()}, Redis db {db.redis_db}",
            f"{args.users:,} reps in {args.orgs} orgs, {len(ZONES)} zones (10% of reps without a zone), "
            f"{args.events:,} calendar events over 7 days; simulated day from {NOW:%Y-%m-%d %H:%M} UTC",
            "",
            "Morning brief (tick + every org body; the baseline walks every rep):",
        ]
        body = head + bench_morning(world, db.redis, slots) + ["", "Meeting prep:"] + bench_prep(world, db.redis)
        body += ["", *explain()]
        text = "\n".join(body)
        say(text)
        if args.write:  # the notes under the run's output are kept
            write_section(BENCHMARKS_MD, BENCH_DOC, section(text))
        return 0
    finally:
        db.close()


def section(output: str) -> str:
    """This benchmark's BENCHMARKS.md section (what it measures, the command, the run's output)."""
    about = "The cron ticks at scale on PostgreSQL + Redis (no worker: messages are counted in Redis). Command:"
    return section_text(BENCH_DOC, about, ".venv/bin/python -m bench.crons --write", output)


if __name__ == "__main__":
    sys.exit(main())
