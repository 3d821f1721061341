"""Every SQL statement that reads or moves job, step and approval state (Core, no ORM loading).

Each function takes an open connection, so the caller decides the transaction boundaries (a
step costs at most two short transactions). State changes are conditional UPDATEs that only
move a row from a legal predecessor status, so races resolve in the database: the loser sees no
row and backs off.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, Row, Table, Uuid, and_, bindparam, insert, or_, select, update

from worker.models import UTCDateTime, approvals, jobs, steps
from worker.states import (
    APPROVAL_TRANSITIONS,
    JOB_TRANSITIONS,
    STEP_TRANSITIONS,
    ApprovalStatus,
    JobStatus,
    StepStatus,
    predecessors,
)

J, S = JobStatus, StepStatus


def insert_ignoring_conflicts(conn: Connection, table: Table, index_elements: Sequence[str]) -> Any:
    """`INSERT ... ON CONFLICT (index_elements) DO NOTHING` for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=list(index_elements))


# --------------------------------------------------------------------------- jobs

JOB_COLUMNS = (
    jobs.c.id,
    jobs.c.org_id,
    jobs.c.user_id,
    jobs.c.event_type,
    jobs.c.source,
    jobs.c.payload,
    jobs.c.status,
    jobs.c.cancel_requested,
    jobs.c.dry_run,
    jobs.c.depth,
    jobs.c.definition_hash,
    jobs.c.deadline_at,
    jobs.c.paused_at,
    jobs.c.paused_ms,
    jobs.c.started_at,
    jobs.c.idempotency_key,
    jobs.c.iteration,
    jobs.c.created_at,  # how long a step may wait for a reconnect (engine.REVOKED_GIVE_UP)
    jobs.c.trace_id,  # the job's log lines and follow-ups carry it (worker/logs.py)
)


# What a completion needs fresh under the lock (payload and other constants come from the claim).
LOCK_COLUMNS = (
    jobs.c.id,
    jobs.c.org_id,
    jobs.c.user_id,
    jobs.c.event_type,
    jobs.c.status,
    jobs.c.cancel_requested,
    jobs.c.dry_run,
    jobs.c.depth,
    jobs.c.deadline_at,
    jobs.c.paused_at,
    jobs.c.paused_ms,
    jobs.c.iteration,
)


_LOCKS: dict[tuple[Any, ...], Any] = {}


def lock_job(conn: Connection, job_id: uuid.UUID, columns: Sequence[Any] = JOB_COLUMNS) -> Row | None:
    """Lock the job row for this transaction and return `columns` of it.

    `SELECT ... FOR UPDATE` on PostgreSQL; on SQLite the clause is dropped and the transaction's
    BEGIN IMMEDIATE already holds the database write lock.
    """
    key = tuple(columns)
    if key not in _LOCKS:
        _LOCKS[key] = select(*columns).where(jobs.c.id == bindparam("b_job", type_=Uuid())).with_for_update()
    return conn.execute(_LOCKS[key], {"b_job": job_id}).first()


def set_job_status(conn: Connection, job_id: uuid.UUID, new: JobStatus, now: datetime, **fields: Any) -> bool:
    """Move the job to `new` if its current status allows it; True when it moved."""
    values: dict[str, Any] = {"status": new.value, "updated_at": now, **fields}
    if new in (J.COMPLETED, J.FAILED, J.CANCELLED, J.EXPIRED, J.TIMEOUT):
        values.setdefault("finished_at", now)
    allowed = [s.value for s in predecessors(JOB_TRANSITIONS, new)]
    res = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status.in_(allowed)).values(**values))
    return res.rowcount == 1


_JOB_FOR_STEP = (
    select(
        *JOB_COLUMNS,
        steps.c.id.label("step_run_id"),
        steps.c.step,
        steps.c.iteration,
        steps.c.status.label("step_status"),
        steps.c.attempt.label("step_attempt"),
    )
    .join(jobs, jobs.c.id == steps.c.job_id)
    .where(steps.c.id == bindparam("b_sid", type_=Uuid()))
)


def job_for_step(conn: Connection, step_run_id: uuid.UUID) -> Row | None:
    """The step run joined with its job (no lock): what a claim needs to know first."""
    return conn.execute(_JOB_FOR_STEP, {"b_sid": step_run_id}).first()


# --------------------------------------------------------------------------- steps


# The hot-path statements are built once, with bound parameters: building a statement and its cache
# key on every call cost about as much CPU as running it (bench/profile_engine.py).
_NOW = bindparam("b_now", type_=UTCDateTime())
_CLAIM = (
    update(steps)
    .where(
        steps.c.id == bindparam("b_sid", type_=Uuid()),
        or_(
            and_(steps.c.status == S.QUEUED.value, or_(steps.c.not_before.is_(None), steps.c.not_before <= _NOW)),
            and_(steps.c.status == S.RUNNING.value, steps.c.lease_expires_at < _NOW),
        ),
    )
    .values(
        status=S.RUNNING.value,
        attempt=steps.c.attempt + 1,
        started_at=bindparam("b_now", type_=UTCDateTime()),
        lease_expires_at=bindparam("b_lease", type_=UTCDateTime()),
        not_before=None,
    )
    .returning(steps.c.attempt, steps.c.iteration)
)


