"""Baseline of the web-edge benchmark: a bare Flask endpoint that only accepts and enqueues.

``POST /events`` parses the JSON body and publishes one Celery task (``bench.edge_noop``, queue
``bench_edge``) on the benchmark's Redis (``$BENCH_BROKER_URL``), then answers 202 with the same
shape as ``POST /api/events``: the cost floor of "accept + enqueue" under the same gunicorn
settings. The task INCRs ``bench:edge:<run>`` (the payload's run tag), so the benchmark can check
that every accepted request was executed. ``GET /healthz`` for readiness.

gunicorn serves ``bench.edge_baseline:create_app()``; its worker is
``celery -A bench.edge_baseline worker -Q bench_edge`` (bench.harness.WorkerProcess).
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import redis
from flask import Flask, Response, jsonify, request

import bench.ready  # noqa: F401 - worker_ready hook (ready file)
from bench.harness import baseline_celery

BROKER_ENV = "BENCH_BROKER_URL"
QUEUE = "bench_edge"
TASK = "bench.edge_noop"
COUNTER_PREFIX = "bench:edge:"

celery_app = baseline_celery("bench_edge_baseline", QUEUE, BROKER_ENV)
app = celery_app  # `celery -A bench.edge_baseline` finds the Celery app here

_redis: dict[int, Any] = {}  # pid -> client (re-created after the prefork fork)


@celery_app.task(name=TASK, ignore_result=True, acks_late=True)
def edge_noop(run: str, idempotency_key: str) -> None:
    """Count the executed request under its run tag (the benchmark's "nothing lost" check)."""
    client = _redis.get(os.getpid())
    if client is None:
        client = _redis[os.getpid()] = redis.Redis.from_url(celery_app.conf.broker_url)
    client.incr(COUNTER_PREFIX + run)


def create_app() -> Flask:
    """The bare app: one POST that publishes, one health check."""
    flask_app = Flask(__name__)

    @flask_app.post("/events")
    def post_event() -> Response:
        data = json.loads(request.get_data())
        run = str((data.get("payload") or {}).get("run", ""))
        celery_app.send_task(TASK, args=(run, data.get("idempotency_key")), queue=QUEUE, routing_key=QUEUE)
        response = jsonify(job_id=str(uuid.uuid4()), status="queued", duplicate=False)
        response.status_code = 202
        return response

    @flask_app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    return flask_app
