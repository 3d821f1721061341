"""Benchmark: the Proactive engine against bare Celery chains (what a persisted step costs).

One run, each system on its own fresh ``celery worker -P prefork -c 2`` (started, warmed up with a
few uncounted jobs, measured, stopped; the process group is always killed), on a fresh PostgreSQL
database ``proactive_bench_<random>`` (migrated to head, dropped at the end), one Redis DB (flushed
first and last) and, for the RabbitMQ rows, a RabbitMQ vhost ``proactive_bench_<random>`` (made
with rabbitmqctl, deleted at the end):

1. ``proactive linear``: 5-step no-op chain (bench.noop_dags.LINEAR), N jobs fired with
   ``fire_event`` from a few threads of this process;
2. ``proactive fan-out``: a -> (b, c, d) -> e, the same way;
3. ``celery chain (a)``: ``chain(t.si() x 5)`` of no-op tasks (bench.baseline_app);
4. ``celery chain+SQL (b)``: the same with one INSERT + one UPDATE per task (psycopg, one
   transaction per task; the chain's row is INSERTed by the publisher, as fire_event inserts a job);
   ``celery task+SQL inline (c)``: one task per job running (b)'s five steps one after another,
   each committed on its own: the floor of any design whose inline steps are each durable (one
   commit per step, one broker hop per job) with none of the engine's claims, leases or planning;
5. latency: one 5-step linear job at a time on an idle worker; before ``fire_event()`` -> the
   job's ``finished_at``;
6. ``proactive linear on RabbitMQ`` and ``celery chain+SQL (b) on RabbitMQ``: 1. and 4. with
   PostgreSQL + RabbitMQ (``amqp://``) instead of Redis as the broker, both apps' settings unchanged;
7. decision: one no-op -> approval -> no-op job (bench.noop_dags.DECISION) at a time on an idle
   worker, paused on its approval; ``approvals.decide()`` called here as a rep's click would, then
   from decide() returning (its transaction committed, its message published) -> the next step's
   ``started_at`` and ``finished_at``, with the decision's own time and where the rest went.

Throughput = steps / (last completion - first fire), where the last completion is the largest
``finished_at`` (Proactive) or the time the last chain's final task pushed to Redis (baselines,
whichever their broker).
CPU columns are CPU ms per step of the worker processes, of this process (firing/publishing) and
of the PostgreSQL backends of the bench database, read from /proc over the measured window.
Rounds alternate the order of the systems; the summary reports the best round of each system.

Run from the repo root: ``.venv/bin/python -m bench.engine [--jobs 400] [--rounds 2] [--quick]``
(``--systems linear,b`` runs a subset; ``--systems linear,b,mq-linear,mq-b --write`` puts the
Redis/RabbitMQ comparison into BENCHMARKS.md; ``--whatif no_events,no_ping`` adds profiling rows, see
bench/whatif.py; ``--systems decision`` runs only the decision row; ``python -m bench.profile_engine``
counts statements and round trips per step and per decision).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from celery import chain
from kombu import Connection

from bench import baseline_app
from bench.harness import (
    BENCHMARKS_MD,
    REPO,
    Backends,
    WorkerProcess,
    bench_env,
    cpu_delta,
    cpu_seconds,
    epoch,
    fresh_db_name,
    machine_line,
    percentile,
    pick_redis_db,
    section_text,
    use_env,
    write_section,
)
from tests.support.services import rabbitmqctl

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672"
# The product's sequences, then the no-op DAGs that replace two of them (bench/noop_dags.py).
SEQUENCE_MODULES = "sequences,bench.noop_dags"
STEPS_PER_JOB = 5
# Pause between two completion checks (seconds): short, the checks are one cheap query.
POLL_S = 0.02
# Pause between two latency completion checks (seconds).
LATENCY_POLL_S = 0.003
# Quiet time after a latency sample so the next one starts on an idle worker (seconds).
LATENCY_GAP_S = 0.03
# Targets the benchmark is measured against (each reported as met or NOT met).
TARGET_RATIO_A = 1.25  # linear against the bare Celery chain: a durable step cheaper than a Celery hop
TARGET_FANOUT_RATIO_B = 1.0
TARGET_P50_MS = 8.0  # one idle 5-step linear job, fire_event() included
TARGET_P99_MS = 12.0
# Decision -> next step started (issue 17 target 3), milliseconds.
TARGET_DECISION_P50_MS = 5.0
TARGET_DECISION_P99_MS = 10.0

LINEAR, FANOUT = "proactive linear", "proactive fan-out"
DECISION = "decision"
CHAIN, CHAIN_SQL = "celery chain (a)", "celery chain+SQL (b)"
CHAIN_INLINE = "celery task+SQL inline (c)"
ON_RABBITMQ = " on RabbitMQ"  # a system whose name ends so runs with RabbitMQ as its broker
LINEAR_MQ, CHAIN_SQL_MQ = LINEAR + ON_RABBITMQ, CHAIN_SQL + ON_RABBITMQ
SYSTEMS = (LINEAR, FANOUT, CHAIN, CHAIN_SQL, CHAIN_INLINE, LINEAR_MQ, CHAIN_SQL_MQ)
BASELINES = (CHAIN, CHAIN_SQL, CHAIN_INLINE, CHAIN_SQL_MQ)
SECTION = "## Engine on RabbitMQ (bench/engine.py)"
FINAL_BAD = ("failed", "cancelled", "expired", "timeout", "skipped")


@dataclass
class Run:
    """One measured batch of one system in one round."""

    system: str
    round: int
    jobs: int
    steps: int
    seconds: float
    fire_s: float
    worker_cpu_s: float
    client_cpu_s: float
    pg_cpu_s: float

    @property
    def steps_per_s(self) -> float:
        """Persisted (or, for chain (a), executed) steps per second."""
        return self.steps / self.seconds

    def ms_per_step(self, cpu_s: float) -> float:
        """CPU milliseconds per step."""
        return cpu_s * 1000 / self.steps


@dataclass
class Latency:
    """Idle 5-step latency samples (milliseconds)."""

    end_to_end_ms: list[float] = field(default_factory=list)
    fire_call_ms: list[float] = field(default_factory=list)
    # where the time went: fire_event() returned -> the first step's started_at (the broker hop and
    # the claim), and that -> the job's finished_at (the five steps)
    to_first_step_ms: list[float] = field(default_factory=list)
    steps_ms: list[float] = field(default_factory=list)
    # the same for the bare Celery chain (a) in the same rounds: publishing the chain -> its last
    # task's finish (what an undurable 5-hop chain costs on this host now; the floor to read ours against)
    chain_ms: list[float] = field(default_factory=list)


@dataclass
class Decisions:
    """Idle decision samples (milliseconds): decide() itself, then from decide() returning to the
    approval's ``resumed_at`` (the resume applied it), to the next step's ``started_at`` and to its
    ``finished_at``."""

    decide_ms: list[float] = field(default_factory=list)
    resumed_ms: list[float] = field(default_factory=list)
    started_ms: list[float] = field(default_factory=list)
    finished_ms: list[float] = field(default_factory=list)

    def extend(self, other: Decisions) -> None:
        """Add `other`'s samples (another round)."""
        for name, values in vars(other).items():
            getattr(self, name).extend(values)


