"""Benchmark: the engine on the embedded default (SQLite database + ``proactive+sqlite://`` broker).

Issue 17 target 6: >= 500 steps/s on the 5-step no-op linear sequence, worker exit <= 0.5 s. Each
system runs on fresh SQLite files (database and broker) in a temporary directory, with a real worker
started the way ``proactive worker`` starts one on SQLite (``celery -A worker.celery_app worker -Q
steps,slow,edge -P threads``, Celery's default concurrency: the CPU count; ``-l WARNING`` instead of
INFO so no per-task log line is measured):

1. ``proactive linear``: the 5-step no-op chain (bench.noop_dags.LINEAR), ``--jobs`` jobs fired with
   ``fire_event`` from ``--fire-threads`` threads of a client process (bench/embedded_client.py);
   steps/s = succeeded steps / (largest ``finished_at`` - first fire);
2. ``celery chain (a)``: ``chain(t.si() x 5)`` of no-op tasks on the same broker and pool
   (bench/embedded_baseline.py), published from this process; the last task of each chain appends
   its finish time to a file;
3. ``proactive linear @REF`` (``--baseline-ref f989315``): 1. with the worker and the client run
   from a git worktree of REF (made once under /tmp), i.e. today's code in the same run;

then, per Proactive system, the idle 5-step latency (one job at a time: before ``fire_event`` ->
``finished_at``) and, for every system, the worker's exit time (SIGTERM -> process exit) after its
run. CPU ms per step: the worker's process and the client's, from /proc over the measured window.
Rounds alternate the order of the systems; the summary reports the best round of each.

Run from the repo root: ``.venv/bin/python -m bench.embedded [--jobs 1000] [--rounds 2]
[--baseline-ref f989315] [--write]`` (``--write`` puts the result into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from celery import chain

from bench.engine import FINAL_BAD, STEPS_PER_JOB
from bench.harness import (
    BENCHMARKS_MD,
    REPO,
    WorkerProcess,
    cpu_delta,
    cpu_seconds,
    epoch,
    percentile,
    raise_on_signals,
    section_text,
    start_py_spy,
    stop_py_spy,
    write_section,
)

SECTION = "### Embedded engine (bench/embedded.py)"
LINEAR, CHAIN = "proactive linear", "celery chain (a)"
SEQUENCE_MODULES = "sequences,bench.noop_dags"
CLIENT = REPO / "bench" / "embedded_client.py"
# Pause between two completion checks (seconds).
POLL_S = 0.01
# Quiet time after a latency sample so the next one starts on an idle worker (seconds).
LATENCY_GAP_S = 0.03
# How long a SIGTERM'd worker may take before the measurement gives up (seconds).
EXIT_TIMEOUT_S = 30.0
TARGET_STEPS_PER_S = 500.0
TARGET_EXIT_S = 0.5


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
    exit_s: float
    latency_ms: list[float] = field(default_factory=list)

    @property
    def steps_per_s(self) -> float:
        """Persisted (or, for the chain, executed) steps per second."""
        return self.steps / self.seconds

    def ms_per_step(self, cpu_s: float) -> float:
        """CPU milliseconds per step."""
        return cpu_s * 1000 / self.steps


class TreeWorker(WorkerProcess):
    """``celery worker -P <pool>`` run from ``tree`` (this repo or a baseline worktree)."""

    def __init__(
        self,
        app: str,
        queues: str,
        env: Mapping[str, str],
        workdir: Path,
        name: str,
        tree: Path,
        pool: str,
        profile: str,
        concurrency: int | None = None,
    ) -> None:
        super().__init__(app, queues, env, workdir, name)
        self.tree = tree
        self.env["PYTHONPATH"] = str(tree)
        python = [sys.executable] + (["-m", "cProfile", "-o", f"{profile}/{name}.prof"] if profile else [])
        self.args = [*python, "-m", "celery", "-A", app, "worker", "-Q", queues, "-P", pool]
        self.args += ["-c", str(concurrency)] if concurrency else []
        self.args += ["-n", f"{name}@%h", "-l", "WARNING"]

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the worker in ``tree``, output appended to the log, in its own process group."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, cwd=self.tree, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self.proc

    def exit_time(self) -> float:
        """SIGTERM the main process; seconds until it exited."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return float("inf")
        return time.monotonic() - t0


