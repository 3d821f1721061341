"""Benchmark: `org_metrics` at scale — 1,000,000 jobs, 6,000,000 step runs, 300,000
approvals and 500,000 Slack outbox rows across 100 orgs on PostgreSQL (a fresh database, loaded
with COPY), the largest org holding a tenth of everything. Statuses are what the product leaves:
jobs awaiting approval only in the last 4 days (older ones expired), running ones only in the last
hour (older ones timed out), pending approvals only on recent jobs.

0. The roll-up of every settled job (what the upgrade's catch-up does; Beat then folds each
   minute's), timed; `org_metrics` once before it, with every job live.
1. The 90-day `org_metrics` of the largest org, `--rounds` times: p50 / p95 / max; and the
   dashboard page for that org and range (server time through Flask's test client).
2. In the same run, the naive version: one GROUP BY (or one query) per field, percentiles from every
   value of the window, one query per skill for its p95 (what the function would be without
   folding fields into a few aggregate queries).
3. EXPLAIN (ANALYZE) of every statement `org_metrics` sends, printed for the closing note.

Run from the repo root: ``.venv/bin/python -m bench.metrics [--jobs 1000000] [--orgs 100] [--rounds 20]
[--write] [--keep]``. The database is dropped at the end unless `--keep`; `--database NAME` measures a
kept one again (seeding and the roll-up take ten minutes; the measurements a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import event, text

from bench.harness import (
    BENCHMARKS_MD,
    Backends,
    bench_env,
    fresh_db_name,
    percentile,
    section_text,
    use_env,
    write_section,
)

BENCH_DOC = "## Org metrics (bench/metrics.py)"
NOW = datetime.now(UTC).replace(microsecond=0)
# History generated: jobs spread evenly over this many days before NOW (the 90-day window sees 3/4).
HISTORY_DAYS = 120
STEPS_PER_JOB = 6
EVENT_TYPES = [
    "meeting_ended", "pre_meeting_90min", "email_received", "proposal_generation", "calendar_find_times",
    "stale_deal_revival", "campaign_daily_check", "coaching_weekly", "deal_risk_scan",
]  # fmt: skip
SOURCES = ["api", "cron", "webhook:gmail", "webhook:recording", "slack", "followup"]
# (status, share out of 1000)
JOB_STATUSES = [
    ("completed", 800), ("failed", 50), ("timeout", 10), ("cancelled", 50), ("skipped", 50),
    ("awaiting_approval", 30), ("running", 10),
]  # fmt: skip
# How long a job can stay awaiting approval (24 working hours: up to 4 calendar days over a weekend)
# or running (the 15-min deadline, enforced by the sweeper within the hour here) before it ends.
LIVE_APPROVAL = timedelta(days=4)
LIVE_RUNNING = timedelta(hours=1)
ERROR_CLASSES = ["transient", "permanent", "rate_limited", "poison"]
ZONES = ["America/New_York", "Europe/Berlin", "Asia/Kolkata", "UTC", "Australia/Sydney"]


def say(text: str) -> None:
    print(text, flush=True)


def h(i: int, salt: int) -> int:
    """A cheap deterministic hash of (i, salt): attributes are recomputed identically in each pass."""
    x = (i * 2654435761 + salt * 40503 + 12345) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 2246822519) & 0xFFFFFFFF
    x ^= x >> 13
    return x


def job_id(i: int) -> uuid.UUID:
    return uuid.UUID(int=(1 << 124) | i)


def step_id(i: int, k: int) -> uuid.UUID:
    return uuid.UUID(int=(2 << 124) | (i * 8 + k))


def org_of(i: int, orgs: list[uuid.UUID]) -> uuid.UUID:
    """A tenth of the jobs in the first (largest) org, the rest spread over the others."""
    return orgs[0] if i % 10 == 0 else orgs[1 + h(i, 1) % (len(orgs) - 1)]


def status_of(i: int, jobs: int) -> str:
    """The job's status as the product would have left it: a job stays awaiting approval at most
    LIVE_APPROVAL (its approval expires) and running at most LIVE_RUNNING (the sweeper times it out,
    late: the last hour's running jobs include stuck ones)."""
    roll = h(i, 2) % 1000
    status = "completed"
    for name, share in JOB_STATUSES:
        if roll < share:
            status = name
            break
        roll -= share
    age = NOW - created_of(i, jobs)
    if status == "awaiting_approval" and age > LIVE_APPROVAL:
        return "expired"
    if status == "running" and age > LIVE_RUNNING:
        return "timeout"
    return status


def created_of(i: int, jobs: int) -> datetime:
    return NOW - timedelta(seconds=HISTORY_DAYS * 86400 * (jobs - i) / jobs)


def job_rows(jobs: int, orgs: list[uuid.UUID]) -> Iterator[tuple[Any, ...]]:
    for i in range(jobs):
        created = created_of(i, jobs)
        status = status_of(i, jobs)
        ended = status in ("completed", "failed", "timeout", "cancelled", "skipped", "expired")
        paused = (h(i, 3) % 600_000) if i % 10 < 3 else 0
        finished = created + timedelta(milliseconds=200 + h(i, 4) % 20_000 + paused) if ended else None
        yield (
            job_id(i),
            org_of(i, orgs),
            EVENT_TYPES[h(i, 5) % len(EVENT_TYPES)],
            SOURCES[h(i, 6) % len(SOURCES)],
            "{}",
            f"bench:{i}",
            0,
            0,
            status,
            "job deadline passed" if status == "timeout" else None,
            False,
            False,
            paused,
            created,
            created,
            finished,
            finished or created,
        )


def step_rows(jobs: int, orgs: list[uuid.UUID]) -> Iterator[tuple[Any, ...]]:
    for i in range(jobs):
        created = created_of(i, jobs)
        event_type = EVENT_TYPES[h(i, 5) % len(EVENT_TYPES)]
        org = org_of(i, orgs)
        for k in range(STEPS_PER_JOB):
            failed = h(i, 10 + k) % 100 < 3
            duration = 5 + h(i, 20 + k) % 3000
            queued = created + timedelta(milliseconds=k * 500)
            yield (
                step_id(i, k),
                org,
                job_id(i),
                f"{event_type}-step-{k}",
                0,
                False,
                "failed" if failed else "succeeded",
                1,
                "steps",
                queued,
                ERROR_CLASSES[h(i, 30 + k) % len(ERROR_CLASSES)] if failed else None,
                f"upstream error {h(i, 40 + k) % 15}: the provider refused the request" if failed else None,
                queued,
                queued + timedelta(milliseconds=duration),
                duration,
            )


def approval_rows(jobs: int, orgs: list[uuid.UUID], users: dict[uuid.UUID, list[str]]) -> Iterator[tuple[Any, ...]]:
    statuses = ["approved"] * 14 + ["rejected", "rejected", "expired", "expired", "pending", "cancelled"]
    for i in range(jobs):
        if i % 10 >= 3:
            continue
        created = created_of(i, jobs) + timedelta(seconds=2)
        status = statuses[h(i, 50) % len(statuses)]
        if status == "pending" and created_of(i, jobs) < NOW - LIVE_APPROVAL:
            status = "expired"  # the sweeper expired it
        decided = created + timedelta(seconds=30 + h(i, 51) % 7200) if status in ("approved", "rejected") else None
        org = org_of(i, orgs)
        approver = users[org][h(i, 52) % len(users[org])]
        yield (
            uuid.UUID(int=(3 << 124) | i),
            org,
            job_id(i),
            step_id(i, 3),
            "approve",
            "email_send",
            True,
            status,
            f'["{approver}"]',
            "{}",
            decided,
            created + timedelta(days=1),
            created,
            0,
        )


def outbox_rows(jobs: int, orgs: list[uuid.UUID]) -> Iterator[tuple[Any, ...]]:
    for i in range(jobs):
        if i % 2:
            continue
        created = created_of(i, jobs) + timedelta(milliseconds=150 + h(i, 60) % 3000)
        pending = h(i, 61) % 1000 < 2
        yield (
            uuid.UUID(int=(4 << 124) | i),
            org_of(i, orgs),
            f"bench:{i}",
            job_id(i),
            "meeting_debrief",
            "hello",
            "[]",
            "pending" if pending else "sent",
            0,
            created,
            None if pending else created + timedelta(milliseconds=300 + h(i, 62) % 2000),
            False,
            0,
        )


COPIES = {
    "sequence_jobs": (
        "id, org_id, event_type, source, payload, idempotency_key, depth, iteration, status, error, "
        "cancel_requested, dry_run, paused_ms, created_at, started_at, finished_at, updated_at",
        job_rows,
    ),
    "step_runs": (
        "id, org_id, job_id, step, iteration, superseded, status, attempt, queue, queued_at, error_class, error, "
        "started_at, finished_at, duration_ms",
        step_rows,
    ),
    "approvals": (
        "id, org_id, job_id, step_run_id, step, kind, critical, status, approver_user_ids, preview, decided_at, "
        "expires_at, created_at, response_url_uses",
        approval_rows,
    ),
    "slack_outbox": (
        "id, org_id, dedupe_key, job_id, kind, text, blocks, status, attempts, created_at, sent_at, urgent, revision",
        outbox_rows,
    ),
}


def seed(dsn: str, jobs: int, org_count: int) -> tuple[list[uuid.UUID], dict[str, int]]:
    """The orgs (3 reps each) and every row, loaded with COPY; then ANALYZE."""
    orgs = [uuid.UUID(int=(5 << 124) | n) for n in range(org_count)]
    users = {org: [str(uuid.UUID(int=(6 << 124) | (n * 4 + k))) for k in range(3)] for n, org in enumerate(orgs)}
    counts: dict[str, int] = {}
    from worker.db import session_factory  # after use_env: worker modules read the settings at import
    from worker.models import Org, User

    with session_factory().begin() as session:
        for n, org in enumerate(orgs):
            session.add(Org(id=org, name=f"Bench org {n}", timezone=ZONES[n % len(ZONES)], settings={}))
            session.flush()
            for k, user in enumerate(users[org]):
                session.add(
                    User(
                        id=uuid.UUID(user),
                        org_id=org,
                        email=f"rep{k}@org{n}.example",
                        name=f"Rep {k} of org {n}",
                        role="member",
                        timezone="UTC",
                        opted_out_sequences=[],
                    )
                )
    with psycopg.connect(dsn) as conn:
        for table, (columns, rows) in COPIES.items():
            t0 = time.perf_counter()
            count = 0
            with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                args = (jobs, orgs, users) if table == "approvals" else (jobs, orgs)
                for row in rows(*args):
                    copy.write_row(row)
                    count += 1
            conn.commit()
            counts[table] = count
            say(f"  {table}: {count:,} rows in {time.perf_counter() - t0:.1f} s")
        conn.autocommit = True
        conn.execute("ANALYZE")
    return orgs, counts


def naive_metrics(conn: Any, org_id: uuid.UUID, range_days: int) -> dict[str, Any]:
    """The same fields, one query per field: counts each by their own GROUP BY, every duration of the
    window loaded for its percentiles, one query per skill for its p95."""
    from worker.metrics import maths as mm  # after use_env (settings read at import)
    from worker.worktime import zone

    tz = zone(conn.execute(text("SELECT timezone FROM orgs WHERE id = :o"), {"o": org_id}).scalar_one())
    days = mm.window_days(NOW, tz, range_days)
    start = mm.day_bounds(days, tz)[0]
    p = {"o": org_id, "s": start, "n": NOW, "tz": tz.key}
    w = "org_id = :o AND created_at >= :s AND created_at <= :n"
    q = lambda sql: conn.execute(text(sql), p).all()  # noqa: E731
    out: dict[str, Any] = {}
    out["total"] = q(f"SELECT count(*) FROM sequence_jobs WHERE {w}")
    for field in ("source", "event_type", "status"):
        out[field] = q(f"SELECT {field}, count(*) FROM sequence_jobs WHERE {w} GROUP BY {field}")
    durations = q(
        f"SELECT extract(epoch FROM finished_at - created_at) * 1000 - paused_ms FROM sequence_jobs WHERE {w} "
        "AND status IN ('completed', 'failed', 'timeout') AND finished_at IS NOT NULL"
    )
    out["p95"] = mm.percentile([float(d) for (d,) in durations], 0.95)
    out["daily"] = q(
        f"SELECT date(created_at AT TIME ZONE :tz), status, count(*) FROM sequence_jobs WHERE {w} GROUP BY 1, 2"
    )
    jw = w.replace("org_id", "j.org_id").replace("created_at", "j.created_at")
    skills = q(
        f"SELECT s.step, count(*), sum(CASE WHEN s.status = 'failed' THEN 1 ELSE 0 END) FROM step_runs s "
        f"JOIN sequence_jobs j ON j.id = s.job_id WHERE {jw} GROUP BY s.step"
    )
    out["skills"] = {}
    for step, _runs, _failed in skills:
        values = conn.execute(
            text(
                f"SELECT s.duration_ms FROM step_runs s JOIN sequence_jobs j ON j.id = s.job_id WHERE {jw} "
                "AND s.step = :step AND s.duration_ms IS NOT NULL"
            ),
            {**p, "step": step},
        ).all()
        out["skills"][step] = mm.percentile([v for (v,) in values], 0.95)
    out["errors"] = q(
        f"SELECT s.error_class, substr(s.error, 1, 100), count(*) FROM step_runs s JOIN sequence_jobs j "
        f"ON j.id = s.job_id WHERE {jw} AND s.status = 'failed' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10"
    )
    out["approvals"] = q(
        f"SELECT a.status, count(*) FROM approvals a JOIN sequence_jobs j ON j.id = a.job_id WHERE {jw} GROUP BY 1"
    )
    decisions = q(
        f"SELECT extract(epoch FROM a.decided_at - a.created_at) FROM approvals a JOIN sequence_jobs j "
        f"ON j.id = a.job_id WHERE {jw} AND a.decided_at IS NOT NULL"
    )
    out["decision_p90"] = mm.percentile([float(d) for (d,) in decisions], 0.9)
    out["stuck"] = q(
        "SELECT id FROM sequence_jobs j WHERE org_id = :o AND status = 'running' AND NOT EXISTS (SELECT 1 FROM "
        "step_runs s WHERE s.job_id = j.id AND greatest(s.queued_at, s.started_at, s.finished_at) > :n - "
        "interval '30 minutes')"
    )
    latencies = q(
        f"SELECT extract(epoch FROM min(o.created_at) - j.created_at) FROM slack_outbox o JOIN sequence_jobs j "
        f"ON j.id = o.job_id WHERE {jw} GROUP BY j.id, j.created_at"
    )
    out["latency_p95"] = mm.percentile([float(d) for (d,) in latencies], 0.95)
    out["outbox"] = q("SELECT count(*), min(created_at) FROM slack_outbox WHERE org_id = :o AND status = 'pending'")
    return out


def timed(fn: Any, rounds: int) -> list[float]:
    """Milliseconds of each of `rounds` calls (after one warm-up call)."""
    fn()
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def stats(name: str, ms: list[float]) -> str:
    """One result line: p50, p95 and max of the milliseconds."""
    p95 = percentile(ms, 95)
    return f"{name:34} p50 {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   max {max(ms):7.1f} ms"


def dashboard_ms(org_id: uuid.UUID, rounds: int) -> list[float]:
    """Server time of `GET /admin/orchestrator?range=90d` for the org (Flask's test client: the
    request through the app, the metrics and the template, no network), signed in by a login link."""
    os.environ.setdefault("ADMIN_SESSION_SECRET", "bench-" + uuid.uuid4().hex)
    from worker.config import reset_settings  # after use_env (settings read at import)

    reset_settings()
    from webhooks import create_app  # after the secret is set: the app reads the settings
    from worker.access.admin_auth import create_link

    client = create_app({"TESTING": True}).test_client()
    login = create_link(org_id).url
    assert client.get("/" + login.split("/", 3)[3]).status_code == 200

    def page() -> None:
        response = client.get("/admin/orchestrator?range=90d")
        assert response.status_code == 200 and "card-total" in response.text, response.status_code

    return timed(page, rounds)


def explain_all(org_id: uuid.UUID) -> list[str]:
    """EXPLAIN (ANALYZE) of every statement org_metrics sends (captured as it runs)."""
    from worker.db import get_engine  # after use_env (settings read at import)
    from worker.metrics.report import org_metrics

    engine = get_engine()
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn:
            org_metrics(conn, org_id, 90, now=NOW)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    out: list[str] = []
    with engine.connect() as conn:
        for n, (statement, parameters) in enumerate(captured, 1):
            first = " ".join(statement.split())[:110]
            plan = conn.exec_driver_sql(
                f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) {statement}", parameters
            ).all()
            out.append(f"EXPLAIN query {n}: {first} ...")
            out.extend("  " + (r[0] if len(r[0]) <= 140 else r[0][:140] + " ...") for r in plan)
    return out


