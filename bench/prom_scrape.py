"""Benchmark: the cost of one `/metrics` scrape as history grows — 10,000 jobs, then
1,000,000, on PostgreSQL, in multiprocess mode as the fleet runs it.

History is generated in SQL (`INSERT … SELECT generate_series`): per job one finished step run,
every tenth job a decided approval, every job a sent Slack message; live work stays the same at
both sizes (50 pending approvals, 100 pending Slack messages). The multiprocess directory holds
the value files of 6 processes (2 "gunicorn workers" and 4 "prefork children", forked here), each
having recorded every metric for every registered sequence and step. Each size is scraped
`--scrapes` times through the Flask app (`GET /metrics`, server time, no network) after a warm-up;
p50 and p95 are reported with their ratio (1M / 10k). The target: < 50 ms whatever the history.

Run from the repo root: ``.venv/bin/python -m bench.prom_scrape [--jobs 10000,1000000] [--scrapes 200]
[--write]``. The database is created for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import insert

from bench.harness import BENCHMARKS_MD, Backends, bench_env, fresh_db_name, percentile, use_env, write_section

BENCH_DOC = "## Prometheus scrape (bench/prom_scrape.py)"
TARGET_MS = 50.0
PROCESSES = 6  # 2 gunicorn workers + 4 prefork children
PENDING_APPROVALS, PENDING_MESSAGES = 50, 100


def say(text: str) -> None:
    print(text, flush=True)


def seed_org(conn: object) -> tuple[uuid.UUID, uuid.UUID]:
    """One org and one rep (the history's owner)."""
    from worker.models import Org, User  # after use_env: worker modules read the settings at import

    org_id, user_id = uuid.uuid4(), uuid.uuid4()
    conn.execute(insert(Org.__table__).values(id=org_id, name="Bench org", timezone="UTC", settings={}))  # type: ignore[attr-defined]
    conn.execute(  # type: ignore[attr-defined]
        insert(User.__table__).values(id=user_id, org_id=org_id, email="rep@bench.example", name="Rep", role="member")
    )
    return org_id, user_id


def grow_history(dsn: str, org_id: uuid.UUID, start: int, stop: int) -> None:
    """Jobs `start`..`stop`-1 (completed), a step run each, an approval every tenth, a sent message each."""
    with psycopg.connect(dsn, autocommit=False) as conn:
        conn.execute(
            """
            INSERT INTO sequence_jobs (id, org_id, event_type, source, payload, idempotency_key, depth, iteration,
                status, cancel_requested, dry_run, paused_ms, created_at, updated_at, finished_at)
            SELECT md5('job' || g)::uuid, %(org)s, 'deal_risk_scan', 'api', '{}'::jsonb, 'bench:' || g, 0, 0,
                'completed', false, false, 0, now() - (g || ' seconds')::interval, now(), now()
            FROM generate_series(%(start)s, %(stop)s - 1) g
            """,
            {"org": org_id, "start": start, "stop": stop},
        )
        conn.execute(
            """
            INSERT INTO step_runs (id, org_id, job_id, step, iteration, superseded, status, attempt, queue,
                queued_at, finished_at, duration_ms)
            SELECT md5('step' || g)::uuid, %(org)s, md5('job' || g)::uuid, 'load-open-deals', 0, false,
                'succeeded', 1, 'steps', now(), now(), g %% 500
            FROM generate_series(%(start)s, %(stop)s - 1) g
            """,
            {"org": org_id, "start": start, "stop": stop},
        )
        conn.execute(
            """
            INSERT INTO approvals (id, org_id, job_id, step_run_id, step, kind, critical, status,
                approver_user_ids, preview, decision, decided_at, resumed_at, expires_at, response_url_uses,
                created_at)
            SELECT md5('approval' || g)::uuid, %(org)s, md5('job' || g)::uuid, md5('step' || g)::uuid,
                'load-open-deals', 'email_review', true, 'approved', '[]'::jsonb, '{}'::jsonb, 'send',
                now(), now(), now() + interval '1 day', 0, now()
            FROM generate_series(%(start)s, %(stop)s - 1) g WHERE g %% 10 = 0
            """,
            {"org": org_id, "start": start, "stop": stop},
        )
        conn.execute(
            """
            INSERT INTO slack_outbox (id, org_id, dedupe_key, kind, text, blocks, status, attempts, created_at,
                sent_at, urgent, revision)
            SELECT md5('message' || g)::uuid, %(org)s, 'bench:' || g, 'deal_risk_alerts', 'x', '[]'::jsonb,
                'sent', 1, now(), now(), false, 0
            FROM generate_series(%(start)s, %(stop)s - 1) g
            """,
            {"org": org_id, "start": start, "stop": stop},
        )
        conn.commit()
        conn.execute("ANALYZE")


def live_work(dsn: str, org_id: uuid.UUID) -> None:
    """Pending approvals and messages: the same at every history size."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            """
            INSERT INTO sequence_jobs (id, org_id, event_type, source, payload, idempotency_key, depth, iteration,
                status, cancel_requested, dry_run, paused_ms, created_at, updated_at)
            VALUES (md5('live job')::uuid, %(org)s, 'deal_risk_scan', 'api', '{}'::jsonb, 'bench:live', 0, 0,
                'awaiting_approval', false, false, 0, now(), now())
            """,
            {"org": org_id},
        )
        conn.execute(
            """
            INSERT INTO step_runs (id, org_id, job_id, step, iteration, superseded, status, attempt, queue, queued_at)
            SELECT md5('live step' || g)::uuid, %(org)s, md5('live job')::uuid, 'live-' || g, 0, false,
                'awaiting_approval', 1, 'steps', now()
            FROM generate_series(1, %(n)s) g
            """,
            {"org": org_id, "n": PENDING_APPROVALS},
        )
        conn.execute(
            """
            INSERT INTO approvals (id, org_id, job_id, step_run_id, step, kind, critical, status,
                approver_user_ids, preview, expires_at, response_url_uses, created_at)
            SELECT md5('live approval' || g)::uuid, %(org)s, md5('live job')::uuid, md5('live step' || g)::uuid,
                'live-' || g, 'email_review', true, 'pending', '[]'::jsonb, '{}'::jsonb, now() + interval '1 day',
                0, now()
            FROM generate_series(1, %(n)s) g
            """,
            {"org": org_id, "n": PENDING_APPROVALS},
        )
        conn.execute(
            """
            INSERT INTO slack_outbox (id, org_id, dedupe_key, kind, text, blocks, status, attempts, created_at,
                urgent, revision)
            SELECT md5('live message' || g)::uuid, %(org)s, 'bench:live:' || g, 'approval', 'x', '[]'::jsonb,
                'pending', 0, now() - interval '1 minute', false, 0
            FROM generate_series(1, %(n)s) g
            """,
            {"org": org_id, "n": PENDING_MESSAGES},
        )


def fill_value_files() -> None:
    """PROCESSES forked children each record every metric for every sequence and step (then exit)."""
    from worker.engine import registry  # after use_env (settings read at import)
    from worker.metrics import prom

    steps = [(name, step) for name, seq in registry.registered().items() for step in seq.order]
    for _ in range(PROCESSES):
        pid = os.fork()
        if pid == 0:  # the child: write its own value files, then leave without cleanup
            try:
                for sequence, step in steps:
                    for status in ("succeeded", "failed", "skipped", "retried"):
                        prom.step_finished(sequence, step, status, 0.05)
                    prom.event_accepted("api", sequence)
                    prom.event_rejected("api", "InvalidEvent")
                    prom.approval_opened("email_review")
                    prom.approval_decided("email_review", "approved", 120.0)
                    prom.outbox_delivered("approval", "post", 0.4)
                    prom.sweeper_repaired({"republished": 1})
                    prom.cron_slot_claimed("morning-brief")
            finally:
                os._exit(0)
        os.waitpid(pid, 0)


def time_scrapes(client: object, n: int) -> list[float]:
    """Milliseconds per `GET /metrics` (after 10 untimed ones)."""
    for _ in range(10):
        assert client.get("/metrics").status_code == 200  # type: ignore[attr-defined]
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        answer = client.get("/metrics")  # type: ignore[attr-defined]
        times.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200
    return times


def main(argv: list[str] | None = None) -> int:
    """Scrape at each history size; print (and maybe write) the result; 1 when over the target."""
    p = argparse.ArgumentParser(prog="python -m bench.prom_scrape", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--jobs", default="10000,1000000", help="history sizes, ascending (default 10000,1000000)")
    p.add_argument("--scrapes", type=int, default=200)
    p.add_argument("--write", action="store_true", help="write the result into BENCHMARKS.md")
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.jobs.split(",")]

    db = Backends(fresh_db_name())
    metrics_dir = tempfile.mkdtemp(prefix="proactive-prom-")
    # Nothing is published (BROKER_URL only for the settings); the multiprocess directory is set
    # before prometheus-client makes its first value.
    use_env(bench_env(db, BROKER_URL="redis://127.0.0.1:6379/15", PROMETHEUS_MULTIPROC_DIR=metrics_dir))
    try:
        db.create()
        pg_version = db.pg_version()
        from webhooks import create_app  # after use_env (settings read at import)
        from worker.db import transaction

        with transaction() as conn:
            org_id, _user = seed_org(conn)
        live_work(db.dsn, org_id)
        fill_value_files()
        files = len(list(Path(metrics_dir).glob("*.db")))
        client = create_app().test_client()
        results = []
        have = 0
        for size in sizes:
            t0 = time.perf_counter()
            grow_history(db.dsn, org_id, have, size)
            have = size
            say(f"history: {size:,} jobs ({time.perf_counter() - t0:.1f} s to generate)")
            times = time_scrapes(client, args.scrapes)
            results.append((size, statistics.median(times), percentile(times, 95)))
            say(f"  /metrics p50 {results[-1][1]:.2f} ms, p95 {results[-1][2]:.2f} ms")
        body_bytes = len(client.get("/metrics").data)
    finally:
        db.close()
        for f in Path(metrics_dir).glob("*"):
            f.unlink()
        os.rmdir(metrics_dir)

    lines = [
        BENCH_DOC,
        "",
        f"Python {platform.python_version()}, PostgreSQL {pg_version}, {os.cpu_count()} CPUs; multiprocess mode, "
        f"{files} value files ({PROCESSES} recording processes and the scraping one), a {body_bytes / 1024:.0f} KiB "
        "answer; "
        f"{args.scrapes} scrapes per size through the Flask app (server time). Target: < {TARGET_MS:.0f} ms.",
        "",
        "Run (`.venv/bin/python -m bench.prom_scrape --write`):",
        "",
        "```",
        f"{'jobs in history':>16} {'p50 ms':>9} {'p95 ms':>9}",
        *(f"{size:>16,} {p50:>9.2f} {p95_ms:>9.2f}" for size, p50, p95_ms in results),
        f"{'ratio last/first':>16} {results[-1][1] / results[0][1]:>9.2f} {results[-1][2] / results[0][2]:>9.2f}",
        "```",
    ]
    report = "\n".join(lines)
    say("\n" + report)
    if args.write:
        write_section(BENCHMARKS_MD, BENCH_DOC, report)
    worst = max(r[2] for r in results)
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
