"""Benchmark: the web edge (gunicorn + `webhooks:create_app()`) under load, with the workers running.

``.venv/bin/python -m bench.edge [--quick] [--write] [--baseline-ref REF] [--modes M,...] [--gunicorn "OPTIONS"]...``

One run: a private ``redis-server`` on a free port (no persistence; no other user of the machine's
Redis can flush its queues), the fake Slack of the tests (``tests.fakes.slack.FakeSlack``) in this
process and, for each system measured, a fresh PostgreSQL database (migrated to head, dropped at the
end), its own Redis DB, the demo org (``worker.ops.seed.seed_demo``) with one org API key.
The systems: this tree, and with ``--baseline-ref REF`` today's code, a git worktree of REF (made
once at ``/tmp/proactive-edge-REF``) whose database is migrated and seeded by its own code and whose
worker and gunicorn run from it. ``PROACTIVE_SEQUENCE_MODULES=sequences,bench.edge_dags``:
``coaching_weekly`` is one no-op step (fired over ``/api/events``), ``stale_deal_revival`` is no-op
-> approval -> no-op (clicked).

Each gunicorn configuration (``--gunicorn``, repeatable; default: the Procfile's) runs in each mode of
``--modes`` (default both): unpinned, and pinned as a fleet runs them (every gunicorn under
``taskset -c 0``, every celery worker under ``taskset -c 1``). Per configuration and mode each system
gets one ``celery -A worker.celery_app worker -P prefork -c 2 -Q steps,slow,edge`` and one gunicorn,
the bare baseline (bench/edge_baseline.py) its gunicorn and worker, all in their own process groups on
127.0.0.1 (always killed by group), ready on ``GET /healthz`` / the worker's ready file:

1. set-up: approvals opened for the clicks over each system's ``/api/events``, waited until
   ``awaiting_approval`` and their Slack message posted;
2. warm-up (uncounted): signed clicks on each system (each warm-up approval decided once, then
   clicked again), then ~``--warm-requests`` of wrk on our ``/api/events``; web worker RSS read
   from /proc (VmRSS);
3. ``/api/events`` throughput: wrk (``-t``/``-c``/``-d``, a Lua script giving every request a
   unique idempotency key) against ours and against the bare Flask baseline (same gunicorn options:
   parse the JSON, publish one Celery task, answer 202; its own worker), and against its durable
   floor (``bare Flask + INSERT``: the event INSERTed and committed before the publish, its task
   an UPDATE committed: what any accept that commits before answering pays at least), order
   alternating over ``--rounds``; then the wait until the worker drained the run (every job final) and the count of
   jobs (tasks, for the baseline) against the 2xx answers;
4. ``/slack/interactive``: open-loop load at each of ``--click-rates`` (default 20/s, an idle
   system, then 100/s, the target; one request every 1/rate s whatever the answers, from a separate
   process so the fake Slack's threads do not delay it) on each system, order alternating, each
   request signed as Slack signs it: a share (``--decide-share``, default all) are deciding clicks
   on fresh approvals of idle jobs (one conditional UPDATE + a queued slack_replace), the rest
   clicks on approvals already decided (the "already decided" ephemeral answer). Ack latency is
   measured from the scheduled send time. Click -> next step started: the deciding click's send
   time -> ``started_at`` of the step after the approval (``step_runs``; both this machine's wall
   clock). CPU per click of the system's web, worker and PostgreSQL backends over the load and the
   settling, and ours / today's;
5. with ``--total-requests N``, a soak: wrk on ``/api/events`` plus clicks at ``--soak-click-rate``
   until our server has answered N requests in all; web worker RSS read again. Error and warning
   lines of the gunicorn and worker logs are counted.

``--py-spy DIR`` records the web workers during the first measured ``/api/events`` run and each
click phase (profiling only; not for the reported numbers).

The machine has 2 cores shared by PostgreSQL, Redis, gunicorn, the workers and the load generators,
so ours and the baselines run in the same run and the ratios are the reading.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
from sqlalchemy import update

from bench.child_profile import DIR_ENV as CPROFILE_DIR_ENV
from bench.edge_baseline import COUNTER_PREFIX
from bench.edge_baseline import QUEUE as BASELINE_QUEUE
from bench.edge_baseline import ensure_schema as ensure_durable_schema
from bench.harness import (
    BENCHMARKS_MD,
    PG_ADMIN_DSN,
    REPO,
    Backends,
    ChildProcess,
    WorkerProcess,
    bench_env,
    cpu_delta,
    cpu_seconds,
    epoch,
    fresh_db_name,
    machine_line,
    percentile,
    raise_on_signals,
    rss_mib,
    section_text,
    start_py_spy,
    stop_py_spy,
    use_env,
    write_section,
)
from bench.web import Gunicorn, exchange, free_port, http_request, procfile_options, raise_nofile
from tests.fakes.slack import FakeSlack
from tests.support.slack import click, form_body, signed_headers

SEQUENCE_MODULES = "sequences,bench.edge_dags"
QUEUES = "steps,slow,edge"
EVENTS_PATH, BASELINE_PATH, CLICK_PATH = "/api/events", "/events", "/slack/interactive"
DURABLE_PATH = "/events-durable"  # the bare baseline's durable floor (bench/edge_baseline.py)
GTHREAD_OPTIONS = "-w 2 -k gthread --threads 8 --timeout 60"
SYNC_OPTIONS = "-w 2 --timeout 60"  # gunicorn's default worker class, for comparison
WRK = "/usr/bin/wrk"
SIGNING_SECRET = "bench-edge-signing-secret"
ADMIN_TOKEN = "bench-edge-admin-" + uuid.uuid4().hex
FINAL = ("completed", "failed", "cancelled", "expired", "timeout", "skipped")
SECTION = "## Web edge (bench/edge.py)"

# Pause between two "drained yet?" checks (seconds): one cheap query each.
POLL_S = 0.1
# Longest wait for the worker to drain a phase (seconds, plus DRAIN_PER_JOB_S per job).
DRAIN_TIMEOUT_S = 120.0
DRAIN_PER_JOB_S = 0.02
# How long the queues must stay empty with fewer jobs than 2xx answers before they count as lost (s).
LOSS_CHECK_S = 2.0
# Longest wait for the run's private redis-server to answer (seconds).
REDIS_START_S = 10.0
# One HTTP request of the open-loop client may take this long before it counts as failed (seconds).
REQUEST_TIMEOUT_S = 30.0
# Lead time before the first open-loop request (seconds): the bodies reach the client process first.
OPEN_LOOP_LEAD_S = 0.5
# Log lines that count as errors / warnings (gunicorn: "[ERROR]", "WORKER TIMEOUT"; Celery: "ERROR/", "WARNING/").
LOG_ERROR = re.compile(r"\[ERROR\]|\[CRITICAL\]|WORKER TIMEOUT|ERROR/|CRITICAL/|Traceback")
LOG_WARNING = re.compile(r"\[WARNING\]|WARNING/")
GUNICORN_INFO = re.compile(r"^\[[^]]+\] \[\d+\] \[INFO\] ")
# Niceness of the open-loop load generator (lower = more CPU when contended; only root may go below 0).
LOAD_GENERATOR_NICE = -5
# Clicks on each warm-up approval after the deciding one (the "already decided" path warmed too).
WARM_REPEATS = 3
# Targets the benchmark is measured against (each reported as met or NOT met).
TARGET_CLICK_RATE = 100.0  # clicks/s at which the ack and click -> next step targets hold
TARGET_ACK_P99_MS = 50.0
TARGET_NEXT_STEP_P99_MS = 150.0
TARGET_IDLE_RATE = 20.0  # clicks/s of the idle target: a paused job's next step started quickly
TARGET_IDLE_NEXT_STEP_P99_MS = 25.0
TARGET_CPU_RATIO = 0.5  # CPU per deciding click (web + worker + pg), ours / today's code
TARGET_EVENTS_RATIO = 0.8  # /api/events throughput, ours / the bare Flask + publish baseline
# Largest RSS growth per web worker after warm-up that still reads "no growth" (MiB): allocator
# noise; a leak of 1 KB per request would show ~45 MiB over 45k requests.
TARGET_RSS_GROWTH_MIB = 5.0

OURS, BASE = "proactive /api/events", "bare Flask + publish"
DURABLE = "bare Flask + INSERT"  # the durable floor: INSERT + COMMIT, publish; its task UPDATE + COMMIT
BASE_PATHS = {BASE: BASELINE_PATH, DURABLE: DURABLE_PATH}
OURS_CODE, BASE_CODE = "this tree", "today's code"  # the systems whose clicks are measured
UNPINNED, PINNED = "unpinned", "pinned (gunicorn taskset -c 0, workers taskset -c 1)"

# Today's system (a worktree of --baseline-ref): its database migrated and seeded by its own code,
# as Bench.seed does for ours; prints one line with the org, its users and the API key.
SEED_SCRIPT = """
import json, os
import httpx
import psycopg
from sqlalchemy import update
from worker import migrate
migrate.upgrade(os.environ["DATABASE_URL"])
from worker.access.api_keys import create_key
from worker.db import transaction
from worker.models import User
from worker.ops.seed import seed_demo
from worker.orgs import set_dry_run
r = seed_demo()
set_dry_run(r.org_id, False, actor="bench")
with transaction() as conn:
    conn.execute(
        update(User.__table__).where(User.org_id == r.org_id).values(quiet_hours=None, max_notifications_per_hour=0)
    )
