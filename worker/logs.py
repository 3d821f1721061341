"""Log lines: the trace id, org, job and step of the work in hand on every line, as text or JSON.

A trace id follows one event from its edge to its last Slack post. The web edge takes it from a W3C
`traceparent` header (or makes one) and answers it in `X-Trace-Id`; `worker.engine.events.accept` stores
it on the job; every Celery message carries it in its `trace_id` header (`before_task_publish`);
a task starts with the id of its message (`task_prerun`) and the engine, once it knows the job,
takes the job's own id, org and step. Follow-up jobs inherit their parent's id.

Work that arrives under its own trace but turns out to be about an existing job (a Slack click on a
job's approval, the worker task resuming that job) joins the job's trace (`join_trace`): its lines
carry the job's `trace_id` from then on, and the id they started under as `origin_trace_id`, so
`grep <job trace id>` finds the click and `grep <click trace id>` still finds its lines too. Celery
messages carry the origin in a second header (`origin_trace_id`), so the resume task keeps it.

What is known is kept in a context variable (one per thread / task) and copied onto every log
record by `ContextFilter`. `LOG_FORMAT=text` (the default: demo, CLI) leaves the console output as
it was; `LOG_FORMAT=json` writes one JSON object per line (`JsonFormatter`) for the web, the
workers and Beat, Celery's own lines included.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from worker.config import get_settings

# The Celery message header that carries the trace id.
TRACE_HEADER = "trace_id"
# The Celery message header that carries the trace id the work started under before it joined a job's.
ORIGIN_HEADER = "origin_trace_id"
# The record attributes the context fills in (and the JSON keys they are written under).
CONTEXT_FIELDS = ("trace_id", "org_id", "job_id", "step", "origin_trace_id")
# `version-trace_id-parent_id-flags`, lowercase hex (W3C Trace Context, level 1); a version above 00
# may append fields after the flags.
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
# Attributes every LogRecord has; anything else on a record came from `extra=` and is written too.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


@dataclass(frozen=True)
class LogContext:
    """What is known about the work in hand (None: not known here)."""

    trace_id: str | None = None
    org_id: str | None = None
    job_id: str | None = None
    step: str | None = None
    origin_trace_id: str | None = None  # the trace this work started under, once it joined another


NOTHING_KNOWN = LogContext()  # frozen: safe to share as the default
_context: ContextVar[LogContext] = ContextVar("proactive_log_context", default=NOTHING_KNOWN)


# --------------------------------------------------------------------------- trace ids (pure)


def new_trace_id() -> str:
    """A fresh trace id: 32 lowercase hex digits, a valid W3C trace id."""
    return uuid.uuid4().hex


def trace_id_from_traceparent(header: str | None) -> str | None:
    """The trace id of a W3C `traceparent` header, or None when the header is absent or not W3C-shaped
    (wrong field sizes, uppercase, version ff, extra fields on version 00, all-zero ids)."""
    if not header:
        return None
    m = _TRACEPARENT.match(header.strip())
    if m is None:
        return None
    version, trace_id, parent_id, _flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return None
    return trace_id


def valid_trace_id(value: Any) -> str | None:
    """`value` when it is a trace id as we make and store them (32 lowercase hex, not all zeros)."""
    if isinstance(value, str) and _TRACE_ID.match(value) and set(value) != {"0"}:
        return value
    return None


# --------------------------------------------------------------------------- the context


def current() -> LogContext:
    """What the log lines of this thread / task carry now."""
    return _context.get()


def current_trace_id() -> str | None:
    """The trace id of the work in hand, if any."""
    return _context.get().trace_id


def start_trace(trace_id: str | None = None) -> str:
    """Start a new unit of work (a request, a task) under `trace_id` (a new one when None): the org,
    job and step of the previous unit are forgotten. Returns the trace id."""
    trace_id = trace_id or new_trace_id()
    _context.set(LogContext(trace_id=trace_id))
    return trace_id


def bind(**fields: Any) -> None:
    """Add what became known (`org_id`, `job_id`, `step`, `trace_id`, `origin_trace_id`); None values
    are ignored."""
    known = {k: str(v) for k, v in fields.items() if v is not None}
    unknown = set(known) - set(CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"unknown log context fields: {sorted(unknown)}")
    _context.set(replace(_context.get(), **known))


def join_trace(trace_id: Any, **fields: Any) -> None:
    """The work in hand turns out to belong to an existing trace (a Slack click on a job's approval, the
    task resuming that job): from now on its lines carry `trace_id`, and the id they carried so far as
    `origin_trace_id` (the first origin is kept: joining twice does not lose it). `fields` (`org_id`,
    `job_id`) are bound as by `bind`. A malformed or absent `trace_id` (a job stored before trace ids)
    leaves the trace as it is."""
    bind(**fields)
    joined = valid_trace_id(trace_id)
    ctx = _context.get()
    if joined is None or joined == ctx.trace_id:
        return
    _context.set(replace(ctx, trace_id=joined, origin_trace_id=ctx.origin_trace_id or ctx.trace_id))


def bind_job(job: Mapping[str, Any], step: str | None = None) -> None:
    """The work in hand is `job` (a row as a mapping): its trace id, org and id, and `step`."""
    bind(
        trace_id=valid_trace_id(job.get("trace_id")),
        org_id=job.get("org_id"),
        job_id=job.get("id"),
        step=step,
    )


# --------------------------------------------------------------------------- records and formats


class ContextFilter(logging.Filter):
    """Copy the context onto each record (a value passed with `extra=` wins); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Set `trace_id`, `org_id`, `job_id`, `step` on the record."""
        ctx = _context.get()
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, getattr(ctx, name))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `ts` (UTC, ISO 8601), `level`, `logger`, `message`, the context fields
    that are known, any `extra=` fields, and `exc_info` as text when there is a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.processName if record.processName != "MainProcess" else record.process,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = str(value)
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRS and name not in CONTEXT_FIELDS and name not in out and name[0] != "_":
                out[name] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc_info"] = record.exc_text
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def json_enabled() -> bool:
    """True when this process writes JSON lines (`LOG_FORMAT=json`)."""
    return get_settings().log_format == "json"


def use_json(logger: logging.Logger) -> None:
    """Write `logger`'s lines as JSON with the context: every handler it has gets the formatter and
    the filter (a handler filter also sees records propagated from child loggers)."""
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())


def configure_process(level: int = logging.INFO) -> None:
    """Set up logging for a process we start ourselves (the web edge) when `LOG_FORMAT=json`: one
    JSON handler on stderr for the root logger, and gunicorn's own loggers in the same format. With
    the text default nothing changes."""
    if not json_enabled():
        return
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        root.handlers = [handler]
        use_json(root)
    root.setLevel(level)
    for name in ("gunicorn.error", "gunicorn.access"):
        use_json(logging.getLogger(name))


# --------------------------------------------------------------------------- Celery


def connect_celery() -> None:
    """Carry the trace id through every Celery message and format Celery's own lines (worker, Beat)
    like ours. Called once by worker.celery_app; the signals are process-wide."""
    from celery import signals

    signals.before_task_publish.connect(_add_trace_header, weak=False)
    signals.task_prerun.connect(_start_task_trace, weak=False)
    signals.after_setup_logger.connect(_celery_logger_ready, weak=False)
    signals.after_setup_task_logger.connect(_celery_logger_ready, weak=False)


def _add_trace_header(headers: dict[str, Any] | None = None, **_: Any) -> None:
    ctx = _context.get()
    if headers is not None and ctx.trace_id and TRACE_HEADER not in headers:
        headers[TRACE_HEADER] = ctx.trace_id
        if ctx.origin_trace_id:
            headers.setdefault(ORIGIN_HEADER, ctx.origin_trace_id)


def _header(request: Any, name: str) -> Any:
    return getattr(request, name, None) or (getattr(request, "headers", None) or {}).get(name)


def _start_task_trace(task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    start_trace(valid_trace_id(_header(request, TRACE_HEADER)))
    bind(origin_trace_id=valid_trace_id(_header(request, ORIGIN_HEADER)))


def _celery_logger_ready(logger: logging.Logger | None = None, **_: Any) -> None:
    if logger is not None and json_enabled():
        use_json(logger)
