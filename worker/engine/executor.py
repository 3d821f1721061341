"""The job engine: claim a step, run its skill, persist the outcome, move the job forward.

A step costs two short transactions: the claim (`claim`: conditional UPDATE with a lease) and the
completion (`complete`: lock the job row, store the outcome, plan the next steps with `dag.plan`,
insert them `queued`, finish the job when nothing is left). The join of a DAG lives in the database,
never in a Celery chord. The loop that runs them (`execute`, the `proactive.run_step` task's body)
is worker/engine/driver.py.

What a transition leaves for after it is a value (`Advance`), not a call back up: the messages to
publish once its transaction commits, the step to run inline, and the follow-up events of a job it
completed (fired by the caller, in the same transaction, with worker/engine/events.py, which plans
their new jobs with this module). What the engine writes beside the job (approval rows and their
messages, worker/engine/approval_records.py; revoked credentials, worker/integrations.py) it writes
itself through modules that never call back into it.

Fast path (docs/architecture.md): when a completion leaves a ready successor on a queue this worker
consumes, the same transaction inserts one of them already claimed and this task runs it inline
(with the siblings this worker measured fast enough to join it; the others are published),
bounded by a step count and a time budget; the first step made ready
by an approval's resume runs in the resume task the same way. Every step is still persisted; a
crash resumes from the last commit because the inline step holds an ordinary lease that the
sweeper re-claims when it expires.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, select, update

from worker.audit import record
from worker.config import get_settings
from worker.db import on_commit, transaction
from worker.engine import approval_records, claimant, definitions, pinned, registry
from worker.engine import jobstore as store
from worker.engine.context import FollowUp, StepContext, StepResult, to_output
from worker.engine.dag import Plan, Sequence, Step, WhenContext, plan
from worker.engine.durations import Durations, JoinBudget
from worker.engine.publish import Publish, publish_steps
from worker.engine.retry import decide_retry
from worker.engine.states import JOB_FINAL, JobStatus, StepStatus
from worker.errors import AuthRevoked, GoogleNotConnected, NotFound, SkipStep
from worker.integrations import ask_to_connect, mark_revoked
from worker.metrics import prom
from worker.models import jobs, of_org, steps, utcnow
from worker.precompiled import PIPELINE_DIALECTS, Deferred, LeaseLost

log = logging.getLogger(__name__)
J, S = JobStatus, StepStatus
# How long each step took when this process ran it: which ready siblings join an inline step (`advance`).
DURATIONS = Durations()

# Largest step output stored (bytes of JSON).
MAX_OUTPUT_BYTES = 256 * 1024
# Longest error text stored on a step or job (characters).
MAX_ERROR_CHARS = 4000
# A step that meets revoked Google credentials, or a rep with no Google connection at all, waits for
# the user to (re)connect: it is tried again every REVOKED_RETRY_S (a connect makes it due at once),
# its attempt not counted, for at most REVOKED_GIVE_UP after its job was created; then it fails.
REVOKED_RETRY_S = 3600.0
REVOKED_GIVE_UP = timedelta(days=3)
WAITING_FOR_RECONNECT = "waiting for Google to be reconnected (access was revoked)"
WAITING_FOR_CONNECT = "waiting for Google to be connected (the rep has no Google connection)"
WAITING_REASONS = (WAITING_FOR_RECONNECT, WAITING_FOR_CONNECT)
PARKED_CLASSES = ("auth_revoked", "not_connected")  # error classes of a step waiting for a connect
PARKING_PROVIDERS = frozenset({"google"})
# A cancelled job's reason when whoever asked gave none.
CANCEL_REASON = "cancel_requested"


# --------------------------------------------------------------------------- values


@dataclass
class Claimed:
    """A step run this process holds the lease on, with what its skill needs."""

    job: dict[str, Any]
    sequence: Sequence
    step: Step
    step_run_id: uuid.UUID
    attempt: int
    iteration: int
    inputs: dict[str, Any]
    claimed_at: datetime
    # The job's step states as the transaction that claimed it left them (an inline claim knows
    # them; a claimed message does not): what a guarded completion plans from (`guarded`).
    states: list[store.StepState] | None = None


@dataclass
class Outcome:
    """What running a skill produced (decided without I/O from the skill's return or exception)."""

    status: StepStatus  # succeeded | failed | skipped | awaiting_approval | queued (retry)
    output: dict[str, Any] | None = None
    follow_ups: list[dict[str, Any]] | None = None
    error: str | None = None
    error_class: str | None = None
    reason: str | None = None
    retry_delay_s: float = 0.0
    duration_ms: int = 0
    cost_usd: float | None = None
    tokens: int | None = None
    revoked: AuthRevoked | None = None
    message: str | None = None  # the error in plain words (no class name), for the people told
    counts: bool = True  # False: a retry that gives its attempt back (rate limited: not a real try)


@dataclass(frozen=True)
class FollowUps:
    """The follow-up events of a job that just completed, to fire in the transaction that completed it
    (worker/engine/events.py `fire_follow_ups`)."""

    job: Mapping[str, Any]
    events: list[dict[str, Any]]


@dataclass
class Advance:
    """What a transition of a job leaves for its caller: messages to publish after commit, maybe a
    step to run inline, and the follow-ups of a job it completed (the caller fires them before commit)."""

    publish: list[Publish] = field(default_factory=list)
    inline: Claimed | None = None
    # ready siblings claimed with `inline`, to run after it in the same task (`advance(join_ms=...)`)
    joined: list[Claimed] = field(default_factory=list)
    # the job does not run on (it ended, or a cancel was asked): steps its task claimed ahead and has
    # not started must not start (the driver gives them back; their claims then skip them)
    halt: bool = False
    job_status: str | None = None  # set when planning moved the job to a new status
    follow_ups: list[FollowUps] = field(default_factory=list)


def limits(step: Step) -> tuple[float, float, float]:
    """(soft limit, hard limit, lease) in seconds for a task that starts with `step`.

    The soft limit leaves room for the inline budget; the lease outlives the hard limit so a live
    task is never re-claimed by the sweeper.
    """
    settings = get_settings()
    soft = step.timeout_s + settings.inline_budget_s
    hard = step.hard_limit_s + settings.inline_budget_s
    return soft, hard, hard + settings.lease_grace_s


def publish_for(step: Step, step_run_id: uuid.UUID, countdown_s: float | None = None) -> Publish:
    """The run_step message for `step_run_id`."""
    soft, hard, lease = limits(step)
    return Publish(step_run_id, step.queue, lease, soft, hard, countdown_s)


def _job_dict(row: Row) -> dict[str, Any]:
    return dict(row._mapping)


# --------------------------------------------------------------------------- claim and run


def claim(
    conn: Connection, step_run_id: uuid.UUID, now: datetime, lease_s: float | None = None
) -> tuple[Claimed | None, Advance]:
    """Claim `step_run_id` for this process; (None, what is left to do) when there is nothing to run."""
    job = store.job_for_step(conn, step_run_id)
    if job is None:
        log.warning("step run %s does not exist (deleted job?); message dropped", step_run_id)
        return None, Advance()
    if job["status"] in JOB_FINAL:
        if job["step_status"] == S.QUEUED:
            store.set_step_status(
                conn, step_run_id, S.SKIPPED, now, old=S.QUEUED, org_id=job["org_id"], reason=f"job_{job['status']}"
            )
        return None, Advance()
    try:
        sequence = pinned.for_job(conn, job)  # the definition the job started with
        step = sequence.step(job["step"])
    except (registry.UnknownSequence, KeyError):
        store.set_step_status(
            conn,
            step_run_id,
            S.FAILED,
            now,
            org_id=job["org_id"],
            error_class="permanent",
            error=f"step {job['step']!r} is not in the {job['event_type']} sequence",
        )
        return None, Advance(
            end_job(
                conn, job, J.FAILED, now, error=f"unknown step {job['step']!r}", error_step=job["step"], sequence=None
            )
        )
    # Lock order is always job row, then step rows (as in complete()), so claims never deadlock.
    gone = definitions.missing(step)
    if gone is not None:  # a deploy removed its code while the job ran: the job cannot finish here
        store.lock_job(conn, job["id"], org_id=job["org_id"])
        store.set_step_status(
            conn, step_run_id, S.FAILED, now, org_id=job["org_id"], error_class="permanent", error=str(gone)
        )
        return None, Advance(
            end_job(conn, job, J.FAILED, now, error=str(gone), error_step=step.name, sequence=sequence)
        )
    if job["cancel_requested"]:
        store.lock_job(conn, job["id"], org_id=job["org_id"])
        if store.set_step_status(conn, step_run_id, S.SKIPPED, now, org_id=job["org_id"], reason="cancel_requested"):
            return None, Advance(finish_cancel_if_idle(conn, job, sequence, now))
        return None, Advance()
    poison = job["step_attempt"] + 1 > step.max_attempts
    held = job["step_status"] == S.QUEUED and job["step_not_before"] is not None and job["step_not_before"] > now
    if job["status"] == J.QUEUED and held:  # a delayed job's first step, delivered early: not started yet
        return None, Advance()
    starting = Deferred(conn)  # the job's start goes in one round trip with the claim
    # A step alone in its DAG learns the job's step states in that round trip too: its completion
    # can then be guarded (`guarded`) instead of reading them again under the lock.
    pipelined = conn.dialect.name in PIPELINE_DIALECTS
    known = (
        starting.read(store.STATES_OF_JOB, {"b_job": job["id"], "b_org": job["org_id"]})
        if pipelined and sequence.alone(step.name)
        else None
    )
    # So do its inputs (the outputs of its upstream steps, ended before it was queued).
    upstream = sequence.ancestors(step.name)
    inputs_read = store.queue_outputs_of(starting, job["id"], upstream, org_id=job["org_id"]) if upstream else None
    if job["status"] == J.QUEUED:
        started = {"started_at": now, "deadline_at": now + timedelta(seconds=get_settings().job_deadline_s)}
        store.set_job_status(
            conn, job["id"], J.RUNNING, now, old=J.QUEUED, org_id=job["org_id"], later=starting, **started
        )
        job = {**job, "status": J.RUNNING.value, **started}  # as the claim's round trip leaves it
    elif poison:
        store.lock_job(conn, job["id"], org_id=job["org_id"])
    lease = lease_s if lease_s else limits(step)[2]
    got = store.claim_step(
        conn,
        step_run_id,
        now,
        now + timedelta(seconds=lease),
        org_id=job["org_id"],
        claimant=claimant.current(),
        later=starting,
        commit=not poison,  # the COMMIT too, when nothing but the claim is expected to follow
    )
    if got is None:
        return None, Advance()  # another worker holds it, or it already ended, or its delay has not passed
    attempt, iteration = got
    if attempt > step.max_attempts:
        error = (
            f"gave up: claimed {attempt} times (max_attempts {step.max_attempts}); "
            "the worker running it crashed or timed out each time"
        )
        store.finish_step(
            conn, step_run_id, attempt, S.FAILED, now, org_id=job["org_id"], error_class="poison", error=error
        )
        on_commit(lambda: prom.step_finished(job["event_type"], step.name, S.FAILED.value, None))
        job = dict(store.lock_job(conn, job["id"], org_id=job["org_id"])._mapping)
        poisoned = Outcome(S.FAILED, error=error, error_class="poison", message=error)
        _report_action(conn, job, sequence, step, step_run_id, poisoned, now)
        return None, advance(conn, job, sequence, now)
    if inputs_read is not None and inputs_read.result is not None:
        inputs = dict(inputs_read.result.rows())
    else:
        inputs = store.outputs_of(conn, job["id"], upstream, org_id=job["org_id"]) if upstream else {}
    states = None
    if known is not None and known.result is not None:  # read before the claim: this step is running now
        states = [
            store.StepState(*r[:1], S.RUNNING.value, *r[2:]) if r[3] == step_run_id else store.StepState(*r)
            for r in known.result.rows()
        ]
    return Claimed(job, sequence, step, step_run_id, attempt, iteration, inputs, now, states), Advance()


def run_skill(claimed: Claimed, connection: Connection | None = None) -> Outcome:
    """Call the step's skill and turn its return value or exception into an Outcome (no DB writes)."""
    job, step = claimed.job, claimed.step
    ctx = StepContext(
        org_id=job["org_id"],
        user_id=job["user_id"],
        job_id=job["id"],
        step_run_id=claimed.step_run_id,
        event_type=job["event_type"],
        step=step.name,
        attempt=claimed.attempt,
        max_attempts=step.max_attempts,
        iteration=claimed.iteration,
        payload=job["payload"] or {},
        now=utcnow(),
        source=job["source"],
        depth=job["depth"],
        dry_run=bool(job.get("dry_run")),  # decided when the event was accepted
        connection=connection,
    )
    t0 = time.monotonic()
    try:
        try:
            result = step.skill(ctx, claimed.inputs)
        except SkipStep:
            ctx.close_scope(commit=True)  # what it did before deciding to skip stands
            raise
        except BaseException:
            ctx.close_scope(commit=False)  # a failed step leaves no half-written rows
            raise
        ctx.close_scope(commit=True)
        outcome = _success(step, result)
    except SkipStep as skip:
        outcome = Outcome(S.SKIPPED, reason=skip.reason[:200])
    except Exception as exc:
        decision = decide_retry(
            exc,
            claimed.attempt,
            step.max_attempts,
            base_delay_s=get_settings().retry_base_s,
            time_left_s=_time_left_s(claimed, ctx.now),
        )
        text = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        message = str(exc)[:MAX_ERROR_CHARS]
        if _parks(exc, job, ctx.now):  # waits for a (re)connect instead of failing the job
            outcome = Outcome(
                S.QUEUED,
                error=text,
                error_class=decision.error_class,
                retry_delay_s=REVOKED_RETRY_S,
                revoked=exc,
                message=message,
            )
        elif decision.retry:
            outcome = Outcome(
                S.QUEUED,
                error=text,
                error_class=decision.error_class,
                retry_delay_s=decision.delay_s,
                message=message,
                counts=decision.counts,
            )
        else:
            outcome = Outcome(
                S.FAILED,
                error=text,
                error_class=decision.error_class,
                revoked=exc if isinstance(exc, AuthRevoked) else None,
                message=message,
            )
        parked = outcome.revoked is not None and outcome.status == S.QUEUED
        log.log(
            logging.WARNING if decision.retry or parked else logging.ERROR,
            "step %s/%s attempt %d failed (%s): %s",
            job["event_type"],
            step.name,
            claimed.attempt,
            "waits for a reconnect" if parked else decision.reason,
            text,
        )
    elapsed_ms = (time.monotonic() - t0) * 1000
    outcome.duration_ms = int(elapsed_ms)
    DURATIONS.observe((job["event_type"], step.name), elapsed_ms)
    return outcome


def _time_left_s(claimed: Claimed, now: datetime) -> float:
    """Seconds before the claimed step's job passes its deadline (set by its first claim: the
    claim time plus PROACTIVE_JOB_DEADLINE_S when the job dict predates it). Bounds the retries of a
    rate-limited step, which do not use up its attempts."""
    deadline = claimed.job.get("deadline_at") or claimed.claimed_at + timedelta(seconds=get_settings().job_deadline_s)
    return (deadline - now).total_seconds()


def _parks(exc: BaseException, job: Mapping[str, Any], now: datetime) -> bool:
    """True when a step's failure is revoked credentials its user can reconnect (or no Google connection
    at all: GoogleNotConnected is an AuthRevoked), and the job is young enough to keep waiting."""
    if not isinstance(exc, AuthRevoked) or exc.provider not in PARKING_PROVIDERS:
        return False
    created = job.get("created_at")
    return created is None or now - created < REVOKED_GIVE_UP


def _success(step: Step, result: Any) -> Outcome:
    res = result if isinstance(result, StepResult) else StepResult(output=result)
    output = to_output(res.output)
    size = len(json.dumps(output, default=str)) if output is not None else 0
    if size > MAX_OUTPUT_BYTES:
        return Outcome(S.FAILED, error=f"output too large ({size} bytes > {MAX_OUTPUT_BYTES})", error_class="permanent")
    follow_ups = [fu.to_json() if isinstance(fu, FollowUp) else dict(fu) for fu in res.follow_ups] or None
    status = S.AWAITING_APPROVAL if step.approval else S.SUCCEEDED
    return Outcome(status, output=output, follow_ups=follow_ups, cost_usd=res.cost_usd, tokens=res.tokens)


class Unguarded(Exception):
    """A guarded completion found the job not as its claim left it (a cancel asked, the job ended,
    the attempt's lease lost): its transaction rolled back; complete it again under the job's lock."""


def guarded(conn: Connection, claimed: Claimed, outcome: Outcome) -> bool:
    """True when this completion may plan from the states its claim knew instead of reading them
    under the job's lock, and commit in the round trip that stores it (`complete(guard=True)`).

    Only where nothing else can have changed those states but what the guard checks in SQL: the
    step is alone in its DAG (no sibling branch can finish meanwhile: `Sequence.alone`), its claim
    was inline (it carries the states), its outcome is plain (succeeded or skipped, nothing else to
    record), no follow-ups to read back, and the driver pipelines (PostgreSQL)."""
    job = claimed.job
    return (
        claimed.states is not None
        and conn.dialect.name in PIPELINE_DIALECTS
        and job["status"] == J.RUNNING
        and not outcome.follow_ups
        and not any(st.has_follow_ups for st in claimed.states)
        and _plain(job, claimed, outcome)
        and claimed.sequence.alone(claimed.step.name)
    )


def complete(
    conn: Connection,
    claimed: Claimed,
    outcome: Outcome,
    now: datetime,
    *,
    inline_queues: frozenset[str] = frozenset(),
    inline_budget_s: float = 0.0,
    guard: bool = False,
) -> Advance:
    """Persist `outcome` for the claimed attempt and move the job forward (one transaction).

    `guard` (only when `guarded()` says so): no read under the lock; the job's lock, the checks
    that it still runs as the claim left it, the finish, the plan's writes and the COMMIT go in one
    round trip, and any check that fails raises Unguarded (rolled back: complete it again without)."""
    if guard:
        return _complete_guarded(conn, claimed, outcome, now, inline_queues, inline_budget_s)
    # A step that carried out an approval and succeeded reports on the approval's message: its read
    # goes with the lock's, and when the report changes nothing the completion is as plain as any.
    also = None
    if outcome.status == S.SUCCEEDED and (carried := approval_records.approval_step_of(claimed.sequence, claimed.step)):
        also = approval_records.approved_message_read(claimed.job, carried)
    locked, states, read = store.lock_job_with_steps(conn, claimed.job["id"], org_id=claimed.job["org_id"], also=also)
    if locked is None:
        return Advance(halt=True)
    found = read.first() if read is not None else approval_records.NOT_READ
    job = {**claimed.job, **locked}
    halt = job["status"] in JOB_FINAL or bool(job["cancel_requested"])
    step = claimed.step
    if outcome.status == S.QUEUED:  # retry later
        parked = outcome.revoked is not None  # waiting for a reconnect: this attempt does not count
        # nor does a rate-limited one (decide_retry: bounded by the job's deadline instead)
        if store.finish_step(
            conn,
            claimed.step_run_id,
            claimed.attempt,
            S.QUEUED,
            now,
            org_id=job["org_id"],
            queued_at=now,
            not_before=now + timedelta(seconds=outcome.retry_delay_s),
            error=outcome.error,
            error_class=outcome.error_class,
            duration_ms=outcome.duration_ms,
            uncount=parked or not outcome.counts,
        ):
            _count_step(claimed, "retried", outcome)
            if parked and _park_job(conn, job, outcome, now):
                _report_action(conn, job, claimed.sequence, claimed.step, claimed.step_run_id, outcome, now)
            return Advance([publish_for(step, claimed.step_run_id, countdown_s=outcome.retry_delay_s)], halt=halt)
        return Advance(halt=halt)
    # The common case (a step that succeeded or skipped, nothing else to record) stores its outcome
    # and what planning decides in one round trip: queued, then checked at the flush below.
    quiet = read is not None and approval_records.sent_report_changes_nothing(conn, found)
    later = Deferred(conn) if _plain(job, claimed, outcome, reports_nothing=quiet) else None
    stored = _finish(conn, job, claimed, outcome, now, later)
    if not stored:
        log.warning(
            "step run %s attempt %d lost its lease; its result is discarded", claimed.step_run_id, claimed.attempt
        )
        return Advance(halt=halt)
    adv = _move_on(conn, job, claimed, outcome, states, now, inline_queues, inline_budget_s, later, found)
    if later is not None:
        # LeaseLost when the attempt lost its lease meanwhile (the caller rolls back). With no
        # follow-ups left to fire in this transaction, its COMMIT goes in the same round trip.
        later.flush(commit=not adv.follow_ups)
    adv.halt = halt or adv.job_status in JOB_FINAL
    return adv


def _finish(
    conn: Connection, job: Mapping[str, Any], claimed: Claimed, outcome: Outcome, now: datetime, later: Deferred | None
) -> bool:
    """Record the attempt's final outcome (queued in `later` when given); False when it lost its lease."""
    # A success keeps the error of the attempt before it, so the timeline shows why it was retried.
    errors = {} if outcome.status == S.SUCCEEDED else {"error": outcome.error, "error_class": outcome.error_class}
    return store.finish_step(
        conn,
        claimed.step_run_id,
        claimed.attempt,
        outcome.status,
        now,
        org_id=job["org_id"],
        output=outcome.output,
        follow_ups=outcome.follow_ups,
        reason=outcome.reason,
        duration_ms=outcome.duration_ms,
        cost_usd=outcome.cost_usd,
        tokens=outcome.tokens,
        later=later,
        **errors,
    )


def _complete_guarded(
    conn: Connection,
    claimed: Claimed,
    outcome: Outcome,
    now: datetime,
    inline_queues: frozenset[str],
    inline_budget_s: float,
) -> Advance:
    """`complete(guard=True)`: the plan made from `claimed.states`, its writes queued behind the
    job's guarded lock and the attempt's finish, all sent with the COMMIT in one round trip."""
    assert claimed.states is not None
    job = claimed.job
    later = Deferred(conn)
    store.guard_running(later, job["id"], job.get("iteration") or 0, org_id=job["org_id"])
    _finish(conn, job, claimed, outcome, now, later)
    try:
        adv = _move_on(conn, job, claimed, outcome, claimed.states, now, inline_queues, inline_budget_s, later)
        later.flush(commit=True)
    except LeaseLost as lost:
        raise Unguarded(str(lost)) from lost
    return adv  # no follow-ups to fire (guarded() excludes them): the transaction has ended


def _move_on(
    conn: Connection,
    job: dict[str, Any],
    claimed: Claimed,
    outcome: Outcome,
    states: list[store.StepState],
    now: datetime,
    inline_queues: frozenset[str],
    inline_budget_s: float,
    later: Deferred | None,
    found: Any = approval_records.NOT_READ,
) -> Advance:
    """What follows a stored outcome: the action reported (`found`: the approval's row, when read
    with the lock), an approval opened, a cancel honoured, the next steps planned (their writes
    queued in `later` when given)."""
    step = claimed.step
    _count_step(claimed, outcome.status.value, outcome)
    if outcome.revoked is not None:
        _mark_revoked(conn, job, outcome.revoked, now)
    if outcome.status in (S.SUCCEEDED, S.FAILED):
        _report_action(conn, job, claimed.sequence, claimed.step, claimed.step_run_id, outcome, now, found)
    if job["status"] in JOB_FINAL:
        return Advance()
    if outcome.status == S.AWAITING_APPROVAL:
        approval_records.open_approval(conn, job, claimed.step_run_id, step, outcome.output or {}, now)
    if job["cancel_requested"]:
        return Advance(finish_cancel_if_idle(conn, job, claimed.sequence, now))
    # What the next inline step's inputs need and this task already holds: the outputs its claim read
    # for every step upstream of this one, and this step's own.
    known = {**claimed.inputs, step.name: outcome.output} if outcome.status == S.SUCCEEDED else claimed.inputs
    settled = {*claimed.sequence.ancestors(step.name), step.name}
    mine = store.StepState(
        step.name, outcome.status.value, claimed.iteration, claimed.step_run_id, step.queue, bool(outcome.follow_ups)
    )
    states = [mine if st.id == claimed.step_run_id else st for st in states]
    return advance(
        conn,
        job,
        claimed.sequence,
        now,
        inline_queues=inline_queues,
        inline_budget_s=inline_budget_s,
        known_outputs=known,
        settled=settled,
        states=states,
        later=later,
        join_ms=get_settings().inline_join_ms,  # ready siblings may join the inline step (the driver runs them)
    )


def _plain(job: Mapping[str, Any], claimed: Claimed, outcome: Outcome, *, reports_nothing: bool = False) -> bool:
    """True when completing this attempt records nothing but the step and the plan that follows it:
    it succeeded or skipped, met no revoked credentials, carries out no approval (or its report on
    the approval's message is known to change nothing: `reports_nothing`) and its job is running on
    (not ended, no cancel asked)."""
    return (
        outcome.status in (S.SUCCEEDED, S.SKIPPED)
        and outcome.revoked is None
        and job["status"] not in JOB_FINAL
        and not job["cancel_requested"]
        and (reports_nothing or approval_records.approval_step_of(claimed.sequence, claimed.step) is None)
    )


def _count_step(claimed: Claimed, status: str, outcome: Outcome) -> None:
    """Count the stored attempt once its transaction commits (a rollback stores nothing)."""
    sequence, step, duration_s = claimed.job["event_type"], claimed.step.name, outcome.duration_ms / 1000
    on_commit(lambda: prom.step_finished(sequence, step, status, duration_s))


def _park_job(conn: Connection, job: Mapping[str, Any], outcome: Outcome, now: datetime) -> bool:
    """The job waits for a (re)connect: its reason says so, the wait does not count against its
    deadline, and the user is asked (once per revocation, at most daily when never connected) to
    connect. True when the job was not waiting before (the first park, not an hourly retry)."""
    assert outcome.revoked is not None
    _mark_revoked(conn, job, outcome.revoked, now)
    reason = WAITING_FOR_CONNECT if isinstance(outcome.revoked, GoogleNotConnected) else WAITING_FOR_RECONNECT
    before = conn.execute(
        select(jobs.c.reason).where(jobs.c.id == job["id"], of_org(jobs.c.org_id, job["org_id"]))
    ).scalar()
    deadline = (job.get("deadline_at") or now) + timedelta(seconds=outcome.retry_delay_s)
    # not a state move (its reason and deadline only; the status stays): written here, not in jobstore
    conn.execute(
        update(jobs)
        .where(jobs.c.id == job["id"], of_org(jobs.c.org_id, job["org_id"]))
        .values(reason=reason, deadline_at=deadline)
    )
    return before not in WAITING_REASONS


def _report_action(
    conn: Connection,
    job: Mapping[str, Any],
    sequence: Sequence,
    step: Step,
    step_run_id: uuid.UUID,
    outcome: Outcome,
    now: datetime,
    found: Any = approval_records.NOT_READ,
) -> None:
    """A step that carries out an approval tells the approval's message what became of it: waiting
    for Google, not sent and why, or sent after a wait (worker/engine/approval_records.py; `found`:
    the approval's row, when the caller read it)."""
    if approval_records.approval_step_of(sequence, step) is None:
        return
    report = approval_records.action_report(
        outcome.status.value,
        outcome.error_class,
        outcome.message,
        parked=outcome.revoked is not None and outcome.status == S.QUEUED,
        job_id=str(job["id"]),
    )
    if report is not None:
        user_id = getattr(outcome.revoked, "user_id", None) or job.get("user_id")
        approval_records.report_action(conn, job, sequence, step, report, now, user_id=user_id, found=found)


def wake_parked(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID, now: datetime) -> int:
    """The user (re)connected Google: their steps waiting for it are due now and published once the
    caller's transaction commits (the sweeper would also find them), and their jobs' "waiting" reason
    is cleared. Returns how many steps woke."""
    waiting = select(jobs.c.id, jobs.c.event_type, jobs.c.definition_hash).where(
        jobs.c.org_id == org_id,
        jobs.c.user_id == user_id,
        jobs.c.status.in_([J.QUEUED.value, J.RUNNING.value]),
        jobs.c.reason.in_(WAITING_REASONS),
    )
    waiting_jobs = {r.id: dict(r._mapping) for r in conn.execute(waiting)}
    if not waiting_jobs:
        return 0
    # not state moves (a step's not_before, a job's reason; no status changes): written here, not in jobstore
    woke = conn.execute(
        update(steps)
        .where(
            steps.c.org_id == org_id,
            steps.c.job_id.in_(list(waiting_jobs)),
            steps.c.status == S.QUEUED.value,
            steps.c.error_class.in_(PARKED_CLASSES),
        )
        .values(not_before=now)
        .returning(steps.c.id, steps.c.job_id, steps.c.step)
    ).all()
    conn.execute(update(jobs).where(jobs.c.org_id == org_id, jobs.c.id.in_(list(waiting_jobs))).values(reason=None))
    pubs = []
    for row in woke:
        try:
            pubs.append(publish_for(pinned.for_job(conn, waiting_jobs[row.job_id]).step(row.step), row.id))
        except (registry.UnknownSequence, KeyError):
            continue  # a deploy removed it: the claim fails the job, saying why
    publish_steps(pubs)  # after the caller's commit
    return len(woke)


def _mark_revoked(conn: Connection, job: Mapping[str, Any], err: AuthRevoked, now: datetime) -> None:
    """AuthRevoked: the integration is revoked and its user asked once to reconnect; GoogleNotConnected:
    the rep is asked to connect (worker/integrations.py)."""
    if isinstance(err, GoogleNotConnected):
        ask_to_connect(conn, job["org_id"], err.user_id or job.get("user_id"), now, job_id=job["id"])
        return
    mark_revoked(conn, job["org_id"], err, now, user_id=job.get("user_id"), job_id=job["id"])


# --------------------------------------------------------------------------- advancing a job


def advance(
    conn: Connection,
    job: dict[str, Any],
    sequence: Sequence,
    now: datetime,
    *,
    inline_queues: frozenset[str] = frozenset(),
    inline_budget_s: float = 0.0,
    known_outputs: Mapping[str, Any] | None = None,
    settled: frozenset[str] | set[str] = frozenset(),
    states: list[store.StepState] | None = None,
    new_job: bool = False,
    later: Deferred | None = None,
    join_ms: float = 0.0,
) -> Advance:
    """Plan the job's next steps from its current step states and persist the plan.

    The caller holds the job row lock, or has just inserted the job (`new_job`: no rows to read).
    `states`, when given, are the job's step states as read under that lock. `known_outputs` are the
    outputs of the succeeded steps among `settled` (steps whose output the caller already read or
    produced): a step run inline here reads from the database only the inputs outside `settled`.
    `later`: writes queued by the caller (its step's finish) that this plan's writes join; reads of
    other rows may run before they are sent, anything else sends them first. `join_ms` > 0 (the
    caller runs `Advance.joined`): ready siblings of the inline step this process ran fast enough
    are claimed with it (`durations.JoinBudget`), not published. Inserts queued and
    skipped rows, finishes or pauses the job, and returns what to publish after commit and the
    follow-ups of a job it completed (the caller fires them in this transaction).
    """
    if new_job:
        pinned.remember(conn, sequence)  # the job's definition, stored once per hash
    else:
        sequence = pinned.for_job(conn, job, sequence)  # a deploy since it started does not change its DAG
    rows = [] if new_job else states if states is not None else store.step_states(conn, job["id"], org_id=job["org_id"])
    statuses = {r.step: r.status for r in rows}
    # read only if a `when` or `start_after` looks at them; the outputs just produced are known
    outputs = _LazyOutputs(conn, job["id"], job["org_id"], known_outputs or {})
    try:
        p: Plan = plan(sequence, statuses, job["payload"] or {}, outputs)
        gone = next((e for e in (definitions.missing(sequence.step(n)) for n in p.queue) if e is not None), None)
        if gone is not None:
            raise gone
    except definitions.MissingCode as err:
        if later is not None:
            later.flush()
        return Advance(_fail_missing(conn, job, sequence, err, statuses, now), job_status=J.FAILED.value)

    if p.failed_step:
        if later is not None:
            later.flush()
        err = conn.execute(
            select(steps.c.error).where(
                steps.c.job_id == job["id"],
                steps.c.org_id == job["org_id"],
                steps.c.step == p.failed_step,
                steps.c.superseded.is_(False),
            )
        ).scalar()
        return Advance(
            end_job(
                conn,
                job,
                J.FAILED,
                now,
                error=err or "critical step failed",
                error_step=p.failed_step,
                sequence=sequence,
                statuses=statuses,
            ),
            job_status=J.FAILED.value,
        )

    new_rows: list[dict[str, Any]] = []
    result = Advance()
    iteration = job.get("iteration") or 0
    for name, reason in p.skip:
        new_rows.append(
            store.step_row(
                job, name, S.SKIPPED, now, iteration=iteration, reason=reason, queue=sequence.step(name).queue
            )
        )
    held: list[Claimed] = []  # claimed here, to run in this task: `result.inline`, then `result.joined`
    joins = JoinBudget(join_ms)
    for name in p.queue:
        step = sequence.step(name)
        row = store.step_row(job, name, S.QUEUED, now, queue=step.queue, iteration=iteration)
        lease = limits(step)[2]
        start_at = step.start_after(WhenContext(job["payload"] or {}, outputs)) if step.start_after else None
        if start_at is not None and start_at > now:
            row["not_before"] = start_at
            result.publish.append(publish_for(step, row["id"], countdown_s=(start_at - now).total_seconds()))
        elif (
            step.queue in inline_queues
            and step.timeout_s <= inline_budget_s
            and (not held or joins.admits(DURATIONS.expected((job["event_type"], name))))
        ):
            if not held:
                joins.start(DURATIONS.expected((job["event_type"], name)))
            row.update(
                status=S.RUNNING.value,
                attempt=1,
                started_at=now,
                lease_expires_at=now + timedelta(seconds=lease),
                claimed_by=claimant.current(),
            )
            inputs = _inputs_for(conn, job, sequence, step, known_outputs or {}, settled)
            held.append(Claimed(job, sequence, step, row["id"], 1, iteration, inputs, now))
        else:
            result.publish.append(publish_for(step, row["id"]))
        new_rows.append(row)
    store.insert_steps(conn, new_rows, later)
    if held:
        result.inline, result.joined = held[0], held[1:]
        # what their own completions may plan from (`guarded`)
        known_states = [
            *rows,
            *(store.StepState(r["step"], r["status"], r["iteration"], r["id"], r["queue"], False) for r in new_rows),
        ]
        for c in held:
            c.states = known_states

    if p.finished:
        with_follow_ups = any(r.has_follow_ups for r in rows)
        if with_follow_ups and later is not None:
            later.flush()  # the follow-ups are read back from the step rows
        completed = _complete_job(conn, job, now, with_follow_ups, None if with_follow_ups else later)
        if completed is not None:
            result.follow_ups.append(completed)
        result.job_status = J.COMPLETED.value
    elif p.waiting:
        if job["status"] != J.AWAITING_APPROVAL:
            store.set_job_status(
                conn,
                job["id"],
                J.AWAITING_APPROVAL,
                now,
                old=job["status"],
                org_id=job["org_id"],
                paused_at=now,
                later=later,
            )
            result.job_status = J.AWAITING_APPROVAL.value
    elif job["status"] == J.AWAITING_APPROVAL:
        moved = unpause(conn, job, now, later)
        result.job_status = J.RUNNING.value
        for c in held:  # their completions (`guarded`) see the job as this move leaves it
            c.job = {**job, **moved}
    return result


def _fail_missing(
    conn: Connection,
    job: Mapping[str, Any],
    sequence: Sequence,
    err: definitions.MissingCode,
    statuses: Mapping[str, str],
    now: datetime,
) -> list[Publish]:
    """The job reached a step whose code this deployment no longer has: that step is recorded failed
    with the error that says so, and the job fails (it cannot finish on the definition it started with)."""
    row = store.step_row(
        job,
        err.step,
        S.FAILED,
        now,
        queue=sequence.step(err.step).queue,
        iteration=job.get("iteration") or 0,
        error=str(err),
        error_class="permanent",
        finished_at=now,
    )
    store.insert_steps(conn, [row])
    log.error("job %s of %s failed: %s", job["id"], job["event_type"], err)
    return end_job(
        conn,
        job,
        J.FAILED,
        now,
        error=str(err),
        error_step=err.step,
        sequence=sequence,
        statuses={**statuses, err.step: S.FAILED.value},
    )


class _LazyOutputs(Mapping[str, Any]):
    """The job's step outputs, read from the database on first access (most plans never look), with
    `known` (outputs the caller holds, maybe not stored yet) over them."""

    def __init__(self, conn: Connection, job_id: uuid.UUID, org_id: uuid.UUID, known: Mapping[str, Any]) -> None:
        self._conn, self._job_id, self._org_id, self._known = conn, job_id, org_id, known
        self._data: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            self._data = {**store.outputs_of(self._conn, self._job_id, org_id=self._org_id), **self._known}
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def _inputs_for(
    conn: Connection,
    job: Mapping[str, Any],
    sequence: Sequence,
    step: Step,
    known: Mapping[str, Any],
    settled: frozenset[str] | set[str],
) -> dict[str, Any]:
    """Outputs of every succeeded step upstream of `step`, as `outputs_of` reads them: those of the
    `settled` steps come from `known` (a linear chain run inline reads none), the others in one query."""
    upstream = sequence.ancestors(step.name)
    missing = [d for d in upstream if d not in settled]
    inputs = {d: known[d] for d in upstream if d in known}
    if missing:
        inputs.update(store.outputs_of(conn, job["id"], missing, org_id=job["org_id"]))
    return inputs


def unpause(conn: Connection, job: Mapping[str, Any], now: datetime, later: Deferred | None = None) -> dict[str, Any]:
    """awaiting_approval -> running; the time spent waiting does not count against the deadline
    (queued in `later` when given). Returns the job's columns as the move sets them."""
    paused_at = job.get("paused_at")
    waited = (now - paused_at) if paused_at else timedelta(0)
    deadline = job.get("deadline_at")
    moved: dict[str, Any] = {
        "paused_at": None,
        "paused_ms": (job.get("paused_ms") or 0) + int(waited.total_seconds() * 1000),
        "deadline_at": (deadline + waited) if deadline else now + timedelta(seconds=get_settings().job_deadline_s),
    }
    store.set_job_status(
        conn, job["id"], J.RUNNING, now, old=J.AWAITING_APPROVAL, org_id=job["org_id"], later=later, **moved
    )
    return {**moved, "status": J.RUNNING.value, "updated_at": now}


def _complete_job(
    conn: Connection, job: Mapping[str, Any], now: datetime, with_follow_ups: bool, later: Deferred | None = None
) -> FollowUps | None:
    """Mark the job completed (queued in `later` when given: a job without follow-ups); its follow-up
    events, if it has any, for the caller to fire in this transaction."""
    if (
        not store.set_job_status(
            conn, job["id"], J.COMPLETED, now, old=job.get("status"), org_id=job["org_id"], paused_at=None, later=later
        )
        or not with_follow_ups
    ):
        return None
    return FollowUps(job, store.follow_ups_of(conn, job["id"], org_id=job["org_id"]))


def end_job(
    conn: Connection,
    job: Mapping[str, Any],
    status: JobStatus,
    now: datetime,
    *,
    reason: str | None = None,
    error: str | None = None,
    error_step: str | None = None,
    sequence: Sequence | None = None,
    statuses: Mapping[str, str] | None = None,
) -> list[Publish]:
    """End a job early (failed, cancelled, expired, timeout): queued steps and steps that never
    started are recorded `skipped`, pending approvals `cancelled` and their messages replaced."""
    if not store.set_job_status(
        conn,
        job["id"],
        status,
        now,
        old=job.get("status"),  # an ended job asked to end again is a caller's bug: IllegalTransition
        org_id=job["org_id"],
        reason=reason,
        error=(error or None) and error[:MAX_ERROR_CHARS],
        error_step=error_step,
        paused_at=None,
    ):
        return []
    why = f"job_{status.value}"
    store.close_open_steps(conn, job["id"], why, now, org_id=job["org_id"])
    if sequence is not None:
        sequence = pinned.for_job(conn, job, sequence)  # the steps of the definition it started with
        if statuses is None:
            statuses = {r.step: r.status for r in store.step_states(conn, job["id"], org_id=job["org_id"])}
        never = [n for n in sequence.order if n not in statuses]
        store.insert_steps(
            conn,
            [
                store.step_row(
                    job,
                    n,
                    S.SKIPPED,
                    now,
                    reason=why,
                    iteration=job.get("iteration") or 0,
                    queue=sequence.step(n).queue,
                )
                for n in never
            ],
        )
    approval_records.close_pending(conn, job, now, why)
    approval_records.close_waiting(conn, job, now, status.value)
    return []


def finish_cancel_if_idle(
    conn: Connection, job: Mapping[str, Any], sequence: Sequence, now: datetime, reason: str | None = None
) -> list[Publish]:
    """Honour a cancel request once no step of the job is running (a step boundary). The job ends
    with `reason`, else the one stored with the request (request_cancel), else `cancel_requested`."""
    running = any(r.status == S.RUNNING for r in store.step_states(conn, job["id"], org_id=job["org_id"]))
    if running:
        return []
    if reason is None:
        stored = select(jobs.c.reason).where(jobs.c.id == job["id"], of_org(jobs.c.org_id, job["org_id"]))
        reason = conn.execute(stored).scalar() or CANCEL_REASON
    return end_job(conn, job, J.CANCELLED, now, reason=reason, sequence=sequence)


# --------------------------------------------------------------------------- cancel


@dataclass(frozen=True)
class CancelResult:
    job_id: uuid.UUID
    status: str
    immediate: bool


def request_cancel(
    job_id: uuid.UUID, *, org_id: uuid.UUID | None = None, actor: str = "cli", reason: str = CANCEL_REASON
) -> CancelResult:
    """Set the job's cancel flag and the reason it will end with; it is honoured now if no step is
    running, else at the next step boundary. Raises NotFound for an unknown job (or one of another org)."""
    now = utcnow()
    with transaction() as conn:
        if org_id is None:  # the entry lookup of a caller with only a job id (the CLI): its row gives the org
            org_id = conn.execute(select(jobs.c.org_id).where(jobs.c.id == job_id)).scalar()
        locked = store.lock_job(conn, job_id, org_id=org_id) if org_id is not None else None
        if locked is None:
            raise NotFound(f"job {job_id} not found")
        job = _job_dict(locked)
        if job["status"] in JOB_FINAL:
            return CancelResult(job_id, job["status"], False)
        # ended with this reason at the step boundary
        store.request_job_cancel(conn, job_id, reason, old=job["status"], org_id=job["org_id"])
        record(conn, job["org_id"], actor=actor, action="job.cancel", target_type="job", target_id=str(job_id))
        try:
            sequence = registry.get(job["event_type"])
        except registry.UnknownSequence:
            sequence = None
        if sequence is not None:
            finish_cancel_if_idle(conn, job, sequence, now, reason)
        else:
            end_job(conn, job, J.CANCELLED, now, reason=reason)
        status = conn.execute(
            select(jobs.c.status).where(jobs.c.id == job_id, of_org(jobs.c.org_id, job["org_id"]))
        ).scalar_one()
    return CancelResult(job_id, status, status == J.CANCELLED)