key, _ = create_key(r.org_id, "bench edge")
users = {k: str(v) for k, v in dict(r.users).items()}
print("EDGE-SEED " + json.dumps({"org_id": str(r.org_id), "users": users, "key": key}))
"""

# wrk: every request a unique envelope (thread id + counter in the idempotency key); done() prints
# one JSON line with the summary and the latency percentiles (microseconds).
WRK_SCRIPT = r"""
local counter = 0
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end
function init(args)
  path, tag, etype, org, user, token = args[1], args[2], args[3], args[4], args[5], args[6]
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"type":"%s","org_id":"%s","user_id":"%s","payload":{"run":"%s"},' ..
    '"idempotency_key":"edge:%s:%d:%d"}', etype, org, user, tag, tag, tid, counter)
  return wrk.format("POST", path, headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'EDGE-WRK {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50":%.1f,"p90":%.1f,"p99":%.1f,"max":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def say(text: str) -> None:
    """A progress line (stderr, so the report on stdout stays clean)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def ms(values_s: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of seconds, in milliseconds."""
    return percentile(list(values_s), pct) * 1000 if values_s else float("nan")


# --------------------------------------------------------------------------- load generators


@dataclass
class WrkResult:
    """One closed-loop load run (wrk, or the asyncio fallback)."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> int:
        """Answers with a 2xx status (wrk counts >= 400 as status errors; we send nothing that redirects)."""
        return self.requests - self.non2xx


def run_wrk(script: Path, port: int, args: list[str], threads: int, connections: int, duration_s: float) -> WrkResult:
    """wrk against 127.0.0.1:port with the Lua script; parses the script's JSON line."""
    cmd = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
        "--",
        *args,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
    line = next((x for x in out.stdout.splitlines() if x.startswith("EDGE-WRK ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
    d = json.loads(line.removeprefix("EDGE-WRK "))
    return WrkResult(
        d["requests"],
        d["duration_us"] / 1e6,
        d["p50"] / 1000,
        d["p90"] / 1000,
        d["p99"] / 1000,
        d["max"] / 1000,
        d["status"],
        d["connect"] + d["read"] + d["write"] + d["timeout"],
    )


def open_loop(
    port: int, requests: list[bytes], rate: float, start_at: float
) -> list[tuple[float, float, float, int, int]]:
    """Send ``requests[i]`` at ``start_at + i / rate`` (wall clock) whatever the answers (open loop).

    Runs in a child process, at a higher priority than the servers when allowed (root), so that on
    a saturated 2-core box the requests still leave on time (the lag is reported). Returns per
    request (scheduled, sent, answered, status, body bytes), times as epoch seconds; status -1 for
    a failed or timed-out exchange."""
    raise_nofile()
    with contextlib.suppress(PermissionError, OSError):
        os.setpriority(os.PRIO_PROCESS, 0, LOAD_GENERATOR_NICE)
    return asyncio.run(_open_loop(port, requests, rate, start_at))


async def _open_loop(port: int, requests: list[bytes], rate: float, start_at: float) -> list[Any]:
    loop = asyncio.get_running_loop()
    results: list[Any] = [None] * len(requests)
    base = loop.time() + (start_at - time.time())

    async def one(i: int, scheduled: float) -> None:
        sent = time.time()
        try:
            status, size = await asyncio.wait_for(exchange("127.0.0.1", port, requests[i]), REQUEST_TIMEOUT_S)
        except (OSError, ValueError, IndexError):
            status, size = -1, 0
        results[i] = (scheduled, sent, time.time(), status, size)

    tasks = []
    for i in range(len(requests)):
        delay = base + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, start_at + i / rate)))
    await asyncio.gather(*tasks)
    return results


def closed_loop(port: int, path: str, args: list[str], connections: int, duration_s: float) -> dict[str, Any]:
    """The wrk fallback (no wrk on the machine): ``connections`` asyncio loops posting the same
    envelopes as the Lua script for ``duration_s``. Runs in a child process."""
    raise_nofile()
    return asyncio.run(_closed_loop(port, path, args, connections, duration_s))


async def _closed_loop(port: int, path: str, args: list[str], connections: int, duration_s: float) -> dict[str, Any]:
    tag, etype, org, user, token = args[1:6]
    latencies: list[float] = []
    bad = errors = 0
    end = time.monotonic() + duration_s

    async def conn(k: int) -> None:
        nonlocal bad, errors
        n = 0
        while time.monotonic() < end:
            n += 1
            body = json.dumps(
                {
                    "type": etype,
                    "org_id": org,
                    "user_id": user,
                    "payload": {"run": tag},
                    "idempotency_key": f"edge:{tag}:{k}:{n}",
                }
            ).encode()
            raw = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode() + body
            t0 = time.monotonic()
            try:
                status, _ = await asyncio.wait_for(exchange("127.0.0.1", port, raw), REQUEST_TIMEOUT_S)
            except (OSError, ValueError, IndexError):
                errors += 1
                continue
            latencies.append(time.monotonic() - t0)
            bad += status >= 300

    t0 = time.monotonic()
    await asyncio.gather(*(conn(k) for k in range(connections)))
    return {"latencies": latencies, "bad": bad, "errors": errors, "seconds": time.monotonic() - t0}


# --------------------------------------------------------------------------- measurements


@dataclass
class Throughput:
    """One wrk run on /api/events (ours) or /events (baseline) and what followed it."""

    system: str
    round: int
    wrk: WrkResult
    executed: int  # jobs in the database (ours) / tasks run (baseline) for this run
    drain_s: float  # end of the load -> last job final (ours) / last task counted (baseline)
    not_completed: int  # jobs final but not completed (ours)
    cpu_ms: dict[str, float]  # CPU ms per answered request: web, worker, pg, redis


@dataclass
class Approval:
    """A pending approval to click: its ids, its approver and its Slack message."""

    id: uuid.UUID
    job_id: uuid.UUID
    slack_user: str
    channel: str | None
    ts: str | None


@dataclass
class Clicks:
    """One open-loop click phase (one rate, one system) of one configuration."""

    system: str = ""  # OURS_CODE, or BASE_CODE with its ref
    decide_ms: list[float] = field(default_factory=list)  # ack latency of deciding clicks
    repeat_ms: list[float] = field(default_factory=list)  # ack latency of clicks on decided approvals
    lag_ms: list[float] = field(default_factory=list)  # sent - scheduled (the load generator behind)
    next_step_ms: list[float] = field(default_factory=list)  # deciding click sent -> next step started_at
    bad: list[tuple[int, int]] = field(default_factory=list)  # (status, body bytes) of wrong answers
    offered_rps: float = 0.0
    seconds: float = 0.0
    answered_rps: float = 0.0  # answers / (last answer - first scheduled send)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per click (load + settling)
    worker_main_ms: float = 0.0  # of the worker's: its main process (Celery's consumer), per click
    decided: int = 0  # fresh approvals found approved afterwards
    completed: int = 0  # their jobs completed
    answers: int = 0  # ephemeral answers the fake Slack got for the repeat clicks
    replaced: int = 0  # response_url replacements for the deciding clicks
    chat_updates: int = 0  # chat.update calls on the decided approvals' messages
    settle_s: float = 0.0  # end of the load -> everything above done


@dataclass
class ConfigResult:
    """Everything measured for one gunicorn configuration."""

    options: str
    mode: str  # UNPINNED or PINNED
    runs: list[Throughput] = field(default_factory=list)
    clicks: list[Clicks] = field(default_factory=list)
    rss0: dict[int, float] = field(default_factory=dict)
    rss1: dict[int, float] = field(default_factory=dict)
    requests0: int = 0  # answered by our server at the first RSS reading
    requests1: int = 0  # ... at the second
    soak_errors: int = 0
    soak_drain_s: float = 0.0
    log_errors: list[str] = field(default_factory=list)  # error lines of the servers' and workers' logs
    log_warnings: list[str] = field(default_factory=list)


class InTree:
    """Mixin of a benchmark process that runs a given code tree (cwd and PYTHONPATH), optionally
    pinned to CPUs (``taskset -c``)."""

    tree: Path = REPO
    proc: subprocess.Popen[bytes] | None
    args: list[str]
    env: dict[str, str]
    log_path: Path

    def place(self, tree: Path, cpus: str | None) -> None:
        """Run from ``tree``, on ``cpus`` (None: anywhere)."""
        self.tree = tree
        self.env["PYTHONPATH"] = str(tree)
        if cpus is not None:
            self.args = ["taskset", "-c", cpus, *self.args]

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process in its tree (own session, output appended to the log)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, cwd=self.tree, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self.proc


class TreeGunicorn(InTree, Gunicorn):
    """A gunicorn of a code tree (see InTree)."""

    def __init__(self, app: str, options: str, system: System, workdir: Path, name: str, cpus: str | None) -> None:
        super().__init__(app, options, system.env, workdir, name)
        self.place(system.tree, cpus)


class TreeWorker(InTree, WorkerProcess):
    """A celery worker of a code tree (see InTree)."""

    def __init__(
        self, app: str, queues: str, system: System, workdir: Path, name: str, concurrency: int, cpus: str | None
    ) -> None:
        super().__init__(app, queues, system.env, workdir, name, concurrency=concurrency)
        self.place(system.tree, cpus)


@dataclass
class System:
    """A system whose clicks are measured: this tree's code, or today's (a worktree of
    ``--baseline-ref``), each with its own database, Redis DB, worker and web server."""

    label: str
    tree: Path
    db: Backends
    env: dict[str, str] = field(default_factory=dict)
    worker: WorkerProcess | None = None
    web: Gunicorn | None = None
    org_id: uuid.UUID | None = None
    users: dict[str, uuid.UUID] = field(default_factory=dict)
    slack_ids: dict[uuid.UUID, str] = field(default_factory=dict)
    key: str = ""

    def queues_empty(self) -> bool:
        """No message waiting or unacknowledged in any of the system's Redis queues."""
        pipe = self.db.redis.pipeline()
        for q in (*QUEUES.split(","), BASELINE_QUEUE):
            pipe.llen(q)
        pipe.hlen("unacked")
        return not any(pipe.execute())


class Bench:
    """Owns the databases, the Redis DBs, the fake Slack, the workers and the measurements of one run."""

    def __init__(self, args: argparse.Namespace, backends: Backends, workdir: Path, base: Backends | None) -> None:
        self.args = args
        self.workdir = workdir
        self.ours = System(OURS_CODE, REPO, backends)
        self.base = System(f"{BASE_CODE} ({args.baseline_ref})", args.baseline_tree, base) if base else None
        self.dags: Any = None  # bench.edge_dags, once the sequences are loaded
        self.slack: Any = None
        self.pool: Executor | None = None
        self.script = workdir / "events.lua"
        self.served = 0  # requests answered by the current configuration's server (ours)
        self.started: dict[str, datetime] = {}  # run tag -> a time before its first job

    @property
    def db(self) -> Backends:
        """Our system's database and Redis DB."""
        return self.ours.db

    @property
    def worker(self) -> WorkerProcess | None:
        """Our system's worker (one per configuration)."""
        return self.ours.worker

    @property
    def systems(self) -> list[System]:
        """The systems whose clicks are measured: ours, then today's when ``--baseline-ref`` is given."""
        return [self.ours, *([self.base] if self.base else [])]

    # ------------------------------------------------------------------ set-up / tear-down

    def setup(self, env: dict[str, str]) -> None:
        """Databases, Redis, fake Slack, demo org and key of each system, the load-generator process."""
        self.slack = FakeSlack().start()
        env.update(SLACK_BOT_TOKEN=self.slack.token, SLACK_API_URL=self.slack.url)
        os.environ.update(env)
        self.ours.env = env
        self.db.create()
        from worker.engine import registry  # after use_env: worker modules read the settings at import

        registry.load()
        from bench import edge_dags  # registered by load() (imported earlier it would register first)

        assert registry.get(edge_dags.EVENTS_EVENT) is edge_dags.ACCEPT
        assert registry.get(edge_dags.CLICK_EVENT) is edge_dags.CLICK
        self.dags = edge_dags
        self.seed()
        ensure_durable_schema(self.db.dsn)
        if self.base is not None:
            self.seed_in_tree(self.base, env)
        self.script.write_text(WRK_SCRIPT)
        self.pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
        self.pool.submit(time.time).result()  # the child is up before anything is timed

    def seed(self) -> None:
        """The demo org (no quiet hours, no hourly budget: nothing held back) and its API key."""
        from worker.access.api_keys import create_key  # after use_env (settings read at import)
        from worker.db import transaction
        from worker.models import User
        from worker.ops.seed import seed_demo
        from worker.orgs import set_dry_run

        result = seed_demo()
        self.org_id, self.users = result.org_id, dict(result.users)
        set_dry_run(self.org_id, False, actor="bench")  # a new demo org is dry-run; the bench measures real sends
        with transaction() as conn:
            conn.execute(
                update(User.__table__)
                .where(User.org_id == self.org_id)
                .values(quiet_hours=None, max_notifications_per_hour=0)
            )
        self.key, _ = create_key(self.org_id, "bench edge")
        self.ours.org_id, self.ours.users, self.ours.key = self.org_id, self.users, self.key
        self.ours.slack_ids = slack_ids_of(self.ours)

    def seed_in_tree(self, system: System, env: dict[str, str]) -> None:
        """Today's system: its database made, migrated and seeded as ``seed`` does, by its own code."""
        db = system.db
        system.env = {
            **{k: v for k, v in env.items() if k != CPROFILE_DIR_ENV},  # --cprofile: this tree's workers only
            "PROACTIVE_SEQUENCE_MODULES": SEQUENCE_MODULES,
            "DATABASE_URL": db.url,
            "BENCH_DB_DSN": db.dsn,
            "BROKER_URL": db.broker_url or "",
            "BENCH_BROKER_URL": db.broker_url or "",
        }
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db.db_name}"')
        db.created = True
        out = subprocess.run(
            [sys.executable, "-c", SEED_SCRIPT],
            cwd=system.tree,
            env={**os.environ, **system.env, "PYTHONPATH": str(system.tree)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        line = next((x for x in out.stdout.splitlines() if x.startswith("EDGE-SEED ")), None)
        if out.returncode != 0 or line is None:
            raise RuntimeError(f"seeding {system.label} failed: {out.stdout[-2000:]} {out.stderr[-3000:]}")
        seeded = json.loads(line.removeprefix("EDGE-SEED "))
        db.connect()
        system.org_id = uuid.UUID(seeded["org_id"])
        system.users = {k: uuid.UUID(v) for k, v in seeded["users"].items()}
        system.key = seeded["key"]
        system.slack_ids = slack_ids_of(system)

    def teardown(self) -> None:
        """Stop the child process, drop the databases, flush Redis (errors reported)."""
        for system in self.systems:
            if system.worker is not None:
                system.worker.stop()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        if self.slack is not None:
            self.slack.stop()
        for system in reversed(self.systems):
            system.db.close()

    # ------------------------------------------------------------------ helpers

    @contextlib.contextmanager
    def servers(self, options: str, k: int, pinned: bool) -> Iterator[tuple[Gunicorn, Gunicorn, WorkerProcess]]:
        """Each system's worker and gunicorn, and the bare baseline's gunicorn and worker, for one
        configuration (pinned: every gunicorn on CPU 0, every worker on CPU 1); ours, the bare
        baseline's gunicorn and its worker."""
        a = self.args
        web_cpus, worker_cpus = ("0", "1") if pinned else (None, None)
        started: list[ChildProcess] = []
        try:
            for s, system in enumerate(self.systems):
                name = f"{'ours' if s == 0 else 'today'}-{k}"
                system.worker = TreeWorker(
                    "worker.celery_app", QUEUES, system, self.workdir, f"edge-worker-{name}", a.concurrency, worker_cpus
                )
                started.append(system.worker.start())
                system.web = TreeGunicorn("webhooks:create_app()", options, system, self.workdir, name, web_cpus)
                started.append(system.web.start())
            bare = TreeGunicorn(
                "bench.edge_baseline:create_app()", options, self.ours, self.workdir, f"bare-{k}", web_cpus
            )
            started.append(bare.start())
            bare_worker = TreeWorker(
                "bench.edge_baseline",
                BASELINE_QUEUE,
                self.ours,
                self.workdir,
                f"edge-bare-{k}",
                a.concurrency,
                worker_cpus,
            )
            started.append(bare_worker.start())
            assert self.ours.web is not None
            yield self.ours.web, bare, bare_worker
        finally:
            for process in reversed(started):
                process.stop()
            for system in self.systems:
                system.worker, system.web = None, None

    def redis_pid(self) -> int:
        """The Redis server's PID (same machine)."""
        return int(self.db.redis.info("server")["process_id"])

    def cpu(self, web: Gunicorn, worker: WorkerProcess, db: Backends | None = None) -> dict[str, dict[int, float]]:
        """CPU seconds per process of the server, the worker, PostgreSQL (backends of ``db``'s
        database, ours by default) and Redis."""
        return {
            "web": cpu_seconds(web.pids()),
            "worker": cpu_seconds(worker.pids()),
            "pg": cpu_seconds((db or self.db).pg_pids(others_only=True)),  # the benchmark's polling left out
            "redis": cpu_seconds([self.redis_pid()]),
        }

    def wrk_args(self, path: str, tag: str) -> list[str]:
        """The Lua script's arguments: path, run tag, event type, org, user, key."""
        return [path, tag, self.dags.EVENTS_EVENT, str(self.org_id), str(self.users["alice"]), self.key]

    def load(self, port: int, path: str, tag: str, duration_s: float) -> WrkResult:
        """Closed-loop load on an events endpoint: wrk, or the asyncio fallback without wrk."""
        a = self.args
        args = self.wrk_args(path, tag)
        # The tag's jobs are created after this (a second of margin): polls read them by the
        # (org_id, created_at) index instead of scanning every job of the org.
        self.started[tag] = datetime.fromtimestamp(time.time() - 1, UTC)
        if Path(WRK).exists():
            return run_wrk(self.script, port, args, a.threads, a.connections, duration_s)
        assert self.pool is not None
        d = self.pool.submit(closed_loop, port, path, args, a.connections, duration_s).result()
        lat = d["latencies"]
        return WrkResult(
            len(lat) + d["errors"],
            d["seconds"],
            ms(lat, 50),
            ms(lat, 90),
            ms(lat, 99),
            max(lat, default=0) * 1000,
            d["bad"],
            d["errors"],
        )

    def queues_empty(self) -> bool:
        """No message waiting or unacknowledged in any of our worker's Redis queues."""
        return self.ours.queues_empty()

    def wait_idle(self, what: str, timeout_s: float = DRAIN_TIMEOUT_S) -> float:
        """Wait until every system's worker has nothing queued or running; seconds waited."""
        t0 = time.monotonic()
        for system in self.systems:
            while not system.queues_empty():
                assert system.worker is not None
                system.worker.check_alive()
                if time.monotonic() - t0 > timeout_s:
                    raise RuntimeError(
                        f"the worker of {system.label} did not drain ({what}) in {timeout_s:.0f} s\n"
                        f"{system.worker.log_tail()}"
                    )
                time.sleep(POLL_S)
        return time.monotonic() - t0

    def jobs_of(self, tag: str) -> tuple[int, int, int, float | None]:
        """(jobs, final, final but not completed, last finished_at) of a run tag's jobs."""
        row = self.db.admin.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = ANY(%s)),"
            " count(*) FILTER (WHERE status = ANY(%s) AND status <> 'completed'), max(finished_at)"
            " FROM sequence_jobs WHERE org_id = %s AND created_at >= %s AND idempotency_key LIKE %s",
            (list(FINAL), list(FINAL), self.org_id, self.started[tag], keys_of(tag)),
        ).fetchone()
        return row[0], row[1], row[2], epoch(row[3]) if row[3] else None

    def wait_jobs(self, tag: str, expected: int) -> tuple[int, int, float | None]:
        """Wait until every job of the tag is final: (jobs, final but not completed, last finished_at).

        Normally there are at least ``expected`` (the 2xx answers); fewer once the queues stayed
        empty for LOSS_CHECK_S means jobs were lost, which the report shows."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S + expected * DRAIN_PER_JOB_S
        empty_since: float | None = None
        while True:
            n, final, bad, last = self.jobs_of(tag)
            if final == n:
                if n >= expected:
                    return n, bad, last
                empty_since = (empty_since or time.monotonic()) if self.queues_empty() else None
                if empty_since is not None and time.monotonic() - empty_since > LOSS_CHECK_S:
                    return n, bad, last
            assert self.worker is not None
            self.worker.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"run {tag}: {final}/{n} jobs final ({expected} answered 2xx) in time\n{self.worker.log_tail()}"
                )
            time.sleep(POLL_S)

    def wait_tasks(self, tag: str, expected: int, worker: WorkerProcess) -> tuple[int, float]:
        """Baseline: wait until the tasks of the tag ran (at least ``expected``, or the queue stayed
        empty for LOSS_CHECK_S); (tasks run, when the count last changed)."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S + expected * DRAIN_PER_JOB_S
        key = COUNTER_PREFIX + tag
        last, seen = time.time(), -1
        empty_since: float | None = None
        while True:
            ran = int(self.db.redis.get(key) or 0)
            if ran != seen:
                seen, last, empty_since = ran, time.time(), None
            empty = self.queues_empty()
            if ran >= expected and empty:
                return ran, last
            empty_since = (empty_since or time.monotonic()) if empty else None
            if empty_since is not None and time.monotonic() - empty_since > LOSS_CHECK_S:
                return ran, last
            worker.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"baseline run {tag}: {ran}/{expected} tasks ran in time\n{worker.log_tail()}")
            time.sleep(POLL_S / 2)

    # ------------------------------------------------------------------ /api/events

    def throughput(self, system: str, rnd: int, web: Gunicorn, worker: WorkerProcess) -> Throughput:
        """One measured wrk run, the drain after it, and the CPU it cost."""
        tag = uuid.uuid4().hex[:10]
        path = BASE_PATHS.get(system, EVENTS_PATH)
        c0 = self.cpu(web, worker)
        res = self.load(web.port, path, tag, self.args.duration)
        end = time.time()
        web.check_alive()
        if system == OURS:
            self.served += res.requests
            executed, not_completed, last = self.wait_jobs(tag, res.ok)
        else:
            not_completed = 0
            executed, last = self.wait_tasks(tag, res.ok, worker)
        c1 = self.cpu(web, worker)
        per = max(res.requests, 1)
        cpu_ms = {k: cpu_delta(c0[k], c1[k]) * 1000 / per for k in c0}
        return Throughput(system, rnd, res, executed, max(0.0, (last or end) - end), not_completed, cpu_ms)

    # ------------------------------------------------------------------ clicks

    def open_approvals(self, system: System, n: int, label: str) -> list[Approval]:
        """Fire ``n`` click-DAG jobs over the system's ``/api/events`` (reps in turn) and wait until
        each awaits its approval and its Slack message is posted."""
        assert system.web is not None and system.worker is not None
        tag = f"{label}-{uuid.uuid4().hex[:8]}"
        reps = list(system.users.values())
        with httpx.Client(base_url=f"http://127.0.0.1:{system.web.port}", timeout=REQUEST_TIMEOUT_S) as client:
            for i in range(n):
                event = {
                    "type": self.dags.CLICK_EVENT,
                    "org_id": str(system.org_id),
                    "user_id": str(reps[i % len(reps)]),
                    "payload": {"run": tag},
                    "idempotency_key": f"edge:{tag}:{i}",
                }
                answer = client.post(EVENTS_PATH, json=event, headers={"Authorization": f"Bearer {system.key}"})
                if answer.status_code != 202:
                    raise RuntimeError(
                        f"{system.label}: opening an approval answered {answer.status_code} {answer.text}"
                    )
        sql = (
            "SELECT a.id, a.job_id, j.user_id, o.channel, o.ts, o.status FROM sequence_jobs j"
            " JOIN approvals a ON a.job_id = j.id AND a.status = 'pending'"
            " LEFT JOIN slack_outbox o ON o.approval_id = a.id AND o.kind = 'approval'"
            " WHERE j.org_id = %s AND j.payload->>'run' = %s"
        )
        deadline = time.monotonic() + DRAIN_TIMEOUT_S + n * DRAIN_PER_JOB_S
        while True:
            rows = system.db.admin.execute(sql, (system.org_id, tag)).fetchall()
            if len(rows) == n and all(r[5] == "sent" for r in rows):
                break
            system.worker.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{system.label}: {len(rows)}/{n} approvals open ({sum(r[5] == 'sent' for r in rows)} posted)"
                )
            time.sleep(POLL_S)
        return [Approval(r[0], r[1], system.slack_ids[r[2]], r[3], r[4]) for r in rows]

    def click_request(self, port: int, a: Approval) -> tuple[bytes, str]:
        """A signed ``orch_approve`` click on ``a`` by its approver with a fresh response_url; the raw
        request and the URL's path (to find the answer in the fake Slack)."""
        url = self.slack.response_url(a.channel, a.ts)
        payload = click(
            "orch_approve",
            str(a.id),
            user=a.slack_user,
            response_url=url,
            channel=a.channel or "D00000001",
            message_ts=a.ts or "1700000000.000100",
        )
        body = form_body(payload)
        return http_request(port, CLICK_PATH, body, signed_headers(body, secret=SIGNING_SECRET)), urlsplit(url).path

    def send_clicks(self, port: int, requests: list[bytes], rate: float) -> list[tuple[float, float, float, int, int]]:
        """Open-loop clicks from the child process, starting shortly after now."""
        assert self.pool is not None
        start_at = time.time() + OPEN_LOOP_LEAD_S
        return self.pool.submit(open_loop, port, requests, rate, start_at).result()

    def warm_clicks(self, system: System, pool: list[Approval]) -> None:
        """Decide each warm-up approval with a click, then click each again ``WARM_REPEATS`` times."""
        web = system.web
        assert web is not None
        reqs = [self.click_request(web.port, a)[0] for a in pool]
        reqs += [self.click_request(web.port, a)[0] for _ in range(WARM_REPEATS) for a in pool]
        res = self.send_clicks(web.port, reqs, min(self.args.click_rates))
        if system is self.ours:
            self.served += len(res)
        bad = [(r[3], r[4]) for r in res if r[3] != 200]
        if bad:
            raise RuntimeError(f"{system.label}: warm-up clicks answered {bad[:5]}\n{web.log_tail()}")

    def n_fresh(self, rate: float) -> int:
        """Fresh approvals a click phase at ``rate`` decides."""
        n = round(rate * self.args.click_duration)
        every = max(1, round(1 / self.args.decide_share))
        return -(-n // every)

    def clicks(self, system: System, rate: float, fresh: list[Approval], decided: list[Approval]) -> Clicks:
        """One measured open-loop click phase of a system at ``rate`` (see the module docstring)."""
        a = self.args
        web, worker = system.web, system.worker
        assert web is not None and worker is not None
        n = round(rate * a.click_duration)
        every = max(1, round(1 / a.decide_share))
        plan: list[tuple[bool, Approval]] = []
        fi = di = 0
        for i in range(n):
            if i % every == 0 and fi < len(fresh):
                plan.append((True, fresh[fi]))
                fi += 1
            else:
                plan.append((False, decided[di % len(decided)]))
                di += 1
        built = [self.click_request(web.port, ap) for _, ap in plan]
        reqs, paths = [b[0] for b in built], [b[1] for b in built]
        calls0 = len(self.slack.calls("response_url"))
        c0 = self.cpu(web, worker, system.db)
        res = self.send_clicks(web.port, reqs, rate)
        end = time.time()
        if system is self.ours:
            self.served += len(res)
        web.check_alive()
        out = Clicks(system=system.label, offered_rps=rate, seconds=n / rate)
        out.answered_rps = len(res) / max(1e-9, max(r[2] for r in res) - min(r[0] for r in res))
        sent_at: dict[uuid.UUID, float] = {}
        for (deciding, ap), (scheduled, sent, answered, status, size) in zip(plan, res, strict=True):
            if status != 200 or size != 0:
                out.bad.append((status, size))
            (out.decide_ms if deciding else out.repeat_ms).append((answered - scheduled) * 1000)
            out.lag_ms.append((sent - scheduled) * 1000)
            if deciding:
                sent_at[ap.id] = sent
        # Settle: every deciding click's job completed, every answer reached the fake Slack.
        repeat_paths = {p for (deciding, _), p in zip(plan, paths, strict=True) if not deciding}
        decide_paths = {p for (deciding, _), p in zip(plan, paths, strict=True) if deciding}
        ids = list(sent_at)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S + n * DRAIN_PER_JOB_S
        while True:
            decided_n, completed = system.db.admin.execute(
                "SELECT count(*) FILTER (WHERE a.status = 'approved'), count(*) FILTER (WHERE j.status = 'completed')"
                " FROM approvals a JOIN sequence_jobs j ON j.id = a.job_id WHERE a.id = ANY(%s)",
                (ids,),
            ).fetchone()
            calls = self.slack.calls("response_url")[calls0:]
            answers = sum(1 for c in calls if c.params["_path"] in repeat_paths and c.status == 200)
            replaced = sum(1 for c in calls if c.params["_path"] in decide_paths and c.status == 200)
            done = completed == len(ids) and answers >= len(repeat_paths) and system.queues_empty()
            if done or time.monotonic() > deadline:
                break
            worker.check_alive()
            time.sleep(POLL_S)
        out.settle_s = time.time() - end
        c1 = self.cpu(web, worker, system.db)
        out.cpu_ms = {k: cpu_delta(c0[k], c1[k]) * 1000 / n for k in c0}
        main = worker.proc.pid if worker.proc is not None else None
        out.worker_main_ms = (c1["worker"].get(main, 0.0) - c0["worker"].get(main, 0.0)) * 1000 / n
        out.decided, out.completed, out.answers, out.replaced = decided_n, completed, answers, replaced
        out.chat_updates = sum(
            1 for c in self.slack.calls("chat.update") if c.params.get("ts") in {ap.ts for ap in fresh}
        )
        rows = system.db.admin.execute(
            "SELECT a.id, s.started_at FROM approvals a JOIN step_runs s ON s.job_id = a.job_id AND s.step = %s"
            " WHERE a.id = ANY(%s) AND s.started_at IS NOT NULL",
            ("after", ids),
        ).fetchall()
        out.next_step_ms = [(epoch(started) - sent_at[aid]) * 1000 for aid, started in rows]
        return out

    # ------------------------------------------------------------------ profiling

    def spy(
        self, web: Gunicorn | WorkerProcess | None, phase: str, k: int
    ) -> tuple[subprocess.Popen[bytes], Path] | None:
        """Profiling (``--py-spy DIR``): sample the web workers (or a Celery worker's processes) during
        a measured phase."""
        if not self.args.py_spy or web is None or web.proc is None:
            return None
        path = Path(self.args.py_spy) / f"edge-config{k + 1}-{phase}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        proc = start_py_spy(web.proc.pid, path, idle=not isinstance(web, WorkerProcess))  # a worker: no idle samples
        time.sleep(1.0)  # py-spy attaches before the load starts
        return proc, path

    def unspy(self, spy: tuple[subprocess.Popen[bytes], Path] | None) -> None:
        """Stop py-spy (SIGINT writes its output)."""
        if spy is None:
            return
        proc, path = spy
        stop_py_spy(proc)
        say(f"    py-spy samples written to {path}")

    # ------------------------------------------------------------------ one configuration

    def events_load(self, web: Gunicorn, seconds: float, label: str) -> tuple[str, WrkResult]:
        """Uncounted wrk load on our /api/events (warm-up and soak); the jobs are checked later."""
        tag = f"{label}{uuid.uuid4().hex[:8]}"
        res = self.load(web.port, EVENTS_PATH, tag, seconds)
        self.served += res.requests
        return tag, res

    def soak(self, web: Gunicorn, pool: list[Approval], out: ConfigResult) -> None:
        """wrk on /api/events with clicks alongside until the server answered --total-requests."""
        a = self.args
        tags: list[tuple[str, int]] = []
        while self.served < a.total_requests:
            left = a.total_requests - self.served
            n_clicks = round(a.soak_click_rate * a.soak_chunk)
            reqs = [self.click_request(web.port, pool[i % len(pool)])[0] for i in range(n_clicks)]
            assert self.pool is not None
            fut = self.pool.submit(open_loop, web.port, reqs, a.soak_click_rate, time.time() + OPEN_LOOP_LEAD_S)
            tag, res = self.events_load(web, a.soak_chunk, "soak")
            res_clicks = fut.result()
            self.served += len(res_clicks)
            tags.append((tag, res.ok))
            out.soak_errors += res.non2xx + res.socket_errors + sum(1 for r in res_clicks if r[3] != 200)
            say(
                f"    soak: {self.served} requests answered in all ({res.rps:.0f} events/s + "
                f"{len(res_clicks) / a.soak_chunk:.0f} clicks/s; {max(0, left - res.requests - len(res_clicks))} to go)"
            )
        t0 = time.time()
        last = t0
        for tag, ok in tags:
            _, bad, finished = self.wait_jobs(tag, ok)
            out.soak_errors += bad
            last = max(last, finished or t0)
        out.soak_drain_s = self.wait_idle("soak") + max(0.0, last - t0)

    def configuration(self, k: int, options: str, pinned: bool) -> ConfigResult:
        """Every phase for one gunicorn configuration and CPU placement."""
        a = self.args
        mode = PINNED if pinned else UNPINNED
        out = ConfigResult(options, mode)
        say(f"config {k + 1}: gunicorn {options}, {mode}")
        self.served = 0
        logs: list[Path] = []
        with self.servers(options, k, pinned) as (ours, bare, bare_worker):
            pools = {s.label: self.open_approvals(s, a.warm_approvals, "warm") for s in self.systems}
            fresh = {
                (s.label, rate): self.open_approvals(s, self.n_fresh(rate), "fresh")
                for s in self.systems
                for rate in a.click_rates
            }
            self.wait_idle("approvals")
            say(f"  {len(pools)} x {a.warm_approvals} warm-up and {sum(map(len, fresh.values()))} fresh approvals open")
            # Warm-up: clicks first (they decide the pool), then events until ~--warm-requests.
            for system in self.systems:
                self.warm_clicks(system, pools[system.label])
            self.served = 0
            warm_tags = []
            while self.served < a.warm_requests:
                tag, res = self.events_load(ours, a.warm_chunk, "warm")
                warm_tags.append((tag, res.ok))
            for path in BASE_PATHS.values():
                self.load(bare.port, path, "warm" + uuid.uuid4().hex[:8], a.warm_chunk)
            for tag, ok in warm_tags:
                self.wait_jobs(tag, ok)
            self.wait_idle("warm-up")
            for system in self.systems:
                system.db.analyze()
            time.sleep(0.5)
            out.rss0, out.requests0 = rss_mib(ours.worker_pids()), self.served
            say(
                f"  warm-up done: {self.served} requests, web worker RSS "
                + " + ".join(f"{v:.1f}" for v in out.rss0.values())
                + " MiB"
            )
            order = [OURS, BASE, DURABLE]
            for rnd in range(1, a.rounds + 1):
                for name in order if rnd % 2 else reversed(order):
                    assert self.worker is not None
                    web, worker = (ours, self.worker) if name == OURS else (bare, bare_worker)
                    spy = self.spy(ours, "events", k) if name == OURS and rnd == 1 else None
                    run = self.throughput(name, rnd, web, worker)
                    self.unspy(spy)
                    out.runs.append(run)
                    self.wait_idle(name)
                    say(
                        f"  round {rnd}: {name:<22} {run.wrk.rps:6.0f} req/s, p99 {run.wrk.p99_ms:.1f} ms, "
                        f"{run.executed}/{run.wrk.ok} executed, drained {run.drain_s:.1f} s after the load"
                    )
            for i, rate in enumerate(a.click_rates):
                for system in self.systems if i % 2 == 0 else reversed(self.systems):
                    say(
                        f"  clicks on {system.label}: {rate:g}/s for {a.click_duration:g} s, "
                        f"every {every(a)}th deciding"
                    )
                    assert system.web is not None
                    phase = f"clicks-{rate:g}-{'ours' if system is self.ours else 'today'}"
                    spies = [self.spy(system.web, phase, k), self.spy(system.worker, phase + "-worker", k)]
                    c = self.clicks(system, rate, fresh[(system.label, rate)], pools[system.label])
                    for spy in spies:
                        self.unspy(spy)
                    out.clicks.append(c)
                    say(
                        f"  clicks done: ack p99 deciding {ms_or(c.decide_ms, 99)}, already decided "
                        f"{ms_or(c.repeat_ms, 99)}; click -> next step p99 {ms_or(c.next_step_ms, 99)}; answered "
                        f"{c.answered_rps:.0f}/s; settled {c.settle_s:.1f} s after the load; CPU ms/click "
                        + ", ".join(f"{name} {v:.2f}" for name, v in c.cpu_ms.items())
                        + f" (worker main process {c.worker_main_ms:.2f})"
                    )
                    self.wait_idle("clicks")
            if a.total_requests > 0:
                say(f"  soak to {a.total_requests} requests")
                self.soak(ours, pools[self.ours.label], out)
                time.sleep(0.5)
                out.rss1, out.requests1 = rss_mib(ours.worker_pids()), self.served
                say(
                    "  web worker RSS "
                    + " + ".join(f"{v:.1f}" for v in out.rss1.values())
                    + f" MiB after {self.served} requests"
                )
            logs = [ours.log_path, bare.log_path, bare_worker.log_path]
            logs += [
                p.log_path for s in self.systems for p in (s.web, s.worker) if p is not None and s is not self.ours
            ]
            assert self.worker is not None
            logs.append(self.worker.log_path)
        for path in logs:
            errors, warnings = log_problems(path)
            out.log_errors += errors
            out.log_warnings += warnings
        self.slack.reset()  # the fake's call log grows with every answer; counted per phase already
        return out


def slack_ids_of(system: System) -> dict[uuid.UUID, str]:
    """user id -> Slack user id of the system's org."""
    rows = system.db.admin.execute("SELECT id, slack_user_id FROM users WHERE org_id = %s", (system.org_id,)).fetchall()
    return {r[0]: r[1] for r in rows}


def keys_of(tag: str) -> str:
    """LIKE pattern of the stored idempotency keys of a run tag's jobs (every request sends
    ``edge:<tag>:...``; a caller's key is stored under a prefix of its own)."""
    from worker.engine.events import stored_key  # after use_env (settings read at import)

    return stored_key("api", f"edge:{tag}:") + "%"


def log_problems(path: Path, start: int = 0) -> tuple[list[str], list[str]]:
    """(error lines, warning lines) of a gunicorn or Celery log from byte ``start`` on. In a gunicorn
    log every line but gunicorn's own INFO lines counts: the app's warnings reach it unformatted."""
    gunicorn = path.name.startswith("gunicorn-")
    try:
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return [], []
    errors, warnings = [], []
    for line in text.splitlines():
        if LOG_ERROR.search(line):
            errors.append(f"{path.name}: {line.strip()[:200]}")
        elif LOG_WARNING.search(line) or (gunicorn and line.strip() and not GUNICORN_INFO.match(line)):
            warnings.append(f"{path.name}: {line.strip()[:200]}")
    return errors, warnings


def every(args: argparse.Namespace) -> int:
    """Every how many clicks one decides a fresh approval."""
    return max(1, round(1 / args.decide_share))


def ms_or(values: list[float], pct: float) -> str:
    """``X.Y ms`` or n/a."""
    return f"{percentile(values, pct):.1f} ms" if values else "n/a"


# --------------------------------------------------------------------------- report


def code_version() -> str:
    """The commit measured, and the files changed on top of it (the code may move between runs)."""

    def git(*argv: str) -> str:
        out = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True)
        return out.stdout.rstrip("\n") if out.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line[3:] != "BENCHMARKS.md"]
    return commit + (f" + uncommitted changes in {', '.join(changed)}" if changed else " (clean tree)")


