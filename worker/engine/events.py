"""Where an event enters: validate, gate, insert the job idempotently, publish after commit.

`fire_event()` is the one entry for the system's producers (webhooks, crons, Slack actions,
follow-ups, smoke), which build the full internal `Event`; `fire_public_event()` is the one for
callers (`POST /api/events`, `proactive fire`), who send a `PublicEvent` while the edge that received
it names the source (docs/architecture.md, steps 1-4):
1. the envelope and the payload of its type are validated (pydantic); bad input raises
   `InvalidEvent` and leaves a `rejected_events` row;
2. gates (org enabled, sequence enabled, user not opted out, chain depth <= 5) turn a refusal into
   a `skipped` job with the reason, so it is visible and counted;
3. `INSERT ... ON CONFLICT DO NOTHING RETURNING id`: no row back means a duplicate key, answered
   with the existing job id, or another live job for the same rep and deal (worker/engine/one_live.py), a
   `skipped` job `already_live`; the first ready steps are inserted `queued` in the same transaction
   (waiting until `scheduled_for` when the event has `delay_minutes`);
4. after commit, their run_step messages are published (a lost publish is repaired by the sweeper).

A caller's idempotency keys, explicit or default, are stored under `caller:` (`stored_key`): a
caller can repeat its own key (same job, `duplicate`), never take one the system uses.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Uuid, and_, bindparam, case, cast, insert, null, select, union_all, update
from sqlalchemy.exc import IntegrityError

from worker import logs, precompiled
from worker.config import get_settings
from worker.db import on_commit, transaction
from worker.engine import jobstore as store
from worker.engine import one_live, pinned, registry
from worker.engine.dag import Sequence
from worker.engine.executor import Advance, advance
from worker.engine.payloads import (
    CALLER_KEY_PREFIX,
    INTERNAL_FIELDS,
    MAX_CHAIN_DEPTH,
    MAX_PAYLOAD_BYTES,
    Event,
    EventType,
    PublicEvent,
    Source,
    is_caller_source,
)
from worker.engine.publish import Publish, publish_steps
from worker.engine.states import JobStatus, StepStatus
from worker.errors import InvalidEvent
from worker.memo import ShortMemory
from worker.metrics import prom
from worker.models import Org, RejectedEvent, ScheduledEvent, User, jobs, of_org, steps, utcnow
from worker.orgs import job_dry_run
from worker.precompiled import Deferred, Precompiled, PrecompiledInsert, batch
from worker.slack.redaction import redact_slack_body
from worker.worktime import zone

log = logging.getLogger(__name__)
EnvelopeT = TypeVar("EnvelopeT", bound=BaseModel)

# Largest request body kept on a rejected_events row (bytes).
MAX_REJECTED_BODY = 64 * 1024


@dataclass(frozen=True)
class FireResult:
    """What the caller learns: the job, its status, whether it already existed, why skipped, the
    live job an `already_live` skip met, and when a delayed job's steps may start."""

    job_id: uuid.UUID
    status: str
    duplicate: bool
    reason: str | None = None
    live_job_id: uuid.UUID | None = None
    scheduled_for: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """The public JSON shape: `{job_id, status, duplicate}` (+ `reason` when skipped,
        `live_job_id` when already live, `scheduled_for` when delayed)."""
        out: dict[str, Any] = {"job_id": str(self.job_id), "status": self.status, "duplicate": self.duplicate}
        if self.reason:
            out["reason"] = self.reason
        if self.live_job_id:
            out["live_job_id"] = str(self.live_job_id)
        if self.scheduled_for:
            out["scheduled_for"] = self.scheduled_for.isoformat()
        return out


# --------------------------------------------------------------------------- validation (pure)


# What a caller sending an internal field is told (the error names the field).
INTERNAL_FIELD_MESSAGES = {
    "source": "set by the server (the edge that received the event: api:<key name>, cli), not by the caller; "
    "leave it out",
}
INTERNAL_FIELD_MESSAGE = "set by the server for follow-ups, not by the caller; leave it out"


def _describe(err: ValidationError, prefix: str = "") -> tuple[str, list[dict[str, Any]]]:
    items = []
    for e in err.errors(include_url=False, include_context=False, include_input=False):
        loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        message = e["msg"]
        if not prefix and e["type"] == "extra_forbidden" and loc in INTERNAL_FIELDS:
            message = INTERNAL_FIELD_MESSAGES.get(loc, INTERNAL_FIELD_MESSAGE)
        items.append({"field": loc or "(event)", "message": message})
    text = "; ".join(f"{i['field']}: {i['message']}" for i in items)
    return text, items