# --------------------------------------------------------------------------- the same run on older code


def baseline_tree(ref: str) -> Path:
    """A checkout of `ref` (a git worktree in /tmp, made once and reused) with this tree's bench/
    copied over it, so the same benchmark code drives that commit's engine; an existing directory
    is used as it is (bench/ copied over it too)."""
    tree = Path(ref) if Path(ref).is_dir() else Path(tempfile.gettempdir()) / f"proactive-bench-base-{ref}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), ref], check=True)
    shutil.copytree(REPO / "bench", tree / "bench", dirs_exist_ok=True)
    return tree


def run_in_tree(tree: Path, module: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` with `tree` as its directory and import path (its workers too)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=tree, env=env, capture_output=True, text=True, check=True
    )


def baseline_decisions(args: argparse.Namespace, redis_db: int | None) -> Decisions:
    """One round of the decision row on ``--baseline-ref``'s code (its own database and worker)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = ["--systems", "decision", "--rounds", "1", "--decisions", str(args.decisions)]
        argv += ["--warmup", str(args.warmup), "--json-out", out.name]
        argv += ["--redis-db", str(redis_db)] if redis_db is not None else []
        try:
            run_in_tree(baseline_tree(args.baseline_ref), "bench.engine", argv)
        except subprocess.CalledProcessError as err:
            raise RuntimeError(f"the baseline run failed:\n{err.stderr[-3000:]}") from err
        return Decisions(**json.loads(Path(out.name).read_text()))


class Bench:
    """Owns the database, the Redis DB, the workers and the measurements of one benchmark run."""

    def __init__(self, args: argparse.Namespace, backends: Backends, workdir: Path) -> None:
        self.args = args
        self.db = backends
        self.workdir = workdir
        self.broker_url = backends.broker_url or ""
        self.vhost = backends.db_name if any(s.endswith(ON_RABBITMQ) for s in getattr(args, "selected", ())) else None
        self.amqp_url = f"{RABBITMQ_URL}/{self.vhost}"
        self.env = engine_env(backends)
        self.events: dict[str, str] = {}  # system -> the event type its no-op DAG runs for (at setup)
        self._local = threading.local()
        self._conns: list[Any] = []  # every publisher connection, closed at teardown
        self._conns_lock = threading.Lock()

    # ------------------------------------------------------------------ set-up / tear-down

    def setup(self) -> None:
        """Make the RabbitMQ vhost (when a RabbitMQ row is selected), create and migrate the database,
        create the baseline tables, flush the Redis DB, load the sequences."""
        if self.vhost and (error := add_vhost(self.vhost)):
            self.vhost = None  # nothing to delete at teardown
            raise SystemExit(f"the RabbitMQ rows need a vhost of their own: {error}")
        self.db.create()
        for ddl in baseline_app.SCHEMA:
            self.db.admin.execute(ddl)
        from worker.engine import registry  # after use_env: worker modules read the settings at import

        registry.load()  # product sequences first, then bench.noop_dags replaces two of them
        from bench import noop_dags  # registered by load() (imported earlier it would register first)

        assert registry.get(noop_dags.LINEAR_EVENT) is noop_dags.LINEAR
        assert registry.get(noop_dags.FANOUT_EVENT) is noop_dags.FANOUT
        assert registry.get(noop_dags.DECISION_EVENT) is noop_dags.DECISION
        self.events = {
            LINEAR: noop_dags.LINEAR_EVENT,
            FANOUT: noop_dags.FANOUT_EVENT,
            DECISION: noop_dags.DECISION_EVENT,
        }

    def teardown(self) -> None:
        """Close connections, drop the database, flush the Redis DB, delete the vhost (errors are
        reported, not raised)."""
        for conn in self._conns:
            conn.close()
        self.db.close()
        if self.vhost and (error := rabbitmqctl("delete_vhost", self.vhost)):
            print(f"warning: {error}", file=sys.stderr)

    # ------------------------------------------------------------------ helpers

    def broker_of(self, system: str) -> str:
        """The broker URL `system` runs on: RabbitMQ for the `... on RabbitMQ` rows, else Redis."""
        return self.amqp_url if system.partition(" [")[0].endswith(ON_RABBITMQ) else self.broker_url

    def use_broker(self, url: str) -> None:
        """Publish from this process (fire_event and the baseline chains) to `url` from now on."""
        from worker.celery_app import reconfigure_broker  # after use_env (settings read at import)
        from worker.config import reset_settings

        os.environ["BROKER_URL"] = url
        reset_settings()
        reconfigure_broker()
        baseline_app.use_broker(url)

    @contextmanager
    def worker(
        self, app: str, queues: str, name: str, whatif: str = "", broker_url: str | None = None
    ) -> Iterator[WorkerProcess]:
        """A fresh prefork worker (2 processes) for one phase; always stopped (process group).

        ``whatif``: bench.whatif switches for this worker only (profiling variants); ``broker_url``:
        another broker than the Redis DB (the RabbitMQ rows)."""
        env = dict(self.env)
        if broker_url:
            env.update(BROKER_URL=broker_url, BENCH_BROKER_URL=broker_url)
        if whatif:
            env.update(PROACTIVE_SEQUENCE_MODULES=f"{SEQUENCE_MODULES},bench.whatif", BENCH_WHATIF=whatif)
        w = WorkerProcess(app, queues, env, self.workdir, name, concurrency=self.args.concurrency)
        try:
            yield w.start()
        finally:
            w.stop()

    def make_org(self) -> tuple[uuid.UUID, uuid.UUID]:
        """A fresh enabled org and one user in it (jobs are counted per org)."""
        from worker.db import session_factory  # after use_env (settings read at import)
        from worker.models import Org, User

        org_id, user_id = uuid.uuid4(), uuid.uuid4()
        with session_factory().begin() as s:
            s.add(Org(id=org_id, name=f"bench {org_id.hex[:6]}", timezone="UTC", enabled=True, settings={}))
            s.flush()
            s.add(
                User(
                    id=user_id,
                    org_id=org_id,
                    email=f"bench-{user_id.hex[:6]}@example.com",
                    name="bench",
                    role="member",
                    timezone="UTC",
                    opted_out_sequences=[],
                )
            )
        return org_id, user_id

    def in_threads(self, n: int, one: Callable[[int], object]) -> None:
        """Call ``one(i)`` for i in range(n) from ``--fire-threads`` threads; re-raise the first error."""
        threads = max(1, self.args.fire_threads)

        def part(k: int) -> None:
            for i in range(k, n, threads):
                one(i)

        with ThreadPoolExecutor(threads) as pool:
            for fut in [pool.submit(part, k) for k in range(threads)]:
                fut.result()

    def sample_cpu(self, worker: WorkerProcess) -> tuple[dict[int, float], float, dict[int, float]]:
        """(worker CPU per pid, this process's CPU, PostgreSQL backend CPU per pid)."""
        return cpu_seconds(worker.pids()), time.process_time(), cpu_seconds(self.db.pg_pids())

    def measured(
        self,
        system: str,
        rnd: int,
        jobs: int,
        worker: WorkerProcess,
        fire: Callable[[], None],
        wait: Callable[[], tuple[int, float]],
    ) -> Run:
        """Fire a batch, wait for its completion, and account time and CPU."""
        w0, c0, p0 = self.sample_cpu(worker)
        t0 = time.time()
        fire()
        fire_s = time.time() - t0
        steps, last = wait()
        w1, c1, p1 = self.sample_cpu(worker)
        return Run(system, rnd, jobs, steps, last - t0, fire_s, cpu_delta(w0, w1), c1 - c0, cpu_delta(p0, p1))

    def deadline(self, jobs: int) -> float:
        """A generous time limit for a batch (a broken run fails instead of hanging)."""
        return time.monotonic() + 60 + jobs * STEPS_PER_JOB / 50

    # ------------------------------------------------------------------ Proactive

    def fire_one(self, event_type: str, org: uuid.UUID, user: uuid.UUID, tag: str, i: int) -> Any:
        """fire_event() one benchmark job."""
        from worker.engine.events import fire_event  # after use_env (settings read at import)

        return fire_event(
            {
                "type": event_type,
                "source": "api",
                "org_id": str(org),
                "user_id": str(user),
                "payload": {"run": tag},
                "idempotency_key": f"bench:{tag}:{i}",
            }
        )

    def wait_jobs(self, org: uuid.UUID, n: int, worker: WorkerProcess) -> tuple[int, float]:
        """Wait until the org's n jobs completed; (succeeded steps, largest finished_at as epoch)."""
        until = self.deadline(n)
        while True:
            done, bad, last = self.db.admin.execute(
                "SELECT count(*) FILTER (WHERE status = 'completed'),"
                " count(*) FILTER (WHERE status = ANY(%s)), max(finished_at)"
                " FROM sequence_jobs WHERE org_id = %s",
                (list(FINAL_BAD), org),
            ).fetchone()
            if bad:
                errors = self.db.admin.execute(
                    "SELECT status, reason, error_step, error FROM sequence_jobs WHERE org_id = %s"
                    " AND status = ANY(%s) LIMIT 3",
                    (org, list(FINAL_BAD)),
                ).fetchall()
                raise RuntimeError(f"{bad} benchmark jobs did not complete: {errors}")
            if done >= n:
                break
            worker.check_alive()
            if time.monotonic() > until:
                raise RuntimeError(f"only {done}/{n} jobs completed in time\n{worker.log_tail()}")
            time.sleep(POLL_S)
        steps = self.db.admin.execute(
            "SELECT count(*) FROM step_runs WHERE org_id = %s AND status = 'succeeded'", (org,)
        ).fetchone()[0]
        return steps, last.timestamp()

    def proactive(self, system: str, rnd: int) -> Run:
        """Throughput of the linear or fan-out DAG on a fresh worker."""
        kind, _, whatif = system.partition(" [")
        whatif = whatif.rstrip("]")
        event = self.events[LINEAR if kind.removesuffix(ON_RABBITMQ) == LINEAR else FANOUT]
        n, tag = self.args.jobs, uuid.uuid4().hex[:8]
        warm_org, warm_user = self.make_org()
        org, user = self.make_org()
        name = f"proactive-{event}-r{rnd}" + (f"-{whatif.replace(',', '-')}" if whatif else "")
        name += "-mq" if kind.endswith(ON_RABBITMQ) else ""
        with self.worker("worker.celery_app", "steps,slow,edge", name, whatif, self.broker_of(system)) as w:
            self.in_threads(self.args.warmup, lambda i: self.fire_one(event, warm_org, warm_user, "w" + tag, i))
            self.wait_jobs(warm_org, self.args.warmup, w)
            self.db.analyze()
            run = self.measured(
                system,
                rnd,
                n,
                w,
                lambda: self.in_threads(n, lambda i: self.fire_one(event, org, user, tag, i)),
                lambda: self.wait_jobs(org, n, w),
            )
        if run.steps != n * STEPS_PER_JOB:
            raise RuntimeError(f"{system}: {run.steps} steps persisted, expected {n * STEPS_PER_JOB}")
        return run

    def latency(self, rnd: int, out: Latency) -> None:
        """Idle 5-step latency: one linear job at a time on a fresh, warmed-up worker."""
        event, tag = self.events[LINEAR], uuid.uuid4().hex[:8]
        org, user = self.make_org()
        self.use_broker(self.broker_url)
        with self.worker("worker.celery_app", "steps,slow,edge", f"proactive-latency-r{rnd}") as w:
            for i in range(self.args.warmup + self.args.latency):
                if i == self.args.warmup:
                    self.db.analyze()
                t0 = time.time()
                res = self.fire_one(event, org, user, tag, i)
                t1 = time.time()
                until = time.monotonic() + 30
                while True:
                    row = self.db.admin.execute(
                        "SELECT status, finished_at FROM sequence_jobs WHERE id = %s", (res.job_id,)
                    ).fetchone()
                    if row[1] is not None:
                        break
                    if time.monotonic() > until:
                        w.check_alive()
                        raise RuntimeError(f"latency job {res.job_id} did not finish: {row}")
                    time.sleep(LATENCY_POLL_S)
                if row[0] != "completed":
                    raise RuntimeError(f"latency job {res.job_id} ended {row[0]}")
                if i >= self.args.warmup:
                    first = self.db.admin.execute(
                        "SELECT min(started_at) FROM step_runs WHERE job_id = %s", (res.job_id,)
                    ).fetchone()[0]
                    out.end_to_end_ms.append((row[1].timestamp() - t0) * 1000)
                    out.fire_call_ms.append((t1 - t0) * 1000)
                    out.to_first_step_ms.append((first.timestamp() - t1) * 1000)
                    out.steps_ms.append((row[1] - first).total_seconds() * 1000)
                time.sleep(LATENCY_GAP_S)

    def latency_chain(self, rnd: int, out: Latency) -> None:
        """Idle latency of the bare Celery chain (a): one 5-task chain at a time on a fresh, warmed-up
        worker; publishing it -> the time its last task pushed (BLPOP wakes on the push)."""
        key = f"bench:latency:{uuid.uuid4().hex[:8]}"
        self.use_broker(self.broker_url)
        with self.worker("bench.baseline_app", "bench", f"baseline-a-latency-r{rnd}") as w:
            for i in range(self.args.warmup + self.args.latency):
                t0 = time.time()
                self.publish_chain(False, "latency", key)
                got = self.db.redis.blpop([key], timeout=30)
                if got is None:
                    w.check_alive()
                    raise RuntimeError(f"latency chain {i} did not finish\n{w.log_tail()}")
                if i >= self.args.warmup:
                    out.chain_ms.append((float(got[1]) - t0) * 1000)
                time.sleep(LATENCY_GAP_S)

    def wait_paused(self, job_id: uuid.UUID, worker: WorkerProcess) -> uuid.UUID:
        """Wait until the job is awaiting_approval with a pending approval; that approval's id."""
        until = time.monotonic() + 30
        while True:
            row = self.db.admin.execute(
                "SELECT a.id, j.status FROM sequence_jobs j LEFT JOIN approvals a ON a.job_id = j.id"
                " AND a.status = 'pending' WHERE j.id = %s",
                (job_id,),
            ).fetchone()
            if row is not None and row[0] is not None and row[1] == "awaiting_approval":
                return row[0]
            if row is not None and row[1] in FINAL_BAD:
                raise RuntimeError(f"decision job {job_id} ended {row[1]} before its approval")
            if time.monotonic() > until:
                worker.check_alive()
                raise RuntimeError(f"decision job {job_id} did not pause: {row}")
            time.sleep(LATENCY_POLL_S)

    def decisions(self, rnd: int, out: Decisions) -> None:
        """Idle decision -> next step: one job at a time on a fresh, warmed-up worker, paused on its
        approval; decide() here (as a rep's click would), then wait for the step after it."""
        from worker.engine.approvals import decide  # after use_env (settings read at import)

        event, tag = self.events[DECISION], uuid.uuid4().hex[:8]
        org, user = self.make_org()
        self.use_broker(self.broker_url)
        with self.worker("worker.celery_app", "steps,slow,edge", f"proactive-decision-r{rnd}") as w:
            for i in range(self.args.warmup + self.args.decisions):
                if i == self.args.warmup:
                    self.db.analyze()
                job_id = self.fire_one(event, org, user, tag, i).job_id
                approval_id = self.wait_paused(job_id, w)
                time.sleep(LATENCY_GAP_S)  # the worker is idle again (the paused step's task ended)
                t0 = time.time()
                decide(approval_id, "approve", user_id=user, org_id=org, actor="bench")
                t1 = time.time()
                until = time.monotonic() + 30
                while True:
                    row = self.db.admin.execute(
                        "SELECT s.status, s.started_at, s.finished_at, a.resumed_at FROM approvals a"
                        " LEFT JOIN step_runs s ON s.job_id = a.job_id AND s.step = 'after'"
                        " WHERE a.id = %s",
                        (approval_id,),
                    ).fetchone()
                    if row[2] is not None:
                        break
                    if time.monotonic() > until:
                        w.check_alive()
                        raise RuntimeError(f"the step after approval {approval_id} did not finish: {row}")
                    time.sleep(LATENCY_POLL_S)
                if row[0] != "succeeded":
                    raise RuntimeError(f"the step after approval {approval_id} ended {row[0]}")
                if i >= self.args.warmup:
                    out.decide_ms.append((t1 - t0) * 1000)
                    out.resumed_ms.append((epoch(row[3]) - t1) * 1000)
                    out.started_ms.append((epoch(row[1]) - t1) * 1000)
                    out.finished_ms.append((epoch(row[2]) - t1) * 1000)
                time.sleep(LATENCY_GAP_S)

    # ------------------------------------------------------------------ baselines

    def pg_conn(self) -> Any:
        """This thread's autocommit psycopg connection (the publisher's INSERT of a chain row)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = psycopg.connect(self.db.dsn, autocommit=True)
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def publish_chain(self, with_sql: bool, tag: str, done_key: str, inline: bool = False) -> None:
        """Publish one 5-task chain, or with `inline` one task running the 5 steps (baselines b and c:
        INSERT its row first, as fire_event inserts a job)."""
        task = baseline_app.db_step if with_sql else baseline_app.noop
        cid = str(uuid.uuid4())
        if with_sql:
            self.pg_conn().execute("INSERT INTO bench_chain (id, run) VALUES (%s, %s)", (cid, tag))
        if inline:
            baseline_app.db_steps_inline.apply_async((cid, STEPS_PER_JOB, done_key))
            return
        chain(
            *(task.si(cid, k, done_key if k == STEPS_PER_JOB else None) for k in range(1, STEPS_PER_JOB + 1))
        ).apply_async()

    def wait_chains(self, key: str, n: int, worker: WorkerProcess) -> float:
        """Wait until n chains pushed their finish time onto ``key``; the latest of them."""
        until = self.deadline(n)
        while self.db.redis.llen(key) < n:
            worker.check_alive()
            if time.monotonic() > until:
                got = self.db.redis.llen(key)
                raise RuntimeError(f"only {got}/{n} chains finished in time\n{worker.log_tail()}")
            time.sleep(POLL_S)
        return max(float(v) for v in self.db.redis.lrange(key, 0, -1))

    def baseline(self, system: str, rnd: int) -> Run:
        """Throughput of bare Celery chains, (a) no-op or (b) INSERT + UPDATE per task, or (c) one
        task per job committing (b)'s steps one by one."""
        inline = system == CHAIN_INLINE
        with_sql = inline or system in (CHAIN_SQL, CHAIN_SQL_MQ)
        n, tag = self.args.jobs, uuid.uuid4().hex[:8]
        warm_key, key = f"bench:done:w{tag}", f"bench:done:{tag}"

        def wait() -> tuple[int, float]:
            last = self.wait_chains(key, n, w)
            if not with_sql:
                return n * STEPS_PER_JOB, last
            steps = self.db.admin.execute(
                "SELECT count(*) FROM bench_step s JOIN bench_chain c ON c.id = s.chain_id"
                " WHERE c.run = %s AND c.step = %s",
                (tag, STEPS_PER_JOB),
            ).fetchone()[0]
            return steps, last

        letter = "c" if inline else "b" if with_sql else "a"
        name = f"baseline-{letter}-r{rnd}" + ("-mq" if system.endswith(ON_RABBITMQ) else "")
        with self.worker("bench.baseline_app", "bench", name, broker_url=self.broker_of(system)) as w:
            self.in_threads(self.args.warmup, lambda i: self.publish_chain(with_sql, "w" + tag, warm_key, inline))
            self.wait_chains(warm_key, self.args.warmup, w)
            self.db.analyze()
            run = self.measured(
                system,
                rnd,
                n,
                w,
                lambda: self.in_threads(n, lambda i: self.publish_chain(with_sql, tag, key, inline)),
                wait,
            )
        if run.steps != n * STEPS_PER_JOB:
            raise RuntimeError(f"{system}: {run.steps} steps recorded, expected {n * STEPS_PER_JOB}")
        return run

    def run_system(self, system: str, rnd: int) -> Run:
        """Measure one system once (this process publishing to the system's broker)."""
        self.use_broker(self.broker_of(system))
        if system in BASELINES:
            return self.baseline(system, rnd)
        return self.proactive(system, rnd)


# --------------------------------------------------------------------------- report


def add_vhost(name: str) -> str | None:
    """Make the RabbitMQ vhost `name` for guest; None when it worked, else the error."""
    perms = ("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return rabbitmqctl("add_vhost", name) or rabbitmqctl(*perms)


def rabbitmq_version(url: str) -> str:
    """The version the RabbitMQ server at `url` announces."""
    with Connection(url) as conn:
        conn.connect()
        return conn.connection.server_properties.get("version", "?")


def header(args: argparse.Namespace, bench: Bench) -> list[str]:
    """What was measured, where, with which versions and engine settings."""
    from worker.config import get_settings  # after use_env (settings read at import)

    s = get_settings()
    packages = ("celery", "kombu", "SQLAlchemy", "psycopg", "redis", *(("amqp",) if bench.vhost else ()))
    rabbitmq = f", RabbitMQ {rabbitmq_version(bench.amqp_url)} (vhost {bench.vhost})" if bench.vhost else ""
    return [
        machine_line("Engine benchmark", packages, bench.db) + rabbitmq,
        f"{args.jobs} jobs x {STEPS_PER_JOB} steps per system and round, {args.rounds} round(s) "
        f"(order alternates), {args.warmup} warm-up jobs per worker (then the database ANALYZEd), prefork -c "
        f"{args.concurrency}, "
        f"{args.fire_threads} firing threads; engine: inline_max_steps={s.inline_max_steps}, "
        f"inline_budget_s={s.inline_budget_s}"
        + (f"; decision row: {args.decisions} samples per round" if DECISION in args.selected else ""),
        *(
            [
                f"what-if rows '[{args.whatif}]' (profiling only, not the product configuration): the same "
                "system with these bench.whatif switches in its worker processes"
            ]
            if args.whatif
            else []
        ),
    ]


def table(runs: list[Run], with_round: bool) -> list[str]:
    """Rows: system, jobs, steps, seconds, steps/s, fire seconds, CPU ms per step."""
    w = max(22, *(len(r.system) + 2 for r in runs))
    head = (f"{'round':>5}  " if with_round else "") + (
        f"{'system':<{w}}{'jobs':>6}{'steps':>7}{'seconds':>9}{'steps/s':>9}{'fire s':>8}"
        f"{'worker':>8}{'client':>8}{'pg':>7}  (CPU ms/step)"
    )
    lines = [head]
    for r in runs:
        lines.append(
            (f"{r.round:>5}  " if with_round else "")
            + f"{r.system:<{w}}{r.jobs:>6}{r.steps:>7}{r.seconds:>9.2f}{r.steps_per_s:>9.0f}{r.fire_s:>8.2f}"
            f"{r.ms_per_step(r.worker_cpu_s):>8.2f}{r.ms_per_step(r.client_cpu_s):>8.2f}"
            f"{r.ms_per_step(r.pg_cpu_s):>7.2f}"
        )
    return lines


def decision_lines(dec: Decisions, label: str) -> list[str]:
    """The decision row: percentiles of each interval, pooled over the rounds."""

    def pcts(values: list[float]) -> str:
        return "  ".join(f"{percentile(values, p):7.2f}" for p in (50, 95, 99)) + f"  {max(values):7.2f}"

    gaps = [s - r for s, r in zip(dec.started_ms, dec.resumed_ms, strict=True)]
    runs = [f - s for f, s in zip(dec.finished_ms, dec.started_ms, strict=True)]
    rows = (
        ("decide() call itself", dec.decide_ms),
        ("decide() returned -> resume applied", dec.resumed_ms),
        ("resume applied -> next step started", gaps),
        ("next step started -> finished", runs),
        ("decide() returned -> next step started", dec.started_ms),
        ("decide() returned -> next step finished", dec.finished_ms),
    )
    return [
        "",
        f"Decision ({label}), idle no-op -> approval -> no-op job, decide() here -> the step after it "
        f"(n={len(dec.started_ms)}, all rounds pooled; ms; resume applied = approvals.resumed_at, "
        "started/finished = step_runs):",
        f"  {'interval':<42}{'p50':>7}  {'p95':>7}  {'p99':>7}  {'max':>7}",
        *(f"  {name:<42}{pcts(values)}" for name, values in rows),
    ]


def report(
    args: argparse.Namespace,
    runs: list[Run],
    lat: Latency,
    head: list[str],
    dec: Decisions | None = None,
    base: Decisions | None = None,
) -> str:
    """The printed result: per-round table, best-of-rounds summary, ratios, latency, decisions, targets."""
    measured = list(dict.fromkeys(r.system for r in runs))
    best = {s: max((r for r in runs if r.system == s), key=lambda r: r.steps_per_s) for s in measured}
    lines = [*head]
    if runs:
        lines += [
            "",
            "Per round:",
            *table(runs, with_round=True),
            "",
            f"Summary (best of {args.rounds} round(s) per system):",
            *table(list(best.values()), with_round=False),
        ]
    pairs = [
        (LINEAR, CHAIN, "linear/(a)"),
        (LINEAR, CHAIN_SQL, "linear/(b)"),
        (FANOUT, CHAIN_SQL, "fan-out/(b)"),
        (LINEAR, CHAIN_INLINE, "linear/(c)"),
        (CHAIN_INLINE, CHAIN, "(c)/(a)"),
        (LINEAR_MQ, CHAIN_SQL_MQ, "linear/(b) on RabbitMQ"),
        (LINEAR_MQ, LINEAR, "linear RabbitMQ/Redis"),
    ]
    pairs = [p for p in pairs if p[0] in best and p[1] in best]

    def ratio(by: dict[str, float], num: str, den: str) -> float:
        return by[num] / by[den]

    if pairs:
        by_best = {s: r.steps_per_s for s, r in best.items()}
        lines += [
            "",
            "Ratios (best rounds): " + ", ".join(f"{name} = {ratio(by_best, n, d):.2f}x" for n, d, name in pairs),
        ]
        for rnd in range(1, args.rounds + 1):
            by = {r.system: r.steps_per_s for r in runs if r.round == rnd}
            lines.append(
                f"  round {rnd} (same-round pairs): "
                + ", ".join(f"{name} = {ratio(by, n, d):.2f}x" for n, d, name in pairs)
            )

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    targets: list[str] = []
    if LINEAR in best and CHAIN in best:
        ratio_a = best[LINEAR].steps_per_s / best[CHAIN].steps_per_s
        targets.append(
            f"  linear >= {TARGET_RATIO_A:.2f}x bare Celery chain (a), best rounds  {ratio_a:>7.2f}x     "
            f"{mark(ratio_a >= TARGET_RATIO_A)}"
        )
    if FANOUT in best and CHAIN_SQL in best:
        ratio_b = best[FANOUT].steps_per_s / best[CHAIN_SQL].steps_per_s
        targets.append(
            f"  fan-out >= {TARGET_FANOUT_RATIO_B:.2f}x chain+SQL (b), best rounds     {ratio_b:>7.2f}x     "
            f"{mark(ratio_b >= TARGET_FANOUT_RATIO_B)}"
        )
    e2e, call = lat.end_to_end_ms, lat.fire_call_ms
    if e2e:
        p50, p95, p99 = percentile(e2e, 50), percentile(e2e, 95), percentile(e2e, 99)
        lines += [
            "",
            f"Latency, idle 5-step linear job, before fire_event() -> finished_at (n={len(e2e)}, "
            f"all rounds pooled): p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, min {min(e2e):.1f} ms; "
            f"fire_event() call itself p50 {statistics.median(call):.1f} ms",
        ]
        if lat.steps_ms:
            lines.append(
                f"  of which (p50): fire_event() {statistics.median(call):.1f} ms, its return -> the first step "
                f"started {statistics.median(lat.to_first_step_ms):.1f} ms (broker hop + claim), first step "
                f"started -> job finished {statistics.median(lat.steps_ms):.1f} ms (5 steps)"
            )
        if lat.chain_ms:
            c50, c99 = percentile(lat.chain_ms, 50), percentile(lat.chain_ms, 99)
            lines.append(
                f"  bare Celery chain (a), idle, publish -> its last task's finish (n={len(lat.chain_ms)}, same "
                f"rounds): p50 {c50:.1f} ms, p99 {c99:.1f} ms; ours / the chain's: p50 {p50 / c50:.2f}x, "
                f"p99 {p99 / c99:.2f}x"
            )
        targets += [
            f"  idle 5-step p50 <= {TARGET_P50_MS:.0f} ms                              {p50:>7.1f} ms  "
            f"{mark(p50 <= TARGET_P50_MS)}",
            f"  idle 5-step p99 <= {TARGET_P99_MS:.0f} ms                             {p99:>7.1f} ms  "
            f"{mark(p99 <= TARGET_P99_MS)}",
        ]
    if dec is not None and dec.started_ms:
        lines += decision_lines(dec, "this tree")
        if base is not None and base.started_ms:
            lines += decision_lines(base, f"baseline {args.baseline_ref}")
            pairs = (("started", dec.started_ms, base.started_ms), ("finished", dec.finished_ms, base.finished_ms))
            ratios = [
                f"{name} p{p} {percentile(b, p) / percentile(t, p):.2f}x" for name, t, b in pairs for p in (50, 99)
            ]
            lines.append(f"  baseline / this tree (same run): {', '.join(ratios)}")
        p50, p99 = percentile(dec.started_ms, 50), percentile(dec.started_ms, 99)
        targets += [
            f"  decision -> next step started p50 <= {TARGET_DECISION_P50_MS:.0f} ms   {p50:>7.2f} ms  "
            f"{mark(p50 <= TARGET_DECISION_P50_MS)}",
            f"  decision -> next step started p99 <= {TARGET_DECISION_P99_MS:.0f} ms  {p99:>7.2f} ms  "
            f"{mark(p99 <= TARGET_DECISION_P99_MS)}",
        ]
    lines += ["", "Targets:", *targets]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--quick`` shrinks every count for a smoke run)."""
    doc = __doc__ or ""
    p = argparse.ArgumentParser(prog="python -m bench.engine", description=doc.splitlines()[0])
    p.add_argument("--jobs", type=int, default=None, help="jobs (chains) per system and round (default 400)")
    p.add_argument("--rounds", type=int, default=None, help="rounds, order alternating (default 2)")
    p.add_argument("--latency", type=int, default=None, help="latency samples per round (default 50)")
    p.add_argument("--warmup", type=int, default=None, help="uncounted warm-up jobs per worker (default 8)")
    p.add_argument("--decisions", type=int, default=None, help="decision samples per round (default 100; --quick 100)")
    p.add_argument("--fire-threads", type=int, default=3, help="threads firing/publishing (default 3)")
    p.add_argument("--concurrency", type=int, default=2, help="prefork processes per worker (default 2)")
    p.add_argument(
        "--redis-db", type=int, default=None, help="Redis DB to use and flush (default: the highest empty one)"
    )
    p.add_argument("--quick", action="store_true", help="100 jobs, 1 round, 20 latency samples")
    p.add_argument(
        "--systems",
        default="linear,fanout,a,b,mq-linear,mq-b,latency,decision",
        help="what to run, comma-separated subset of linear,fanout,a,b,c,mq-linear,mq-b,latency,decision "
        "(mq-: on RabbitMQ instead of Redis; c: the floor of one commit per inline step; default: all but c)",
    )
    p.add_argument(
        "--baseline-ref",
        default=None,
        help="also run the decision row on this commit's engine (e.g. f989315; a git worktree in /tmp "
        "with this bench/ copied over it), in the same run, rounds alternating",
    )
    p.add_argument("--json-out", default=None, help=argparse.SUPPRESS)  # the decision samples (baseline runs)
    p.add_argument(
        "--write",
        action="store_true",
        help=f"write the result into BENCHMARKS.md ('{SECTION}'; needs mq-linear and mq-b)",
    )
    p.add_argument(
        "--whatif",
        default="",
        help="profiling only: also run each selected Proactive system with these comma-separated "
        "bench.whatif switches (no_events, no_ping) in its worker, as extra rows",
    )
    args = p.parse_args(argv)
    quick = {"jobs": 100, "rounds": 1, "latency": 20, "warmup": 6, "decisions": 100}
    full = {"jobs": 400, "rounds": 2, "latency": 50, "warmup": 8, "decisions": 100}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    names = {
        "linear": LINEAR,
        "fanout": FANOUT,
        "a": CHAIN,
        "b": CHAIN_SQL,
        "c": CHAIN_INLINE,
        "mq-linear": LINEAR_MQ,
        "mq-b": CHAIN_SQL_MQ,
        "latency": "latency",
        "decision": DECISION,
    }
    chosen = [n.strip() for n in args.systems.split(",") if n.strip()]
    if unknown := [n for n in chosen if n not in names]:
        p.error(f"unknown --systems {unknown}")
    if args.write and not {"mq-linear", "mq-b"} <= set(chosen):
        p.error("--write writes the RabbitMQ section: --systems must include mq-linear and mq-b")
    args.selected = [names[n] for n in chosen]
    return args


def main(argv: list[str] | None = None) -> None:
    """Set the environment, run every system for every round, print the report."""
    args = parse_args(argv)
    backends = Backends(fresh_db_name(), pick_redis_db(args.redis_db))
    use_env(engine_env(backends))  # before any worker module reads its settings
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        bench = Bench(args, backends, Path(tmp))
        runs: list[Run] = []
        lat, dec, base = Latency(), Decisions(), Decisions()
        head: list[str] = []
        progress: list[str] = []  # the per-system lines printed while it runs (kept for --write)

        def note(line: str) -> None:
            progress.append(line)
            print(line, file=sys.stderr, flush=True)

        try:
            bench.setup()
            head = header(args, bench)
            print("\n".join(head), flush=True)
            systems: list[str] = []
            for s in SYSTEMS:  # a what-if variant runs right after its system (A/B under similar noise)
                if s in args.selected:
                    systems.append(s)
                    if args.whatif and s in (LINEAR, FANOUT):
                        systems.append(f"{s} [{args.whatif}]")
            width = max([22, *(len(s) for s in systems)])
            for rnd in range(1, args.rounds + 1):
                for system in systems if rnd % 2 else reversed(systems):
                    run = bench.run_system(system, rnd)
                    runs.append(run)
                    note(f"  round {rnd}: {system:<{width}} {run.steps_per_s:6.0f} steps/s")
                if "latency" in args.selected:
                    for which in ("ours", "chain") if rnd % 2 else ("chain", "ours"):
                        if which == "ours":
                            bench.latency(rnd, lat)
                        else:
                            bench.latency_chain(rnd, lat)
                    note(f"  round {rnd}: latency p50 so far {percentile(lat.end_to_end_ms, 50):.1f} ms")
                if DECISION in args.selected:
                    for which in ("this", "base") if rnd % 2 else ("base", "this"):
                        if which == "this":
                            bench.decisions(rnd, dec)
                            p50 = percentile(dec.started_ms, 50)
                            note(f"  round {rnd}: decision -> next step started p50 so far {p50:.2f} ms")
                        elif args.baseline_ref:
                            base.extend(baseline_decisions(args, backends.redis_db))
                            p50 = percentile(base.started_ms, 50)
                            note(f"  round {rnd}: decision on {args.baseline_ref}: p50 so far {p50:.2f} ms")
        finally:
            bench.teardown()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(vars(dec)))
    result = report(args, runs, lat, [], dec, base)
    footer = (
        f"\n(total wall time {time.monotonic() - started:.0f} s; throughput = steps / (last completion - "
        f"first fire); CPU ms/step over that window: worker = the worker's processes, client = this "
        f"process firing/publishing + polling, pg = PostgreSQL backends of the bench database)"
    )
    print(result)
    print(footer)
    output = "\n".join([*head, *progress, result, footer])
    if args.write:  # the notes under the run's output are kept
        write_section(BENCHMARKS_MD, SECTION, section(sys.argv[1:] if argv is None else argv, output))


def engine_env(backends: Backends) -> dict[str, str]:
    """Environment of this process and the workers: the run's database and broker, the no-op DAGs."""
    # The baselines' completion signal is always Redis, whatever their broker.
    return bench_env(backends, SEQUENCE_MODULES, BENCH_SIGNAL_URL=backends.broker_url or "")


def section(argv: list[str], output: str) -> str:
    """The RabbitMQ section of BENCHMARKS.md: what it compares, the command (`argv`), the run's output."""
    command = shlex.join([".venv/bin/python", "-m", "bench.engine", *argv])
    about = (
        "The engine's 5-step linear sequence on PostgreSQL + RabbitMQ next to the same on PostgreSQL +\n"
        "Redis, each against the hand-written Celery chain whose tasks INSERT + UPDATE a PostgreSQL row\n"
        "(baseline (b)) on the same broker, in the same run: same workload, same worker options and\n"
        "settings (acks_late, prefetch 1), only BROKER_URL differs. Each system on its own fresh worker\n"
        "warmed up with uncounted jobs, rounds in alternating order, best round reported (same-round\n"
        "ratios printed too)."
    )
    return section_text(SECTION, f"{about}\n\nCommand:", command, output)


if __name__ == "__main__":
    main()