def prepare(dsn: str, jobs: int, org_count: int) -> dict[str, Any]:
    """Migrate, seed, time org_metrics with every job live, roll up (timed); the facts of the run,
    also stored in the database's bench_meta table for a later --database run."""
    from worker.db import get_engine  # after use_env (settings read at import)
    from worker.metrics.report import org_metrics
    from worker.metrics.rollup import roll_up

    t0 = time.perf_counter()
    say("seeding with COPY:")
    orgs, counts = seed(dsn, jobs, org_count)
    say(f"seeded in {time.perf_counter() - t0:.1f} s")
    with get_engine().connect() as conn:
        live_ms = timed(lambda: (org_metrics(conn, orgs[0], 90, now=NOW), conn.rollback()), 1)
    say(f"org_metrics before any roll-up (every job live): {live_ms[0]:.0f} ms")
    say("rolling up (the catch-up after the upgrade; Beat then folds each minute's settled jobs):")
    t0 = time.perf_counter()
    rolled = roll_up(now=NOW, progress=lambda n: n % 100_000 < 5000 and say(f"  {n:,} jobs folded"))
    rollup_s = time.perf_counter() - t0
    with get_engine().connect() as conn:
        left = conn.exec_driver_sql("SELECT count(*) FROM sequence_jobs WHERE rolled_up_at IS NULL").scalar()
        cells = conn.exec_driver_sql("SELECT count(*) FROM metrics_rollups").scalar()
        conn.commit()
    say(f"rolled up {rolled:,} jobs in {rollup_s:.1f} s ({rolled / rollup_s:,.0f} jobs/s); {left:,} not settled")
    meta = {
        "now": NOW.isoformat(),
        "orgs": [str(o) for o in orgs],
        "counts": counts,
        "rolled": rolled,
        "rollup_s": rollup_s,
        "left": left,
        "cells": cells,
        "live_ms": live_ms[0],
    }
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_meta (data jsonb)")
        conn.execute("INSERT INTO bench_meta VALUES (%s::jsonb)", (json.dumps(meta),))
        conn.execute("VACUUM ANALYZE")
    return meta


