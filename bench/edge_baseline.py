"""Baselines of the web-edge benchmark: bare Flask endpoints that accept and enqueue.

``POST /events`` parses the JSON body and publishes one Celery task (``bench.edge_noop``, queue
``bench_edge``) on the benchmark's Redis (``$BENCH_BROKER_URL``), then answers 202 with the same
shape as ``POST /api/events``: the cost floor of "accept + enqueue" under the same gunicorn
settings. The task INCRs ``bench:edge:<run>`` (the payload's run tag), so the benchmark can check
that every accepted request was executed. ``GET /healthz`` for readiness.

``POST /events-durable`` is the floor of a *durable* accept: the same, but the event is first
INSERTed (deduplicated on its idempotency key) and committed in PostgreSQL (``$BENCH_DB_DSN``,
table ``bench_edge_event``: `ensure_schema`) before the publish, and its task marks the row done in
a transaction of its own before counting it: one commit to accept, one to run a one-step job,
with none of the validation, auth, rate limit, job and step rows or claims `/api/events` does.

gunicorn serves ``bench.edge_baseline:create_app()``; its worker is
``celery -A bench.edge_baseline worker -Q bench_edge`` (bench.harness.WorkerProcess).
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from typing import Any

import psycopg
import redis
from flask import Flask, Response, jsonify, request

import bench.ready  # noqa: F401 - worker_ready hook (ready file)
from bench.harness import baseline_celery

BROKER_ENV = "BENCH_BROKER_URL"
QUEUE = "bench_edge"
TASK = "bench.edge_noop"
DURABLE_TASK = "bench.edge_durable_step"
COUNTER_PREFIX = "bench:edge:"
DSN_ENV = "BENCH_DB_DSN"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bench_edge_event (id uuid PRIMARY KEY, idempotency_key text NOT NULL UNIQUE,"
    " payload jsonb NOT NULL, status text NOT NULL DEFAULT 'queued', created_at timestamptz NOT NULL DEFAULT now(),"
    " finished_at timestamptz)"
)

celery_app = baseline_celery("bench_edge_baseline", QUEUE, BROKER_ENV)
app = celery_app  # `celery -A bench.edge_baseline` finds the Celery app here

_redis: dict[int, Any] = {}  # pid -> client (re-created after the prefork fork)
_pg = threading.local()  # this thread's (pid, connection): gunicorn's threads, the pool's processes


def ensure_schema(dsn: str) -> None:
    """Create the durable floor's table (once, before the servers start)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)


def _db() -> psycopg.Connection[Any]:
    """This thread's PostgreSQL connection (a new one after a fork)."""
    held = getattr(_pg, "held", None)
    if held is None or held[0] != os.getpid():
        held = _pg.held = (os.getpid(), psycopg.connect(os.environ[DSN_ENV]))
    return held[1]


def _count(run: str) -> None:
    client = _redis.get(os.getpid())
    if client is None:
        client = _redis[os.getpid()] = redis.Redis.from_url(celery_app.conf.broker_url)
    client.incr(COUNTER_PREFIX + run)


@celery_app.task(name=TASK, ignore_result=True, acks_late=True)
def edge_noop(run: str, idempotency_key: str) -> None:
    """Count the executed request under its run tag (the benchmark's "nothing lost" check)."""
    _count(run)


@celery_app.task(name=DURABLE_TASK, ignore_result=True, acks_late=True)
def edge_durable_step(run: str, event_id: str) -> None:
    """The durable floor's one-step job: mark its row done (committed), then count it."""
    conn = _db()
    conn.execute(
        "UPDATE bench_edge_event SET status = 'done', finished_at = now() WHERE id = %s AND status = 'queued'",
        (event_id,),
    )
    conn.commit()
    _count(run)


def create_app() -> Flask:
    """The bare app: a POST that publishes, its durable floor (commit, then publish), a health check."""
    flask_app = Flask(__name__)

    @flask_app.post("/events")
    def post_event() -> Response:
        data = json.loads(request.get_data())
        run = str((data.get("payload") or {}).get("run", ""))
        celery_app.send_task(TASK, args=(run, data.get("idempotency_key")), queue=QUEUE, routing_key=QUEUE)
        response = jsonify(job_id=str(uuid.uuid4()), status="queued", duplicate=False)
        response.status_code = 202
        return response

    @flask_app.post("/events-durable")
    def post_durable_event() -> Response:
        data = json.loads(request.get_data())
        run = str((data.get("payload") or {}).get("run", ""))
        conn, event_id = _db(), uuid.uuid4()
        found = conn.execute(
            "INSERT INTO bench_edge_event (id, idempotency_key, payload) VALUES (%s, %s, %s)"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            (event_id, str(data.get("idempotency_key")), json.dumps(data.get("payload") or {})),
        ).fetchone()
        conn.commit()
        if found is not None:  # a duplicate is answered without a second task
            celery_app.send_task(DURABLE_TASK, args=(run, str(event_id)), queue=QUEUE, routing_key=QUEUE)
        response = jsonify(job_id=str(event_id), status="queued", duplicate=found is None)
        response.status_code = 202
        return response

    @flask_app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    return flask_app
