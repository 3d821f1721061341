"""Brokers a test may stop, flush and hang without touching the shared ones: a redis-server of the
test's own (`RedisServer`, the `own_redis` fixture) and a RabbitMQ virtual host of its own reached
through a pausable TCP proxy (`RabbitVhost`). Both offer the same faults:

    broker.stop()    # down: connections cut, new ones refused (Redis: SIGTERM, data kept on disk)
    broker.start()   # back (Redis: on the same port, with what it had saved)
    broker.flush()   # every queued message gone (Redis: FLUSHALL; RabbitMQ: purge every queue)
    broker.hang()    # up but silent: connections accepted, no byte answered (SIGSTOP / paused proxy)
    broker.resume()  # answering again
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.services import (
    RABBITMQ_HOST,
    RABBITMQ_PORT,
    add_rabbitmq_vhost,
    close_rabbitmq_connections,
    delete_rabbitmq_vhost,
    ensure_rabbitmq,
)
from tests.support.tcp_proxy import PausableProxy
from tests.support.waiting import wait_for

# How long a redis-server may take to answer PING after it starts, or to exit on SIGTERM (seconds).
REDIS_START_S = 10.0


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server on a port of its own, in `workdir`; with `persist`, an append-only file keeps
    its data across `stop()` / `start()` (a graceful SIGTERM writes it out)."""

    def __init__(self, workdir: Path, *, persist: bool = False) -> None:
        self.workdir = workdir
        self.persist = persist
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self._client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)

    def answers(self) -> bool:
        """True when the server answers PING."""
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def start(self) -> RedisServer:
        """Start the server (with whatever its directory holds) and wait until it answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence]
        self.proc = subprocess.Popen(
            [*args, "--dir", str(self.workdir)],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.answers, timeout_s=REDIS_START_S, what=f"own redis-server on {self.port} answers")
        return self

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown: the append-only file is flushed) and wait for the exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.resume()
        self.proc.terminate()
        self.proc.wait(timeout=REDIS_START_S)

    def crash_empty(self) -> str:
        """SIGKILL and forget everything on disk: the next `start()` is an empty server; says how
        many messages were waiting or unacknowledged."""
        held = self.messages()
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.kill()
            self.proc.wait(timeout=REDIS_START_S)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return f"{held} queued or unacknowledged messages lost"

    def messages(self) -> int:
        """Messages in the server's lists (kombu's queues) and in kombu's unacknowledged hash."""
        count = 0
        for key in self._client.scan_iter(count=1000):
            kind = self._client.type(key)
            if kind == b"list":
                count += self._client.llen(key)
            elif kind == b"hash" and key == b"unacked":
                count += self._client.hlen(key)
        return count

    def flush(self) -> None:
        """FLUSHALL: every queued and unacknowledged message gone, the server stays up."""
        self._client.flushall()

    def hang(self) -> None:
        """SIGSTOP: the kernel still accepts connections, nothing answers."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `hang()` (harmless otherwise)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)

    def ensure_up(self) -> None:
        """Running and answering, whatever a previous test left."""
        self.resume()
        if self.proc is None or self.proc.poll() is not None:
            self.start()

    def close(self) -> None:
        """Stop for good."""
        self.stop()


@contextlib.contextmanager
def redis_server(workdir: Path, *, persist: bool = False) -> Iterator[RedisServer]:
    """A started `RedisServer`, stopped (resumed first if hung) however the caller ends."""
    server = RedisServer(workdir, persist=persist)
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own on a free port (its URL and process); stopped at the end,
    resumed first if the test left it stopped."""
    with redis_server(tmp_path / "redis") as server:
        assert server.proc is not None
        yield server.url, server.proc


class RabbitVhost:
    """A virtual host of the shared RabbitMQ of its own, reached through a `PausableProxy`: faults
    touch only this vhost's connections and queues."""

    def __init__(self) -> None:
        ensure_rabbitmq()
        self.vhost = f"proactive_fault_{uuid.uuid4().hex[:10]}"
        add_rabbitmq_vhost(self.vhost)
        self.proxy = PausableProxy((RABBITMQ_HOST, RABBITMQ_PORT))
        self.url = f"amqp://guest:guest@127.0.0.1:{self.proxy.port}/{self.vhost}"

    def stop(self) -> None:
        """As a broker going down: every connection of the vhost closed, new ones refused."""
        self.proxy.refuse()
        close_rabbitmq_connections(self.vhost)

    def start(self) -> None:
        """Accept connections again."""
        self.proxy.accept()

    def queues(self) -> list[str]:
        """The names of the vhost's queues."""
        done = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", self.vhost, "name", "--no-table-headers"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return [line.strip() for line in done.stdout.splitlines() if line.strip()]

    def flush(self) -> str:
        """Purge every queue of the vhost (ready messages gone; unacknowledged ones stay with
        their consumer, as RabbitMQ does); says how many messages were ready before."""
        ready = sum(self.ready().values())
        for queue in self.queues():
            subprocess.run(
                ["rabbitmqctl", "-q", "purge_queue", "-p", self.vhost, queue],
                check=True,
                capture_output=True,
                timeout=60,
            )
        return f"{ready} ready messages purged"

    def ready(self) -> dict[str, int]:
        """Queue name -> messages ready in it."""
        done = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", self.vhost, "name", "messages_ready", "--no-table-headers"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        rows = (line.rsplit(maxsplit=1) for line in done.stdout.splitlines() if line.strip())
        return {name: int(count) for name, count in rows}  # a name may hold spaces (a worker's pidbox)

    def hang(self) -> None:
        """No byte moves between clients and the broker; connections stay open."""
        self.proxy.pause()

    def resume(self) -> None:
        """Bytes move again."""
        self.proxy.resume()

    def ensure_up(self) -> None:
        """Accepting and moving bytes, whatever a previous test left."""
        self.proxy.accept()
        self.proxy.resume()

    def close(self) -> None:
        """Stop the proxy and delete the vhost with its queues."""
        self.proxy.close()
        delete_rabbitmq_vhost(self.vhost)