def claim_step(conn: Connection, step_run_id: uuid.UUID, now: datetime, lease_until: datetime) -> Row | None:
    """Claim a queued step (or one whose lease expired): running, attempt + 1, new lease.

    None when another worker holds it, it already ended, or its retry delay has not passed.
    """
    return conn.execute(_CLAIM, {"b_sid": step_run_id, "b_now": now, "b_lease": lease_until}).first()


_FINISH: dict[frozenset[str], Any] = {}


def _finish_statement(columns: frozenset[str]) -> Any:
    """`UPDATE step_runs SET <columns> WHERE id, attempt, status = running`, built once per column set."""
    if columns not in _FINISH:
        _FINISH[columns] = (
            update(steps)
            .where(
                steps.c.id == bindparam("b_sid", type_=Uuid()),
                steps.c.attempt == bindparam("b_attempt", type_=Integer()),
                steps.c.status == S.RUNNING.value,
            )
            .values({c: bindparam(f"v_{c}", type_=steps.c[c].type) for c in sorted(columns)})
        )
    return _FINISH[columns]


def finish_step(
    conn: Connection,
    step_run_id: uuid.UUID,
    attempt: int,
    new: StepStatus,
    now: datetime,
    *,
    uncount: bool = False,
    **fields: Any,
) -> bool:
    """Record the outcome of `attempt` of a running step; False if that attempt lost its lease.
    `uncount` gives the attempt back (a step that waits for a reconnect did not really try)."""
    values: dict[str, Any] = {"status": new.value, "lease_expires_at": None, **fields}
    if uncount:
        values["attempt"] = attempt - 1
    if new in (S.SUCCEEDED, S.FAILED, S.SKIPPED, S.CANCELLED):
        values.setdefault("finished_at", now)
    params = {f"v_{k}": v for k, v in values.items()}
    res = conn.execute(_finish_statement(frozenset(values)), {"b_sid": step_run_id, "b_attempt": attempt, **params})
    return res.rowcount == 1


def set_step_status(conn: Connection, step_run_id: uuid.UUID, new: StepStatus, now: datetime, **fields: Any) -> bool:
    """Move a step run to `new` from any legal predecessor (used outside the running attempt)."""
    values: dict[str, Any] = {"status": new.value, **fields}
    if new in (S.SUCCEEDED, S.FAILED, S.SKIPPED, S.CANCELLED):
        values.setdefault("finished_at", now)
    allowed = [s.value for s in predecessors(STEP_TRANSITIONS, new)]
    res = conn.execute(update(steps).where(steps.c.id == step_run_id, steps.c.status.in_(allowed)).values(**values))
    return res.rowcount == 1


@dataclass(frozen=True)
class StepState:
    """What planning needs of one current step run."""

    step: str
    status: str
    iteration: int
    id: uuid.UUID
    queue: str
    has_follow_ups: bool


STATE_COLUMNS = (
    steps.c.step,
    steps.c.status,
    steps.c.iteration,
    steps.c.id,
    steps.c.queue,
    steps.c.follow_ups.is_not(None).label("has_follow_ups"),
)


_STATES = select(*STATE_COLUMNS).where(
    steps.c.job_id == bindparam("b_job", type_=Uuid()), steps.c.superseded.is_(False)
)


def step_states(conn: Connection, job_id: uuid.UUID) -> list[StepState]:
    """Current (not superseded) step runs of a job."""
    return [StepState(*r) for r in conn.execute(_STATES, {"b_job": job_id})]


def lock_job_with_steps(conn: Connection, job_id: uuid.UUID) -> tuple[Row | None, list[StepState]]:
    """Lock the job row, then read its current step states (the completion path).

    Two statements on purpose. One `SELECT ... JOIN step_runs ... FOR UPDATE OF sequence_jobs`
    would save a round trip but is wrong under READ COMMITTED: when it waits for the lock held by
    a sibling branch's completion, PostgreSQL re-checks only the locked job row and returns the
    joined step rows from the snapshot taken before the wait, so two branches finishing together
    each see the other still running and nobody queues the join (measured: 4 of 400 fan-out jobs
    stuck). A statement issued after the lock is granted takes a fresh snapshot.
    """
    locked = lock_job(conn, job_id, LOCK_COLUMNS)
    if locked is None:
        return None, []
    return locked, step_states(conn, job_id)


