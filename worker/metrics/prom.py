"""Prometheus metrics: each defined once here, recorded where the thing happens, served by `/metrics`.

Counters and histograms are incremented in the process that does the work (a gunicorn worker
accepting an event, a prefork child finishing a step), after the transaction that made it true has
committed (`worker.db.on_commit`), so a rollback never counts something that did not happen.
Recording costs a dictionary lookup and an add (about a microsecond), never a query, and never
raises into the caller: a metric that cannot be written is logged and dropped.

Labels come from the code (sequence, step, approval kind, message kind, cron) or are bounded here
(`source_label`, `reason_label`): input a caller controls never becomes a new time series, and no
label carries an id.

Processes: with `PROMETHEUS_MULTIPROC_DIR` set (the fleet), prometheus-client keeps every process's
values in files in that directory and `/metrics` adds them up (`MultiProcessCollector`), so the
two gunicorn workers and every prefork child are all counted, whichever answers the scrape. The
directory must be emptied before the fleet starts (its counters would otherwise carry on from the
last run). A machine that runs only Celery workers serves its directory with `proactive prometheus`
(worker/metrics/exporter.py). Unset (the embedded default, most tests), values live in the process.

Two gauges are read from the database at scrape time, each one indexed COUNT over live rows only
(pending approvals, pending Slack messages), so a scrape costs the same however long the history is.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import ParamSpec

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from worker.db import transaction
from worker.engine.payloads import API_SOURCE_PREFIX, Source
from worker.models import SlackOutbox, approvals, utcnow

log = logging.getLogger(__name__)
P = ParamSpec("P")

# The variable prometheus-client itself reads (before the first metric is made) to switch to files.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The label value for anything outside a bounded set.
OTHER = "other"
# Sources that refuse input besides the event sources: Slack's Events API and the Google callback;
# `unknown` is an event with no readable source.
EDGE_SOURCES = frozenset({"slack:events", "oauth:google", "unknown"})
KNOWN_SOURCES = frozenset(s.value for s in Source) | EDGE_SOURCES
# A refusal's reason is the error's class name (InvalidEvent, InvalidSignature…): a short ASCII name.
MAX_REASON_CHARS = 40

# Step run time (seconds): no-op steps take milliseconds, LLM and Google calls seconds, 300 s is
# the longest step timeout.
STEP_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# Time to a decision (seconds): from a click within a minute to a reply the next working day.
DECISION_BUCKETS_S = (10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 8 * 3600.0, 86400.0, 3 * 86400.0)
# Queued to posted (seconds): sub-second normally; minutes under rate limits; hours for quiet hours.
DELIVERY_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 12 * 3600.0)


def multiprocess_dir() -> str | None:
    """The directory every process writes its values to, or None (values stay in the process)."""
    return os.environ.get(MULTIPROC_ENV) or None


def clear_multiprocess_dir(path: str | os.PathLike[str]) -> int:
    """Remove the value files of a previous run from `path` (create it when missing); how many went.
    Call it before the fleet's processes start, never while they run."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    removed = 0
    for file in directory.glob("*.db"):
        file.unlink(missing_ok=True)
        removed += 1
    return removed


if multiprocess_dir():  # prometheus-client opens its files there on the first recorded value
    os.makedirs(multiprocess_dir() or "", exist_ok=True)

