"""Where a `POST /api/events` request's CPU goes in the web process: statements, round trips, CPU.

Runs `webhooks.create_app()` in this process with Flask's test client against the run's own
PostgreSQL database and Redis DB (the env of bench/edge.py: the demo org, an org API key, the
one-step `coaching_weekly` job of bench/edge_dags.py, the per-org events limit on but far above the
load). No worker runs: the `run_step` messages are really published to Redis and left there (the
Redis DB is flushed at the end). Each request is what wrk sends in bench.edge: a unique idempotency
key, `Authorization: Bearer <key>`. Statements, transactions and round trips are counted as
bench/profile_engine.py does (a pipeline is one round trip; a statement run in autocommit is one,
without the BEGIN and COMMIT SQLAlchemy reports for it: `precompiled.stats`). The same requests are also sent to the
bare Flask + publish baseline (bench/edge_baseline.py) in this process, for a same-run ratio.

The test client skips the WSGI server (gunicorn's parsing and socket I/O are left out), so the
numbers are the app's own CPU, lower than bench.edge's web CPU per request.

Run from the repo root: ``.venv/bin/python -m bench.profile_web [--requests 1000] [--cprofile] [--trace]``
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import time
import uuid
from typing import Any

from bench.edge import BASELINE_PATH, EVENTS_PATH, edge_env
from bench.harness import Backends, fresh_db_name, pick_redis_db, use_env
from bench.profile_engine import Counters, cprofile_lines, per

# Requests sent before anything is counted (statement compilation, psycopg's prepared statements,
# the API key's memory, the broker connection).
WARM_REQUESTS = 50


class Target:
    """One app under test: its test client, the path it serves and the headers of each request."""

    def __init__(self, name: str, client: Any, path: str, headers: dict[str, str]) -> None:
        self.name, self.client, self.path, self.headers = name, client, path, headers

    def post(self, body: bytes) -> int:
        """POST one envelope; the status code."""
        return self.client.post(self.path, data=body, headers=self.headers).status_code


def envelope(etype: str, org: uuid.UUID, user: uuid.UUID, tag: str, i: int) -> bytes:
    """The body wrk sends in bench.edge (a unique idempotency key)."""
    return json.dumps(
        {
            "type": etype,
            "org_id": str(org),
            "user_id": str(user),
            "payload": {"run": tag},
            "idempotency_key": f"edge:{tag}:1:{i}",
        },
        separators=(",", ":"),
    ).encode()


def measure(target: Target, bodies: list[bytes], counters: Counters | None, prof: cProfile.Profile | None) -> str:
    """Send `bodies`; one line: wall and CPU ms per request (and the counters per request)."""
    c0 = counters.snapshot() if counters else None
    t0, cpu0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    statuses = [target.post(b) for b in bodies]
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    bad = [s for s in statuses if s != 202]
    if bad:
        raise RuntimeError(f"{target.name}: {len(bad)} answers not 202 (first {bad[0]})")
    n = len(bodies)
    line = f"{target.name}: {n} requests, {wall / n * 1000:.3f} ms wall, {cpu / n * 1000:.3f} ms CPU per request"
    if counters and c0 is not None:
        line += "; per request: " + ", ".join(f"{k} {v:.2f}" for k, v in per(counters.snapshot() - c0, n).items())
    return line


def seed() -> tuple[uuid.UUID, uuid.UUID, str]:
    """The demo org as bench.edge seeds it (not dry-run, nothing held back): (org, alice, API key)."""
    from sqlalchemy import update

    from worker.access.api_keys import create_key  # after use_env (settings read at import)
    from worker.db import transaction
    from worker.models import User
    from worker.ops.seed import seed_demo
    from worker.orgs import set_dry_run

    result = seed_demo()
    set_dry_run(result.org_id, False, actor="bench")
    with transaction() as conn:
        conn.execute(
            update(User.__table__)
            .where(User.org_id == result.org_id)
            .values(quiet_hours=None, max_notifications_per_hour=0)
        )
    key, _ = create_key(result.org_id, "bench profile_web")
    return result.org_id, dict(result.users)["alice"], key


def main(argv: list[str] | None = None) -> int:
    """Profile `POST /api/events` in process on a fresh database; print per-request CPU and counts."""
    doc = (__doc__ or "").splitlines()[0]
    p = argparse.ArgumentParser(prog="python -m bench.profile_web", description=doc)
    p.add_argument("--requests", type=int, default=1000, help="measured requests per round (default 1000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds, order alternating with the baseline (default 3)")
    p.add_argument("--cprofile", action="store_true", help="also print the top functions by CPU time (ours)")
    p.add_argument("--trace", action="store_true", help="also print the statements of one request in order")
    p.add_argument("--redis-db", type=int, default=None)
    args = p.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min)", flush=True)
    backends = Backends(fresh_db_name(), pick_redis_db(args.redis_db))
    use_env(edge_env(backends))
    try:
        backends.create()
        print("\n".join(run(args)), flush=True)
    finally:
        backends.close()
    return 0


def run(args: argparse.Namespace) -> list[str]:
    """Seed, warm both apps, then measure the rounds (order alternating)."""
    from bench import edge_baseline  # after use_env (settings read at import)
    from webhooks import create_app
    from worker.engine import registry

    registry.load()
    from bench import edge_dags  # registered by load()

    org, user, key = seed()
    counters = Counters.on_engine()
    ours = Target(
        "proactive /api/events",
        create_app().test_client(),
        EVENTS_PATH,
        {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    base = Target(
        "bare Flask + publish",
        edge_baseline.create_app().test_client(),
        BASELINE_PATH,
        {"Content-Type": "application/json"},
    )
    tag = uuid.uuid4().hex[:8]

    def bodies(prefix: str, n: int) -> list[bytes]:
        return [envelope(edge_dags.EVENTS_EVENT, org, user, f"{prefix}{tag}", i) for i in range(n)]

    for target in (ours, base):
        measure(target, bodies("w" + target.name[:1], WARM_REQUESTS), None, None)
    lines: list[str] = []
    prof = cProfile.Profile(time.process_time) if args.cprofile else None
    for r in range(args.rounds):
        order = (ours, base) if r % 2 == 0 else (base, ours)
        for target in order:
            is_ours = target is ours
            batch = bodies(f"r{r}{target.name[:1]}", args.requests)
            lines.append(
                f"round {r + 1} " + measure(target, batch, counters if is_ours else None, prof if is_ours else None)
            )
    if prof:
        lines.extend(cprofile_lines(prof, "POST /api/events (test client)"))
    if args.trace:
        trace: list[str] = []
        counters.trace = trace
        ours.post(envelope(edge_dags.EVENTS_EVENT, org, user, "t" + tag, 0))
        counters.trace = None
        lines.append("Round trips of one request, in order:")
        lines.extend("  " + t for t in trace)
    return lines


if __name__ == "__main__":
    sys.exit(main())