class Client:
    """bench/embedded_client.py in a child process run from ``tree``: migrates, fires, answers."""

    def __init__(self, tree: Path, env: Mapping[str, str], log_path: Path) -> None:
        self.log = log_path.open("ab")
        code = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(CLIENT)],
            cwd=tree,
            env={**os.environ, **env, "PYTHONPATH": str(tree)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            start_new_session=True,
        )
        self.ask_raw()  # {"ready": true} once migrated and loaded

    def ask_raw(self) -> dict[str, Any]:
        """The client's next answer (RuntimeError with its log if it died)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.log.flush()
            raise RuntimeError(f"client exited:\n{Path(self.log.name).read_text()[-3000:]}")
        return json.loads(line)

    def ask(self, **cmd: Any) -> dict[str, Any]:
        """Send one command and return its answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self.ask_raw()

    def close(self) -> None:
        """Close stdin (the client exits), then make sure its process group is gone."""
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


class JobsDb:
    """Read-only look at a system's SQLite database (plain sqlite3, autocommit: no write lock)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)

    def progress(self, org: str) -> tuple[int, int, float | None]:
        """(completed jobs, failed jobs, largest finished_at as epoch) of the org."""
        bad = ",".join("?" * len(FINAL_BAD))
        done, failed, last = self.conn.execute(
            f"SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status IN ({bad})),"
            " max(finished_at) FROM sequence_jobs WHERE org_id = ?",
            (*FINAL_BAD, org),
        ).fetchone()
        return done, failed, epoch(datetime.fromisoformat(last)) if last else None

    def finished(self, job: str) -> tuple[str, float | None]:
        """(status, finished_at as epoch) of one job."""
        status, last = self.conn.execute(
            "SELECT status, finished_at FROM sequence_jobs WHERE id = ?", (job,)
        ).fetchone()
        return status, epoch(datetime.fromisoformat(last)) if last else None

    def steps(self, org: str) -> int:
        """Succeeded step runs of the org."""
        return self.conn.execute(
            "SELECT count(*) FROM step_runs WHERE org_id = ? AND status = 'succeeded'", (org,)
        ).fetchone()[0]

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def deadline(jobs: int) -> float:
    """A generous time limit for a batch (a broken run fails instead of hanging)."""
    return time.monotonic() + 60 + jobs * STEPS_PER_JOB / 50


def wait_jobs(db: JobsDb, org: str, n: int, worker: TreeWorker) -> tuple[int, float]:
    """Wait until the org's n jobs completed; (succeeded steps, largest finished_at)."""
    until = deadline(n)
    while True:
        done, bad, last = db.progress(org)
        if bad:
            raise RuntimeError(f"{bad} benchmark jobs did not complete\n{worker.log_tail()}")
        if done >= n and last is not None:
            return db.steps(org), last
        worker.check_alive()
        if time.monotonic() > until:
            raise RuntimeError(f"only {done}/{n} jobs completed in time\n{worker.log_tail()}")
        time.sleep(POLL_S)


def system_env(home: Path, ready_name: str) -> dict[str, str]:
    """The environment of one system's processes: its own SQLite files, the no-op DAGs, no live services."""
    return {
        "PROACTIVE_HOME": str(home),
        "DATABASE_URL": f"sqlite:///{home / 'proactive.db'}",
        "BROKER_URL": f"proactive+sqlite:///{home / 'broker.db'}",
        "BENCH_BROKER_URL": f"proactive+sqlite:///{home / 'broker.db'}",
        "BENCH_DONE_FILE": str(home / "done"),
        "PROACTIVE_SEQUENCE_MODULES": SEQUENCE_MODULES,
        "LLM_BASE_URL": "",
        "SLACK_BOT_TOKEN": "",
        "GOOGLE_API_URL": "",
        "INSTANTLY_API_URL": "",
        "BENCH_SYSTEM": ready_name,
    }