def validate_event(data: Mapping[str, Any] | Event) -> tuple[Event, BaseModel]:
    """Parse the envelope and its type's payload; InvalidEvent with every field error otherwise."""
    event = data if isinstance(data, Event) else _envelope(Event, data)
    try:
        sequence = registry.get(event.type.value)
    except registry.UnknownSequence as err:
        raise InvalidEvent(str(err)) from None
    model = sequence.payload_model
    assert model is not None
    try:
        payload = model.model_validate(event.payload)
    except ValidationError as err:
        text, items = _describe(err, "payload")
        raise InvalidEvent(f"invalid {event.type.value} payload: {text}", errors=items) from None
    size = len(json.dumps(event.payload, default=str))
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidEvent(f"payload too large: {size} bytes (max {MAX_PAYLOAD_BYTES})")
    if event.replace and _live_key(event, payload) is None:
        message = (
            "only proposal_generation, stale_deal_revival and calendar_find_times with a payload.deal_id "
            "have a live job to replace; leave replace out"
        )
        raise InvalidEvent(f"invalid event: replace: {message}", errors=[{"field": "replace", "message": message}])
    return event, payload


def validate_public(data: Any, source: str) -> tuple[Event, BaseModel]:
    """Parse a caller's envelope (`PublicEvent`: no internal field, each one sent is a field error
    naming it) and build the internal `Event` with `source`, the edge that received it."""
    public = _envelope(PublicEvent, data)
    return validate_event(Event(source=source, **public.model_dump(exclude_none=True)))


def _envelope(model: type[EnvelopeT], data: Any) -> EnvelopeT:
    """`data` parsed as `model` (the internal or the caller's envelope); InvalidEvent naming every field."""
    if not isinstance(data, Mapping):
        raise InvalidEvent("an event must be a JSON object")
    try:
        return model.model_validate(dict(data))
    except ValidationError as err:
        text, items = _describe(err)
        raise InvalidEvent(f"invalid event: {text}", errors=items) from None


def _live_key(event: Event, payload: BaseModel) -> str | None:
    dumped = payload.model_dump(mode="json")
    return one_live.live_key_of(event.type.value, event.user_id, {**event.payload, **dumped})


def stored_key(source: str, key: str) -> str:
    """The idempotency key as stored: a caller's (`api`, `api:*`, `cli`) under `caller:`, so it can
    never be a key the system's producers use; the others unchanged."""
    return CALLER_KEY_PREFIX + key if is_caller_source(source) else key


def gate_reason(
    event_type: str,
    depth: int,
    *,
    org_enabled: bool,
    enabled_sequences: list[str] | None,
    opted_out: list[str] | None,
) -> str | None:
    """Why this event must not run (the skipped job's reason), or None when it may."""
    if depth > MAX_CHAIN_DEPTH:
        return "chain_too_deep"
    if not org_enabled:
        return "org_disabled"
    if enabled_sequences is not None and event_type not in enabled_sequences:
        return "sequence_disabled"
    if opted_out and event_type in opted_out:
        return "user_opted_out"
    return None


def default_idempotency_key(event: Event, payload: BaseModel, now: datetime, tz_name: str | None) -> str:
    """The default key of each type (docs/events.md); an explicit firing without one gets a fresh key."""
    p = payload.model_dump()
    t = event.type
    local = now.astimezone(zone(tz_name))
    week = "{}-W{:02d}".format(*local.isocalendar()[:2])
    if event.parent_job_id and event.item_index is not None:
        return f"{t.value}:{event.parent_job_id}:{event.item_index}"
    match t:
        case EventType.MEETING_ENDED:
            return f"meeting_ended:{p['meeting_id']}"
        case EventType.PRE_MEETING_90MIN:
            return f"pre_meeting:{p['calendar_event_id']}:{event.user_id}"
        case EventType.EMAIL_RECEIVED if p.get("message_id") or p.get("email_id"):
            return f"email:{p.get('message_id') or p['email_id']}"
        case EventType.EMAIL_RECEIVED if p.get("campaign_reply_id"):
            return f"email:reply:{p['campaign_reply_id']}"
        case EventType.COACHING_WEEKLY:
            return f"coaching_weekly:{event.user_id}:{p.get('week') or week}"
        case EventType.CAMPAIGN_DAILY_CHECK:
            return f"campaign_daily_check:{event.org_id}:{p.get('date') or local.date()}"
        case EventType.DEAL_RISK_SCAN:
            return f"deal_risk_scan:{event.org_id}:{p.get('date') or local.date()}"
        case EventType.STALE_DEAL_REVIVAL:
            return f"stale_deal_revival:{p['deal_id']}:{week}"
    return f"{t.value}:{event.source}:{uuid.uuid4()}"


# --------------------------------------------------------------------------- accepting