def header(args: argparse.Namespace, bench: Bench) -> list[str]:
    """What was measured, where, with which versions."""
    packages = ("gunicorn", "Flask", "slack_bolt", "celery", "kombu", "SQLAlchemy", "psycopg", "redis")
    wrk = "wrk 4.1.0" if Path(WRK).exists() else "no wrk (asyncio closed-loop fallback)"
    if Path(WRK).exists():
        first = subprocess.run([WRK, "-v"], capture_output=True, text=True).stdout.splitlines()
        wrk = first[0].split(" Copyright")[0].strip() if first else wrk
    return [
        f"Code: {code_version()}",
        machine_line("Web edge benchmark", packages, bench.db) + f"; {wrk}",
        f"worker: celery prefork -c {args.concurrency} -Q {QUEUES} per system and configuration; bare baseline: "
        f"bench/edge_baseline.py (parse JSON, send_task, 202; its durable floor `bare Flask + INSERT` first "
        f"INSERTs and commits the event, its task an UPDATE committed) with its own prefork -c {args.concurrency} "
        "worker; "
        "same gunicorn options; every database ANALYZEd after the warm-up (bench/harness.py `Backends.analyze`)",
        f"clicks measured on {OURS_CODE}"
        + (
            f" and on {BASE_CODE} ({args.baseline_ref}, a worktree at {args.baseline_tree}: its own database, "
            "Redis DB, worker and gunicorn), order alternating"
            if args.baseline_ref
            else ""
        ),
        f"/api/events: wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, unique idempotency key per "
        f"request, 1-step no-op job; {args.rounds} round(s) per configuration, order alternating",
        f"/slack/interactive: open loop at {', '.join(f'{r:g}' for r in args.click_rates)} req/s, "
        f"{args.click_duration:g} s each, signed, every {every(args)}th click deciding a fresh approval (an idle "
        f"job paused on it), the others on approvals already decided; latency from the scheduled send time; "
        f"Slack channel pacing off (PROACTIVE_SLACK_CHANNEL_INTERVAL_S=0)",
        f"modes: {', '.join(args.modes)}",
    ] + (
        [
            f"RSS: web workers after ~{args.warm_requests} warm-up requests and after {args.total_requests} in all "
            f"(wrk on /api/events + clicks at {args.soak_click_rate:g}/s)"
        ]
        if args.total_requests
        else []
    )


