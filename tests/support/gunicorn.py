"""The Procfile's `web` process for tests: its exact gunicorn command (and the variables its line sets),
bound to a free local port, started in its own process group and stopped whatever happens."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.edge import closed_port
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
# How long gunicorn may take to answer /healthz on a loaded 2-core machine, and to stop (seconds).
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def _procfile_web_line() -> list[str]:
    line = next(x for x in (REPO / "Procfile").read_text().splitlines() if x.startswith("web:"))
    return shlex.split(line.removeprefix("web:"))


def procfile_web_env() -> dict[str, str]:
    """The variables the Procfile's `web` line sets before its command (`LOG_FORMAT=json`)."""
    words = _procfile_web_line()
    return dict(w.split("=", 1) for w in words[: next(i for i, w in enumerate(words) if "=" not in w)])


def procfile_web_command(bind: str) -> list[str]:
    """The Procfile's `web` command, bound to `bind` (so the test serves what production serves)."""
    words = _procfile_web_line()
    args = words[next(i for i, w in enumerate(words) if "=" not in w) :]
    assert args[0] == "gunicorn" and "-b" in args
    args[args.index("-b") + 1] = bind
    return [sys.executable, "-m", *args]


@dataclass
class Gunicorn:
    """A running web process: its URL, its master process and its log."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """Everything the web process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def procfile_web(env: Mapping[str, str], log_path: Path, *, line_env: bool = False) -> Iterator[Gunicorn]:
    """Run the Procfile's web command with `env` (plus the variables its line sets, with `line_env`)
    until /healthz answers; SIGTERM, then SIGKILL, to its process group on the way out."""
    port = closed_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    extra = procfile_web_env() if line_env else {}
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            procfile_web_command(f"127.0.0.1:{port}"),
            cwd=REPO,
            env={**os.environ, **env, **extra, "PYTHONPATH": str(REPO)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Gunicorn(f"http://127.0.0.1:{port}", proc, log_path)
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start:\n{server.log()[-3000:]}")
            try:
                return httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout_s=START_TIMEOUT_S, what="gunicorn answering /healthz")
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # gunicorn's workers, should any be left
        proc.wait(timeout=STOP_TIMEOUT_S)