# The metrics are registered here, not in prometheus-client's global registry (no duplicates when
# a test re-imports, none of its process collectors on an in-process scrape).
REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_ACCEPTED = Counter(
    "proactive_events_accepted", "Events that became a job, by source and type", ["source", "type"], registry=REGISTRY
)
EVENTS_DUPLICATE = Counter(
    "proactive_events_duplicate",
    "Events answered with an existing job (same idempotency key)",
    ["source"],
    registry=REGISTRY,
)
EVENTS_REJECTED = Counter(
    "proactive_events_rejected",
    "Input refused and kept in rejected_events, by source and reason (error class)",
    ["source", "reason"],
    registry=REGISTRY,
)
STEPS_FINISHED = Counter(
    "proactive_steps_finished",
    "Step attempts ended, by sequence, step and status (retried: will run again)",
    ["sequence", "step", "status"],
    registry=REGISTRY,
)
STEP_DURATION = Histogram(
    "proactive_step_duration_seconds",
    "Time a step's skill ran, by sequence",
    ["sequence"],
    buckets=STEP_BUCKETS_S,
    registry=REGISTRY,
)
APPROVALS_OPENED = Counter("proactive_approvals_opened", "Approvals asked for, by kind", ["kind"], registry=REGISTRY)
APPROVALS_DECIDED = Counter(
    "proactive_approvals_decided",
    "Approvals closed, by kind and status (approved, rejected, superseded, expired)",
    ["kind", "status"],
    registry=REGISTRY,
)
DECISION_LATENCY = Histogram(
    "proactive_approval_decision_seconds",
    "Time from asking to a person's decision, by kind",
    ["kind"],
    buckets=DECISION_BUCKETS_S,
    registry=REGISTRY,
)
OUTBOX_DELIVERED = Counter(
    "proactive_outbox_delivered",
    "Slack messages posted (post) or edited in place (update), by kind",
    ["kind", "op"],
    registry=REGISTRY,
)
OUTBOX_FAILED = Counter(
    "proactive_outbox_failed", "Slack messages given up on (marked failed), by kind", ["kind"], registry=REGISTRY
)
DELIVERY_LAG = Histogram(
    "proactive_outbox_delivery_lag_seconds",
    "Time from queueing a Slack message to posting it (holds included)",
    buckets=DELIVERY_BUCKETS_S,
    registry=REGISTRY,
)
SWEEPER_REPAIRS = Counter(
    "proactive_sweeper_repairs",
    "What the sweeper repaired, by kind (republished, reclaimed, timed_out…)",
    ["kind"],
    registry=REGISTRY,
)
CRON_SLOTS = Counter(
    "proactive_cron_slots_claimed",
    "Cron slot rows this fleet claimed (work units run), by cron",
    ["cron"],
    registry=REGISTRY,
)


# --------------------------------------------------------------------------- labels (pure)


def source_label(source: str | None) -> str:
    """`source` when it is one of ours, `api` for an API key's `api:<key name>` (one series for
    every key), else `other` (a refused body may name any string as its source)."""
    if source and source.startswith(API_SOURCE_PREFIX):
        return Source.API.value
    return source if source in KNOWN_SOURCES else OTHER


def reason_label(error_type: str | None) -> str:
    """An error class name as a label; anything else (empty, long, not a plain name) is `other`."""
    if error_type and error_type.isascii() and error_type.isalnum() and error_type[0].isalpha():
        return error_type if len(error_type) <= MAX_REASON_CHARS else OTHER
    return OTHER


def seconds_between(start: datetime | None, end: datetime) -> float | None:
    """Elapsed seconds from `start` to `end`, never negative (clocks of two machines); None without a start."""
    if start is None:
        return None
    return max(0.0, (end - start).total_seconds())


# --------------------------------------------------------------------------- recording


def _never_raises(record: Callable[P, None]) -> Callable[P, None]:
    """A metric that cannot be written (a full or missing directory) is logged, never an error in the
    engine: recording runs after commits, where an exception would skip the publishes after it."""

    @functools.wraps(record)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            record(*args, **kwargs)
        except Exception as exc:
            log.warning("metric %s not recorded: %s: %s", record.__name__, type(exc).__name__, exc)

    return guarded


@_never_raises
def event_accepted(source: str, event_type: str) -> None:
    """An event became a job (queued, or skipped by a gate)."""
    EVENTS_ACCEPTED.labels(source_label(source), event_type).inc()


