"""Benchmark: stock ``sqla+sqlite://`` kombu transport vs ours (``proactive+sqlite://``).

For each transport, a real ``celery worker --pool solo`` (tests/support/broker_app.py) is started on
a fresh SQLite file, then:

* throughput: N no-op tasks are published in a burst; tasks/s = N / (last task start - first publish);
* latency: 100 tasks published one at a time, 30 ms apart; p50/p95 of publish -> task start;
* idle CPU: the worker's CPU time over a few idle seconds (after the runs above, so the stock
  transport's delivered-row history is in the table);
* exit: SIGTERM -> process exit.

With ``--baseline-ref REF`` (e.g. ``f989315``) our transport as it was at REF runs too, its worker
started from a git worktree of REF (this process publishes with today's code: the table layout is
the same).

Run: ``cd /work/main && .venv/bin/python -m bench.broker_sqlite [--tasks 2000] [--idle 5]
[--baseline-ref f989315]``
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.embedded import worktree
from bench.harness import REPO, ChildProcess, cpu_seconds, percentile
from tests.support import broker_app

LATENCY_TASKS, LATENCY_GAP_S = 100, 0.03


@dataclass
class Result:
    label: str
    tasks_per_s: float
    p50_ms: float
    p95_ms: float
    idle_cpu_pct: float
    exit_s: float


def records(path: Path) -> list[tuple[int, float, float]]:
    """Parse ``n sent_at started_at`` lines written by the record task."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        n, sent, started = line.split()
        out.append((int(n), float(sent), float(started)))
    return out


def wait_records(path: Path, count: int, timeout: float) -> list[tuple[int, float, float]]:
    """Poll the record file until it has ``count`` lines, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while len(got := records(path)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name}: {len(got)}/{count} tasks after {timeout}s")
        time.sleep(0.01)
    return got


class TreeChild(ChildProcess):
    """A child process run from ``tree`` (this repo or a baseline worktree) instead of this repo."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path, tree: Path) -> None:
        super().__init__(name, args, env, log_path)
        self.tree = tree
        self.env["PYTHONPATH"] = str(tree)

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process in ``tree`` (output appended to the log, its own process group)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, cwd=self.tree, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self.proc


def run(label: str, url: str, workdir: Path, n_tasks: int, idle_s: float, tree: Path = REPO) -> Result:
    """Start a solo worker on ``url`` (from ``tree``) and measure it."""
    record_file = workdir / f"{label.replace(' ', '_')}.records"
    env = {"BROKER_URL": url, "RECORD_FILE": str(record_file)}
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.support.broker_app",
        "worker",
        "--pool",
        "solo",
        "-l",
        "warning",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]
    handle = TreeChild(label, cmd, env, workdir / f"{label.replace(' ', '_')}.log", tree)
    worker = handle.spawn()
    try:
        with broker_app.app.connection_for_write(url) as conn:

            def publish(n: int) -> None:
                broker_app.record.apply_async((n, time.time()), connection=conn)

            publish(-1)  # warm-up: the worker is consuming once this ran
            wait_records(record_file, 1, 60)
            first = time.time()
            for i in range(n_tasks):
                publish(i)
            burst = wait_records(record_file, 1 + n_tasks, 120)
            tasks_per_s = n_tasks / (max(r[2] for r in burst if r[0] >= 0) - first)
            for j in range(LATENCY_TASKS):
                publish(n_tasks + j)
                time.sleep(LATENCY_GAP_S)
            done = wait_records(record_file, 1 + n_tasks + LATENCY_TASKS, 60)
        lat = sorted((started - sent) * 1000 for n, sent, started in done if n >= n_tasks)
        cpu0, t0 = cpu_seconds([worker.pid])[worker.pid], time.monotonic()
        time.sleep(idle_s)
        idle = (cpu_seconds([worker.pid])[worker.pid] - cpu0) / (time.monotonic() - t0) * 100
        stop = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        exit_s = time.monotonic() - stop
        ids = sorted(r[0] for r in records(record_file))
        assert ids == list(range(-1, n_tasks + LATENCY_TASKS)), f"{label}: lost or duplicated tasks"
    finally:
        handle.stop()  # the whole process group, whatever is left of it
    return Result(label, tasks_per_s, statistics.median(lat), percentile(lat, 95), idle, exit_s)


def main() -> None:
    """Run both transports and print a table plus ours/stock ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU sampling")
    parser.add_argument("--baseline-ref", default=None, help="also run our transport as it was at this commit")
    args = parser.parse_args()
    print(f"load avg {os.getloadavg()[0]:.2f} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as tmp:
        work = Path(tmp)
        stock = run("stock sqla+sqlite", f"sqla+sqlite:///{work}/stock.db", work, args.tasks, args.idle)
        ours = run("proactive+sqlite", f"proactive+sqlite:///{work}/ours.db", work, args.tasks, args.idle)
        then = None
        if args.baseline_ref:
            label, url = f"ours @{args.baseline_ref}", f"proactive+sqlite:///{work}/then.db"
            then = run(label, url, work, args.tasks, args.idle, worktree(args.baseline_ref))
    print(
        f"{args.tasks} no-op tasks, solo worker; latency over {LATENCY_TASKS} tasks "
        f"published {LATENCY_GAP_S * 1000:.0f} ms apart; idle CPU over {args.idle:.0f} s"
    )
    print(f"{'transport':<20}{'tasks/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'idle CPU':>10}{'exit s':>8}")
    for r in (stock, ours, *([then] if then else [])):
        print(
            f"{r.label:<20}{r.tasks_per_s:>9.0f}{r.p50_ms:>9.1f}{r.p95_ms:>9.1f}{r.idle_cpu_pct:>9.1f}%{r.exit_s:>8.2f}"
        )
    print(
        f"ours/stock: throughput x{ours.tasks_per_s / stock.tasks_per_s:.1f}, "
        f"p50 latency x{ours.p50_ms / stock.p50_ms:.2f}, exit time x{ours.exit_s / stock.exit_s:.2f}"
    )
    if then:
        print(
            f"ours/ours @{args.baseline_ref}: throughput x{ours.tasks_per_s / then.tasks_per_s:.1f}, "
            f"p50 latency x{ours.p50_ms / then.p50_ms:.2f}, exit time x{ours.exit_s / then.exit_s:.2f}"
        )


if __name__ == "__main__":
    main()