def throughput_table(runs: list[Throughput], with_round: bool) -> list[str]:
    """Rows: system, req/s, latency, answers, executed, drain, CPU per request."""
    head = (f"{'round':>5}  " if with_round else "") + (
        f"{'system':<23}{'req/s':>7}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}{'2xx':>7}{'errors':>7}"
        f"{'executed':>9}{'drain s':>8}{'web':>6}{'worker':>7}{'pg':>6}{'redis':>6}  (CPU ms/req)"
    )
    lines = [head]
    for r in runs:
        w = r.wrk
        lines.append(
            (f"{r.round:>5}  " if with_round else "")
            + f"{r.system:<23}{w.rps:>7.0f}{w.p50_ms:>8.1f}{w.p90_ms:>8.1f}{w.p99_ms:>8.1f}{w.max_ms:>8.1f}"
            f"{w.ok:>7}{w.non2xx + w.socket_errors:>7}{r.executed:>9}{r.drain_s:>8.1f}"
            f"{r.cpu_ms['web']:>6.2f}{r.cpu_ms['worker']:>7.2f}{r.cpu_ms['pg']:>6.2f}{r.cpu_ms['redis']:>6.2f}"
        )
    return lines


def stats_row(name: str, values: list[float]) -> str:
    """n, p50, p95, p99, max of milliseconds."""
    if not values:
        return f"{name:<26}{0:>6}" + f"{'n/a':>8}" * 4
    return (
        f"{name:<26}{len(values):>6}{percentile(values, 50):>8.1f}{percentile(values, 95):>8.1f}"
        f"{percentile(values, 99):>8.1f}{max(values):>8.1f}"
    )