@_never_raises
def event_duplicate(source: str) -> None:
    """An event was answered with the job its idempotency key already had."""
    EVENTS_DUPLICATE.labels(source_label(source)).inc()


@_never_raises
def event_rejected(source: str, error_type: str) -> None:
    """Input was refused and recorded in rejected_events."""
    EVENTS_REJECTED.labels(source_label(source), reason_label(error_type)).inc()


@_never_raises
def step_finished(sequence: str, step: str, status: str, duration_s: float | None) -> None:
    """A step attempt's outcome was stored (`duration_s`: its skill's run time, None when it never ran)."""
    STEPS_FINISHED.labels(sequence, step, status).inc()
    if duration_s is not None:
        STEP_DURATION.labels(sequence).observe(duration_s)


@_never_raises
def approval_opened(kind: str) -> None:
    """An approval was asked for."""
    APPROVALS_OPENED.labels(kind).inc()


@_never_raises
def approval_decided(kind: str, status: str, waited_s: float | None) -> None:
    """An approval was decided (or expired: `waited_s` None, it is not a decision time)."""
    APPROVALS_DECIDED.labels(kind, status).inc()
    if waited_s is not None:
        DECISION_LATENCY.labels(kind).observe(waited_s)


@_never_raises
def outbox_delivered(kind: str, op: str, lag_s: float | None) -> None:
    """Slack took a message (`op`: post or update); `lag_s` since it was queued, for a first post."""
    OUTBOX_DELIVERED.labels(kind, op).inc()
    if lag_s is not None:
        DELIVERY_LAG.observe(lag_s)


@_never_raises
def outbox_failed(kind: str) -> None:
    """A Slack message was marked failed."""
    OUTBOX_FAILED.labels(kind).inc()


@_never_raises
def sweeper_repaired(counts: Mapping[str, int]) -> None:
    """One sweeper pass's counts (kind -> rows); kinds with nothing done are not touched."""
    for kind, n in counts.items():
        if n:
            SWEEPER_REPAIRS.labels(kind).inc(n)


@_never_raises
def cron_slot_claimed(cron: str) -> None:
    """A cron slot row was claimed by this process (its work will run here)."""
    CRON_SLOTS.labels(cron).inc()


# --------------------------------------------------------------------------- scrape


class DatabaseGauges(Collector):
    """What only the database knows, read at scrape time with indexed COUNTs over live rows."""

    def collect(self) -> Iterator[Metric]:
        """Approvals pending; Slack messages pending and the age of the oldest (skipped, and logged,
        when the database does not answer: the counters are still served)."""
        outbox = SlackOutbox.__table__
        try:
            with transaction() as conn:
                pending = conn.execute(
                    select(func.count()).select_from(approvals).where(approvals.c.status == "pending")
                ).scalar_one()
                backlog, oldest = conn.execute(
                    select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.status == "pending")
                ).one()
        except SQLAlchemyError as exc:
            log.warning("/metrics: database gauges skipped: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily("proactive_approvals_pending", "Approvals waiting for a decision", value=pending)
        yield GaugeMetricFamily("proactive_outbox_pending", "Slack messages not delivered yet", value=backlog)
        yield GaugeMetricFamily(
            "proactive_outbox_lag_seconds",
            "Age of the oldest undelivered Slack message",
            value=seconds_between(oldest, utcnow()) or 0.0,
        )


class _Registered(Collector):
    """This process's own values (when there is no multiprocess directory)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def scrape_registry(database: Collector | None = None) -> CollectorRegistry:
    """What one scrape serves: every process's values (multiprocess directory) or this process's,
    plus the database gauges (`database`: what reads them, default `DatabaseGauges()`; the
    worker-only exporter passes a time-boxed one, worker/metrics/exporter.py)."""
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(_Registered())
    registry.register(database or DatabaseGauges())
    return registry


def mark_process_dead(pid: int) -> None:
    """A process of the fleet ended: drop its live-gauge files (its counters stay, they are totals)."""
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)
