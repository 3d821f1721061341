"""PostgreSQL, Redis and RabbitMQ for the test suite: use the running ones, start them if down, else
stop the run with one line saying what is missing (the start commands are the machine's own)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import warnings

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672

START_COMMANDS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": (
        'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
        "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
    ),
    "RabbitMQ": "rabbitmq-server -detached",
}
# How long a freshly started service may take to accept connections (seconds).
START_WAIT_S = 30.0
# RabbitMQ boots an Erlang VM and its plugins first: 10-20 s on a loaded 2-core box (seconds).
START_WAIT_S_BY_NAME = {"RabbitMQ": 60.0}


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def ensure(name: str, host: str, port: int) -> None:
    """Make sure `name` listens on host:port, starting it once if needed; exit the run otherwise."""
    if _listening(host, port):
        return
    command = START_COMMANDS[name]
    if os.environ.get("PROACTIVE_TEST_NO_START"):
        pytest.exit(f"{name} is not running on {host}:{port}; start it with: {command}", returncode=1)
    subprocess.run(command, shell=True, check=False, capture_output=True, timeout=60)
    deadline = time.monotonic() + START_WAIT_S_BY_NAME.get(name, START_WAIT_S)
    while time.monotonic() < deadline:
        if _listening(host, port):
            return
        time.sleep(0.2)  # poll until the deadline
    pytest.exit(f"{name} is not running on {host}:{port} and `{command}` did not start it", returncode=1)


def ensure_postgres() -> None:
    """PostgreSQL on 127.0.0.1:5432 (trust auth)."""
    ensure("PostgreSQL", PG_HOST, PG_PORT)


def ensure_redis() -> None:
    """Redis on 127.0.0.1:6379."""
    ensure("Redis", REDIS_HOST, REDIS_PORT)


def ensure_rabbitmq() -> None:
    """RabbitMQ on 127.0.0.1:5672 (user guest/guest)."""
    ensure("RabbitMQ", RABBITMQ_HOST, RABBITMQ_PORT)


def rabbitmqctl(*args: str) -> str | None:
    """Run `rabbitmqctl ARGS` on this machine; None when it worked, else its error in one line."""
    command = ["rabbitmqctl", "-q", *args]
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`{' '.join(command)}` failed ({exc}); run the tests where rabbitmqctl may manage the broker"
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return f"`{' '.join(command)}` failed: {lines[-1] if lines else f'exit code {done.returncode}'}"


def add_rabbitmq_vhost(name: str) -> None:
    """A new RabbitMQ virtual host `name` that guest may use entirely; exit the run if that fails."""
    for args in (("add_vhost", name), ("set_permissions", "-p", name, "guest", ".*", ".*", ".*")):
        if error := rabbitmqctl(*args):
            pytest.exit(error, returncode=1)


def delete_rabbitmq_vhost(name: str) -> None:
    """Delete the virtual host `name` with its queues and messages (a failure is a warning)."""
    if error := rabbitmqctl("delete_vhost", name):
        warnings.warn(error, stacklevel=2)


def close_rabbitmq_connections(vhost: str) -> None:
    """Close every client connection to `vhost`, as a broker restart or a network cut would."""
    if error := rabbitmqctl("close_all_connections", "-p", vhost, "closed by a test"):
        raise RuntimeError(error)