def proactive(args: argparse.Namespace, system: str, tree: Path, rnd: int, work: Path) -> Run:
    """Throughput, idle latency and exit time of the linear DAG on fresh SQLite files, from ``tree``."""
    name = f"{'ref' if tree != REPO else 'proactive'}-r{rnd}"
    home = work / name
    home.mkdir()
    env = system_env(home, name)
    client = Client(tree, env, work / f"{name}-client.log")
    db = JobsDb(home / "proactive.db")
    w = TreeWorker(
        "worker.celery_app", "steps,slow,edge", env, work, name, tree, args.pool, args.profile, args.concurrency
    )
    try:
        w.start()
        tag = uuid.uuid4().hex[:8]
        warm = client.ask(cmd="org")
        client.ask(cmd="fire", tag="w" + tag, n=args.warmup, threads=args.fire_threads, **warm)
        wait_jobs(db, warm["org"], args.warmup, w)
        org = client.ask(cmd="org")
        pids = [w.proc.pid, client.proc.pid]  # type: ignore[union-attr]
        spy = start_py_spy(w.proc.pid, f"{args.py_spy}/{name}.txt") if args.py_spy else None  # type: ignore[union-attr]
        cpu0 = cpu_seconds(pids)
        fired = client.ask(cmd="fire", tag=tag, n=args.jobs, threads=args.fire_threads, **org)
        steps, last = wait_jobs(db, org["org"], args.jobs, w)
        cpu1 = cpu_seconds(pids)
        if spy is not None:
            stop_py_spy(spy)
        if steps != args.jobs * STEPS_PER_JOB:
            raise RuntimeError(f"{system}: {steps} steps persisted, expected {args.jobs * STEPS_PER_JOB}")
        latency = idle_latency(args, client, db, w, tag)
        exit_s = w.exit_time()
    finally:
        w.stop()
        client.close()
        db.close()
    return Run(
        system,
        rnd,
        args.jobs,
        steps,
        last - fired["t0"],
        fired["t1"] - fired["t0"],
        cpu1[w.proc.pid] - cpu0[w.proc.pid],  # type: ignore[union-attr]
        cpu1[client.proc.pid] - cpu0[client.proc.pid],
        exit_s,
        latency,
    )


def idle_latency(args: argparse.Namespace, client: Client, db: JobsDb, w: TreeWorker, tag: str) -> list[float]:
    """One linear job at a time on the idle worker: before fire_event() -> finished_at (ms)."""
    org = client.ask(cmd="org")
    out: list[float] = []
    for i in range(args.latency):
        res = client.ask(cmd="one", tag="l" + tag, i=i, **org)
        until = time.monotonic() + 30
        while (row := db.finished(res["job"]))[1] is None:
            if time.monotonic() > until:
                w.check_alive()
                raise RuntimeError(f"latency job {res['job']} did not finish: {row}")
            time.sleep(POLL_S / 5)
        if row[0] != "completed":
            raise RuntimeError(f"latency job {res['job']} ended {row[0]}")
        out.append((row[1] - res["t0"]) * 1000)
        time.sleep(LATENCY_GAP_S)
    return out


def baseline(args: argparse.Namespace, rnd: int, work: Path) -> Run:
    """Throughput and exit time of bare 5-task Celery chains on the same broker and pool."""
    name = f"chain-r{rnd}"
    home = work / name
    home.mkdir()
    env = system_env(home, name)
    done_file = Path(env["BENCH_DONE_FILE"])
    app = baseline_app(env["BENCH_BROKER_URL"])
    from bench import embedded_baseline

    tag = uuid.uuid4().hex[:8]

    def publish(n: int, run_tag: str) -> None:
        for _ in range(n):
            cid = str(uuid.uuid4())
            tasks = [
                embedded_baseline.noop.si(cid, k, run_tag if k == STEPS_PER_JOB else None)
                for k in range(1, STEPS_PER_JOB + 1)
            ]
            chain(*tasks).apply_async()

    def finished(run_tag: str) -> list[float]:
        if not done_file.exists():
            return []
        return [float(t) for g, t in (ln.split() for ln in done_file.read_text().splitlines()) if g == run_tag]

    def wait(n: int, run_tag: str) -> float:
        until = deadline(n)
        while len(got := finished(run_tag)) < n:
            w.check_alive()
            if time.monotonic() > until:
                raise RuntimeError(f"only {len(got)}/{n} chains finished in time\n{w.log_tail()}")
            time.sleep(POLL_S)
        return max(got)

    w = TreeWorker(
        "bench.embedded_baseline",
        embedded_baseline.QUEUE,
        env,
        work,
        name,
        REPO,
        args.pool,
        args.profile,
        args.concurrency,
    )
    try:
        w.start()
        publish(args.warmup, "w" + tag)
        wait(args.warmup, "w" + tag)
        cpu0, c0 = cpu_seconds([w.proc.pid]), time.process_time()  # type: ignore[union-attr]
        t0 = time.time()
        publish(args.jobs, tag)
        t1 = time.time()
        last = wait(args.jobs, tag)
        cpu1, c1 = cpu_seconds([w.proc.pid]), time.process_time()  # type: ignore[union-attr]
        exit_s = w.exit_time()
    finally:
        w.stop()
        app.pool.force_close_all()
    steps = args.jobs * STEPS_PER_JOB
    return Run(CHAIN, rnd, args.jobs, steps, last - t0, t1 - t0, cpu_delta(cpu0, cpu1), c1 - c0, exit_s)


