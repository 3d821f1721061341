"""The HTTP side of the web benchmarks (bench/edge.py, bench/gmail.py): gunicorn servers on
127.0.0.1 and the raw HTTP/1.1 exchanges their load generators send.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
import shlex
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from bench.harness import REPO, ChildProcess

# How long gunicorn may take to answer /healthz on a loaded 2-core box (seconds).
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procfile_options() -> str:
    """The Procfile's gunicorn options for `web`, without the bind address, the config module (its
    hooks and JSON log lines are the fleet's, not what is measured) and the app."""
    line = next(x for x in (REPO / "Procfile").read_text().splitlines() if x.startswith("web:"))
    args = shlex.split(line.removeprefix("web:"))
    args = args[args.index("gunicorn") + 1 : -1]  # after the environment and the command, before the app
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in ("-b", "--bind", "-c", "--config"):
            skip = True
        else:
            out.append(a)
    return " ".join(out)


class Gunicorn(ChildProcess):
    """One gunicorn master (own session/process group) and its workers on 127.0.0.1."""

    kind = "gunicorn"

    def __init__(self, app: str, options: str, env: Mapping[str, str], workdir: Path, name: str) -> None:
        self.app, self.options = app, options
        self.port = free_port()
        args = [sys.executable, "-m", "gunicorn", *shlex.split(options), "-b", f"127.0.0.1:{self.port}", app]
        super().__init__(name, args, env, workdir / f"gunicorn-{name}.log")

    def start(self) -> Gunicorn:
        """Start and return once ``GET /healthz`` answers 200 (RuntimeError with the log otherwise)."""
        proc = self.spawn()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise self.failed_to_start()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        # Every worker booted (each answers /healthz once it is up; the master forks them at once).
        m = re.search(r"(?:-w|--workers)[= ]?\s*(\d+)", self.options)
        workers = int(m.group(1)) if m else 1
        while len(self.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        return self

    def worker_pids(self) -> list[int]:
        """The master's children (its workers)."""
        return self.children()


def raise_nofile() -> None:
    """Raise this process's open-files limit to the hard limit (a load generator opens many sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def exchange(host: str, port: int, raw: bytes) -> tuple[int, int]:
    """Send one HTTP/1.1 request (``Connection: close``); (status, body length) of the answer."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(raw)
        await writer.drain()
        data = await reader.read(-1)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), len(body)


def http_request(port: int, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """The raw bytes of one POST (``Connection: close``)."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
