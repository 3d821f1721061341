"""Real ``celery worker`` subprocesses for benchmarks, and CPU accounting from /proc.

A worker runs in its own session (process group); ``stop()`` always ends the whole group by PID,
so no pool child outlives the benchmark. Readiness is the file ``bench.ready`` touches on
``worker_ready``, so workers can log at WARNING (no per-task log lines in the measurement).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from bench.ready import READY_FILE_ENV

REPO = Path(__file__).resolve().parents[1]
# How long a worker may take to start consuming on a loaded 2-core machine (seconds).
READY_TIMEOUT_S = 60.0
# How long a warm shutdown may take before the group is killed (seconds).
STOP_TIMEOUT_S = 10.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


class WorkerProcess:
    """One ``celery -A APP worker -P prefork -c N`` subprocess and its pool children."""

    def __init__(self, app: str, queues: str, env: Mapping[str, str], workdir: Path, name: str,
                 concurrency: int = 2) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.ready_path = workdir / f"{name}.ready"
        self.env = {**os.environ, **env, "PYTHONPATH": str(REPO), READY_FILE_ENV: str(self.ready_path)}
        self.args = [
            sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queues, "-P", "prefork",
            "-c", str(concurrency), "-n", f"{name}@%h", "-l", "WARNING",
            "--without-mingle", "--without-gossip", "--without-heartbeat",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        """Start the worker and return once it consumes (RuntimeError with its log otherwise)."""
        self.ready_path.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.args, cwd=REPO, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.ready_path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"worker {self.name} did not start:\n{self.log_tail()}")
            time.sleep(0.02)
        return self

    def log_tail(self, chars: int = 3000) -> str:
        """The end of what the worker printed."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def check_alive(self) -> None:
        """Raise with the worker's log when its main process has exited."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"worker {self.name} exited:\n{self.log_tail()}")

    def pids(self) -> list[int]:
        """The main process and its pool children."""
        if self.proc is None:
            return []
        return [self.proc.pid, *children_of(self.proc.pid)]

    def stop(self) -> None:
        """Warm shutdown (SIGTERM to the group), then SIGKILL whatever of the group is left."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        if self.proc.poll() is None:
            _killpg(pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        _killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process in ``pids``."""
    out: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return out


def cpu_delta(before: Mapping[int, float], after: Mapping[int, float]) -> float:
    """CPU seconds spent between two samples (a process born in between counts from zero)."""
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())