def config_report(args: argparse.Namespace, k: int, res: ConfigResult, connections: int) -> tuple[list[str], list[str]]:
    """The lines of one configuration and its target lines."""
    lines = [
        f"Configuration {k + 1}: gunicorn {res.options}"
        + (" (the Procfile's)" if res.options == procfile_options() else "")
        + f", {res.mode}",
        "",
        "/api/events, per round:",
        *throughput_table(res.runs, with_round=True),
    ]
    best = {
        s: max((r for r in res.runs if r.system == s), key=lambda r: r.wrk.rps)
        for s in (OURS, BASE, DURABLE)
        if any(r.system == s for r in res.runs)
    }
    lines += ["", f"/api/events, best of {args.rounds} round(s):", *throughput_table(list(best.values()), False)]
    problems: list[str] = []
    for r in res.runs:
        lost = r.wrk.ok - r.executed
        if lost > 0:
            problems.append(f"round {r.round} {r.system}: {lost} answered 2xx but not executed")
        if r.executed > r.wrk.ok + connections:
            problems.append(f"round {r.round} {r.system}: {r.executed} executed for {r.wrk.ok} 2xx")
        if r.wrk.non2xx or r.wrk.socket_errors:
            problems.append(f"round {r.round} {r.system}: {r.wrk.non2xx} non-2xx, {r.wrk.socket_errors} socket errors")
        if r.not_completed:
            problems.append(f"round {r.round} {r.system}: {r.not_completed} jobs final but not completed")
    if OURS in best and BASE in best:
        o, b = best[OURS].wrk, best[BASE].wrk
        lines.append(f"ours/baseline (best rounds): throughput {o.rps / b.rps:.2f}x, p99 {o.p99_ms / b.p99_ms:.2f}x")
        for rnd in range(1, args.rounds + 1):
            by = {r.system: r.wrk for r in res.runs if r.round == rnd}
            if OURS in by and BASE in by:
                lines.append(
                    f"  round {rnd} (same-round pair): throughput {by[OURS].rps / by[BASE].rps:.2f}x, "
                    f"p99 {by[OURS].p99_ms / by[BASE].p99_ms:.2f}x"
                )
    if DURABLE in best and BASE in best:
        d, b = best[DURABLE].wrk, best[BASE].wrk
        lines.append(
            f"durable floor/baseline (best rounds): throughput {d.rps / b.rps:.2f}x (the most any accept that "
            f"commits the event before answering could reach here)"
            + (f"; ours/durable floor {best[OURS].wrk.rps / d.rps:.2f}x" if OURS in best else "")
        )
        for rnd in range(1, args.rounds + 1):
            by = {r.system: r.wrk for r in res.runs if r.round == rnd}
            if DURABLE in by and BASE in by:
                lines.append(
                    f"  round {rnd} (same-round pair): durable floor/baseline {by[DURABLE].rps / by[BASE].rps:.2f}x"
                )
    for c in res.clicks:
        n_rep = len(c.repeat_ms)
        cpu = ", ".join(f"{name} {v:.2f}" for name, v in c.cpu_ms.items())
        lines += [
            "",
            f"/slack/interactive, {c.system}, at {c.offered_rps:g} req/s for {c.seconds:g} s (open loop; answered at "
            f"{c.answered_rps:.0f}/s), ms:",
            f"{'':<26}{'n':>6}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}",
            stats_row("ack, deciding click", c.decide_ms),
            stats_row("ack, already decided", c.repeat_ms),
            stats_row("ack, all clicks", c.decide_ms + c.repeat_ms),
            stats_row("click -> next step started", c.next_step_ms),
            stats_row("load generator lag", c.lag_ms),
            f"answers: {len(c.bad)} not '200, empty body'; {c.decided}/{len(c.decide_ms)} approvals approved, "
            f"{c.completed} jobs completed; {c.answers}/{n_rep} ephemeral answers, {c.replaced} response_url "
            f"replacements and {c.chat_updates} chat.update of the decided messages reached the fake Slack; settled "
            f"{c.settle_s:.1f} s after the load",
            f"CPU ms per click (load + settling): {cpu}; web + worker + pg {click_cpu(c):.2f}; the worker's main "
            f"process (Celery's consumer) {c.worker_main_ms:.2f} of its {c.cpu_ms['worker']:.2f}",
        ]
        if c.bad:
            problems.append(f"{c.system}, clicks at {c.offered_rps:g}/s: {len(c.bad)} wrong answers, e.g. {c.bad[:5]}")
        if c.decided != len(c.decide_ms) or c.completed != len(c.decide_ms) or c.answers < n_rep:
            problems.append(f"{c.system}, clicks at {c.offered_rps:g}/s: not every decision/answer landed")
    for rate in args.click_rates:
        pair = [c for c in res.clicks if c.offered_rps == rate]
        ours = next((c for c in pair if c.system == OURS_CODE), None)
        base = next((c for c in pair if c.system != OURS_CODE), None)
        if ours is not None and base is not None:
            lines.append(
                f"at {rate:g}/s, ours / today's: CPU per click (web + worker + pg) {click_cpu(ours):.2f} / "
                f"{click_cpu(base):.2f} ms = {click_cpu(ours) / click_cpu(base):.2f}x; ack p99 "
                f"{ms_or(ours.decide_ms + ours.repeat_ms, 99)} / {ms_or(base.decide_ms + base.repeat_ms, 99)}; "
                f"click -> next step p99 {ms_or(ours.next_step_ms, 99)} / {ms_or(base.next_step_ms, 99)}"
            )
    growth = {pid: res.rss1.get(pid, float("nan")) - v for pid, v in res.rss0.items()}
    if res.rss1:  # a soak ran (--total-requests)
        lines += [
            "",
            f"Web worker RSS (MiB): after warm-up ({res.requests0} requests) -> after {res.requests1} requests",
            *(
                f"  pid {pid}: {v:.1f} -> {res.rss1.get(pid, float('nan')):.1f}  ({growth[pid]:+.1f})"
                for pid, v in res.rss0.items()
            ),
            f"soak: {res.soak_errors} errors (non-2xx, socket errors, jobs not completed); "
            f"drained {res.soak_drain_s:.1f} s after its last chunk",
        ]
        if set(res.rss0) != set(res.rss1):
            problems.append("RSS: the web worker processes changed during the run (a worker restarted?)")
    if res.soak_errors:
        problems.append(f"soak: {res.soak_errors} errors")
    lines.append(
        f"logs (gunicorn, both workers): {len(res.log_errors)} error lines, {len(res.log_warnings)} warnings"
        + "".join(f"\n  {x}" for x in (res.log_errors + res.log_warnings)[:6])
    )
    if res.log_errors:
        problems.append(f"{len(res.log_errors)} error lines in the logs")
    lines += ["", "Errors: " + ("none" if not problems else "; ".join(problems))]

    def target(label: str, value: str, good: bool) -> str:
        return f"  {label:<48}{value:>12}  {'met' if good else 'NOT met'}"

    targets = [f"Configuration {k + 1} ({res.options}, {res.mode}):"]

    def ours_at(rate: float) -> Clicks | None:
        return next((c for c in res.clicks if c.offered_rps == rate and c.system == OURS_CODE), None)

    idle = ours_at(TARGET_IDLE_RATE)
    if idle is not None and idle.next_step_ms:
        p99 = percentile(idle.next_step_ms, 99)
        label = f"click -> next step p99 <= {TARGET_IDLE_NEXT_STEP_P99_MS:.0f} ms at {TARGET_IDLE_RATE:g}/s"
        targets.append(target(label, f"{p99:.1f} ms", p99 <= TARGET_IDLE_NEXT_STEP_P99_MS))
    at_rate = ours_at(TARGET_CLICK_RATE)
    if at_rate is not None and at_rate.decide_ms + at_rate.repeat_ms:
        p99 = percentile(at_rate.decide_ms + at_rate.repeat_ms, 99)
        label = f"/slack/interactive ack p99 < {TARGET_ACK_P99_MS:.0f} ms at {TARGET_CLICK_RATE:g}/s"
        targets.append(target(label, f"{p99:.1f} ms", p99 < TARGET_ACK_P99_MS))
    if at_rate is not None and at_rate.next_step_ms:
        p99 = percentile(at_rate.next_step_ms, 99)
        label = f"click -> next step p99 < {TARGET_NEXT_STEP_P99_MS:.0f} ms at {TARGET_CLICK_RATE:g}/s"
        targets.append(target(label, f"{p99:.1f} ms", p99 < TARGET_NEXT_STEP_P99_MS))
    for rate in args.click_rates:
        ours = ours_at(rate)
        base = next((c for c in res.clicks if c.offered_rps == rate and c.system != OURS_CODE), None)
        if ours is not None and base is not None:
            ratio = click_cpu(ours) / click_cpu(base)
            label = f"CPU per deciding click <= {TARGET_CPU_RATIO:g}x today's at {rate:g}/s"
            targets.append(target(label, f"{ratio:.2f}x", ratio <= TARGET_CPU_RATIO))
    if OURS in best and BASE in best:
        ratio = best[OURS].wrk.rps / best[BASE].wrk.rps
        label = f"/api/events >= {TARGET_EVENTS_RATIO:g}x bare Flask + publish"
        targets.append(target(label, f"{ratio:.2f}x", ratio >= TARGET_EVENTS_RATIO))
    if growth and res.rss1:
        worst = max(growth.values())
        targets.append(
            target(
                f"web worker RSS growth < {TARGET_RSS_GROWTH_MIB:.0f} MiB (each, after warm-up)",
                f"{worst:+.1f} MiB",
                worst < TARGET_RSS_GROWTH_MIB,
            )
        )
    return lines, targets