_users = User.__table__
_ORG_COLUMNS = (Org.enabled, Org.settings, Org.timezone)
_ORG_ONLY = Precompiled(select(*_ORG_COLUMNS).where(Org.id == bindparam("b_org", type_=Uuid())))
_ORG_AND_USER = Precompiled(
    select(
        *_ORG_COLUMNS, _users.c.id.label("user_id"), _users.c.timezone.label("user_tz"), _users.c.opted_out_sequences
    )
    .select_from(
        Org.__table__.outerjoin(
            _users, and_(_users.c.id == bindparam("b_user", type_=Uuid()), of_org(_users.c.org_id, Org.id))
        )
    )
    .where(Org.id == bindparam("b_org", type_=Uuid()))
)
_JOB_INSERTS: dict[tuple[str, tuple[str, ...]], Precompiled] = {}
# Columns a job insert must name itself: the cursor fills in no Python-side default.
_JOB_DEFAULTS = frozenset(c.key for c in jobs.columns if c.default is not None)


def _job_insert(conn: Connection, columns: Iterable[str]) -> Precompiled:
    """`INSERT INTO sequence_jobs (columns) ... ON CONFLICT DO NOTHING RETURNING id`, built once per
    dialect and column set (the values come as parameters). No conflict target: a conflict on the key
    (a duplicate) and on the live index (another live job for the rep and deal) are both told apart
    after the insert."""
    dialect, keys = conn.dialect.name, tuple(sorted(columns))
    if (dialect, keys) not in _JOB_INSERTS:
        if missing := _JOB_DEFAULTS.difference(keys):
            raise ValueError(f"a job insert must give {sorted(missing)}")
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        values = {k: bindparam(k, type_=jobs.c[k].type) for k in keys}
        statement = dialect_insert(jobs).values(values).on_conflict_do_nothing().returning(jobs.c.id)
        _JOB_INSERTS[(dialect, keys)] = Precompiled(statement)
    return _JOB_INSERTS[(dialect, keys)]


def _gate_query(event: Event) -> tuple[Precompiled, dict[str, Any]]:
    """The gate read of `event`: its org, and its user in that org when it names one (one statement)."""
    if event.user_id is None:
        return _ORG_ONLY, {"b_org": event.org_id}
    return _ORG_AND_USER, {"b_org": event.org_id, "b_user": event.user_id}


@dataclass(frozen=True)
class _Gate:
    """What the gate read says about an event: why it must not run (None: it may), the time zone of
    its default key, the org's settings (dry run)."""

    reason: str | None
    tz_name: str | None
    settings: Mapping[str, Any]


def _gate_of(event: Event, keys: tuple[str, ...], found: tuple[Any, ...] | None) -> _Gate:
    """The gate of `event` from its gate row (`_gate_query`); InvalidEvent for an unknown org or a
    user who is not a member of it."""
    if found is None:
        raise InvalidEvent(f"unknown org {event.org_id}")
    org = SimpleNamespace(**dict(zip(keys, found, strict=True)))
    tz_name = org.timezone
    opted_out: list[str] | None = None
    if event.user_id is not None:
        if org.user_id is None:
            raise InvalidEvent(f"user {event.user_id} is not a member of org {event.org_id}")
        tz_name = org.user_tz or tz_name
        opted_out = org.opted_out_sequences
    settings = org.settings or {}
    enabled = settings.get("enabled_sequences")
    reason = gate_reason(
        event.type.value,
        event.depth,
        org_enabled=bool(org.enabled),
        enabled_sequences=list(enabled) if isinstance(enabled, list) else None,
        opted_out=opted_out,
    )
    return _Gate(reason, tz_name, settings)


def _job_values(
    event: Event, payload: BaseModel, now: datetime, gate: _Gate, sequence: Sequence, trace_id: str | None
) -> dict[str, Any]:
    """The new job's row (a fresh id) as the gate decided: queued, or skipped with its reason."""
    reason = gate.reason
    source = str(event.source)
    key = stored_key(source, event.idempotency_key or default_idempotency_key(event, payload, now, gate.tz_name))
    status = JobStatus.SKIPPED if reason else JobStatus.QUEUED
    delay = timedelta(minutes=event.delay_minutes or 0)
    return {
        "id": uuid.uuid4(),
        "org_id": event.org_id,
        "user_id": event.user_id,
        "event_type": event.type.value,
        "source": source,
        "payload": payload.model_dump(mode="json", exclude_none=True),
        "idempotency_key": key,
        "parent_job_id": event.parent_job_id,
        "depth": event.depth,
        "iteration": 0,
        "status": status.value,
        "reason": reason,
        "definition_hash": sequence.definition_hash,
        "trace_id": logs.valid_trace_id(trace_id) or logs.current_trace_id() or logs.new_trace_id(),
        "cancel_requested": False,
        "dry_run": job_dry_run(process_dry_run=get_settings().dry_run, source=source, org_settings=gate.settings),
        "paused_ms": 0,
        "created_at": now,
        "updated_at": now,
        "finished_at": now if reason else None,
        "live_key": _live_key(event, payload),
        "live_job_id": None,
        "scheduled_for": now + delay if delay and not reason else None,
    }


