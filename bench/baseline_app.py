"""Baselines for the engine benchmark: bare Celery chains, with and without one INSERT + UPDATE,
and one task per job committing its steps one by one (the floor of a step durable on its own).

Its own Celery app on the same broker as the engine (``$BENCH_BROKER_URL``: Redis or RabbitMQ),
configured like ours (``acks_late``, ``reject_on_worker_lost``, prefetch 1, ``ignore_result``,
JSON), queue ``bench``. The last task of each chain RPUSHes its finish time (``time.time()``) onto a
Redis list (``$BENCH_SIGNAL_URL``, the broker's URL by default), the benchmark's completion signal.
Connections are opened lazily per process (after the fork).
"""

from __future__ import annotations

import os
import time
from typing import Any

import psycopg
import redis
from kombu import pools

import bench.ready  # noqa: F401 - worker_ready hook (ready file)
from bench.harness import baseline_celery, transport_options

BROKER_ENV = "BENCH_BROKER_URL"
SIGNAL_ENV = "BENCH_SIGNAL_URL"
DSN_ENV = "BENCH_DB_DSN"
QUEUE = "bench"

# Tables of baseline (b): one row per chain (UPDATEd by every step) and one row per step (INSERTed).
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bench_chain (id uuid PRIMARY KEY, run text NOT NULL,"
    " step int NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS bench_step (id bigserial PRIMARY KEY, chain_id uuid NOT NULL,"
    " step int NOT NULL, at timestamptz NOT NULL DEFAULT now())",
)


app = baseline_celery("bench_baseline", QUEUE, BROKER_ENV)

_clients: dict[str, Any] = {}
_client_pid: int | None = None


def _client(kind: str) -> Any:
    """This process's Redis client or psycopg connection (re-created after a fork)."""
    global _client_pid
    if _client_pid != os.getpid():
        _clients.clear()
        _client_pid = os.getpid()
    if kind not in _clients:
        if kind == "redis":
            _clients[kind] = redis.Redis.from_url(os.environ.get(SIGNAL_ENV) or app.conf.broker_url)
        else:
            _clients[kind] = psycopg.connect(os.environ[DSN_ENV])
    return _clients[kind]


def use_broker(url: str) -> None:
    """Publish from this process to `url` from now on (the benchmark switches brokers between
    systems); pooled connections to the previous one are dropped."""
    app.conf.broker_url = url
    app.conf.broker_transport_options = transport_options(url)
    pools.reset()
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


def _done(done_key: str | None) -> None:
    if done_key:
        _client("redis").rpush(done_key, repr(time.time()))


@app.task(name="bench.noop", ignore_result=True, acks_late=True)
def noop(chain_id: str, step: int, done_key: str | None = None) -> None:
    """Baseline (a): nothing; the last step of a chain signals completion."""
    _done(done_key)


@app.task(name="bench.db_step", ignore_result=True, acks_late=True)
def db_step(chain_id: str, step: int, done_key: str | None = None) -> None:
    """Baseline (b): one INSERT and one UPDATE in one transaction, then maybe signal completion."""
    conn = _client("pg")
    with conn.cursor() as cur:
        cur.execute("INSERT INTO bench_step (chain_id, step) VALUES (%s, %s)", (chain_id, step))
        cur.execute("UPDATE bench_chain SET step = %s, updated_at = now() WHERE id = %s", (step, chain_id))
    conn.commit()
    _done(done_key)


@app.task(name="bench.db_steps_inline", ignore_result=True, acks_late=True)
def db_steps_inline(chain_id: str, steps: int, done_key: str | None = None) -> None:
    """Baseline (c): one task runs all `steps` of a job, each baseline (b)'s INSERT and UPDATE
    committed on its own before the next starts: the least any design pays for a durable step that
    runs inline (one commit per step, one broker hop per job), with no claim, lease or planning."""
    conn = _client("pg")
    for step in range(1, steps + 1):
        with conn.cursor() as cur:
            cur.execute("INSERT INTO bench_step (chain_id, step) VALUES (%s, %s)", (chain_id, step))
            cur.execute("UPDATE bench_chain SET step = %s, updated_at = now() WHERE id = %s", (step, chain_id))
        conn.commit()
    _done(done_key)