def click_cpu(c: Clicks) -> float:
    """CPU ms per click of the web, the worker and PostgreSQL (Redis, shared by every system, left out)."""
    return c.cpu_ms["web"] + c.cpu_ms["worker"] + c.cpu_ms["pg"]


def report(args: argparse.Namespace, head: list[str], results: list[ConfigResult]) -> str:
    """The whole printed result."""
    lines = list(head)
    targets: list[str] = []
    for k, res in enumerate(results):
        body, tgt = config_report(args, k, res, args.connections)
        lines += ["", *body]
        targets += tgt
    lines += [
        "",
        "Targets:",
        *targets,
        "",
        f"(executed = jobs in the database (ours) or tasks run (baseline) for the run; it may exceed 2xx by up to "
        f"-c {args.connections}: requests in flight when wrk stops are accepted but never answered. drain s = end "
        "of the load -> last job finished. CPU ms per answered request over the load and the drain: web = gunicorn "
        "master + workers, worker = the Celery worker's processes, pg = PostgreSQL backends of the bench database "
        "(autovacuum included, the benchmark's own polling not), "
        "redis = the Redis server. Ack latency is measured from each click's scheduled send time; load generator "
        "lag = sent - scheduled.)",
    ]
    return "\n".join(lines)


def section(args: argparse.Namespace, text: str) -> str:
    """The BENCHMARKS.md section: what is measured, the command, the output."""
    cmd = ".venv/bin/python -m bench.edge" + (" --quick" if args.quick else "")
    cmd += f" --baseline-ref {args.baseline_ref}" if args.baseline_ref else ""
    configs = ", ".join(f"`{o}`" + (" (the Procfile's)" if o == procfile_options() else "") for o in args.gunicorn)
    about = (
        f"The web edge under load with the workers running, for each gunicorn configuration (this run: {configs}) "
        "in two modes: unpinned, and pinned as a fleet runs them (every gunicorn `taskset -c 0`, every celery "
        "worker `taskset -c 1`); on 127.0.0.1 over PostgreSQL + Redis with real `celery worker -P prefork -c 2 "
        "-Q steps,slow,edge` processes, the fake Slack of the tests, the demo org and an org API key. "
        "`/api/events` is measured with wrk (unique idempotency key per request, a 1-step no-op job) against a "
        "bare Flask endpoint that only parses the JSON and publishes one Celery task (bench/edge_baseline.py, "
        "same gunicorn options, its own worker), same run, order alternating; every 2xx is checked to have become "
        "a job (a task). `/slack/interactive` gets signed clicks at fixed rates (open loop), by default every one "
        "deciding a fresh approval of an idle job paused on it, on this tree and, with `--baseline-ref REF`, on "
        "today's code (a git worktree of REF, created once under /tmp, with its own database, Redis DB, worker "
        "and gunicorn), order alternating: CPU per click of the web, the worker and PostgreSQL, the ack latency, "
        "and click -> next step started (the deciding click's send time to the `started_at` of the step after "
        "the approval). `--total-requests N` adds a soak with web worker RSS read before and after."
    )
    usage = (
        "Command (`--quick` for a smoke run, `--modes unpinned` or `--modes pinned` for one mode, `--gunicorn "
        '"OPTIONS"` (repeatable) for other configurations, '
        "`--py-spy DIR` to profile the web workers):"
    )
    fill = {"width": 104, "break_on_hyphens": False, "break_long_words": False}
    return section_text(SECTION, f"{textwrap.fill(about, **fill)}\n\n{textwrap.fill(usage, **fill)}", cmd, text)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--quick`` shrinks every phase to a few seconds)."""
    p = argparse.ArgumentParser(prog="python -m bench.edge", description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--gunicorn",
        action="append",
        metavar="OPTIONS",
        help=f"gunicorn options of a configuration, repeatable (default: the Procfile's "
        f"'{procfile_options()}', then the first of '{SYNC_OPTIONS}' / '{GTHREAD_OPTIONS}' that differs)",
    )
    p.add_argument("--rounds", type=int, default=None, help="/api/events rounds per configuration (default 2)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument("--duration", type=float, default=None, help="seconds of wrk per measured run (default 10)")
    p.add_argument(
        "--click-rates",
        default="20,100",
        help="clicks per second of the measured click phases, open loop, comma-separated (default 20,100: an "
        "idle system, then the target rate)",
    )
    p.add_argument(
        "--baseline-ref",
        default="",
        metavar="REF",
        help="also measure the clicks on today's code: a git worktree of REF (e.g. f989315) under /tmp, its own "
        "database, Redis DB, worker and gunicorn, in the same run",
    )
    p.add_argument(
        "--modes",
        default=f"{UNPINNED},pinned",
        help="CPU placements, comma-separated: unpinned, pinned (gunicorn on CPU 0, workers on CPU 1); default both",
    )
    p.add_argument("--click-duration", type=float, default=None, help="seconds of measured clicks (default 10)")
    p.add_argument(
        "--decide-share",
        type=float,
        default=1.0,
        help="share of the clicks deciding a fresh approval (default 1: every click; 0.25: every 4th, the others "
        "on approvals already decided)",
    )
    p.add_argument(
        "--warm-approvals",
        type=int,
        default=None,
        help="approvals decided in the warm-up, then clicked again as 'already decided' (default 100)",
    )
    p.add_argument("--warm-requests", type=int, default=None, help="warm-up requests before RSS (default 5000)")
    p.add_argument("--warm-chunk", type=float, default=2.0, help="seconds per warm-up wrk run (default 2)")
    p.add_argument(
        "--total-requests",
        type=int,
        default=None,
        help="soak: requests answered by our server before the second RSS reading (default 0: no soak)",
    )
    p.add_argument("--soak-chunk", type=float, default=None, help="seconds per soak chunk (default 10)")
    p.add_argument("--soak-click-rate", type=float, default=50.0, help="clicks per second while soaking (default 50)")
    p.add_argument("--concurrency", type=int, default=2, help="prefork processes of each celery worker (default 2)")
    p.add_argument("--quick", action="store_true", help="a few seconds per phase (smoke run)")
    p.add_argument(
        "--py-spy",
        default="",
        metavar="DIR",
        help="profiling: record the web workers with py-spy (raw collapsed stacks into DIR) during the first "
        "measured /api/events run and each click phase",
    )
    p.add_argument(
        "--cprofile",
        default="",
        metavar="DIR",
        help="profiling: each pool process of this tree's workers writes a CPU-time cProfile to DIR (read: "
        "python -m bench.child_profile DIR)",
    )
    p.add_argument("--write", action="store_true", help=f"write the result into BENCHMARKS.md ('{SECTION}')")
    args = p.parse_args(argv)
    quick = {
        "rounds": 1,
        "duration": 3.0,
        "click_duration": 3.0,
        "warm_approvals": 30,
        "warm_requests": 1000,
        "total_requests": 0,
        "soak_chunk": 3.0,
    }
    full = {
        "rounds": 2,
        "duration": 10.0,
        "click_duration": 10.0,
        "warm_approvals": 100,
        "warm_requests": 5000,
        "total_requests": 0,
        "soak_chunk": 10.0,
    }
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.gunicorn = args.gunicorn or [procfile_options()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {UNPINNED, "pinned"}:
        p.error(f"--modes takes unpinned and/or pinned (got {args.modes!r})")
    args.modes = [UNPINNED if m == UNPINNED else PINNED for m in modes]
    args.baseline_tree = (
        Path(tempfile.gettempdir()) / f"proactive-edge-{args.baseline_ref}" if args.baseline_ref else None
    )
    try:
        args.click_rates = [float(r) for r in args.click_rates.split(",") if r.strip()]
    except ValueError:
        p.error(f"--click-rates must be numbers, comma-separated (got {args.click_rates!r})")
    if not args.click_rates or min(args.click_rates) <= 0:
        p.error("--click-rates needs at least one rate > 0")
    if not 0 < args.decide_share <= 1:
        p.error("--decide-share must be in (0, 1]")
    return args


def edge_env(backends: Backends, cprofile_dir: str = "") -> dict[str, str]:
    """Environment of this process, gunicorn and the workers; with `cprofile_dir`, the workers' pool
    processes profile themselves there (bench.child_profile)."""
    extra, modules = {}, SEQUENCE_MODULES
    if cprofile_dir:
        Path(cprofile_dir).mkdir(parents=True, exist_ok=True)
        extra[CPROFILE_DIR_ENV] = str(Path(cprofile_dir).resolve())
        modules += ",bench.child_profile"
    return bench_env(
        backends,
        modules,
        **extra,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        ADMIN_TOKEN=ADMIN_TOKEN,
        PROACTIVE_SLACK_CHANNEL_INTERVAL_S="0",
        # The per-org events limit stays on (its statement is part of what a request costs) but far
        # above what wrk can send, so no request is refused.
        PROACTIVE_ORG_EVENTS_PER_S="1000000",
        PROACTIVE_ORG_EVENTS_BURST="1000000",
    )


def make_worktree(ref: str, path: Path) -> None:
    """A detached git worktree of ``ref`` at ``path`` (kept between runs; made when missing)."""
    if (path / "worker").is_dir():
        return
    out = subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), ref], cwd=REPO, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"git worktree add {path} {ref} failed: {out.stderr.strip()}")


class PrivateRedis(ChildProcess):
    """The run's own redis-server on a free port, no persistence: no other user of the machine's
    Redis (a test suite flushing its DB) can touch the run's queues."""

    kind = "redis"

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        super().__init__("redis", args, {}, workdir / "redis.log")

    def start(self) -> PrivateRedis:
        """Start it and return once it answers PING."""
        import redis

        proc = self.spawn()
        deadline = time.monotonic() + REDIS_START_S
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise self.failed_to_start()
            with contextlib.suppress(redis.exceptions.ConnectionError):
                if redis.Redis(host="127.0.0.1", port=self.port).ping():
                    return self
            time.sleep(0.05)


