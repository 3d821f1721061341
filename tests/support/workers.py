"""Real `celery worker` processes for tests: started with the test's env, always stopped (by PID).

`WorkerProcess.start()` returns once the worker logs `ready`; `kill()` sends SIGKILL to the whole
process group (main process and pool children), as a crashed machine would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
# How long a worker may take to log "ready" (seconds): prefork start-up on a loaded 2-core box.
READY_TIMEOUT_S = 30.0
# How long a warm shutdown may take before the worker is killed (seconds): one takes ~0.5-1 s here.
# A SIGTERM to the whole group (stop) sometimes leaves the main process waiting in billiard's pool
# finalizer for the inqueue lock of a child that died holding it (1 teardown in 4-6 on the SQLite
# broker), until this runs out: kept short.
STOP_TIMEOUT_S = 8.0


class WorkerProcess:
    """One `celery -A worker.celery_app worker` subprocess."""

    READY = "ready."  # what the process logs once it consumes

    def __init__(
        self,
        env: Mapping[str, str],
        log_dir: Path,
        name: str,
        *,
        pool: str = "prefork",
        concurrency: int = 2,
        queues: str = "steps,slow,edge",
        start_recovery: bool = True,
        prefix: Sequence[str] = (),
    ) -> None:
        """`prefix`: a command the worker runs under, e.g. `ip netns exec NS` (its pid stays the
        worker's: the prefix must exec the command)."""
        self.env = {
            **os.environ,
            **env,
            "PYTHONPATH": str(REPO),
            "PROACTIVE_RECOVER_ON_START": "1" if start_recovery else "0",
        }
        self.log_path = log_dir / f"{name}.log"
        self.name = name
        self.args = [
            *prefix,
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker.celery_app",
            "worker",
            "-Q",
            queues,
            "-P",
            pool,
            "-c",
            str(concurrency),
            "-n",
            f"{name}@%h",
            "-l",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        """Start the worker and wait until it consumes."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            self.args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        try:
            wait_for(
                lambda: self.proc.poll() is not None or self.READY in self.log(),
                timeout_s=READY_TIMEOUT_S,
                what=f"worker {self.name} ready",
            )
        except AssertionError:
            self.kill()
            raise
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker {self.name} exited at start:\n{self.log()[-3000:]}")
        return self

    def log(self) -> str:
        """Everything the worker printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def alive(self) -> bool:
        """True while the main process runs."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (no warm shutdown, no acks)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM); SIGKILL after STOP_TIMEOUT_S."""
        self.terminate(STOP_TIMEOUT_S)

    def terminate(self, grace_s: float, *, group: bool = True) -> bool:
        """What a container platform does to stop a worker (`docker stop -t`, Kubernetes'
        terminationGracePeriodSeconds): SIGTERM to the whole process group (`group`; an init such as
        `tini -g` forwards it so), or to the main process alone (the container's PID 1 without an
        init: the pool children keep running their tasks), then SIGKILL to the group if the worker
        still runs after `grace_s`. True when it exited within the grace (pool children left in the
        group are killed then too)."""
        if self.proc is None or self.proc.poll() is not None:
            return True
        try:
            if group:
                os.killpg(self.proc.pid, signal.SIGTERM)
            else:
                self.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + grace_s
        while self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # poll until the deadline
        if self.proc.poll() is None:
            self.kill()
            return False
        with contextlib.suppress(ProcessLookupError):  # reap pool children left in the group
            os.killpg(self.proc.pid, signal.SIGKILL)
        return True


class BeatProcess(WorkerProcess):
    """One `celery -A beat_schedule beat` subprocess with its own schedule file (two can run at once,
    as two Beats by mistake would)."""

    READY = "beat: Starting"

    def __init__(self, env: Mapping[str, str], log_dir: Path, name: str) -> None:
        super().__init__(env, log_dir, name)
        self.args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "beat_schedule",
            "beat",
            "-l",
            "INFO",
            "--max-interval",
            "1",
            "-s",
            str(log_dir / f"{name}-schedule"),
        ]
