"""Benchmark: a burst of Gmail pushes — 5,000 Pub/Sub pushes for 500 mailboxes against
gunicorn (the Procfile's options) with the worker running, on PostgreSQL + Redis, Google faked
(tests/fakes: OIDC certs, token endpoint, Gmail history/messages), every push signed as Pub/Sub
signs it and verified by the app.

Each mailbox gets 10 new INBOX messages and 10 pushes (historyId rising), sent as fast as
`--connections` connections allow, mailboxes interleaved as Gmail would publish them. Reported:
pushes accepted per second and the answer time percentiles (target >= 500/s with p99 < 100 ms),
seconds from the first push to the last `email_received` event fired, and the checks: every answer
204, one job per message (5,000), no duplicate keys, one `emails` row per message. The sync
coalescing shows in how many Gmail history.list calls the 5,000 pushes cost.

Baseline in the same run, same gunicorn options and connections: the bare Flask endpoint of
bench/edge_baseline.py (parse JSON, publish one Celery task, answer) fed the same bodies.
`email_received` runs one no-op step here (bench/gmail_dags.py).

Run from the repo root: ``.venv/bin/python -m bench.gmail [--mailboxes 500] [--per-mailbox 10] [--write]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from bench.edge_baseline import QUEUE as BASELINE_QUEUE
from bench.harness import (
    BENCHMARKS_MD,
    Backends,
    WorkerProcess,
    bench_env,
    fresh_db_name,
    percentile,
    pick_redis_db,
    raise_on_signals,
    section_text,
    use_env,
    write_section,
)
from bench.web import Gunicorn, exchange, http_request, procfile_options, raise_nofile
from tests.fakes.google import CLIENT_ID, CLIENT_SECRET, FakeGoogle
from tests.fakes.google_certs import FakeGoogleCerts

AUDIENCE = "https://bench.proactive.example/webhooks/gmail"
SERVICE_ACCOUNT = "gmail-push@bench-project.iam.gserviceaccount.com"
SUBSCRIPTION = "projects/bench-project/subscriptions/gmail-push"
ORGS = 5
REQUEST_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 300.0
SECTION = "## Gmail push (bench/gmail.py)"


def say(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", flush=True)


def pct(values: list[float], p: float) -> float:
    """The p-th percentile of `values` (seconds) in ms."""
    return percentile(values, p) * 1000 if values else float("nan")


# --------------------------------------------------------------------------- the load (child process)


def burst(port: int, requests: list[bytes], connections: int) -> dict[str, Any]:
    """Send every request once over `connections` concurrent loops, as fast as answers come back."""
    raise_nofile()
    return asyncio.run(_burst(port, requests, connections))


async def _burst(port: int, requests: list[bytes], connections: int) -> dict[str, Any]:
    queue = iter(range(len(requests)))
    results: list[tuple[int, float] | None] = [None] * len(requests)

    async def loop() -> None:
        for i in queue:
            t0 = time.monotonic()
            try:
                status, _ = await asyncio.wait_for(exchange("127.0.0.1", port, requests[i]), REQUEST_TIMEOUT_S)
            except (OSError, ValueError, IndexError, TimeoutError):
                status = -1
            results[i] = (status, time.monotonic() - t0)

    started = time.time()
    t0 = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(connections)))
    return {"started": started, "seconds": time.monotonic() - t0, "results": results}


# --------------------------------------------------------------------------- the run


class Run:
    """The database, Redis, the fakes, the seeded mailboxes and the pushes of one benchmark run."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.db = Backends(fresh_db_name(), pick_redis_db(args.redis_db))
        self.google: Any = None
        self.certs: Any = None
        self.orgs: list[uuid.UUID] = []
        self.env: dict[str, str] = {}

    def setup(self) -> None:
        """The fake Google (OAuth, Gmail, OIDC certs), the environment, the database and Redis."""
        from worker.crypto import generate_key  # before use_env, which re-reads any settings read by then

        self.google = FakeGoogle().start()
        self.certs = FakeGoogleCerts().start()
        self.env = bench_env(
            self.db,
            "sequences,bench.gmail_dags",
            GOOGLE_TOKEN_URI=self.google.token_uri,
            GOOGLE_API_URL=self.google.url,
            GOOGLE_CLIENT_ID=CLIENT_ID,
            GOOGLE_CLIENT_SECRET=CLIENT_SECRET,
            GOOGLE_CERTS_URL=self.certs.certs_url,
            PUBSUB_AUDIENCE=AUDIENCE,
            PUBSUB_SERVICE_ACCOUNT=SERVICE_ACCOUNT,
            ENCRYPTION_KEYS=generate_key(),
            SLACK_BOT_TOKEN="",
            PROACTIVE_DRY_RUN="1",
        )
        use_env(self.env)
        self.db.create()

    def teardown(self) -> None:
        """Stop the fakes, drop the database, flush Redis."""
        for fake in (self.google, self.certs):
            if fake is not None:
                fake.stop()
        self.db.close()

    def seed(self, mailboxes: int, tag: str) -> list[str]:
        """`mailboxes` reps (ORGS orgs), each with a connected Gmail integration; their addresses."""
        from worker.crypto import encrypt_json  # after use_env: worker modules read the settings at import
        from worker.db import transaction
        from worker.models import Integration, Org, User, utcnow

        if not self.orgs:
            self.orgs = [uuid.uuid4() for _ in range(ORGS)]
            with transaction() as conn:
                conn.execute(
                    insert(Org),
                    [
                        {"id": o, "name": f"Gmail bench {i}", "timezone": "UTC", "settings": {}, "enabled": True}
                        for i, o in enumerate(self.orgs)
                    ],
                )
        users, integrations, addresses = [], [], []
        expiry = (utcnow() + timedelta(hours=2)).isoformat()
        for i in range(mailboxes):
            address = f"rep-{tag}-{i}@bench.example"
            org, user = self.orgs[i % ORGS], uuid.uuid4()
            refresh = f"1//bench-{tag}-{i}"
            self.google.grant(refresh, address)
            creds = {
                "token": self.google.issue_access_token(address),
                "refresh_token": refresh,
                "expiry": expiry,
                "scopes": ["https://www.googleapis.com/auth/gmail.readonly"],
            }
            users.append(
                {
                    "id": user,
                    "org_id": org,
                    "email": address,
                    "name": f"Rep {tag} {i}",
                    "role": "member",
                    "timezone": "UTC",
                    "opted_out_sequences": [],
                    "max_notifications_per_hour": 10,
                }
            )
            integrations.append(
                {
                    "id": uuid.uuid4(),
                    "org_id": org,
                    "user_id": user,
                    "provider": "google",
                    "account": address,
                    "credentials": encrypt_json(creds),
                    "scopes": [],
                    "status": "active",
                    "history_id": str(self.google.inbox.box(address).history_id),
                }
            )
            addresses.append(address)
        with transaction() as conn:
            conn.execute(insert(User), users)
            conn.execute(insert(Integration), integrations)
        return addresses

    def pushes(self, addresses: list[str], per_mailbox: int, port: int, tag: str) -> list[bytes]:
        """Deliver `per_mailbox` messages to each mailbox and build one signed push per message,
        mailboxes interleaved (round k of every mailbox before round k + 1)."""
        tokens = {a: self.certs.token({"aud": AUDIENCE, "email": SERVICE_ACCOUNT}) for a in addresses}
        rounds: list[list[bytes]] = [[] for _ in range(per_mailbox)]
        for a in addresses:
            for k in range(per_mailbox):
                msg = self.google.inbox.deliver(a, sender=f"Buyer {k} <buyer{k}@client.example>", subject=f"Hi {k}")
                data = json.dumps({"emailAddress": a, "historyId": msg.history_id}).encode()
                body = json.dumps(
                    {
                        "message": {
                            "data": base64.urlsafe_b64encode(data).decode(),
                            "messageId": f"{tag}-{a}-{k}",
                            "publishTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                        },
                        "subscription": SUBSCRIPTION,
                    }
                ).encode()
                headers = {"Content-Type": "application/json", "Authorization": f"Bearer {tokens[a]}"}
                rounds[k].append(http_request(port, "/webhooks/gmail", body, headers))
        return [r for rnd in rounds for r in rnd]

    def baseline_requests(self, n: int, port: int, tag: str) -> list[bytes]:
        """`n` bodies of the same size class for the bare endpoint (it parses and publishes)."""

        def body(i: int) -> bytes:
            return json.dumps(
                {
                    "payload": {"run": tag},
                    "idempotency_key": f"{tag}-{i}",
                    "message": {"data": "x" * 120, "messageId": str(i)},
                }
            ).encode()

        return [http_request(port, "/events", body(i), {"Content-Type": "application/json"}) for i in range(n)]

    def events_of(self, addresses: list[str]) -> tuple[int, int, datetime | None]:
        """(email_received jobs, distinct keys, last created_at) for these mailboxes' users."""
        from worker.db import transaction  # after use_env (settings read at import)
        from worker.models import User, jobs

        with transaction() as conn:
            users = select(User.id).where(User.email.in_(addresses)).scalar_subquery()
            row = conn.execute(
                select(
                    func.count(), func.count(func.distinct(jobs.c.idempotency_key)), func.max(jobs.c.created_at)
                ).where(jobs.c.event_type == "email_received", jobs.c.user_id.in_(users))
            ).one()
        return int(row[0]), int(row[1]), row[2]

    def counts(self, addresses: list[str]) -> dict[str, int]:
        """emails rows and push rows of these mailboxes, Gmail history.list calls so far."""
        from worker.db import transaction  # after use_env (settings read at import)
        from worker.models import Email, GmailPush, User

        with transaction() as conn:
            users = select(User.id).where(User.email.in_(addresses)).scalar_subquery()
            emails = conn.execute(select(func.count()).select_from(Email).where(Email.user_id.in_(users))).scalar()
            pushes = conn.execute(
                select(func.count()).select_from(GmailPush).where(GmailPush.email_address.in_(addresses))
            ).scalar()
        history = len(self.google.requests_to("GET", r"/gmail/v1/users/me/history"))
        return {"emails": int(emails or 0), "pushes": int(pushes or 0), "history_calls": history}

    def wait_events(self, addresses: list[str], expected: int) -> tuple[int, int, datetime | None]:
        """Wait until `expected` events are fired (or no progress for 30 s)."""
        deadline, last_n, last_change = time.monotonic() + SETTLE_TIMEOUT_S, -1, time.monotonic()
        while True:
            n, distinct, last = self.events_of(addresses)
            if n >= expected:
                return n, distinct, last
            if n != last_n:
                last_n, last_change = n, time.monotonic()
            if time.monotonic() - last_change > 30 or time.monotonic() > deadline:
                return n, distinct, last
            time.sleep(0.2)


def summary(name: str, res: dict[str, Any]) -> tuple[str, dict[str, float]]:
    results = [r for r in res["results"] if r is not None]
    ok = [lat for status, lat in results if 200 <= status < 300]
    bad = sum(1 for status, _ in results if not 200 <= status < 300)
    rate = len(ok) / res["seconds"] if res["seconds"] else 0.0
    stats = {"rate": rate, "p50": pct(ok, 50), "p90": pct(ok, 90), "p99": pct(ok, 99), "max": max(ok, default=0) * 1000}
    line = (
        f"{name:<26} {len(results):>6} {bad:>5} {rate:>9.0f} {stats['p50']:>8.1f} {stats['p90']:>8.1f} "
        f"{stats['p99']:>8.1f} {stats['max']:>8.1f}"
    )
    return line, stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gmail", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--mailboxes", type=int, default=500)
    p.add_argument("--per-mailbox", type=int, default=10)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--gunicorn", default=None, help="gunicorn options (default: the Procfile's)")
    p.add_argument("--concurrency", type=int, default=2, help="prefork processes of the worker")
    p.add_argument("--redis-db", type=int, default=None)
    p.add_argument("--write", action="store_true", help="write the result into BENCHMARKS.md")
    args = p.parse_args(argv)
    raise_on_signals(signal.SIGTERM)  # stop the servers on the way out
    options = args.gunicorn or procfile_options()
    with tempfile.TemporaryDirectory(prefix="bench-gmail-") as tmp:
        run = Run(args, Path(tmp))
        pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
        servers: list[Any] = []
        try:
            run.setup()
            pool.submit(time.time).result()
            load = os.getloadavg()[0]
            worker = WorkerProcess(
                "worker.celery_app",
                "steps,slow,edge",
                run.env,
                run.workdir,
                "gmail-worker",
                concurrency=args.concurrency,
            ).start()
            servers.append(worker)
            ours = Gunicorn("webhooks:create_app()", options, run.env, run.workdir, "gmail-ours").start()
            servers.append(ours)
            base = Gunicorn("bench.edge_baseline:create_app()", options, run.env, run.workdir, "gmail-base").start()
            servers.append(base)
            base_worker = WorkerProcess(
                "bench.edge_baseline",
                BASELINE_QUEUE,
                run.env,
                run.workdir,
                "gmail-base-w",
                concurrency=args.concurrency,
            ).start()
            servers.append(base_worker)

            say("warm-up: 20 mailboxes x 2 pushes")
            warm = run.seed(20, "warm")
            reqs = run.pushes(warm, 2, ours.port, "warm")
            pool.submit(burst, ours.port, reqs, args.connections).result()
            run.wait_events(warm, 40)
            pool.submit(burst, base.port, run.baseline_requests(200, base.port, "warm"), args.connections).result()

            say(f"seeding {args.mailboxes} mailboxes x {args.per_mailbox} messages")
            boxes = run.seed(args.mailboxes, "run")
            reqs = run.pushes(boxes, args.per_mailbox, ours.port, "run")
            expected = args.mailboxes * args.per_mailbox
            history0 = run.counts(boxes)["history_calls"]
            say(f"burst: {len(reqs)} pushes over {args.connections} connections")
            res = pool.submit(burst, ours.port, reqs, args.connections).result()
            n, distinct, last = run.wait_events(boxes, expected)
            counts = run.counts(boxes)
            settle_s = (last.timestamp() - res["started"]) if last else float("nan")
            say(f"baseline burst: {len(reqs)} requests")
            base_res = pool.submit(
                burst, base.port, run.baseline_requests(len(reqs), base.port, "run"), args.connections
            ).result()
            ours_line, ours_stats = summary("proactive /webhooks/gmail", res)
            base_line, base_stats = summary("bare Flask + publish", base_res)
            lines = [
                f"Gmail push benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} cores "
                f"(load avg {load:.2f} at start), Python {platform.python_version()}; PostgreSQL + Redis; "
                f"gunicorn {options}; worker prefork -c {args.concurrency} -Q steps,slow,edge",
                f"{args.mailboxes} mailboxes x {args.per_mailbox} new INBOX messages, one signed push per message "
                f"({expected} pushes), {args.connections} connections, as fast as answered; "
                "email_received = one no-op step",
                "",
                "system                       sent   bad  accepted/s  p50 ms   p90 ms   p99 ms   max ms",
                ours_line,
                base_line,
                f"ours/baseline: throughput {ours_stats['rate'] / base_stats['rate']:.2f}x, "
                f"p99 {ours_stats['p99'] / base_stats['p99']:.2f}x",
                "",
                f"events: {n} email_received jobs for {expected} messages ({distinct} distinct keys), "
                f"{counts['emails']} emails rows, {counts['pushes']} push rows; "
                f"last event fired {settle_s:.1f} s after the first push",
                f"Gmail history.list calls for the burst: {counts['history_calls'] - history0} "
                f"(coalescing: {expected} pushes)",
                "",
                "Targets: >= 500 pushes/s accepted with p99 < 100 ms: "
                f"{ours_stats['rate']:.0f}/s, p99 {ours_stats['p99']:.1f} ms -> "
                f"{'met' if ours_stats['rate'] >= 500 and ours_stats['p99'] < 100 else 'NOT met'}; "
                f"no duplicates: {'met' if n == distinct == expected == counts['emails'] else 'NOT met'}",
            ]
            text = "\n".join(lines)
            print(text, flush=True)
            if args.write:  # the notes under the run's output are kept
                write_section(BENCHMARKS_MD, SECTION, section(text))
            return 0
        finally:
            for s in reversed(servers):
                s.stop()
            pool.shutdown(wait=False, cancel_futures=True)
            run.teardown()


def section(output: str) -> str:
    """This benchmark's BENCHMARKS.md section (what it measures, the command, the run's output)."""
    about = (__doc__ or "").split("\n\n", 1)[1].split("\n\nRun from")[0]
    return section_text(SECTION, f"{about}\n\nCommand:", ".venv/bin/python -m bench.gmail --write", output)


if __name__ == "__main__":
    sys.exit(main())
