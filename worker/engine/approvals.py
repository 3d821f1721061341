"""Human-in-the-loop pauses: open an approval, decide it exactly once, resume the job with it.

- opening one (its row and its message, in the completing step's transaction), closing the ones a
  job left pending and reporting an approved action: worker/engine/approval_records.py, which the
  engine writes through; this module builds on the engine (worker/engine/executor.py) instead.
- `decide` (Slack click, CLI, API): authorisation, then one conditional UPDATE
  `pending -> decided WHERE status='pending' AND expires_at > now`; the winner publishes a resume,
  every other caller gets `AlreadyDecided(by, at)` or `ApprovalExpired`.
- `resume` (task, or the sweeper): under the job lock, applies a recorded decision exactly once
  (`resumed_at IS NULL` guard): proceed hands `{preview, decision, data, decided_by, decided_at}`
  to the steps after it; reject/skip/cancel ends the job `cancelled`; "more options" supersedes the
  approval and runs earlier steps again; expiry skips a best-effort approval (the job goes on) or
  ends the job `expired` when the approval is critical.
A decision recorded while no worker runs is never lost: the sweeper resumes decided approvals
whose `resumed_at` is still empty.

A job's approval is applied on the definition the job started with (worker/engine/pinned.py): the approval
step, its decisions and the steps after it are those of that definition, even after a deploy changed
the sequence. Every statement names the approval's org; the only reads by a bare id are the entry
lookups of a caller that brings nothing else (a resume message, a decision or an undo without an org),
and the row they find gives the org every later statement uses.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Row, Select, Uuid, bindparam, func, select, update

import blocks
from worker import logs
from worker.audit import record
from worker.config import get_settings
from worker.db import on_commit, transaction
from worker.engine import executor as engine
from worker.engine import jobstore as store
from worker.engine import pinned, registry
from worker.engine.approval_records import approval_title, display_name
from worker.engine.dag import DEFAULT_TIMEOUT_S, Sequence, Step
from worker.engine.events import carry_out, record_rejected
from worker.engine.publish import Publish, publish_resume, publish_steps
from worker.engine.states import JOB_FINAL, ApprovalStatus, JobStatus, StepStatus
from worker.errors import (
    AlreadyDecided,
    ApprovalExpired,
    InvalidDecision,
    NotAuthorized,
    NotFound,
    TooLate,
    UserError,
)
from worker.metrics import prom
from worker.models import Deal, User, approvals, jobs, of_org, utcnow
from worker.precompiled import PIPELINE_DIALECTS, Deferred, LeaseLost, Precompiled, batch
from worker.slack.delivery import replace_message, replace_message_later

A, J, S = ApprovalStatus, JobStatus, StepStatus
log = logging.getLogger(__name__)
users = User.__table__

DECIDED = (A.APPROVED, A.REJECTED, A.SUPERSEDED, A.EXPIRED)


# --------------------------------------------------------------------------- decide


@dataclass(frozen=True)
class Decision:
    """The recorded decision (this caller won the race)."""

    approval_id: uuid.UUID
    job_id: uuid.UUID
    status: str
    decision: str
    decided_by: uuid.UUID
    decided_at: datetime
    by: DecidedBy | None = None  # what the decided message shows of its decider and job


@dataclass(frozen=True)
class DecidedBy:
    """Who decided an approval and the facts of its job the decided message needs (its title comes
    from the job's definition), as the decision read them: the click's answer (worker/slack/replace.py)
    gets them in its message instead of reading them again."""

    user_id: uuid.UUID
    name: str
    event_type: str
    definition_hash: str | None

    def as_args(self) -> list[str | None]:
        """As a task message carries it (JSON)."""
        return [str(self.user_id), self.name, self.event_type, self.definition_hash]

    @classmethod
    def from_args(cls, args: Any) -> DecidedBy | None:
        """The facts a task message carried (None when absent or not as `as_args` writes them)."""
        try:
            user_id, name, event_type, definition_hash = args
            return cls(uuid.UUID(str(user_id)), str(name), str(event_type), definition_hash and str(definition_hash))
        except (TypeError, ValueError):
            return None


def _load(conn: Connection, approval_id: uuid.UUID, org_id: uuid.UUID | None) -> Row:
    """The approval row; `org_id` None only for an entry lookup by a caller that has no org."""
    return _one(conn, select(approvals).where(approvals.c.id == approval_id), approval_id, org_id)


def _one(conn: Connection, q: Select[Any], approval_id: uuid.UUID, org_id: uuid.UUID | None) -> Row:
    """The one row of `q` (a select of approval `approval_id`), scoped by `org_id` when given;
    NotFound when there is none (another org's approval is not found either)."""
    if org_id is not None:
        q = q.where(approvals.c.org_id == org_id)
    row = conn.execute(q).first()
    if row is None:
        raise NotFound(f"approval {approval_id} not found")
    return row


_clicker, _decider = users.alias("clicker"), users.alias("decider")
_AID, _USER, _ORG = (bindparam(name, type_=Uuid()) for name in ("b_aid", "b_user", "b_org"))


def _decision_query(scoped: bool) -> Select[Any]:
    """What a decision reads (see `_load_for_decision`), built once with bound parameters: building
    it and its cache key on every click cost about as much CPU as running it."""
    q = (
        select(
            approvals,
            jobs.c.event_type.label("job_event_type"),
            jobs.c.definition_hash.label("job_definition_hash"),
            jobs.c.trace_id.label("job_trace_id"),  # the decision's log lines join the job's trace
            _clicker.c.id.label("user_id"),
            _clicker.c.org_id.label("user_org_id"),
            _clicker.c.role.label("user_role"),
            _clicker.c.name.label("user_name"),
            _clicker.c.email.label("user_email"),
            func.coalesce(_decider.c.name, _decider.c.email).label("decider_name"),
        )
        .join(jobs, (jobs.c.id == approvals.c.job_id) & (of_org(jobs.c.org_id, approvals.c.org_id)))
        .outerjoin(_clicker, (_clicker.c.id == _USER) & (of_org(_clicker.c.org_id, approvals.c.org_id)))
        .outerjoin(
            _decider, (_decider.c.id == approvals.c.decided_by) & (of_org(_decider.c.org_id, approvals.c.org_id))
        )
        .where(approvals.c.id == _AID)
    )
    return q.where(approvals.c.org_id == _ORG) if scoped else q


_FOR_DECISION = {scoped: Precompiled(_decision_query(scoped)) for scoped in (False, True)}


def _load_for_decision(
    conn: Connection, approval_id: uuid.UUID, org_id: uuid.UUID | None, user_id: uuid.UUID
) -> SimpleNamespace:
    """Everything a decision reads, in one query: the approval, its job's event type and definition,
    the deciding user (`user_*`, NULL when not a member of the approval's org) and the name of
    whoever decided already (`decider_name`), so a lost race is answered without another read.
    `org_id` None (a CLI, demo or bench decision by id) makes it the entry lookup: the approval's
    org then scopes every later statement."""
    query = _FOR_DECISION[org_id is not None]
    with batch(conn) as b:  # with the transaction's BEGIN: one round trip
        read = b.send(query, {"b_aid": approval_id, "b_user": user_id, "b_org": org_id})
    row = read.first()
    if row is None:
        raise NotFound(f"approval {approval_id} not found")
    return SimpleNamespace(**dict(zip(query.keys(conn), row, strict=True)))


@dataclass(frozen=True)
class _Decider:
    """The deciding user as `may_decide` reads it."""

    id: uuid.UUID
    org_id: uuid.UUID
    role: str
    name: str | None
    email: str


def _lost(conn: Connection, current: Row, now: datetime, decider_name: str | None = None) -> UserError | AlreadyDecided:
    """Why a decision on `current` (no longer decidable) did not count (`decider_name`: already read)."""
    if current.status in (A.PENDING, A.EXPIRED):
        return ApprovalExpired(current.expires_at)
    if current.status == A.CANCELLED:
        return AlreadyDecided("cancelled", "the job ending", current.resumed_at or now)
    if decider_name is None or current.decided_by is None:
        decider_name = display_name(conn, current.org_id, current.decided_by)
    return AlreadyDecided(current.decision or current.status, decider_name, current.decided_at)


def may_decide(conn: Connection, approval: Row, user: Row) -> bool:
    """Approvers, the owner of the job's deal, and org admins may decide (docs/sequences.md)."""
    if user.org_id != approval.org_id:
        return False
    if str(user.id) in {str(u) for u in approval.approver_user_ids or []} or user.role == "admin":
        return True
    payload = (
        conn.execute(
            select(jobs.c.payload).where(jobs.c.id == approval.job_id, of_org(jobs.c.org_id, approval.org_id))
        ).scalar()
        or {}
    )
    deal_id = payload.get("deal_id") or (approval.preview or {}).get("deal_id")
    if not deal_id:
        return False
    try:
        deal_uuid = uuid.UUID(str(deal_id))
    except ValueError:
        return False
    owner = conn.execute(
        select(Deal.owner_id).where(Deal.id == deal_uuid, of_org(Deal.org_id, approval.org_id))
    ).scalar()
    return owner is not None and owner == user.id


@dataclass(frozen=True)
class _Ask:
    """A decision asked for (`decide`'s arguments)."""

    approval_id: uuid.UUID
    decision: str
    user_id: uuid.UUID
    data: Mapping[str, Any] | None
    org_id: uuid.UUID | None
    actor: str
    now: datetime
    kind: str | None
    button: str | None


def decide(
    approval_id: uuid.UUID,
    decision: str,
    *,
    user_id: uuid.UUID,
    data: Mapping[str, Any] | None = None,
    org_id: uuid.UUID | None = None,
    actor: str = "cli",
    now: datetime | None = None,
    kind: str | None = None,
    button: str | None = None,
) -> Decision:
    """Record `decision` by `user_id` exactly once and ask a worker to resume the job.

    `kind`, when given, is the approval kind the caller's button is for (a `prop_` button cannot
    decide an email review); `button` names it in the refusal. Raises NotFound, NotAuthorized,
    InvalidDecision, ApprovalExpired or AlreadyDecided; none of them changes anything.
    """
    ask = _Ask(approval_id, decision, user_id, data, org_id, actor, now or utcnow(), kind, button)
    try:
        return _decide(ask)
    except AlreadyDecided:
        raise  # a lost race, not bad input
    except UserError as err:  # bad input is recorded, never silently dropped
        attempt = {
            "approval_id": str(approval_id),
            "decision": decision,
            "user_id": str(user_id),
            "data": dict(data) if data else None,
        }
        record_rejected(actor, str(err), type(err).__name__, body=json.dumps(attempt, default=str), org_id=org_id)
        raise


def _record_decision(conn: Connection, ask: _Ask) -> tuple[SimpleNamespace, ApprovalStatus, _Decider]:
    """Check and record the decision in the caller's transaction: one round trip reads the approval
    (with the BEGIN), one more writes the decision and its audit row with the COMMIT (PostgreSQL).
    Raises the refusals of `decide`, and _DecisionLost when the write lost its race."""
    approval_id, decision, user_id, data, now = ask.approval_id, ask.decision, ask.user_id, ask.data, ask.now
    approval = _load_for_decision(conn, approval_id, ask.org_id, user_id)
    # from here on (the answer, the resume message) under the job's trace id, the click's as origin
    logs.join_trace(approval.job_trace_id, org_id=approval.org_id, job_id=approval.job_id)
    if ask.kind is not None and approval.kind != ask.kind:
        raise InvalidDecision(f"{ask.button or decision} does not apply to a {approval.kind} request")
    if approval.user_id is None:
        raise NotAuthorized(f"user {user_id} is not a member of this approval's org")
    user = _Decider(approval.user_id, approval.user_org_id, approval.user_role, approval.user_name, approval.user_email)
    if not may_decide(conn, approval, user):
        raise NotAuthorized(
            f"{user.name or user.email} may not decide this approval: only its approvers, the deal owner "
            "or an org admin can"
        )
    job = {"event_type": approval.job_event_type, "definition_hash": approval.job_definition_hash}
    try:  # the decisions of the definition its job started with
        spec = pinned.for_job(conn, job).step(approval.step).approval
    except (KeyError, registry.UnknownSequence):
        spec = None
    if spec is None:  # a job accepted before definitions were stored, whose step a deploy removed
        raise InvalidDecision(
            f"approval step {approval.step!r} is no longer in the {approval.job_event_type} sequence; "
            "it cannot be decided (its job fails when it expires)"
        )
    try:
        outcome = spec.outcome(decision)
    except KeyError:
        raise InvalidDecision(f"{decision!r} is not a decision of a {approval.kind} approval") from None
    new = {"proceed": A.APPROVED, "stop": A.REJECTED, "rerun": A.SUPERSEDED}[outcome]
    if approval.status != A.PENDING:  # decided already (the usual loser of a race): no UPDATE to try
        raise _lost(conn, approval, now, approval.decider_name)
    later = Deferred(conn)
    store.set_approval_status_later(
        later,
        approval_id,
        new,
        now,
        require_unexpired=True,
        org_id=approval.org_id,
        decision=decision,
        decision_data=dict(data) if data else None,
        decided_by=user.id,
        decided_at=now,
    )
    record(
        conn,
        approval.org_id,
        actor=ask.actor,
        actor_user_id=user.id,
        action=f"approval.{decision}",
        target_type="approval",
        target_id=str(approval_id),
        data=dict(data) if data else None,
        later=later,
    )
    try:
        later.flush(commit=True)
    except LeaseLost:
        raise _DecisionLost(approval.org_id) from None
    return approval, new, user


class _DecisionLost(Exception):
    """The decision's UPDATE matched no row (another decision, an expiry or the job's end came
    first): its transaction wrote nothing; `_decide` tells why in a new one."""

    def __init__(self, org_id: uuid.UUID) -> None:
        super().__init__(f"the decision of an approval of org {org_id} lost its race")
        self.org_id = org_id


def _decide(ask: _Ask) -> Decision:
    try:
        with transaction() as conn:
            approval, new, user = _record_decision(conn, ask)
    except _DecisionLost as lost:
        with transaction() as conn:
            raise _lost(conn, _load(conn, ask.approval_id, lost.org_id), ask.now) from None
    prom.approval_decided(approval.kind, new.value, prom.seconds_between(approval.created_at, ask.now))
    publish_resume(ask.approval_id, approval.org_id, approval.job_id)
    name = user.name if user.name is not None else user.email  # as the resume names the decider (coalesce)
    by = DecidedBy(user.id, name, approval.job_event_type, approval.job_definition_hash)
    return Decision(ask.approval_id, approval.job_id, new.value, ask.decision, user.id, ask.now, by)


# --------------------------------------------------------------------------- resume


_decided_by = users.alias("decided_by")


def _resume_head(scoped: bool) -> Select[Any]:
    """The job of an approval, locked (`FOR UPDATE OF` the job row only), with the approval's
    `decided_by` and that user's name and email: the resume's first statement, built once.

    After a wait for the lock, PostgreSQL re-reads only the locked job row; the joined approval and
    user rows come from the snapshot taken before the wait. That is enough here: a decision or an
    expiry commits before its resume is asked for, and `resume` compares `decided_by` with the row
    `claim_decision` returns (read after the lock) before it uses the name."""
    q = (
        select(
            *store.JOB_COLUMNS,
            approvals.c.decided_by.label("approval_decided_by"),
            _decided_by.c.name.label("decider_name"),
            _decided_by.c.email.label("decider_email"),
        )
        .select_from(approvals)
        .join(jobs, (jobs.c.id == approvals.c.job_id) & (of_org(jobs.c.org_id, approvals.c.org_id)))
        .outerjoin(
            _decided_by,
            (_decided_by.c.id == approvals.c.decided_by) & (of_org(_decided_by.c.org_id, approvals.c.org_id)),
        )
        .where(approvals.c.id == _AID)
        .with_for_update(of=jobs)
    )
    return q.where(approvals.c.org_id == _ORG) if scoped else q


_RESUME_HEAD = {scoped: Precompiled(_resume_head(scoped)) for scoped in (False, True)}
_HEAD_ONLY = ("approval_decided_by", "decider_name", "decider_email")


def resume(approval_id: uuid.UUID, now: datetime | None = None, *, org_id: uuid.UUID | None = None) -> list[Publish]:
    """Apply a recorded decision or expiry to its job (`apply_decision` in a transaction of its own,
    the sweeper's way) and publish what became ready; returns those messages."""
    with transaction() as conn:
        adv = apply_decision(conn, approval_id, now or utcnow(), org_id=org_id)
    publish_steps(adv.publish)
    return adv.publish


@dataclass(frozen=True)
class _Known:
    """The job's current step states and every output of its succeeded steps, read under the job's
    lock in the resume's first round trip (`apply_decision` with the job's id)."""

    states: list[store.StepState]
    outputs: dict[str, Any]


def apply_decision(
    conn: Connection,
    approval_id: uuid.UUID,
    now: datetime,
    *,
    org_id: uuid.UUID | None = None,
    job_id: uuid.UUID | None = None,
    inline_queues: frozenset[str] = frozenset(),
) -> engine.Advance:
    """Apply a recorded decision or expiry to its job, once, on the definition the job started with,
    in the caller's transaction. Returns the messages to publish once it commits (the follow-ups of
    a job it completed already fired) and, when `inline_queues` names the queue of a step it made
    ready, that step inserted already claimed by this process (`inline`: the caller runs it after
    the commit, as the engine's inline path does).

    `org_id` is the approval's org when the caller knows it (the sweeper, a resume message); without
    it the first read (which also locks the job) finds the org by the approval's id, and every
    statement after it is scoped by the org it found. With `job_id` too (a resume message carries
    both) on PostgreSQL, the job's lock, the decision's claim and the reads of the job's step states
    and outputs go in one round trip, and an approval that proceeds is applied in one more that
    carries the COMMIT (the caller's transaction block then has nothing left to commit)."""
    query = _RESUME_HEAD[org_id is not None]
    params: dict[str, Any] = {"b_aid": approval_id, "b_org": org_id}
    known: _Known | None = None
    claimed: SimpleNamespace | None = None
    if org_id is not None and job_id is not None and conn.dialect.name in PIPELINE_DIALECTS:
        of_job = {"b_job": job_id, "b_org": org_id}
        with batch(conn) as b:  # with the BEGIN; each read after the job's lock sees what its holder committed
            head = b.send(query, params)
            claim = b.send(store.decision_claim(DECIDED), {**params, "b_now": now})
            states, outputs = b.send(store.STATES_OF_JOB, of_job), b.send(store.OUTPUTS_OF_JOB, of_job)
        row, claimed = head.first(), store.claimed_approval(claim.first())
        known = _Known([store.StepState(*r) for r in states.rows()], dict(outputs.rows()))
    else:
        row = query.first(conn, params)
    if row is None:
        return engine.Advance()
    job = dict(zip(query.keys(conn), row, strict=True))
    head_ = SimpleNamespace(**{k: job.pop(k) for k in _HEAD_ONLY})
    logs.join_trace(job.get("trace_id"), org_id=job["org_id"], job_id=job["id"])  # the job's trace
    if known is None:
        claimed = store.claim_decision(conn, approval_id, DECIDED, now, org_id=job["org_id"])
    elif job["id"] != job_id:  # a message naming another job: what was read of that one is not this job's
        known = None
    if claimed is None or job["status"] in JOB_FINAL:
        return engine.Advance()
    if claimed.decided_by is None:
        who = display_name(conn, claimed.org_id, None)
    elif claimed.decided_by == head_.approval_decided_by:  # read with the lock: no other query
        who = head_.decider_name or head_.decider_email or str(claimed.decided_by)
    else:
        who = display_name(conn, claimed.org_id, claimed.decided_by)
    try:
        sequence = pinned.for_job(conn, job)  # the definition the job started with, not the deployed one
    except registry.UnknownSequence as err:
        return engine.Advance(engine.end_job(conn, job, J.FAILED, now, error=str(err), error_step=claimed.step))
    return _apply(conn, job, sequence, claimed, who, now, inline_queues, known)


def _moved(
    conn: Connection, job: dict[str, Any], sequence: Sequence, now: datetime, inline_queues: frozenset[str]
) -> engine.Advance:
    """The job moves on after its approval: plan it (one ready step on `inline_queues` claimed
    inline, with the siblings fast enough to join it, within the resume task's time limit), fire the
    follow-ups of a job that completed."""
    adv = _plan_after_approval(conn, job, sequence, now, inline_queues)
    return engine.Advance(carry_out(conn, adv, now), adv.inline, adv.joined)


def _plan_after_approval(
    conn: Connection,
    job: dict[str, Any],
    sequence: Sequence,
    now: datetime,
    inline_queues: frozenset[str],
    **known: Any,
) -> engine.Advance:
    """`engine.advance` as a resume plans: one ready step on `inline_queues` claimed inline, with
    the siblings fast enough to join it, within the resume task's time limit (`known`: what the
    caller read under the lock, passed on)."""
    return engine.advance(
        conn,
        job,
        sequence,
        now,
        inline_queues=inline_queues,
        inline_budget_s=DEFAULT_TIMEOUT_S,
        join_ms=get_settings().inline_join_ms,
        **known,
    )


def _apply(
    conn: Connection,
    job: dict[str, Any],
    sequence: Sequence,
    a: Row,
    who: str,
    now: datetime,
    inline_queues: frozenset[str],
    known: _Known | None = None,
) -> engine.Advance:
    """Apply the claimed decision or expiry `a` (decided by `who`) to the locked `job` (`known`: its
    step states and outputs, read under the lock)."""
    try:
        step = sequence.step(a.step)
    except KeyError:  # not in the definition the job started with (its row names another step)
        return engine.Advance(
            engine.end_job(
                conn,
                job,
                J.FAILED,
                now,
                error=f"approval step {a.step!r} is not in the definition of the {job['event_type']} sequence "
                f"the job started with ({(job.get('definition_hash') or '')[:8]})",
                error_step=a.step,
            )
        )
    when = a.decided_at or now
    if a.status == A.EXPIRED:
        replace_message(
            conn, a.org_id, a.id, blocks.expired_message(approval_title(job, step, a.preview or {}), a.expires_at)
        )
        if step.critical:
            return engine.Advance(
                engine.end_job(conn, job, J.EXPIRED, now, reason=f"approval {a.kind} expired", sequence=sequence)
            )
        store.set_step_status(
            conn, a.step_run_id, S.SKIPPED, now, old=S.AWAITING_APPROVAL, org_id=a.org_id, reason="approval_expired"
        )
        return _moved(conn, job, sequence, now, inline_queues)
    message = _decided_message(job, step, a, who, when)
    if a.status == A.APPROVED and known is not None and _awaiting(known.states, a.step_run_id):
        return _proceed(conn, job, sequence, a, message, _approved_output(a, when), now, inline_queues, known)
    replace_message(conn, a.org_id, a.id, message)
    if a.status == A.REJECTED:
        why = f"{who} chose {blocks.decision_label(a.decision or 'reject')}"
        store.set_step_status(
            conn, a.step_run_id, S.CANCELLED, now, old=S.AWAITING_APPROVAL, org_id=a.org_id, reason=why
        )
        return engine.Advance(engine.end_job(conn, job, J.CANCELLED, now, reason=why, sequence=sequence))
    if a.status == A.SUPERSEDED:
        return _rerun(conn, job, sequence, a, now, inline_queues)
    store.set_step_status(
        conn,
        a.step_run_id,
        S.SUCCEEDED,
        now,
        old=S.AWAITING_APPROVAL,
        org_id=a.org_id,
        output=_approved_output(a, when),
    )
    return _moved(conn, job, sequence, now, inline_queues)


def _approved_output(a: Row | SimpleNamespace, when: datetime) -> dict[str, Any]:
    """The output of an approval step that proceeds: what the steps after it get as its input."""
    return {
        "approval_id": str(a.id),
        "preview": a.preview,
        "decision": a.decision,
        "data": a.decision_data or {},
        "decided_by": str(a.decided_by) if a.decided_by else None,
        "decided_at": when.isoformat(),
    }


def _awaiting(states: list[store.StepState], step_run_id: uuid.UUID) -> bool:
    """Whether the approval's step run is among `states`, awaiting its decision."""
    return any(st.id == step_run_id and st.status == S.AWAITING_APPROVAL for st in states)


def _proceed(
    conn: Connection,
    job: dict[str, Any],
    sequence: Sequence,
    a: Row | SimpleNamespace,
    message: Mapping[str, Any],
    output: dict[str, Any],
    now: datetime,
    inline_queues: frozenset[str],
    known: _Known,
) -> engine.Advance:
    """An approval that proceeds, applied from the states and outputs read under the job's lock
    (`known`, where its step awaits the decision): the message's replacement, the step's success and
    the plan's writes are queued and sent together, with the COMMIT unless follow-ups are left to
    fire in this transaction (one round trip; the lock keeps the step where `known` saw it)."""
    later = Deferred(conn)
    replaced = replace_message_later(later, a.org_id, a.id, message, now)
    store.set_step_status(
        conn, a.step_run_id, S.SUCCEEDED, now, old=S.AWAITING_APPROVAL, org_id=a.org_id, output=output, later=later
    )
    done = S.SUCCEEDED.value
    states = [dataclasses.replace(st, status=done) if st.id == a.step_run_id else st for st in known.states]
    outputs = {**known.outputs, a.step: output}  # every output of the job: the next step reads none
    adv = _plan_after_approval(
        conn,
        job,
        sequence,
        now,
        inline_queues,
        known_outputs=outputs,
        settled=frozenset(sequence.order),
        states=states,
        later=later,
    )
    later.flush(commit=not adv.follow_ups)
    replaced()
    return engine.Advance(carry_out(conn, adv, now), adv.inline, adv.joined)


# Decisions after which an approved email goes out once the Undo window has passed (docs/sequences.md).
UNDOABLE_SENDS = frozenset({"send_now", "edit"})


def _decided_message(job: Mapping[str, Any], step: Step, a: Row, who: str, when: datetime) -> dict[str, Any]:
    """What replaces an approval's message: an Undo button while an approved email waits to go,
    else "<decision> by <who> at <when>"."""
    preview = a.preview or {}
    if a.kind == "email_preview" and a.status == A.APPROVED and a.decision in UNDOABLE_SENDS:
        data = a.decision_data or {}
        send_at = when + timedelta(seconds=get_settings().undo_window_s)
        return blocks.email_sent_with_undo(
            str(a.id), preview.get("to") or "", data.get("subject") or preview.get("subject") or "", send_at
        )
    return blocks.decided_message(approval_title(job, step, preview), a.decision or a.status, who, when, _detail(a))


def _detail(a: Row) -> str:
    """What a decision chose, in words: the time of an invite ("" for every other decision)."""
    if a.decision != "send_invite":
        return ""
    slots = [s for s in (a.preview or {}).get("slots") or [] if isinstance(s, Mapping)]
    wanted = (a.decision_data or {}).get("slot")
    chosen = next((s for s in slots if s.get("start") == wanted), slots[0] if slots and not wanted else None)
    return f"for {chosen.get('label') or chosen.get('start')}" if chosen else ""


def decided_content(conn: Connection, a: Row, by: DecidedBy | None = None) -> dict[str, Any] | None:
    """The message that replaces a decided or expired approval's request: exactly what `resume`
    puts in the outbox for it. None while it is pending or cancelled, or when its step is gone.
    `by`: its decider and job as the decision read them (used when that decider is `a`'s: no reads)."""
    if a.status not in {s.value for s in DECIDED}:
        return None
    if by is not None and a.status != A.EXPIRED and by.user_id == a.decided_by:
        facts: dict[str, Any] = {"event_type": by.event_type, "definition_hash": by.definition_hash}
        who = by.name
    else:
        job = conn.execute(select(jobs).where(jobs.c.id == a.job_id, of_org(jobs.c.org_id, a.org_id))).first()
        if job is None:
            return None
        facts, who = dict(job._mapping), None
    try:
        step = pinned.for_job(conn, facts).step(a.step)
    except (KeyError, registry.UnknownSequence):
        return None
    if a.status == A.EXPIRED:
        return blocks.expired_message(approval_title(facts, step, a.preview or {}), a.expires_at)
    who = who if who is not None else display_name(conn, a.org_id, a.decided_by)
    return _decided_message(facts, step, a, who, a.decided_at or utcnow())


def request_content(conn: Connection, a: Row) -> dict[str, Any]:
    """The message an approval was opened with (the draft, proposal or times as the rep first saw
    them), rebuilt from its stored preview: a decision's replacement overwrote it in the outbox."""
    preview = a.preview or {}
    title = preview.get("title")
    if not title:
        job = conn.execute(
            select(jobs.c.event_type, jobs.c.definition_hash).where(
                jobs.c.id == a.job_id, of_org(jobs.c.org_id, a.org_id)
            )
        ).first()
        facts = dict(job._mapping) if job is not None else {"event_type": "", "definition_hash": None}
        try:
            title = approval_title(facts, pinned.for_job(conn, facts).step(a.step), preview)
        except (KeyError, registry.UnknownSequence):
            title = a.step.replace("-", " ").capitalize()
    return blocks.approval_blocks(a.kind, str(a.id), {**preview, "title": title})


def _rerun(
    conn: Connection, job: dict[str, Any], sequence: Sequence, a: Row, now: datetime, inline_queues: frozenset[str]
) -> engine.Advance:
    """ "More options": retire the runs from the re-run step on, and queue that step again
    (`sequence`: the job's pinned definition, so the re-run step and what follows it are its own)."""
    assert sequence.step(a.step).approval is not None
    target = sequence.step(a.step).approval.rerun_from[a.decision]
    redo = sequence.downstream(target)
    store.supersede_steps(conn, job["id"], redo, org_id=a.org_id)
    store.set_step_status(
        conn, a.step_run_id, S.CANCELLED, now, old=S.AWAITING_APPROVAL, org_id=a.org_id, reason="more options requested"
    )
    iteration = (job.get("iteration") or 0) + 1
    # not a state move (a counter; the status stays): written here, not in jobstore
    conn.execute(
        update(jobs).where(jobs.c.id == job["id"], of_org(jobs.c.org_id, a.org_id)).values(iteration=iteration)
    )
    job["iteration"] = iteration
    return _moved(conn, job, sequence, now, inline_queues)


def expire_due(now: datetime | None = None, limit: int = 500) -> int:
    """Expire pending approvals past their expiry and apply it to their jobs; returns how many."""
    now = now or utcnow()
    with transaction() as conn:
        due = conn.execute(  # the sweeper's scan of every org; each row is then changed under its own org
            select(approvals.c.id, approvals.c.org_id)
            .where(approvals.c.status == A.PENDING.value, approvals.c.expires_at <= now)
            .limit(limit)
        ).all()
    count = 0
    for approval_id, org_id in due:
        with transaction() as conn:
            expired = store.set_approval_status(conn, approval_id, A.EXPIRED, now, org_id=org_id)
            if expired is not None:
                count += 1
                on_commit(lambda kind=expired.kind: prom.approval_decided(kind, A.EXPIRED.value, None))
        try:
            resume(approval_id, now, org_id=org_id)
        except Exception:  # one broken job must not stop the others' expiry (the sweeper retries it)
            log.exception("applying the expiry of approval %s failed", approval_id)
    return count


def undo(approval_id: uuid.UUID, *, user_id: uuid.UUID, org_id: uuid.UUID | None = None, actor: str = "cli") -> str:
    """Undo an approved send inside its undo window: the job ends `cancelled` before the delayed
    step starts. Raises TooLate once that step has started, NotAuthorized/NotFound as `decide`."""
    now = utcnow()
    with transaction() as conn:
        approval = _load(conn, approval_id, org_id)
        user = conn.execute(select(users).where(users.c.id == user_id, of_org(users.c.org_id, approval.org_id))).first()
        if user is None or not may_decide(conn, approval, user):
            raise NotAuthorized("only the approvers, the deal owner or an org admin may undo this")
        if approval.status != A.APPROVED:
            raise TooLate(f"nothing to undo: this approval is {approval.status}")
        locked = store.lock_job(conn, approval.job_id, org_id=approval.org_id)
        if locked is None:
            raise NotFound(f"the job of approval {approval_id} was not found")
        job = dict(locked._mapping)
        logs.join_trace(job.get("trace_id"), org_id=job["org_id"], job_id=job["id"])  # the job's trace
        sequence = pinned.for_job(conn, job)  # the steps after the approval in the job's own definition
        after = set(sequence.dependents(approval.step))
        started = [
            r
            for r in store.step_states(conn, approval.job_id, org_id=approval.org_id)
            if r.step in after and r.status not in (S.QUEUED.value, S.SKIPPED.value)
        ]
        if started or job["status"] in JOB_FINAL:
            raise TooLate(f"too late to undo: {', '.join(r.step for r in started) or 'the job'} already ran")
        who = display_name(conn, approval.org_id, user.id)
        engine.end_job(conn, job, J.CANCELLED, now, reason=f"undone by {who}", sequence=sequence)
        preview, data = approval.preview or {}, approval.decision_data or {}
        replace_message(
            conn,
            approval.org_id,
            approval.id,
            blocks.email_undone(preview.get("to") or "", data.get("subject") or preview.get("subject") or "", who, now),
        )
        record(
            conn,
            approval.org_id,
            actor=actor,
            actor_user_id=user.id,
            action="approval.undo",
            target_type="approval",
            target_id=str(approval_id),
        )
    return who