class RunBackends(Backends):
    """A system's database and its DB of the run's private Redis server."""

    def __init__(self, db_name: str, redis_port: int, redis_db: int) -> None:
        super().__init__(db_name, redis_db)
        self.redis_port = redis_port
        self.broker_url = f"redis://127.0.0.1:{redis_port}/{redis_db}"

    def connect(self) -> None:
        """Open the admin connection and the Redis client; flush the Redis DB."""
        import redis

        self.admin = psycopg.connect(self.dsn, autocommit=True)
        self.redis = redis.Redis(host="127.0.0.1", port=self.redis_port, db=self.redis_db)
        self.redis.flushdb()


def main(argv: list[str] | None = None) -> int:
    """Set the environment, run every configuration, print (and maybe write) the report."""
    args = parse_args(argv)
    raise_on_signals(signal.SIGTERM, signal.SIGINT)
    if args.baseline_ref:
        make_worktree(args.baseline_ref, args.baseline_tree)
    started = time.monotonic()
    results: list[ConfigResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp:
        server = PrivateRedis(Path(tmp)).start()
        try:
            backends = RunBackends(fresh_db_name("proactive_bench_edge"), server.port, 0)
            base = (
                RunBackends(fresh_db_name("proactive_bench_edge_today"), server.port, 1) if args.baseline_ref else None
            )
            env = edge_env(backends, args.cprofile)
            use_env(env)  # before any worker module reads its settings
            bench = Bench(args, backends, Path(tmp), base)
            try:
                bench.setup(env)
                head = header(args, bench)
                say("\n".join(head))
                k = 0
                for options in args.gunicorn:
                    for mode in args.modes:
                        results.append(bench.configuration(k, options, mode == PINNED))
                        k += 1
            finally:
                bench.teardown()
        finally:
            server.stop()
    text = report(args, head, results) + f"\n\n(total wall time {time.monotonic() - started:.0f} s)"
    print(text)
    if args.write:
        write_section(BENCHMARKS_MD, SECTION, section(args, text))
        say(f"wrote '{SECTION}' into {BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
