"""Every SQL statement that reads or moves job, step and approval state (Core, no ORM loading).

The one module that moves that state: every UPDATE of a job's, step run's or approval's status (and
of the columns that move with it: the cancel request, the supersession of re-run steps, the claim
that applies a decision) is a function here. Each takes an open connection, so the caller decides
the transaction boundaries (a step costs at most two short transactions). The statements of the
step path (claim, lock, states, finish, insert) are built once and run through
worker/precompiled.py: compiled once, straight on the driver's cursor on PostgreSQL.

A state change is a conditional UPDATE whose WHERE names the legal predecessors of the target status
(`states.predecessors`), so races resolve in the database: the loser matches no row and gets False
or None back (losing a race is not an error). A caller that knows the status it moves from passes
it as `old=`, and a move the table forbids raises `states.IllegalTransition` before any SQL (a bug in
the caller, never a race). Columns that only annotate a row (a reason, a deadline, a retry's
not_before, retention's purge, the roll-up stamp) are written where they are decided.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    Row,
    String,
    Table,
    Uuid,
    and_,
    any_,
    bindparam,
    literal,
    or_,
    select,
    update,
)

from worker.engine import claimant
from worker.engine.claimant import CHILD_SEP
from worker.engine.states import (
    APPROVAL_TRANSITIONS,
    JOB_TRANSITIONS,
    STEP_TRANSITIONS,
    ApprovalStatus,
    JobStatus,
    StepStatus,
    check_transition,
    predecessors,
)
from worker.models import SequenceDefinition, UTCDateTime, approvals, checked, jobs, of_org, steps
from worker.precompiled import PIPELINE_DIALECTS, Deferred, Pending, Precompiled, PrecompiledInsert, Queued, batch

J, S, A = JobStatus, StepStatus, ApprovalStatus

# Tenant scope: every function that reads or moves a tenant row takes `org_id` (keyword-only, no
# default) and puts it in the WHERE, so a wrong id can never reach another org's row
# (tests/integration/test_tenant_scope.py fails on any unscoped statement in a sequence run). The one
# exception is `job_for_step`: a run_step message carries only a step run id, whose row gives the org.
_ORG = bindparam("b_org", type_=Uuid())
_SID = bindparam("b_sid", type_=Uuid())


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


def lock_job(
    conn: Connection, job_id: uuid.UUID, columns: Sequence[Any] = JOB_COLUMNS, *, org_id: uuid.UUID
) -> Row | None:
    """Lock the job row for this transaction and return `columns` of it (None when the job is not
    `org_id`'s).

    `SELECT ... FOR UPDATE` on PostgreSQL; on SQLite the clause is dropped and the transaction's
    BEGIN IMMEDIATE already holds the database write lock.
    """
    key = tuple(columns)
    if key not in _LOCKS:
        job = jobs.c.id == bindparam("b_job", type_=Uuid())
        _LOCKS[key] = select(*columns).where(job, of_org(jobs.c.org_id, _ORG)).with_for_update()
    return conn.execute(_LOCKS[key], {"b_job": job_id, "b_org": org_id}).first()


def set_job_status(
    conn: Connection,
    job_id: uuid.UUID,
    new: JobStatus,
    now: datetime,
    *,
    old: JobStatus | str | None = None,
    org_id: uuid.UUID,
    later: Deferred | None = None,
    **fields: Any,
) -> bool:
    """Move the job to `new` if its current status allows it; True when it moved, False when another
    process moved it first. `old`: the status the caller read under the job's lock (or branched on);
    IllegalTransition when `old -> new` is not in the table, or nothing may move to `new`. With
    `later` (a caller holding the job lock), the move is queued there and True returned."""
    if old is not None:
        check_transition(JOB_TRANSITIONS, old, new)
    values: dict[str, Any] = {"status": new.value, "updated_at": now, **fields}
    if new in (J.COMPLETED, J.FAILED, J.CANCELLED, J.EXPIRED, J.TIMEOUT):
        values.setdefault("finished_at", now)
    params = {"b_job": job_id, "b_org": org_id, **{f"v_{k}": v for k, v in values.items()}}
    if later is not None:
        later.write(_job_move(new, frozenset(values)), params)
        return True
    return _job_move(new, frozenset(values)).count(conn, params) == 1


_JOB_MOVES: dict[tuple[JobStatus, frozenset[str]], Precompiled] = {}


def _job_move(new: JobStatus, columns: frozenset[str]) -> Precompiled:
    """`UPDATE sequence_jobs SET <columns> WHERE id, org_id, status IN (new's predecessors)`, built once
    per target status and column set."""
    key = (new, columns)
    if key not in _JOB_MOVES:
        allowed = [literal(s.value, String()) for s in predecessors(JOB_TRANSITIONS, new)]
        _JOB_MOVES[key] = Precompiled(
            update(jobs)
            .where(
                jobs.c.id == bindparam("b_job", type_=Uuid()),
                of_org(jobs.c.org_id, _ORG),
                checked(jobs.c.status.in_(allowed)),
            )
            .values({c: bindparam(f"v_{c}", type_=jobs.c[c].type) for c in sorted(columns)})
        )
    return _JOB_MOVES[key]


def request_job_cancel(
    conn: Connection, job_id: uuid.UUID, reason: str, *, old: JobStatus | str, org_id: uuid.UUID
) -> bool:
    """Flag an active job for cancel with the reason it will end with (it ends now if idle, else at
    its next step boundary); True when flagged. `old`: its status read under the lock; a job that
    could not move to cancelled (an ended one) raises IllegalTransition."""
    check_transition(JOB_TRANSITIONS, old, J.CANCELLED)
    allowed = [s.value for s in predecessors(JOB_TRANSITIONS, J.CANCELLED)]
    res = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, of_org(jobs.c.org_id, org_id), checked(jobs.c.status.in_(allowed)))
        .values(cancel_requested=True, reason=reason[:200])
    )
    return res.rowcount == 1


_JOB_FOR_STEP = (
    select(
        *JOB_COLUMNS,
        steps.c.id.label("step_run_id"),
        steps.c.step,
        steps.c.iteration,
        steps.c.status.label("step_status"),
        steps.c.attempt.label("step_attempt"),
        steps.c.not_before.label("step_not_before"),
    )
    .join(jobs, jobs.c.id == steps.c.job_id)
    .where(steps.c.id == bindparam("b_sid", type_=Uuid()))
)


_JOB_FOR_STEP_RUN = Precompiled(_JOB_FOR_STEP)


def job_for_step(conn: Connection, step_run_id: uuid.UUID) -> dict[str, Any] | None:
    """The step run joined with its job (no lock), as a dict: what a claim needs to know first."""
    with batch(conn) as b:  # with the transaction's BEGIN: one round trip
        pending = b.send(_JOB_FOR_STEP_RUN, {"b_sid": step_run_id})
    row = pending.first()
    return None if row is None else dict(zip(_JOB_FOR_STEP_RUN.keys(conn), row, strict=True))


# --------------------------------------------------------------------------- steps


# The hot-path statements are built once, with bound parameters: building a statement and its cache
# key on every call cost about as much CPU as running it (bench/profile_engine.py).
_NOW = bindparam("b_now", type_=UTCDateTime())
# A claim moves queued -> running, or running -> running (an expired lease taken over).
check_transition(STEP_TRANSITIONS, S.QUEUED, S.RUNNING)
check_transition(STEP_TRANSITIONS, S.RUNNING, S.RUNNING)
_CLAIM = (
    update(steps)
    .where(
        steps.c.id == bindparam("b_sid", type_=Uuid()),
        of_org(steps.c.org_id, _ORG),
        checked(
            or_(
                and_(steps.c.status == S.QUEUED.value, or_(steps.c.not_before.is_(None), steps.c.not_before <= _NOW)),
                and_(steps.c.status == S.RUNNING.value, steps.c.lease_expires_at < _NOW),
            )
        ),
    )
    .values(
        status=S.RUNNING.value,
        attempt=steps.c.attempt + 1,
        started_at=bindparam("b_now", type_=UTCDateTime()),
        lease_expires_at=bindparam("b_lease", type_=UTCDateTime()),
        not_before=None,
        claimed_by=bindparam("b_claimant", type_=String()),
    )
    .returning(steps.c.attempt, steps.c.iteration)
)


_CLAIM_RUN = Precompiled(_CLAIM)


def claim_step(
    conn: Connection,
    step_run_id: uuid.UUID,
    now: datetime,
    lease_until: datetime,
    *,
    org_id: uuid.UUID,
    claimant: str | None = None,
    later: Deferred | None = None,
    commit: bool = False,
) -> tuple[int, int] | None:
    """Claim a queued step (or one whose lease expired): running, attempt + 1, new lease, held by
    `claimant` (this worker's heartbeat instance; None outside a worker). Returns (attempt, iteration).
    The writes queued in `later` are sent first, in the same round trip (and, with `commit`, the
    transaction's COMMIT after it: see `Deferred.flush`).

    None when another worker holds it, it already ended, or its retry delay has not passed.
    """
    params = {"b_sid": step_run_id, "b_now": now, "b_lease": lease_until, "b_org": org_id, "b_claimant": claimant}
    if later is not None:  # the writes queued before it go in the same round trip
        pending = later.flush(_CLAIM_RUN, params, commit=commit)
        assert pending is not None
        return pending.first()
    return _CLAIM_RUN.first(conn, params)


# A claimant that stopped beating gives its running steps back: running -> queued.
check_transition(STEP_TRANSITIONS, S.RUNNING, S.QUEUED)


def requeue_orphaned(
    conn: Connection, now: datetime, alive_since: datetime | None, *, claimants: Sequence[str] | None = None
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Put back to `queued` every running step whose claimant has no heartbeat at or after
    `alive_since` (only those held by `claimants` when given; None: `claimants` are known dead,
    whatever their heartbeat says); their (org, id)s, to be published again.

    A claimant is a worker's heartbeat instance or `<instance>/<pid>` for one of its pool children
    (worker/engine/claimant.py): a child's steps live and die with its worker's heartbeat, and a
    claimant given in `claimants` covers its children too.

    A scan of every org: a dead worker held steps of any org (each id is then published and claimed
    under its own org). Conditional on the claimant still being silent (or still the given one), so
    a step re-claimed by a live worker meanwhile stays where it is; the attempt is kept, so a step
    that kills its worker each time still ends as poison, and the dead attempt's late result is
    discarded by the fencing of `finish_step`.
    """
    res = conn.execute(
        update(steps)
        .where(steps.c.status == S.RUNNING.value, *claimant.orphaned(steps.c.claimed_by, alive_since, claimants))
        .values(status=S.QUEUED.value, queued_at=now, lease_expires_at=None, claimed_by=None)
        .returning(steps.c.org_id, steps.c.id)
    )
    return [(r.org_id, r.id) for r in res]


def child_claimants(conn: Connection, instance: str) -> list[str]:
    """The distinct claimants of running steps held by pool children of `instance` (a scan of every
    org: the worker's main process checks which of its children are gone)."""
    res = conn.execute(
        select(steps.c.claimed_by)
        .where(steps.c.status == S.RUNNING.value, steps.c.claimed_by.startswith(instance + CHILD_SEP))
        .distinct()
    )
    return [r.claimed_by for r in res]


_FINISH: dict[frozenset[str], Precompiled] = {}


def _finish_statement(columns: frozenset[str]) -> Precompiled:
    """`UPDATE step_runs SET <columns> WHERE id, org_id, attempt, status = running`, built once per
    column set."""
    if columns not in _FINISH:
        _FINISH[columns] = Precompiled(
            update(steps)
            .where(
                steps.c.id == bindparam("b_sid", type_=Uuid()),
                of_org(steps.c.org_id, _ORG),
                steps.c.attempt == bindparam("b_attempt", type_=Integer()),
                checked(steps.c.status == S.RUNNING.value),
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
    org_id: uuid.UUID,
    later: Deferred | None = None,
    **fields: Any,
) -> bool:
    """Record the outcome of `attempt` of a running step; False if that attempt lost its lease.
    `uncount` gives the attempt back (a step that waits for a reconnect did not really try).
    The attempt is running: IllegalTransition when `running -> new` is not in the table. With
    `later`, the write is queued there and True returned: a lost lease raises LeaseLost at its flush."""
    check_transition(STEP_TRANSITIONS, S.RUNNING, new)
    values: dict[str, Any] = {"status": new.value, "lease_expires_at": None, **fields}
    if uncount:
        values["attempt"] = attempt - 1
    if new in (S.SUCCEEDED, S.FAILED, S.SKIPPED, S.CANCELLED):
        values.setdefault("finished_at", now)
    params = {f"v_{k}": v for k, v in values.items()}
    finish = _finish_statement(frozenset(values))
    where = {"b_sid": step_run_id, "b_attempt": attempt, "b_org": org_id, **params}
    if later is not None:
        later.write(finish, where, expect=1, what=f"step run {step_run_id} attempt {attempt}")
        return True
    return finish.count(conn, where) == 1


def set_step_status(
    conn: Connection,
    step_run_id: uuid.UUID,
    new: StepStatus,
    now: datetime,
    *,
    old: StepStatus | str | None = None,
    org_id: uuid.UUID,
    later: Deferred | None = None,
    **fields: Any,
) -> bool:
    """Move a step run to `new` from any legal predecessor (used outside the running attempt); False
    when it is no longer in one. `old`: the status the caller expects it in; IllegalTransition when
    `old -> new` is not in the table. With `later` (a caller holding the job's lock that read the
    step in `old`), the move is queued there and True returned."""
    if old is not None:
        check_transition(STEP_TRANSITIONS, old, new)
    values: dict[str, Any] = {"status": new.value, **fields}
    if new in (S.SUCCEEDED, S.FAILED, S.SKIPPED, S.CANCELLED):
        values.setdefault("finished_at", now)
    if later is not None:
        params = {"b_sid": step_run_id, "b_org": org_id, **{f"v_{k}": v for k, v in values.items()}}
        later.write(_step_move(new, frozenset(values)), params)
        return True
    allowed = [s.value for s in predecessors(STEP_TRANSITIONS, new)]
    res = conn.execute(
        update(steps)
        .where(steps.c.id == step_run_id, of_org(steps.c.org_id, org_id), checked(steps.c.status.in_(allowed)))
        .values(**values)
    )
    return res.rowcount == 1


_STEP_MOVES: dict[tuple[StepStatus, frozenset[str]], Precompiled] = {}


def _step_move(new: StepStatus, columns: frozenset[str]) -> Precompiled:
    """`UPDATE step_runs SET <columns> WHERE id, org_id, status IN (new's predecessors)`, built once
    per target status and column set (`set_step_status` with `later`)."""
    key = (new, columns)
    if key not in _STEP_MOVES:
        allowed = [literal(s.value, String()) for s in predecessors(STEP_TRANSITIONS, new)]
        _STEP_MOVES[key] = Precompiled(
            update(steps)
            .where(steps.c.id == _SID, of_org(steps.c.org_id, _ORG), checked(steps.c.status.in_(allowed)))
            .values({c: bindparam(f"v_{c}", type_=steps.c[c].type) for c in sorted(columns)})
        )
    return _STEP_MOVES[key]


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


# The current step states of a job (`step_states`; read in a claim's round trip by worker/engine/executor.py).
STATES_OF_JOB = Precompiled(
    select(*STATE_COLUMNS).where(
        steps.c.job_id == bindparam("b_job", type_=Uuid()), of_org(steps.c.org_id, _ORG), steps.c.superseded.is_(False)
    )
)


def step_states(conn: Connection, job_id: uuid.UUID, *, org_id: uuid.UUID) -> list[StepState]:
    """Current (not superseded) step runs of a job."""
    return [StepState(*r) for r in STATES_OF_JOB.rows(conn, {"b_job": job_id, "b_org": org_id})]


_LOCK_FOR_COMPLETION = Precompiled(
    select(*LOCK_COLUMNS)
    .where(jobs.c.id == bindparam("b_job", type_=Uuid()), of_org(jobs.c.org_id, _ORG))
    .with_for_update()
)


def lock_job_with_steps(
    conn: Connection,
    job_id: uuid.UUID,
    *,
    org_id: uuid.UUID,
    also: tuple[Precompiled, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any] | None, list[StepState], Pending | None]:
    """Lock the job row (`LOCK_COLUMNS` of it, as a dict), then read its current step states (the
    completion path).

    Two statements on purpose. One `SELECT ... JOIN step_runs ... FOR UPDATE OF sequence_jobs`
    would save a round trip but is wrong under READ COMMITTED: when it waits for the lock held by
    a sibling branch's completion, PostgreSQL re-checks only the locked job row and returns the
    joined step rows from the snapshot taken before the wait, so two branches finishing together
    each see the other still running and nobody queues the join (measured: 4 of 400 fan-out jobs
    stuck). A statement issued after the lock is granted takes a fresh snapshot. Both go in one
    round trip (a pipeline, with the BEGIN): the server runs the read once the lock is granted.
    `also`: one more read (a statement and its parameters) sent after them, its result third.
    """
    params = {"b_job": job_id, "b_org": org_id}
    with batch(conn) as b:  # one round trip with the transaction's BEGIN; the reads still run after the lock
        locked, states = b.send(_LOCK_FOR_COMPLETION, params), b.send(STATES_OF_JOB, params)
        extra = b.send(*also) if also is not None else None
    row = locked.first()
    if row is None:
        return None, [], extra
    job = dict(zip(_LOCK_FOR_COMPLETION.keys(conn), row, strict=True))
    return job, [StepState(*r) for r in states.rows()], extra


_GUARD_RUNNING = Precompiled(
    select(jobs.c.id)
    .where(
        jobs.c.id == bindparam("b_job", type_=Uuid()),
        of_org(jobs.c.org_id, _ORG),
        checked(jobs.c.status == J.RUNNING.value),
        jobs.c.cancel_requested.is_(False),
        jobs.c.iteration == bindparam("b_iteration", type_=Integer()),
    )
    .with_for_update()
)


def guard_running(later: Deferred, job_id: uuid.UUID, iteration: int, *, org_id: uuid.UUID) -> None:
    """Queue in `later`, first, the lock of the job row on the condition that it is still running, not
    asked to cancel, on `iteration`: what a guarded completion assumed instead of reading it
    (worker/engine/executor.py). A job that moved meanwhile fails the flush with LeaseLost."""
    later.write(
        _GUARD_RUNNING,
        {"b_job": job_id, "b_org": org_id, "b_iteration": iteration},
        expect=1,
        what=f"job {job_id} running on iteration {iteration}",
    )


def supersede_steps(conn: Connection, job_id: uuid.UUID, names: Iterable[str], *, org_id: uuid.UUID) -> int:
    """Retire the job's current runs of `names` (a re-run replaces them; they stay in the timeline,
    whatever their status); returns how many."""
    return conn.execute(
        update(steps)
        .where(
            steps.c.job_id == job_id,
            of_org(steps.c.org_id, org_id),
            steps.c.step.in_(list(names)),
            steps.c.superseded.is_(False),
        )
        .values(superseded=True)
    ).rowcount


_OUTPUTS = select(steps.c.step, steps.c.output).where(
    steps.c.job_id == bindparam("b_job", type_=Uuid()),
    of_org(steps.c.org_id, _ORG),
    checked(steps.c.status == S.SUCCEEDED.value),
    steps.c.superseded.is_(False),
)
_OUTPUTS_OF = _OUTPUTS.where(steps.c.step.in_(bindparam("b_names", expanding=True)))
# The same on PostgreSQL with the names as one array parameter (`= ANY`): compiled once, run precompiled.
_OUTPUTS_ANY = Precompiled(_OUTPUTS.where(steps.c.step == any_(bindparam("b_names", type_=ARRAY(String())))))
# Every output of the job (`outputs_of` without names; parameters `b_job`, `b_org`), compiled once.
OUTPUTS_OF_JOB = Precompiled(_OUTPUTS)


def queue_outputs_of(later: Deferred, job_id: uuid.UUID, names: Sequence[str], *, org_id: uuid.UUID) -> Queued | None:
    """Queue the read of `outputs_of(job_id, names)` in `later` where it runs in the same round trip
    (PostgreSQL); None elsewhere (read them with `outputs_of`)."""
    if later.conn.dialect.name not in PIPELINE_DIALECTS:
        return None
    return later.read(_OUTPUTS_ANY, {"b_job": job_id, "b_org": org_id, "b_names": list(names)})


def outputs_of(
    conn: Connection, job_id: uuid.UUID, names: Iterable[str] | None = None, *, org_id: uuid.UUID
) -> dict[str, Any]:
    """Outputs of the job's succeeded current step runs (all, or only `names`)."""
    params: dict[str, Any] = {"b_job": job_id, "b_org": org_id}
    if names is not None:
        params["b_names"] = list(names)
        if not params["b_names"]:
            return {}
    if names is None:
        return dict(OUTPUTS_OF_JOB.rows(conn, params))  # type: ignore[arg-type]
    if conn.dialect.name == "postgresql":
        return dict(_OUTPUTS_ANY.rows(conn, params))  # type: ignore[arg-type]
    return {name: output for name, output in conn.execute(_OUTPUTS_OF, params)}


_INSERT_STEPS = PrecompiledInsert(steps)


def insert_steps(conn: Connection, rows: Sequence[Mapping[str, Any]], later: Deferred | None = None) -> None:
    """Insert step runs (rows of `step_row`: one multi-row INSERT, or one pipelined executemany);
    queued in `later` when given."""
    if later is not None:
        later.insert(_INSERT_STEPS, rows)
    else:
        _INSERT_STEPS.run(conn, rows)


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
        "claimed_by": None,
    }
    row.update(extra)
    return row


# What an ended job's open steps become (running ones finish on their own); checked against the table.
_CLOSE = ((S.QUEUED, S.SKIPPED), (S.AWAITING_APPROVAL, S.CANCELLED))
for _old, _new in _CLOSE:
    check_transition(STEP_TRANSITIONS, _old, _new)


def close_open_steps(conn: Connection, job_id: uuid.UUID, reason: str, now: datetime, *, org_id: uuid.UUID) -> None:
    """Skip the job's queued steps (they will not run) and cancel those waiting for an approval;
    running ones finish on their own."""
    for old, new in _CLOSE:
        conn.execute(
            update(steps)
            .where(steps.c.job_id == job_id, of_org(steps.c.org_id, org_id), checked(steps.c.status == old.value))
            .values(status=new.value, reason=reason, finished_at=now)
        )


def follow_ups_of(conn: Connection, job_id: uuid.UUID, *, org_id: uuid.UUID) -> list[dict[str, Any]]:
    """Follow-up events declared by the job's succeeded steps, in step-run order."""
    rows = conn.execute(
        select(steps.c.step, steps.c.follow_ups)
        .where(
            steps.c.job_id == job_id,
            of_org(steps.c.org_id, org_id),
            steps.c.follow_ups.is_not(None),
            checked(steps.c.status == S.SUCCEEDED.value),
            steps.c.superseded.is_(False),
        )
        .order_by(steps.c.finished_at, steps.c.step)
    )
    return [fu for _, items in rows for fu in (items or [])]


# --------------------------------------------------------------------------- definitions

definitions = SequenceDefinition.__table__


def insert_definition(
    conn: Connection, definition_hash: str, event_type: str, definition: Mapping[str, Any], now: datetime
) -> None:
    """Store a sequence definition under its hash once (a concurrent or repeated insert does nothing)."""
    conn.execute(
        insert_ignoring_conflicts(conn, definitions, ["definition_hash"]).values(
            definition_hash=definition_hash, event_type=event_type, definition=dict(definition), created_at=now
        )
    )


def definition_of(conn: Connection, definition_hash: str) -> dict[str, Any] | None:
    """The stored definition with this hash, or None (jobs accepted before definitions were stored)."""
    return conn.execute(
        select(definitions.c.definition).where(definitions.c.definition_hash == definition_hash)
    ).scalar()


# --------------------------------------------------------------------------- approvals


def set_approval_status(
    conn: Connection,
    approval_id: uuid.UUID,
    new: ApprovalStatus,
    now: datetime,
    *,
    require_unexpired: bool = False,
    org_id: uuid.UUID,
    **fields: Any,
) -> SimpleNamespace | None:
    """Move a pending approval to `new` exactly once; the row (its columns as attributes) when this
    call won, else None (another decision, an expiry or the job's end came first). IllegalTransition
    when nothing may move to `new`."""
    move = _approval_move(new, require_unexpired, frozenset(fields))
    params = {"b_aid": approval_id, "b_org": org_id, "b_now": now, **{f"v_{k}": v for k, v in fields.items()}}
    row = move.first(conn, params)
    return None if row is None else SimpleNamespace(**dict(zip(_APPROVAL_KEYS, row, strict=True)))


def set_approval_status_later(
    later: Deferred,
    approval_id: uuid.UUID,
    new: ApprovalStatus,
    now: datetime,
    *,
    require_unexpired: bool = False,
    org_id: uuid.UUID,
    **fields: Any,
) -> None:
    """`set_approval_status` queued in `later`, which must match exactly one row: when another
    decision, an expiry or the job's end came first, the flush raises LeaseLost (the caller rolls
    back)."""
    move = _approval_move(new, require_unexpired, frozenset(fields))
    params = {"b_aid": approval_id, "b_org": org_id, "b_now": now, **{f"v_{k}": v for k, v in fields.items()}}
    later.write(move, params, expect=1, what=f"approval {approval_id} pending")


_APPROVAL_MOVES: dict[tuple[ApprovalStatus, bool, frozenset[str]], Precompiled] = {}
_APPROVAL_KEYS = tuple(c.key for c in approvals.c)  # what the approval moves return, in that order
_AID = bindparam("b_aid", type_=Uuid())


def _approval_move(new: ApprovalStatus, require_unexpired: bool, columns: frozenset[str]) -> Precompiled:
    """`UPDATE approvals SET status = new, <columns> WHERE id, org_id, status IN (new's predecessors)
    [AND expires_at > now] RETURNING *`, built once per target status, expiry check and column set."""
    key = (new, require_unexpired, columns)
    if key not in _APPROVAL_MOVES:
        allowed = [literal(s.value, String()) for s in predecessors(APPROVAL_TRANSITIONS, new)]
        cond = [approvals.c.id == _AID, of_org(approvals.c.org_id, _ORG), checked(approvals.c.status.in_(allowed))]
        if require_unexpired:
            cond.append(approvals.c.expires_at > _NOW)
        values = {"status": literal(new.value, String())}
        values.update({c: bindparam(f"v_{c}", type_=approvals.c[c].type) for c in sorted(columns)})
        _APPROVAL_MOVES[key] = Precompiled(update(approvals).where(*cond).values(values).returning(*approvals.c))
    return _APPROVAL_MOVES[key]


def cancel_pending_approvals(conn: Connection, job_id: uuid.UUID, now: datetime, *, org_id: uuid.UUID) -> list[Row]:
    """Mark a job's pending approvals cancelled (the job ended without them); returns them."""
    allowed = [s.value for s in predecessors(APPROVAL_TRANSITIONS, A.CANCELLED)]
    return list(
        conn.execute(
            update(approvals)
            .where(
                approvals.c.job_id == job_id,
                approvals.c.org_id == org_id,
                approvals.c.status.in_(allowed),
            )
            .values(status=A.CANCELLED.value, resumed_at=now)
            .returning(approvals.c.id, approvals.c.org_id, approvals.c.slack_channel, approvals.c.slack_ts)
        )
    )


_CLAIM_DECISIONS: dict[frozenset[str], Precompiled] = {}


def decision_claim(decided: Iterable[ApprovalStatus]) -> Precompiled:
    """The statement of `claim_decision` (parameters `b_aid`, `b_org`, `b_now`), built once per set of
    statuses, for a caller that sends it in a batch; read its row with `claimed_approval`.
    IllegalTransition when one of `decided` is not a status a pending approval moves to."""
    statuses = frozenset(s.value for s in decided)
    claim = _CLAIM_DECISIONS.get(statuses)
    if claim is None:
        for status in decided:
            check_transition(APPROVAL_TRANSITIONS, A.PENDING, status)
        claim = _CLAIM_DECISIONS[statuses] = Precompiled(
            update(approvals)
            .where(
                approvals.c.id == _AID,
                of_org(approvals.c.org_id, _ORG),
                approvals.c.resumed_at.is_(None),
                checked(approvals.c.status.in_([literal(s, String()) for s in sorted(statuses)])),
            )
            .values(resumed_at=_NOW)
            .returning(*approvals.c)
        )
    return claim


def claimed_approval(row: tuple[Any, ...] | None) -> SimpleNamespace | None:
    """The row `decision_claim` returned, its columns as attributes (None: not claimed)."""
    return None if row is None else SimpleNamespace(**dict(zip(_APPROVAL_KEYS, row, strict=True)))


def claim_decision(
    conn: Connection, approval_id: uuid.UUID, decided: Iterable[ApprovalStatus], now: datetime, *, org_id: uuid.UUID
) -> SimpleNamespace | None:
    """Claim a decided approval for applying it to its job, once (`resumed_at`); the row (its columns
    as attributes) when this call won, None when it is not decided (one of `decided`) or another
    resume applied it first. IllegalTransition when one of `decided` is not a status a pending
    approval moves to."""
    row = decision_claim(decided).first(conn, {"b_aid": approval_id, "b_org": org_id, "b_now": now})
    return claimed_approval(row)