def baseline_app(url: str) -> Any:
    """The baseline's Celery app, publishing to ``url`` (a fresh broker file per round)."""
    os.environ["BENCH_BROKER_URL"] = url  # read when the module is first imported
    from kombu import pools

    from bench import embedded_baseline

    app = embedded_baseline.app
    app.conf.broker_url = url
    pools.reset()
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
    return app


def worktree(ref: str) -> Path:
    """A git worktree of ``ref`` under /tmp (made once, reused)."""
    sha = subprocess.run(["git", "rev-parse", ref], cwd=REPO, capture_output=True, text=True, check=True)
    path = Path(tempfile.gettempdir()) / f"proactive-embedded-base-{sha.stdout.strip()[:12]}"
    if not (path / "worker").is_dir():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), ref], cwd=REPO, check=True)
    return path


# --------------------------------------------------------------------------- report


def table(runs: list[Run], with_round: bool) -> list[str]:
    """Rows: system, steps, seconds, steps/s, fire s, CPU ms/step, idle latency, exit time."""
    w = max(20, *(len(r.system) + 2 for r in runs))
    lines = [
        (f"{'round':>5}  " if with_round else "")
        + f"{'system':<{w}}{'steps':>6}{'seconds':>8}{'steps/s':>8}{'fire s':>7}{'worker':>7}{'client':>7}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'exit s':>7}"
    ]
    for r in runs:
        lat = f"{percentile(r.latency_ms, 50):>8.1f}{percentile(r.latency_ms, 95):>8.1f}" if r.latency_ms else " " * 16
        lines.append(
            (f"{r.round:>5}  " if with_round else "")
            + f"{r.system:<{w}}{r.steps:>6}{r.seconds:>8.2f}{r.steps_per_s:>8.0f}{r.fire_s:>7.2f}"
            f"{r.ms_per_step(r.worker_cpu_s):>7.2f}{r.ms_per_step(r.client_cpu_s):>7.2f}{lat}{r.exit_s:>7.2f}"
        )
    return lines


def report(args: argparse.Namespace, runs: list[Run], ref_label: str | None) -> str:
    """Per-round table, best-of-rounds summary, same-round ratios, targets."""
    best = {
        s: max((r for r in runs if r.system == s), key=lambda r: r.steps_per_s)
        for s in dict.fromkeys(r.system for r in runs)
    }
    lines = [
        "Per round (CPU in ms per step; p50/p95: idle 5-step latency, before fire_event() -> finished_at):",
        *table(runs, True),
        "",
        f"Summary (best of {args.rounds} round(s)):",
        *table(list(best.values()), False),
        "",
    ]
    pairs = [(LINEAR, CHAIN, "linear/chain (a)")] + ([(LINEAR, ref_label, "linear/ref")] if ref_label else [])
    for rnd in range(1, args.rounds + 1):
        by = {r.system: r.steps_per_s for r in runs if r.round == rnd}
        ratios = [f"{name} = {by[a] / by[b]:.2f}x" for a, b, name in pairs if a in by and b in by]
        lines.append(f"round {rnd} ratios: " + ", ".join(ratios))
    if LINEAR in best:
        lin = best[LINEAR]
        worst_exit = max(r.exit_s for r in runs if r.system == LINEAR)

        def mark(ok: bool) -> str:
            return "met" if ok else "NOT met"

        lines += [
            "",
            "Targets (issue 17 target 6):",
            f"  >= {TARGET_STEPS_PER_S:.0f} steps/s (linear, best round)   {lin.steps_per_s:>7.0f}    "
            f"{mark(lin.steps_per_s >= TARGET_STEPS_PER_S)}",
            f"  worker exit <= {TARGET_EXIT_S} s (worst round)      {worst_exit:>7.2f} s  "
            f"{mark(worst_exit <= TARGET_EXIT_S)}",
        ]
    return "\n".join(lines)