def max_iterations(conn: Connection, job_id: uuid.UUID) -> dict[str, int]:
    """Highest iteration per step name, superseded runs included (for inserting a re-run)."""
    rows = conn.execute(select(steps.c.step, steps.c.iteration).where(steps.c.job_id == job_id))
    out: dict[str, int] = {}
    for name, it in rows:
        out[name] = max(out.get(name, -1), it)
    return out


_OUTPUTS = select(steps.c.step, steps.c.output).where(
    steps.c.job_id == bindparam("b_job", type_=Uuid()),
    steps.c.status == S.SUCCEEDED.value,
    steps.c.superseded.is_(False),
)
_OUTPUTS_OF = _OUTPUTS.where(steps.c.step.in_(bindparam("b_names", expanding=True)))


def outputs_of(conn: Connection, job_id: uuid.UUID, names: Iterable[str] | None = None) -> dict[str, Any]:
    """Outputs of the job's succeeded current step runs (all, or only `names`)."""
    if names is None:
        return {name: output for name, output in conn.execute(_OUTPUTS, {"b_job": job_id})}
    names = list(names)
    if not names:
        return {}
    return {name: output for name, output in conn.execute(_OUTPUTS_OF, {"b_job": job_id, "b_names": names})}


def insert_steps(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert step runs (one multi-row INSERT)."""
    if rows:
        conn.execute(insert(steps), [dict(r) for r in rows])


def step_row(
    job: Row | Mapping[str, Any],
    name: str,
    status: StepStatus,
    now: datetime,
    *,
    queue: str = "steps",
    iteration: int = 0,
    reason: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A new step_runs row for `name` in `job` (values only; see insert_steps)."""
    get = job._mapping.get if isinstance(job, Row) else job.get
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "org_id": get("org_id"),
        "job_id": get("id"),
        "step": name,
        "iteration": iteration,
        "superseded": False,
        "status": status.value,
        "reason": reason,
        "attempt": 0,
        "queue": queue,
        "queued_at": now,
        "not_before": None,
        "lease_expires_at": None,
        "output": None,
        "follow_ups": None,
        "error": None,
        "error_class": None,
        "started_at": None,
        "finished_at": now if status in (S.SKIPPED, S.CANCELLED) else None,
        "duration_ms": None,
        "cost_usd": None,
        "tokens": None,
    }
    row.update(extra)
    return row


def close_open_steps(conn: Connection, job_id: uuid.UUID, reason: str, now: datetime) -> None:
    """Skip the job's queued steps (they will not run); running ones finish on their own."""
    conn.execute(
        update(steps)
        .where(steps.c.job_id == job_id, steps.c.status == S.QUEUED.value)
        .values(status=S.SKIPPED.value, reason=reason, finished_at=now)
    )
    conn.execute(
        update(steps)
        .where(steps.c.job_id == job_id, steps.c.status == S.AWAITING_APPROVAL.value)
        .values(status=S.CANCELLED.value, reason=reason, finished_at=now)
    )


def follow_ups_of(conn: Connection, job_id: uuid.UUID) -> list[dict[str, Any]]:
    """Follow-up events declared by the job's succeeded steps, in step-run order."""
    rows = conn.execute(
        select(steps.c.step, steps.c.follow_ups)
        .where(
            steps.c.job_id == job_id,
            steps.c.follow_ups.is_not(None),
            steps.c.status == S.SUCCEEDED.value,
            steps.c.superseded.is_(False),
        )
        .order_by(steps.c.finished_at, steps.c.step)
    )
    return [fu for _, items in rows for fu in (items or [])]


# --------------------------------------------------------------------------- approvals


def set_approval_status(
    conn: Connection,
    approval_id: uuid.UUID,
    new: ApprovalStatus,
    now: datetime,
    *,
    require_unexpired: bool = False,
    **fields: Any,
) -> Row | None:
    """Move a pending approval to `new` exactly once; the row when this call won, else None."""
    allowed = [s.value for s in predecessors(APPROVAL_TRANSITIONS, new)]
    cond = [approvals.c.id == approval_id, approvals.c.status.in_(allowed)]
    if require_unexpired:
        cond.append(approvals.c.expires_at > now)
    return conn.execute(
        update(approvals).where(*cond).values(status=new.value, **fields).returning(*approvals.c)
    ).first()


def cancel_pending_approvals(conn: Connection, job_id: uuid.UUID, now: datetime) -> list[Row]:
    """Mark a job's pending approvals cancelled (the job ended without them); returns them."""
    return list(
        conn.execute(
            update(approvals)
            .where(approvals.c.job_id == job_id, approvals.c.status == ApprovalStatus.PENDING.value)
            .values(status=ApprovalStatus.CANCELLED.value, resumed_at=now)
            .returning(approvals.c.id, approvals.c.org_id, approvals.c.slack_channel, approvals.c.slack_ts)
        )
    )
