"""Liveness, readiness and Prometheus metrics.

- `GET /healthz`: the process answers (nothing else is checked).
- `GET /readyz`: the database answers, the broker accepts a connection and the schema is at the
  migrations' head; otherwise 503 naming what failed.
- `GET /metrics`: Prometheus text: the counters and histograms the processes record where things
  happen (all gunicorn workers and prefork children with `PROMETHEUS_MULTIPROC_DIR`), plus approvals
  and Slack messages pending, counted at scrape time (worker/metrics/prom.py).
"""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, Response, jsonify
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import text

from worker import migrate
from worker.celery_app import celery_app
from worker.db import transaction
from worker.metrics import prom
from worker.metrics.exporter import TimeBoxed

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Any:
    """The process is up (no dependency checked)."""
    return jsonify(status="ok")


def _check_database() -> str | None:
    try:
        with transaction() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"database: {type(exc).__name__}"
    return None


def _check_migrations() -> str | None:
    try:
        return None if migrate.at_head() else f"migrations: at {migrate.current()}, head is {migrate.heads()}"
    except Exception as exc:
        return f"migrations: {type(exc).__name__}"


def _check_broker() -> str | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"broker: {type(exc).__name__}"
    return None


@blueprint.get("/readyz")
def readyz() -> Any:
    """Database, broker and schema ready; 503 with what failed otherwise."""
    failed = [f for f in (_check_database(), _check_broker()) if f]
    if not failed:
        failed = [f for f in (_check_migrations(),) if f]
    if failed:
        response = jsonify(status="unavailable", failed=failed)
        response.status_code = 503
        return response
    return jsonify(status="ready")


@functools.cache
def _database_gauges() -> Any:
    """This process's database gauges, time-boxed (worker/metrics/exporter.py): one per process, so a
    database that never answers holds one read, and every scrape waits on it for 2 s at most."""
    return TimeBoxed(prom.DatabaseGauges())


@blueprint.get("/metrics")
def metrics() -> Any:
    """Prometheus text: every process's counters and histograms, and the database gauges (worker/metrics/prom.py);
    a database that does not answer within 2 s costs the gauges only."""
    registry = prom.scrape_registry(database=_database_gauges())
    # content_type, not mimetype: the constant has its charset already and Flask would add a second one
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)