def accept(
    conn: Connection, event: Event, payload: BaseModel, now: datetime, *, trace_id: str | None = None
) -> tuple[FireResult, list[Publish]]:
    """Gate and insert the job (and its first ready steps) in the caller's transaction.

    The job is stored under `trace_id`, else the trace of the work in hand (the request or task
    that fires it, worker/logs.py), else a new one.
    """
    q, params = _gate_query(event)
    with batch(conn) as b:  # with the transaction's BEGIN
        read = b.send(q, params)
    found = read.first()
    gate = _gate_of(event, q.keys(conn), found)
    assert found is not None
    _gates.put((event.org_id, event.user_id), found)
    sequence = registry.get(event.type.value)
    if gate.reason is None and sequence.gate is not None:
        gate = dataclasses.replace(gate, reason=sequence.gate(conn, event, payload))
    values = _job_values(event, payload, now, gate, sequence, trace_id)
    # The definition before the job, as accept_at_once orders them (its plan stores it first): two
    # concurrent fires of one key taking the two rows' locks in opposite orders would deadlock.
    pinned.remember(conn, sequence)
    existing = _insert_job(conn, values, replace=event.replace, now=now)
    if existing is not None:
        log.info(
            "event %s from %s is a duplicate of job %s (%s)",
            event.type.value,
            values["source"],
            existing.job_id,
            existing.status,
            extra={"org_id": str(event.org_id), "job_id": str(existing.job_id)},
        )
        on_commit(lambda: prom.event_duplicate(values["source"]))
        return existing, []
    _log_accepted(event, values)
    if values["reason"]:
        return FireResult(values["id"], values["status"], False, values["reason"], values["live_job_id"]), []
    return _started(conn, values, advance(conn, values, sequence, now, new_job=True), now)


def _log_accepted(event: Event, values: Mapping[str, Any]) -> None:
    """The accepted job's log line and counter (after commit)."""
    reason, live = values["reason"], values["live_job_id"]
    on_commit(lambda: prom.event_accepted(values["source"], values["event_type"]))
    if not log.isEnabledFor(logging.INFO):  # the line's arguments cost more than the check
        return
    log.info(
        "event %s from %s accepted: job %s %s%s",
        event.type.value,
        values["source"],
        values["id"],
        values["status"],
        f" ({reason}{', see job ' + str(live) if live else ''})" if reason else "",
        extra={"org_id": str(event.org_id), "job_id": str(values["id"]), "trace_id": values["trace_id"]},
    )


def _started(
    conn: Connection, values: Mapping[str, Any], adv: Advance, now: datetime
) -> tuple[FireResult, list[Publish]]:
    """A queued job whose first steps `advance` planned: what to publish (held back when delayed)."""
    pubs = carry_out(conn, adv, now)  # a new job has no step rows yet: no follow-ups to fire
    if values["scheduled_for"] is not None:
        pubs = _hold_until(conn, values["id"], values["scheduled_for"], pubs, now, org_id=values["org_id"])
    status = adv.job_status or values["status"]
    return FireResult(values["id"], status, False, scheduled_for=values["scheduled_for"]), pubs


# --------------------------------------------------------------------------- accepting in one statement

# How long this process remembers a gate row it read (seconds). A remembered row is never trusted:
# `accept_at_once` reads it again in the statement of its writes and rolls back when it changed.
GATE_MEMORY_S = 60.0
# Most gate rows remembered (the memory is dropped whole when full).
GATE_MEMORY_MAX = 10_000
_gates: ShortMemory[tuple[uuid.UUID, uuid.UUID | None], tuple[Any, ...]] = ShortMemory(GATE_MEMORY_S, GATE_MEMORY_MAX)


class Missed(Exception):
    """`accept_at_once` could not keep what it wrote (a duplicate key, another live job, a changed
    gate, a plan that writes more than step rows): its caller rolls the transaction back and accepts
    the event with `accept`."""


