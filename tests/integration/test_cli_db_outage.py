"""The `proactive` command on a database outage (a stopped PostgreSQL, one that hangs up at once as
a restarting server does): one line naming the database (host:port/name, never the password) and
the cause, exit 1, whichever command met it. Subprocesses, as an operator runs them."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator

import pytest

PROACTIVE = [sys.executable, "-m", "worker.ops.cli"]
PASSWORD = "s3cret-pw"
COMMANDS = [
    ("jobs",),
    ("fire", "proposal_generation", "--payload", f'{{"deal_id": "{uuid.UUID(int=1)}"}}'),
]


def proactive(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`proactive ARGS` in a subprocess with DATABASE_URL=database_url."""
    env = {**os.environ, "DATABASE_URL": database_url, "PROACTIVE_HOME": os.environ.get("TMPDIR", "/tmp")}
    return subprocess.run([*PROACTIVE, *args], env=env, capture_output=True, text=True, timeout=60)


def assert_one_line(done: subprocess.CompletedProcess[str], *says: str) -> None:
    """Exit 1 and a single `error:` line saying each of `says`, without the password."""
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stdout + done.stderr
    assert lines[0].startswith("error: ") and PASSWORD not in lines[0], lines[0]
    for text in says:
        assert text in lines[0], lines[0]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on (bound, never listening, for the test's length)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


@pytest.fixture
def hangs_up() -> Iterator[int]:
    """A port whose server accepts each connection and closes it at once (a server going down)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = server.accept()
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_a_stopped_database_is_one_line(closed_port: int, args: tuple[str, ...]):
    done = proactive(f"postgresql://app:{PASSWORD}@127.0.0.1:{closed_port}/proactive", *args)
    assert_one_line(done, f"127.0.0.1:{closed_port}/proactive", "Connection refused")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_a_database_that_hangs_up_is_one_line(hangs_up: int, args: tuple[str, ...]):
    done = proactive(f"postgresql://app:{PASSWORD}@127.0.0.1:{hangs_up}/proactive", *args)
    assert_one_line(done, f"127.0.0.1:{hangs_up}/proactive", "closed the connection")
