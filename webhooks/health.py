"""Liveness, readiness and Prometheus metrics.

- `GET /healthz`: the process answers (nothing else is checked).
- `GET /readyz`: the database answers, the broker accepts a connection and the schema is at the
  migrations' head; otherwise 503 naming what failed.
- `GET /metrics`: Prometheus text: events accepted/rejected by source, steps by status, step
  duration histogram, approvals pending, outbox lag (read from the database at scrape time).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

blueprint = Blueprint("health", __name__)

# Step-duration histogram buckets (seconds).
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@blueprint.get("/healthz")
def healthz() -> Any:
    """The process is up (no dependency checked)."""
    return jsonify(status="ok")


def _check_database() -> str | None:
    from sqlalchemy import text

    from worker.db import transaction

    try:
        with transaction() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"database: {type(exc).__name__}"
    return None


def _check_migrations() -> str | None:
    from worker import migrate

    try:
        return None if migrate.at_head() else f"migrations: at {migrate.current()}, head is {migrate.heads()}"
    except Exception as exc:
        return f"migrations: {type(exc).__name__}"


def _check_broker() -> str | None:
    from worker.celery_app import celery_app

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


class _EngineCollector(Collector):
    """Reads the counters from the database when Prometheus scrapes."""

    def collect(self) -> Iterator[Any]:
        from sqlalchemy import func, select

        from worker.db import transaction
        from worker.models import RejectedEvent, SlackOutbox, approvals, jobs, steps, utcnow

        with transaction() as conn:
            by_source = conn.execute(select(jobs.c.source, func.count()).group_by(jobs.c.source)).all()
            rejected = conn.execute(
                select(RejectedEvent.source, func.count()).group_by(RejectedEvent.source)).all()
            step_status = conn.execute(select(steps.c.status, func.count()).group_by(steps.c.status)).all()
            durations = [d / 1000 for d in conn.execute(
                select(steps.c.duration_ms).where(steps.c.duration_ms.is_not(None))
                .order_by(steps.c.finished_at.desc()).limit(10_000)).scalars()]
            pending = conn.execute(select(func.count()).select_from(approvals).where(
                approvals.c.status == "pending")).scalar_one()
            oldest = conn.execute(select(func.min(SlackOutbox.created_at)).where(
                SlackOutbox.status == "pending")).scalar()
        accepted = CounterMetricFamily("proactive_events_accepted", "Events accepted, by source", labels=["source"])
        for source, n in by_source:
            accepted.add_metric([source], n)
        yield accepted
        refused = CounterMetricFamily("proactive_events_rejected", "Input refused, by source", labels=["source"])
        for source, n in rejected:
            refused.add_metric([source], n)
        yield refused
        by_status = GaugeMetricFamily("proactive_steps", "Step runs, by status", labels=["status"])
        for status, n in step_status:
            by_status.add_metric([status], n)
        yield by_status
        buckets = [(str(b), sum(1 for d in durations if d <= b)) for b in DURATION_BUCKETS]
        buckets.append(("+Inf", len(durations)))
        yield HistogramMetricFamily("proactive_step_duration_seconds", "Duration of the last 10,000 steps",
                                    buckets=buckets, sum_value=sum(durations))
        yield GaugeMetricFamily("proactive_approvals_pending", "Approvals waiting for a decision", value=pending)
        lag = (utcnow() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily("proactive_outbox_lag_seconds", "Age of the oldest undelivered Slack message",
                                value=lag)


@blueprint.get("/metrics")
def metrics() -> Any:
    """Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_EngineCollector())
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4; charset=utf-8")