class _NewJobPlan(Deferred):
    """What `advance` plans for a job not inserted yet, kept instead of written: its step rows
    (`steps`); any other write it queues is left queued (the caller gives up), and a flush (a plan
    that needs the job row first) gives up at once."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self.steps: list[Mapping[str, Any]] = []

    def insert(self, pre: PrecompiledInsert, rows: SequenceOf[Mapping[str, Any]]) -> None:
        """Keep step rows; queue anything else."""
        if pre.table is steps:
            self.steps.extend(rows)
        else:
            super().insert(pre, rows)

    def flush(self, then: Precompiled | None = None, values: Mapping[str, Any] | None = None) -> None:
        """Give up: the plan needs the job row before its next statement."""
        raise Missed("the plan of the new job needs its row first")


_ACCEPT_STATEMENTS: dict[tuple[Any, ...], Precompiled] = {}


# A row's shape in the statement: its columns in order, and those whose value is None (written as NULL).
_Shape = tuple[tuple[str, ...], frozenset[str]]


def _shape(row: Mapping[str, Any]) -> _Shape:
    return tuple(sorted(row)), frozenset(k for k, v in row.items() if v is None)


def _accept_statement(gate: Precompiled, job: _Shape, step_rows: tuple[_Shape, ...]) -> Precompiled:
    """One statement: insert the job (`j_<column>` parameters; nothing on a conflict) if the gate
    row is still the one remembered (`g<i>` parameters, its columns in order), its first steps
    (`s<i>_<column>`) only if the job row went in, and read the gate row with the new job's id
    (None when it did not go in) as its last column. Values are cast (a SELECT list or a UNION ALL
    takes no type from the columns it fills); a column whose value is None is written NULL in the
    SQL, not sent (most of a new row's are). Built once per shape."""
    shape = (gate, job, step_rows)
    if shape not in _ACCEPT_STATEMENTS:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        def value(table: Any, key: str, nulls: frozenset[str], name: str) -> Any:
            kind = table.c[key].type
            return cast(null() if key in nulls else bindparam(name, type_=kind), kind)

        columns = [getattr(c, "element", c) for c in gate.statement.selected_columns]  # a label's column
        unchanged = gate.statement.where(
            *(c.is_not_distinct_from(bindparam(f"g{i}", type_=c.type)) for i, c in enumerate(columns))
        ).exists()
        keys, nulls = job
        row = select(*(value(jobs, k, nulls, f"j_{k}") for k in keys)).where(unchanged)
        new_job = (
            pg_insert(jobs).from_select(list(keys), row).on_conflict_do_nothing().returning(jobs.c.id).cte("new_job")
        )
        statement = gate.statement.add_columns(select(new_job.c.id).scalar_subquery().label("new_job_id"))
        if step_rows:
            rows = [
                select(*(value(steps, k, nulls, f"s{i}_{k}") for k in keys)).select_from(new_job)
                for i, (keys, nulls) in enumerate(step_rows)
            ]
            source = rows[0] if len(rows) == 1 else union_all(*rows)
            new_steps = insert(steps).from_select(list(step_rows[0][0]), source).cte("new_steps")
            statement = statement.add_cte(new_steps)
        _ACCEPT_STATEMENTS[shape] = Precompiled(statement)
    return _ACCEPT_STATEMENTS[shape]


def accept_at_once(
    conn: Connection, event: Event, payload: BaseModel, now: datetime, *, trace_id: str | None = None
) -> tuple[FireResult, list[Publish]] | None:
    """`accept` in one statement, on a fresh transaction of `conn`: when this process remembers the
    event's gate row, the job and its first steps are inserted as that row decides, if it is still
    the row in the database, by one statement (`_accept_statement`), which commits itself when it
    is all the transaction does (one round trip). Raises Missed (roll back, then `accept`) when the
    job row did not go in (a duplicate key, another live job, a gate row changed, its org or user
    deleted) or the plan writes more than step rows; returns None, with nothing sent, when the
    event needs `accept` (no remembered row, a sequence gate that reads, `replace`, not
    PostgreSQL).

    The outcome is `accept`'s: the same gate row decides, read by the statement that writes, and a
    duplicate is answered by `accept` after the rollback."""
    if event.replace or conn.dialect.name != "postgresql":
        return None
    found = _gates.get((event.org_id, event.user_id))
    sequence = registry.get(event.type.value)
    if found is None or sequence.gate is not None:
        return None
    gate, params = _gate_query(event)
    values = _job_values(event, payload, now, _gate_of(event, gate.keys(conn), found), sequence, trace_id)
    adv, rows = None, []
    if not values["reason"]:
        plan = _NewJobPlan(conn)
        adv = advance(conn, values, sequence, now, new_job=True, later=plan)
        if plan or len({tuple(sorted(r)) for r in plan.steps}) > 1:
            raise Missed("the plan of the new job writes more than its step rows")
        rows = plan.steps
    statement = _accept_statement(gate, _shape(values), tuple(_shape(r) for r in rows))
    params.update({f"j_{k}": v for k, v in values.items() if v is not None})
    for i, row in enumerate(rows):
        params.update({f"s{i}_{k}": v for k, v in row.items() if v is not None})
    params.update({f"g{i}": v for i, v in enumerate(found)})
    try:  # alone in its transaction, it commits itself: one round trip (a delayed job's hold follows it)
        ran, got = _run_alone(conn, statement, params) if values["scheduled_for"] is None else (False, None)
        if not ran:
            got = statement.first(conn, params)
    except IntegrityError as err:  # the org or the user is gone since it was remembered
        _gates.forget((event.org_id, event.user_id))
        raise Missed(f"job {values['id']} refused: {err.orig}") from None
    if got is None or got[:-1] != found:
        _gates.forget((event.org_id, event.user_id))
        raise Missed(f"the gate of org {event.org_id} changed")
    if got[-1] is None:
        raise Missed(f"job {values['id']} not inserted (its key or its live slot is taken)")
    _log_accepted(event, values)
    if adv is None:
        return FireResult(values["id"], values["status"], False, values["reason"]), []
    return _started(conn, values, adv, now)


# A fire that keeps meeting a live job that leaves the live set (or a replacer that keeps losing to
# another replacer) tries this many times, then stores the event `already_live`.
LIVE_ATTEMPTS = 4


def _insert_job(conn: Connection, values: dict[str, Any], *, replace: bool, now: datetime) -> FireResult | None:
    """Insert the job row; None when it was inserted (`values` say how: queued, or skipped
    `already_live`), else the existing job of the same key (a duplicate).

    Race-safe by the database: the insert ignores a conflict on the key or on the live index
    (ux_sequence_jobs_live, PostgreSQL waits for a concurrent inserter to commit or roll back); no
    row back is a duplicate if the key has a job, else another job is live for the rep and deal.
    With `replace`, that live job's cancel is requested first, in this transaction."""
    org_id, live_key = values["org_id"], values["live_key"]
    tries = 0
    while True:
        holds_key = live_key is not None and values["status"] == JobStatus.QUEUED.value
        if holds_key and replace:
            if (existing := _job_with_key(conn, org_id, values["idempotency_key"])) is not None:
                return existing  # a repeated request: it must not cancel the job it made the first time
            one_live.release(
                conn, org_id, live_key, replaced_by=values["id"], actor=f"event:{values['source']}"[:200], now=now
            )
        if _job_insert(conn, values).first(conn, values) is not None:
            return None
        if (existing := _job_with_key(conn, org_id, values["idempotency_key"])) is not None:
            return existing
        if not holds_key:  # a skipped job holds no live key: only its key could conflict
            raise RuntimeError(f"job insert for key {values['idempotency_key']!r} conflicted with no visible job")
        tries += 1
        live = one_live.live_job(conn, org_id, live_key)
        if (live is None or replace) and tries < LIVE_ATTEMPTS:
            continue  # it left the live set meanwhile, or another replacer won the slot: try again
        if live is None:
            raise RuntimeError(f"the live job of {live_key} kept changing while job {values['id']} was fired")
        values.update(
            status=JobStatus.SKIPPED.value,
            reason=one_live.ALREADY_LIVE,
            live_job_id=live,
            finished_at=now,
            scheduled_for=None,
        )


def _job_with_key(conn: Connection, org_id: uuid.UUID, key: str) -> FireResult | None:
    """The job that already has `key` in `org_id`, as a duplicate answer; None when there is none."""
    row = conn.execute(
        select(jobs.c.id, jobs.c.status, jobs.c.reason, jobs.c.live_job_id, jobs.c.scheduled_for).where(
            jobs.c.org_id == org_id, jobs.c.idempotency_key == key
        )
    ).first()
    if row is None:
        return None
    return FireResult(row.id, row.status, True, row.reason, row.live_job_id, row.scheduled_for)


def _hold_until(
    conn: Connection, job_id: uuid.UUID, start_at: datetime, pubs: list[Publish], now: datetime, *, org_id: uuid.UUID
) -> list[Publish]:
    """A delayed job: its queued steps may not start before `start_at` (`not_before`, as a step's
    `start_after`); their messages carry the countdown, or are left to the sweeper when it is long
    (publish.MAX_COUNTDOWN_S). Returns the publishes."""
    # not a state move (not_before only, the steps stay queued): written here, not in jobstore
    held = set(
        conn.execute(
            update(steps)
            .where(steps.c.org_id == org_id, steps.c.job_id == job_id, steps.c.status == StepStatus.QUEUED)
            .values(not_before=case((steps.c.not_before > start_at, steps.c.not_before), else_=start_at))
            .returning(steps.c.id)
        ).scalars()
    )
    wait_s = (start_at - now).total_seconds()
    return [
        dataclasses.replace(p, countdown_s=max(p.countdown_s or 0.0, wait_s)) if p.step_run_id in held else p
        for p in pubs
    ]


def fire_event(
    data: Mapping[str, Any] | Event,
    *,
    now: datetime | None = None,
    raw_body: str | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    trace_id: str | None = None,
) -> FireResult:
    """Validate, gate and accept one event built by the system (the internal `Event`, with its
    source); publish its first steps after commit.

    The job is stored under `trace_id` (else the current trace, see `accept`). Raises InvalidEvent
    (recorded in rejected_events) for anything that cannot be accepted.
    """
    return _fire(
        lambda: validate_event(data),
        _source_of(data),
        data,
        now=now,
        raw_body=raw_body,
        headers=headers,
        trace_id=trace_id,
    )


def fire_public_event(
    data: Any,
    *,
    source: str,
    now: datetime | None = None,
    raw_body: str | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    trace_id: str | None = None,
) -> FireResult:
    """Fire an event a caller sent (`PublicEvent`: `POST /api/events`, `proactive fire`) under
    `source`, the edge that received it (`api:<key name>`, `api` for the admin token, `cli`).

    An internal field (`source`, `depth`, `parent_job_id`, `item_index`) is an InvalidEvent naming
    it; the idempotency key is stored under `caller:`. Rejections are recorded under `source`.
    """
    return _fire(
        lambda: validate_public(data, source),
        source,
        data,
        now=now,
        raw_body=raw_body,
        headers=headers,
        trace_id=trace_id,
    )


def _fire(
    validate: Any,
    source: str,
    data: Any,
    *,
    now: datetime | None,
    raw_body: str | bytes | None,
    headers: Mapping[str, str] | None,
    trace_id: str | None,
) -> FireResult:
    now = now or utcnow()
    try:
        event, payload = validate()
        result, pubs = _accept_alone(event, payload, now, trace_id)
    except InvalidEvent as err:
        record_rejected(
            source,
            str(err),
            "InvalidEvent",
            body=raw_body if raw_body is not None else _dump(data),
            headers=headers,
            org_id=_org_of(data),
        )
        raise
    publish_steps(pubs)
    return result


def _run_alone(
    conn: Connection, statement: Precompiled, params: Mapping[str, Any]
) -> tuple[bool, tuple[Any, ...] | None]:
    """Run `statement` as a transaction of its own (autocommit: no BEGIN, no COMMIT) when the
    connection's transaction has sent nothing yet: (True, its first row); (False, None) with
    nothing run otherwise."""
    with precompiled.on_its_own(conn) as alone:
        if not alone:
            return False, None
        row = statement.first(conn, params)
    precompiled.stats["autocommitted"] += 1  # one round trip: the transaction sends no BEGIN or COMMIT
    return True, row


def _accept_alone(
    event: Event, payload: BaseModel, now: datetime, trace_id: str | None
) -> tuple[FireResult, list[Publish]]:
    """Accept `event` in a transaction of its own: in one statement when it can (`accept_at_once`),
    else, or when that missed (rolled back), with `accept`."""
    try:
        with transaction() as conn:
            done = accept_at_once(conn, event, payload, now, trace_id=trace_id)
            if done is None:
                done = accept(conn, event, payload, now, trace_id=trace_id)
        return done
    except Missed as missed:
        log.debug("accepting %s the long way: %s", event.type.value, missed)
    with transaction() as conn:
        return accept(conn, event, payload, now, trace_id=trace_id)


def fire_follow_ups(
    conn: Connection, job: Mapping[str, Any], follow_ups: list[dict[str, Any]], now: datetime
) -> list[Publish]:
    """Fire a completed job's follow-ups in its transaction (delayed ones become scheduled rows),
    under the parent's trace id.

    A follow-up that fails validation is recorded in rejected_events, never dropped silently.
    """
    pubs: list[Publish] = []
    for index, fu in enumerate(follow_ups):
        data = {
            "type": fu.get("type"),
            "source": Source.CHAIN.value,
            "org_id": str(job["org_id"]),
            "user_id": fu.get("user_id") or (str(job["user_id"]) if job.get("user_id") else None),
            "payload": fu.get("payload") or {},
            "parent_job_id": str(job["id"]),
            "depth": (job.get("depth") or 0) + 1,
            "item_index": index,
        }
        try:
            event, payload = validate_event(data)
            delay = fu.get("delay_minutes")
            if delay:
                key = default_idempotency_key(event, payload, now, None)
                conn.execute(
                    store.insert_ignoring_conflicts(
                        conn, ScheduledEvent.__table__, ["org_id", "idempotency_key"]
                    ).values(
                        id=uuid.uuid4(),
                        org_id=event.org_id,
                        parent_job_id=job["id"],
                        idempotency_key=key,
                        event={**data, "idempotency_key": key},
                        fire_at=now + timedelta(minutes=float(delay)),
                        created_at=now,
                    )
                )
                continue
            _result, more = accept(conn, event, payload, now, trace_id=job.get("trace_id"))
            pubs.extend(more)
        except InvalidEvent as err:
            _insert_rejected(
                conn,
                "chain",
                f"follow-up {index} of job {job['id']}: {err}",
                "InvalidEvent",
                body=_dump(data),
                headers=None,
                org_id=job["org_id"],
            )
    return pubs


def carry_out(conn: Connection, adv: Advance, now: datetime) -> list[Publish]:
    """Do what an engine transition left for its caller, in the caller's transaction: fire the
    follow-ups of each job it completed (their new jobs planned by the engine). Returns every message
    to publish once that transaction commits: the transition's, then the new jobs'."""
    pubs = list(adv.publish)
    for done in adv.follow_ups:
        pubs.extend(fire_follow_ups(conn, done.job, done.events, now))
    return pubs


def fire_scheduled(now: datetime | None = None, limit: int = 200) -> int:
    """Fire follow-ups whose delay has passed (the sweeper calls this); returns how many fired."""
    now = now or utcnow()
    table = ScheduledEvent.__table__
    with transaction() as conn:
        due = list(
            conn.execute(
                select(table.c.id).where(table.c.fired_at.is_(None), table.c.fire_at <= now).limit(limit)
            ).scalars()
        )
    fired = 0
    for sid in due:
        pubs: list[Publish] = []
        with transaction() as conn:
            row = conn.execute(
                table.update()
                .where(table.c.id == sid, table.c.fired_at.is_(None))
                .values(fired_at=now)
                .returning(table.c.event, table.c.org_id, table.c.parent_job_id)
            ).first()
            if row is None:
                continue  # another sweeper fired it
            try:
                event, payload = validate_event(row.event)
                trace_id = (
                    conn.execute(select(jobs.c.trace_id).where(jobs.c.id == row.parent_job_id)).scalar()
                    if row.parent_job_id
                    else None
                )  # a follow-up is part of its parent's story
                result, pubs = accept(conn, event, payload, now, trace_id=trace_id)
                conn.execute(table.update().where(table.c.id == sid).values(job_id=result.job_id))
                fired += 1
            except InvalidEvent as err:
                conn.execute(table.update().where(table.c.id == sid).values(error=str(err)[:2000]))
                _insert_rejected(
                    conn,
                    "chain",
                    f"scheduled follow-up {sid}: {err}",
                    "InvalidEvent",
                    body=_dump(row.event),
                    headers=None,
                    org_id=row.org_id,
                )
        publish_steps(pubs)
    return fired


# --------------------------------------------------------------------------- rejected events


def record_rejected(
    source: str,
    reason: str,
    error_type: str,
    *,
    body: str | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    org_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Keep bad input (dead letter with replay): source, reason, headers, body up to 64 KB."""
    with transaction() as conn:
        return _insert_rejected(conn, source, reason, error_type, body=body, headers=headers, org_id=org_id)


def storable_text(text: str) -> str:
    """`text` as PostgreSQL can store it (in text and JSON): NUL characters and lone surrogates,
    which refused input may well carry, become U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")
    return text


def _insert_rejected(
    conn: Connection,
    source: str,
    reason: str,
    error_type: str,
    *,
    body: str | bytes | None,
    headers: Mapping[str, str] | None,
    org_id: uuid.UUID | None,
) -> uuid.UUID:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if body is not None and source.startswith("slack:"):
        body = redact_slack_body(body)  # a click's response_url and Slack's token are credentials
    rid = uuid.uuid4()
    on_commit(lambda: prom.event_rejected(source, error_type))
    safe_headers = {
        storable_text(k): storable_text(v)
        for k, v in (headers or {}).items()
        if k.lower() not in ("authorization", "cookie")
    }
    conn.execute(
        insert(RejectedEvent.__table__).values(
            id=rid,
            org_id=org_id,
            source=source[:64],
            reason=storable_text(reason[:4000]),
            error_type=error_type[:64],
            headers=safe_headers or None,
            body=storable_text(body[:MAX_REJECTED_BODY]) if body is not None else None,
            created_at=utcnow(),
        )
    )
    return rid


def _dump(data: Any) -> str:
    if isinstance(data, BaseModel):
        return data.model_dump_json()
    try:
        return json.dumps(data, default=str)
    except (TypeError, ValueError):
        return repr(data)


def _source_of(data: Any) -> str:
    value = data.source if isinstance(data, Event) else (data.get("source") if isinstance(data, Mapping) else None)
    return str(value or "unknown")[:64]


def _org_of(data: Any) -> uuid.UUID | None:
    value = data.org_id if isinstance(data, Event) else (data.get("org_id") if isinstance(data, Mapping) else None)
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- many at once


@dataclass
class Fired:
    """What a unit of work fired: new jobs, duplicates (already fired), refusals."""

    new: int = 0
    duplicate: int = 0
    skipped: int = 0  # gated (org/sequence disabled, opted out): visible skipped jobs
    invalid: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Counts for the slot row."""
        out: dict[str, Any] = {"fired": self.new, "duplicates": self.duplicate, "gated": self.skipped}
        if self.invalid:
            out["invalid"] = self.invalid[:20]
        return out


def fire_in(conn: Connection, events: Iterable[Mapping[str, Any]], now: datetime, fired: Fired) -> None:
    """Accept `events` in the caller's transaction; their first steps are published after commit.
    An event the engine refuses is counted (and logged), never fatal to the others (crons, Gmail sync)."""
    pubs = []
    for data in events:
        try:
            event, payload = validate_event(data)
            result, more = accept(conn, event, payload, now)  # refuses before it writes
        except InvalidEvent as err:
            log.warning("cron event %s refused: %s", data.get("type"), err)
            fired.invalid.append(f"{data.get('type')}: {err}"[:200])
            continue
        pubs.extend(more)
        if result.duplicate:
            fired.duplicate += 1
        elif result.reason:
            fired.skipped += 1
        else:
            fired.new += 1
    if pubs:
        publish_steps(pubs)  # after the caller's commit