def main(argv: list[str] | None = None) -> int:
    """Seed (or open a kept database), roll up, measure, print (and maybe write) the result."""
    p = argparse.ArgumentParser(prog="python -m bench.metrics", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--jobs", type=int, default=1_000_000)
    p.add_argument("--orgs", type=int, default=100)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--write", action="store_true", help="write the result into BENCHMARKS.md")
    p.add_argument("--keep", action="store_true", help="keep the seeded database (its name is printed)")
    p.add_argument(
        "--database", help="measure a database kept by an earlier --keep run (no seeding, no roll-up: theirs are shown)"
    )
    args = p.parse_args(argv)

    global NOW
    db = Backends(args.database or fresh_db_name())
    use_env(bench_env(db))
    try:
        if args.database:
            db.connect()
            meta = db.admin.execute("SELECT data FROM bench_meta").fetchone()[0]
            NOW = datetime.fromisoformat(meta["now"])
            say(f"measuring {db.db_name}, seeded {meta['now']} (roll-up timings are that run's)")
        else:
            db.create()
            meta = prepare(db.dsn, args.jobs, args.orgs)
        pg_version = db.pg_version()
        from worker.db import get_engine  # after use_env (settings read at import)
        from worker.metrics.report import org_metrics

        orgs = [uuid.UUID(o) for o in meta["orgs"]]
        counts, rolled, rollup_s, left, cells = (meta[k] for k in ("counts", "rolled", "rollup_s", "left", "cells"))
        live_ms = [meta["live_ms"]]
        largest = orgs[0]
        with get_engine().connect() as conn:
            result = org_metrics(conn, largest, 90, now=NOW)

            def fast() -> None:
                org_metrics(conn, largest, 90, now=NOW)
                conn.rollback()

            def naive() -> None:
                naive_metrics(conn, largest, 90)
                conn.rollback()

            fast_ms = timed(fast, args.rounds)
            naive_ms = timed(naive, max(3, args.rounds // 4))
        page_ms = dashboard_ms(largest, args.rounds)
        ratio = statistics.median(naive_ms) / statistics.median(fast_ms)
        head = [
            f"Org metrics benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} cores "
            f"(load avg {os.getloadavg()[0]:.2f} at start), Python {platform.python_version()}, "
            f"PostgreSQL {pg_version}",
            f"{counts['sequence_jobs']:,} jobs, {counts['step_runs']:,} step runs, {counts['approvals']:,} approvals, "
            f"{counts['slack_outbox']:,} outbox rows across {len(orgs)} orgs over {HISTORY_DAYS} days; the largest "
            f"org has {result['total_sequences']:,} jobs in its 90-day window "
            f"({sum(s['runs'] for s in result['top_skills']):,} step runs in its top skills)",
            f"roll-up: {rolled:,} settled jobs folded in {rollup_s:.1f} s ({rolled / rollup_s:,.0f} jobs/s) into "
            f"{cells:,} cells; {left:,} jobs not settled (running, awaiting approval, a message pending) stay live; "
            f"org_metrics before the roll-up: {live_ms[0]:,.0f} ms",
            "",
            stats(f"org_metrics 90d ({args.rounds} rounds)", fast_ms) + "   (target p95 < 300 ms)",
            stats(f"naive, one query per field ({len(naive_ms)})", naive_ms),
            f"naive / org_metrics (median): {ratio:.2f}x",
            stats(f"dashboard page 90d ({args.rounds})", page_ms) + "   (server time; target p95 < 500 ms)",
        ]
        body = [*head, "", *explain_all(largest)]
        text = "\n".join(body)
        say(text)
        if args.write:
            write_section(BENCHMARKS_MD, BENCH_DOC, section(text))
        return 0
    finally:
        db.close(keep=args.keep)
        if db.created and args.keep:
            say(f"kept database {db.db_name}: measure it again with --database {db.db_name}")


def section(output: str) -> str:
    """This benchmark's BENCHMARKS.md section (what it measures, the command, the run's output)."""
    about = (
        "The 90-day `org_metrics` of the largest org on PostgreSQL once every settled job is rolled "
        'up (docs/metrics.md, "The roll-up"), against a naive version (one query per field over the raw rows) '
        "in the same run, and the dashboard page's server time. The seeding and the roll-up catch-up (what an "
        "upgrade of a database with history does once) are timed too. Command (`--keep` keeps the seeded "
        "database; `--database NAME` measures it again without seeding):"
    )
    notes = (
        "How it is fast: the window's stored cells are a few thousand small rows read by primary key (query 2), "
        "the jobs not rolled up yet come from a partial index holding only them (queries 3-6), and the "
        "percentiles merge about 24 sketches per measure (week cells for the whole weeks, day cells around "
        "them; query 7). The naive version reads every job, step run, approval and message of the window. "
        "Before the catch-up (every job live) the answer is the same and slower than the naive version, "
        "since the fold runs in Python: run `proactive metrics-rollup` once after upgrading."
    )
    return section_text(BENCH_DOC, about, ".venv/bin/python -m bench.metrics --write", output, notes)


if __name__ == "__main__":
    sys.exit(main())