def header(args: argparse.Namespace, ref: str | None) -> str:
    """When, where, with what."""
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("celery", "kombu", "SQLAlchemy"))
    return (
        f"Embedded engine benchmark, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}: {os.cpu_count()} cores "
        f"(load avg {os.getloadavg()[0]:.2f} at start), Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}, {versions}\n"
        f"{args.jobs} jobs x {STEPS_PER_JOB} steps per system and round, {args.rounds} round(s) (order "
        f"alternates), {args.warmup} warm-up jobs, {args.latency} latency samples, worker -P {args.pool} "
        + (f"-c {args.concurrency}" if args.concurrency else "(default concurrency)")
        + f", {args.fire_threads} firing threads"
        + (f"; baseline ref {ref}" if ref else "")
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench.embedded", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--jobs", type=int, default=1000, help="jobs (chains) per system and round (default 1000)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--latency", type=int, default=30, help="idle latency samples per Proactive run")
    p.add_argument("--fire-threads", type=int, default=3)
    p.add_argument("--pool", default="threads", help="worker pool (the product's embedded default: threads)")
    p.add_argument(
        "--concurrency", type=int, default=None, help="worker -c (default: none given, Celery's: the CPU count)"
    )
    p.add_argument("--baseline-ref", default=None, help="also run the engine from a worktree of this commit")
    p.add_argument(
        "--profile",
        default="",
        help="profiling only: run each worker under cProfile, stats to DIR/<worker>.prof (the main thread's: "
        "use --pool solo to see the tasks too)",
    )
    p.add_argument("--py-spy", default="", help="profiling only: py-spy the linear worker's measured window into DIR")
    p.add_argument("--no-chain", action="store_true", help="skip the bare Celery chain baseline")
    p.add_argument("--write", action="store_true", help=f"write the result into BENCHMARKS.md ('{SECTION}')")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run every system for every round, print (and maybe write) the report."""
    args = parse_args(argv)
    raise_on_signals(signal.SIGTERM, signal.SIGINT)
    ref_label = f"{LINEAR} @{args.baseline_ref}" if args.baseline_ref else None
    ref_tree = worktree(args.baseline_ref) if args.baseline_ref else None
    head = header(args, args.baseline_ref)
    print(head, flush=True)
    systems = [LINEAR] + ([] if args.no_chain else [CHAIN]) + ([ref_label] if ref_label else [])
    runs: list[Run] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-embedded-") as tmp:
        work = Path(tmp)
        for rnd in range(1, args.rounds + 1):
            for system in systems if rnd % 2 else list(reversed(systems)):
                if system == CHAIN:
                    run = baseline(args, rnd, work)
                else:
                    run = proactive(args, system, REPO if system == LINEAR else ref_tree, rnd, work)  # type: ignore[arg-type]
                runs.append(run)
                print(
                    f"  round {rnd}: {system:<28} {run.steps_per_s:6.0f} steps/s, exit {run.exit_s:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
    result = report(args, runs, ref_label)
    footer = f"(total wall time {time.monotonic() - started:.0f} s)"
    print(result)
    print(footer)
    if args.write:
        command = shlex.join([".venv/bin/python", "-m", "bench.embedded", *(sys.argv[1:] if argv is None else argv)])
        about = (
            "The engine's 5-step no-op linear sequence on the embedded default (SQLite database +\n"
            "`proactive+sqlite://` broker, fresh files per system, a real `celery worker -P threads` as\n"
            "`proactive worker` starts it) next to bare 5-task Celery chains on the same broker and pool,\n"
            "in the same run (and today's code from a worktree with `--baseline-ref`)."
        )
        write_section(
            BENCHMARKS_MD,
            SECTION,
            section_text(SECTION, f"{about}\n\nCommand:", command, f"{head}\n{result}\n{footer}"),
        )


if __name__ == "__main__":
    main()
