"""Human-in-the-loop pauses: open an approval, decide it exactly once, resume the job with it.

- `open_approval` (engine, in the completing step's transaction): approvals row + outbox message.
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
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select, update

import blocks
from worker import jobstore as store
from worker import prom, registry
from worker.audit import record
from worker.dag import Sequence, Step
from worker.db import on_commit, transaction
from worker.delivery import enqueue_message, replace_message
from worker.errors import AlreadyDecided, ApprovalExpired, InvalidDecision, NotAuthorized, NotFound, UserError
from worker.models import Deal, Org, User, approvals, steps, utcnow
from worker.publish import Publish, publish_resume, publish_steps
from worker.states import JOB_FINAL, ApprovalStatus, JobStatus, StepStatus
from worker.worktime import working_hours_after, zone

A, J, S = ApprovalStatus, JobStatus, StepStatus
log = logging.getLogger(__name__)
users = User.__table__

DECIDED = (A.APPROVED, A.REJECTED, A.SUPERSEDED, A.EXPIRED)


# --------------------------------------------------------------------------- open


def _title(job: Mapping[str, Any], step: Step, preview: Mapping[str, Any]) -> str:
    return str(preview.get("title") or f"{job['event_type'].replace('_', ' ')}: {step.name.replace('-', ' ')}")


def open_approval(
    conn: Connection,
    job: Mapping[str, Any],
    step_run_id: uuid.UUID,
    step: Step,
    preview: Mapping[str, Any],
    now: datetime,
) -> uuid.UUID:
    """Create the pending approval for an approval step and queue its Slack message."""
    assert step.approval is not None
    approver_ids = [uuid.UUID(str(u)) for u in preview.get("approver_user_ids") or []]
    if not approver_ids and job.get("user_id"):
        approver_ids = [job["user_id"]]
    if not approver_ids:  # org-level job: the org's admins decide
        approver_ids = list(
            conn.execute(select(users.c.id).where(users.c.org_id == job["org_id"], users.c.role == "admin")).scalars()
        )
    tz_name = None
    if approver_ids:
        tz_name = conn.execute(
            select(users.c.timezone).where(users.c.id == approver_ids[0], users.c.org_id == job["org_id"])
        ).scalar()
    org_tz = conn.execute(select(Org.timezone).where(Org.id == job["org_id"])).scalar()
    expires_at = working_hours_after(now, zone(tz_name, org_tz or "UTC"), step.approval.expires_working_hours)
    approval_id = uuid.uuid4()
    conn.execute(
        approvals.insert().values(
            id=approval_id,
            org_id=job["org_id"],
            job_id=job["id"],
            step_run_id=step_run_id,
            step=step.name,
            kind=step.approval.kind,
            critical=step.critical,
            status=A.PENDING.value,
            approver_user_ids=[str(u) for u in approver_ids],
            preview=dict(preview),
            expires_at=expires_at,
            created_at=now,
        )
    )
    on_commit(lambda: prom.approval_opened(step.approval.kind))
    message = blocks.approval_blocks(
        step.approval.kind, str(approval_id), {"title": _title(job, step, preview), **preview}
    )
    enqueue_message(
        conn,
        job["org_id"],
        kind="approval",
        message=message,
        dedupe_key=f"approval:{approval_id}",
        now=now,
        user_id=approver_ids[0] if approver_ids else None,
        job_id=job["id"],
        approval_id=approval_id,
        console=dry_run(job),
    )
    return approval_id


def dry_run(job: Mapping[str, Any]) -> bool:
    """Dry-run jobs (a dry-run process, a smoke event or a dry-run org, decided when the event was
    accepted) keep their Slack messages in the console inbox."""
    return bool(job.get("dry_run"))


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


def _load(conn: Connection, approval_id: uuid.UUID, org_id: uuid.UUID | None) -> Row:
    q = select(approvals).where(approvals.c.id == approval_id)
    if org_id is not None:
        q = q.where(approvals.c.org_id == org_id)
    row = conn.execute(q).first()
    if row is None:
        raise NotFound(f"approval {approval_id} not found")
    return row


_clicker, _decider = users.alias("clicker"), users.alias("decider")


def _load_for_decision(conn: Connection, approval_id: uuid.UUID, org_id: uuid.UUID | None, user_id: uuid.UUID) -> Row:
    """Everything a decision reads, in one query: the approval, its job's event type, the deciding
    user (`user_*`, NULL when not a member of the approval's org) and the name of whoever decided
    already (`decider_name`), so a lost race is answered without another read."""
    from worker.models import jobs

    q = (
        select(
            approvals,
            jobs.c.event_type.label("job_event_type"),
            _clicker.c.id.label("user_id"),
            _clicker.c.org_id.label("user_org_id"),
            _clicker.c.role.label("user_role"),
            _clicker.c.name.label("user_name"),
            _clicker.c.email.label("user_email"),
            func.coalesce(_decider.c.name, _decider.c.email).label("decider_name"),
        )
        .join(jobs, jobs.c.id == approvals.c.job_id)
        .outerjoin(_clicker, (_clicker.c.id == user_id) & (_clicker.c.org_id == approvals.c.org_id))
        .outerjoin(_decider, (_decider.c.id == approvals.c.decided_by) & (_decider.c.org_id == approvals.c.org_id))
        .where(approvals.c.id == approval_id)
    )
    if org_id is not None:
        q = q.where(approvals.c.org_id == org_id)
    row = conn.execute(q).first()
    if row is None:
        raise NotFound(f"approval {approval_id} not found")
    return row


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
    from worker.models import jobs

    payload = conn.execute(select(jobs.c.payload).where(jobs.c.id == approval.job_id)).scalar() or {}
    deal_id = payload.get("deal_id") or (approval.preview or {}).get("deal_id")
    if not deal_id:
        return False
    try:
        deal_uuid = uuid.UUID(str(deal_id))
    except ValueError:
        return False
    owner = conn.execute(select(Deal.owner_id).where(Deal.id == deal_uuid, Deal.org_id == approval.org_id)).scalar()
    return owner is not None and owner == user.id


def display_name(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID | None) -> str:
    """How a decider is named in messages ("Alice Moreau"; "the system" for no user)."""
    if user_id is None:
        return "the system"
    row = conn.execute(
        select(users.c.name, users.c.email).where(users.c.id == user_id, users.c.org_id == org_id)
    ).first()
    return (row.name or row.email) if row else str(user_id)


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
    now = now or utcnow()
    try:
        return _decide(
            approval_id,
            decision,
            user_id=user_id,
            data=data,
            org_id=org_id,
            actor=actor,
            now=now,
            kind=kind,
            button=button,
        )
    except AlreadyDecided:
        raise  # a lost race, not bad input
    except UserError as err:  # bad input is recorded, never silently dropped
        from worker.events import record_rejected

        attempt = {
            "approval_id": str(approval_id),
            "decision": decision,
            "user_id": str(user_id),
            "data": dict(data) if data else None,
        }
        record_rejected(actor, str(err), type(err).__name__, body=json.dumps(attempt, default=str), org_id=org_id)
        raise


def _decide(
    approval_id: uuid.UUID,
    decision: str,
    *,
    user_id: uuid.UUID,
    data: Mapping[str, Any] | None,
    org_id: uuid.UUID | None,
    actor: str,
    now: datetime,
    kind: str | None = None,
    button: str | None = None,
) -> Decision:
    with transaction() as conn:
        approval = _load_for_decision(conn, approval_id, org_id, user_id)
        if kind is not None and approval.kind != kind:
            raise InvalidDecision(f"{button or decision} does not apply to a {approval.kind} request")
        if approval.user_id is None:
            raise NotAuthorized(f"user {user_id} is not a member of this approval's org")
        user = _Decider(
            approval.user_id, approval.user_org_id, approval.user_role, approval.user_name, approval.user_email
        )
        if not may_decide(conn, approval, user):
            raise NotAuthorized(
                f"{user.name or user.email} may not decide this approval: only its approvers, the deal owner "
                "or an org admin can"
            )
        spec = registry.get(approval.job_event_type).step(approval.step).approval
        assert spec is not None
        try:
            outcome = spec.outcome(decision)
        except KeyError:
            raise InvalidDecision(f"{decision!r} is not a decision of a {approval.kind} approval") from None
        new = {"proceed": A.APPROVED, "stop": A.REJECTED, "rerun": A.SUPERSEDED}[outcome]
        if approval.status != A.PENDING:  # decided already (the usual loser of a race): no UPDATE to try
            raise _lost(conn, approval, now, approval.decider_name)
        won = store.set_approval_status(
            conn,
            approval_id,
            new,
            now,
            require_unexpired=True,
            decision=decision,
            decision_data=dict(data) if data else None,
            decided_by=user.id,
            decided_at=now,
        )
        if won is None:
            raise _lost(conn, _load(conn, approval_id, None), now)
        record(
            conn,
            approval.org_id,
            actor=actor,
            actor_user_id=user.id,
            action=f"approval.{decision}",
            target_type="approval",
            target_id=str(approval_id),
            data=dict(data) if data else None,
        )
    prom.approval_decided(approval.kind, new.value, prom.seconds_between(approval.created_at, now))
    publish_resume(approval_id)
    return Decision(approval_id, approval.job_id, new.value, decision, user.id, now)


# --------------------------------------------------------------------------- resume


def resume(approval_id: uuid.UUID, now: datetime | None = None, *, publish: bool = True) -> list[Publish]:
    """Apply a recorded decision or expiry to its job, once; publishes what became ready (or, with
    `publish=False`, returns it for the caller to publish or run)."""
    from worker import engine

    now = now or utcnow()
    with transaction() as conn:
        head = conn.execute(select(approvals.c.job_id).where(approvals.c.id == approval_id)).first()
        if head is None:
            return []
        locked = store.lock_job(conn, head.job_id)
        if locked is None:
            return []
        job = dict(locked._mapping)
        claimed = conn.execute(
            update(approvals)
            .where(
                approvals.c.id == approval_id,
                approvals.c.resumed_at.is_(None),
                approvals.c.status.in_([s.value for s in DECIDED]),
            )
            .values(resumed_at=now)
            .returning(*approvals.c)
        ).first()
        if claimed is None or job["status"] in JOB_FINAL:
            return []
        sequence = registry.get(job["event_type"])
        pubs = _apply(conn, job, sequence, claimed, now, engine)
    if publish:
        publish_steps(pubs)
    return pubs


def _apply(
    conn: Connection, job: dict[str, Any], sequence: Sequence, a: Row, now: datetime, engine: Any
) -> list[Publish]:
    try:
        step = sequence.step(a.step)
    except KeyError:  # a deploy removed the step while the job waited: end it, saying why
        return engine.end_job(
            conn,
            job,
            J.FAILED,
            now,
            error=f"approval step {a.step!r} is no longer in the "
            f"{job['event_type']} sequence (changed while the job waited)",
            error_step=a.step,
        )
    who = display_name(conn, a.org_id, a.decided_by)
    when = a.decided_at or now
    if a.status == A.EXPIRED:
        replace_message(conn, a.org_id, a.id, blocks.expired_message(_title(job, step, a.preview or {}), a.expires_at))
        if step.critical:
            return engine.end_job(conn, job, J.EXPIRED, now, reason=f"approval {a.kind} expired", sequence=sequence)
        store.set_step_status(conn, a.step_run_id, S.SKIPPED, now, reason="approval_expired")
        return engine.advance(conn, job, sequence, now).publish
    replace_message(conn, a.org_id, a.id, _decided_message(job, step, a, who, when))
    if a.status == A.REJECTED:
        why = f"{who} chose {blocks.decision_label(a.decision or 'reject')}"
        store.set_step_status(conn, a.step_run_id, S.CANCELLED, now, reason=why)
        return engine.end_job(conn, job, J.CANCELLED, now, reason=why, sequence=sequence)
    if a.status == A.SUPERSEDED:
        return _rerun(conn, job, sequence, a, now, engine)
    output = {
        "approval_id": str(a.id),
        "preview": a.preview,
        "decision": a.decision,
        "data": a.decision_data or {},
        "decided_by": str(a.decided_by) if a.decided_by else None,
        "decided_at": when.isoformat(),
    }
    store.set_step_status(conn, a.step_run_id, S.SUCCEEDED, now, output=output)
    return engine.advance(conn, job, sequence, now).publish


# Decisions after which an approved email goes out once the Undo window has passed (docs/sequences.md).
UNDOABLE_SENDS = frozenset({"send_now", "edit"})


def _decided_message(job: Mapping[str, Any], step: Step, a: Row, who: str, when: datetime) -> dict[str, Any]:
    """What replaces an approval's message: an Undo button while an approved email waits to go,
    else "<decision> by <who> at <when>"."""
    preview = a.preview or {}
    if a.kind == "email_preview" and a.status == A.APPROVED and a.decision in UNDOABLE_SENDS:
        from datetime import timedelta

        from worker.config import get_settings

        data = a.decision_data or {}
        send_at = when + timedelta(seconds=get_settings().undo_window_s)
        return blocks.email_sent_with_undo(
            str(a.id), preview.get("to") or "", data.get("subject") or preview.get("subject") or "", send_at
        )
    return blocks.decided_message(_title(job, step, preview), a.decision or a.status, who, when, _detail(a))


def _detail(a: Row) -> str:
    """What a decision chose, in words: the time of an invite ("" for every other decision)."""
    if a.decision != "send_invite":
        return ""
    slots = [s for s in (a.preview or {}).get("slots") or [] if isinstance(s, Mapping)]
    wanted = (a.decision_data or {}).get("slot")
    chosen = next((s for s in slots if s.get("start") == wanted), slots[0] if slots and not wanted else None)
    return f"for {chosen.get('label') or chosen.get('start')}" if chosen else ""


# --------------------------------------------------------------------------- what the approved action became


@dataclass(frozen=True)
class ActionReport:
    """What an approval's message should say about its approved action (blocks/outcome.py):
    `state` waiting | not_sent | maybe_sent | sent, the reason and what to do in plain words
    (`{link}` in `todo` is where the connect link goes, labelled `link_label`)."""

    state: str
    why: str = ""
    todo: str = ""
    link_label: str = ""


def approval_step_of(sequence: Sequence, step: Step) -> Step | None:
    """The approval step whose approved action `step` carries out (a direct dependency that is an
    approval step: send-followup-email after review-followup-email), or None."""
    for dep in step.deps:
        candidate = sequence.step(dep)
        if candidate.approval is not None:
            return candidate
    return None


def action_report(
    status: str,
    error_class: str | None,
    message: str | None,
    *,
    parked: bool = False,
    job_id: str = "",
) -> ActionReport | None:
    """What to tell the approver after an attempt of the approved action (pure): `status` is the
    attempt's outcome (queued = retried later, `parked` = waiting for Google). None when the message
    must not change (an ordinary retry). A success is always reported: `report_action` replaces only
    a message it makes stale ("waiting", or an email's Undo offer)."""
    why = (message or "").strip()
    if status == "queued":
        if not parked:
            return None
        label = "reconnect here" if error_class == "auth_revoked" else "connect here"
        return ActionReport("waiting", todo="{link} and it will be sent", link_label=label)
    if status == "succeeded":
        return ActionReport("sent")
    if status != "failed":
        return None
    if error_class == "not_connected":
        return ActionReport(
            "not_sent",
            "Google was still not connected after waiting",
            "{link}, then send it yourself",
            "connect Google",
        )
    if error_class == "auth_revoked":
        return ActionReport(
            "not_sent",
            "Google access was revoked and not reconnected in time",
            "{link}, then send it yourself",
            "reconnect Google",
        )
    if error_class == "uncertain":
        return ActionReport(
            "maybe_sent",
            "the send was interrupted and may have gone out",
            "check your Sent folder (or calendar) before sending it yourself",
        )
    if error_class == "poison":  # the worker died each time: maybe mid-send
        return ActionReport(
            "maybe_sent",
            "the worker running it stopped each time it tried",
            "check your Sent folder (or calendar) before sending it yourself",
        )
    if error_class in ("transient", "rate_limited"):
        return ActionReport(
            "not_sent", f"Google did not answer ({why})" if why else "Google did not answer", "send it yourself"
        )
    if error_class == "permanent" and why:
        return ActionReport("not_sent", why, "send it yourself")
    details = f"; details: proactive job {job_id}" if job_id else ""
    return ActionReport(
        "not_sent", f"something went wrong ({why})" if why else "something went wrong", f"send it yourself{details}"
    )


def report_action(
    conn: Connection,
    job: Mapping[str, Any],
    sequence: Sequence,
    step: Step,
    report: ActionReport,
    now: datetime,
    *,
    user_id: uuid.UUID | None = None,
) -> bool:
    """Replace the approved approval's message (the one whose buttons were clicked) with `report`,
    through the outbox (chat.update on its channel + ts, or the console inbox), in the caller's
    transaction. `user_id` is whose Google connect link to show. "sent" only replaces a message it
    makes stale: one that still says "waiting", or still offers an email's Undo button (the email went
    out: the button must go). False when nothing was replaced."""
    import blocks.outcome
    from worker.integrations import NO_LINK, google_connect_link
    from worker.models import SlackOutbox

    outbox = SlackOutbox.__table__
    approval_step = approval_step_of(sequence, step)
    if approval_step is None:
        return False
    a = conn.execute(
        select(approvals)
        .where(
            approvals.c.job_id == job["id"],
            approvals.c.org_id == job["org_id"],
            approvals.c.step == approval_step.name,
            approvals.c.status == A.APPROVED.value,
        )
        .order_by(approvals.c.created_at.desc())
        .limit(1)
    ).first()
    if a is None:
        return False
    preview, data = a.preview or {}, a.decision_data or {}
    if report.state == "sent":
        shown = conn.execute(
            select(outbox.c.blocks)
            .where(outbox.c.approval_id == a.id, outbox.c.org_id == a.org_id, outbox.c.kind == "approval")
            .limit(1)
        ).scalar()
        if not (blocks.outcome.shows_state(shown, "waiting") or blocks.outcome.offers_action(shown, "email_undo")):
            return False  # "Approved by …" (or "Sent") is still true: nothing to replace
    if report.state == "sent" and a.kind == "email_preview":
        message = blocks.email_sent(
            preview.get("to") or "",
            data.get("subject") or preview.get("subject") or "",
            now,
            display_name(conn, a.org_id, a.decided_by),
            edited=a.decision == "edit",
        )
    else:
        link = google_connect_link(job["org_id"], user_id or job.get("user_id")) if report.link_label else None
        message = blocks.outcome.action_outcome(
            _title(job, approval_step, preview),
            report.state,
            why=report.why,
            todo=report.todo,
            link=link,
            link_label=report.link_label,
            no_link=NO_LINK,
            at=blocks.format_utc(now) if report.state == "sent" else "",
        )
    replace_message(conn, a.org_id, a.id, message, now)
    return True


def decided_content(conn: Connection, a: Row) -> dict[str, Any] | None:
    """The message that replaces a decided or expired approval's request: exactly what `resume`
    puts in the outbox for it. None while it is pending or cancelled, or when its step is gone."""
    from worker.models import jobs

    if a.status not in {s.value for s in DECIDED}:
        return None
    job = conn.execute(select(jobs).where(jobs.c.id == a.job_id, jobs.c.org_id == a.org_id)).first()
    if job is None:
        return None
    try:
        step = registry.get(job.event_type).step(a.step)
    except (KeyError, registry.UnknownSequence):
        return None
    facts = dict(job._mapping)
    if a.status == A.EXPIRED:
        return blocks.expired_message(_title(facts, step, a.preview or {}), a.expires_at)
    return _decided_message(facts, step, a, display_name(conn, a.org_id, a.decided_by), a.decided_at or utcnow())


def request_content(conn: Connection, a: Row) -> dict[str, Any]:
    """The message an approval was opened with (the draft, proposal or times as the rep first saw
    them), rebuilt from its stored preview: a decision's replacement overwrote it in the outbox."""
    from worker.models import jobs

    preview = a.preview or {}
    title = preview.get("title")
    if not title:
        event_type = conn.execute(select(jobs.c.event_type).where(jobs.c.id == a.job_id)).scalar() or ""
        try:
            title = _title({"event_type": event_type}, registry.get(event_type).step(a.step), preview)
        except (KeyError, registry.UnknownSequence):
            title = a.step.replace("-", " ").capitalize()
    return blocks.approval_blocks(a.kind, str(a.id), {**preview, "title": title})


def _rerun(
    conn: Connection, job: dict[str, Any], sequence: Sequence, a: Row, now: datetime, engine: Any
) -> list[Publish]:
    """ "More options": retire the runs from the re-run step on, and queue that step again."""
    assert sequence.step(a.step).approval is not None
    target = sequence.step(a.step).approval.rerun_from[a.decision]
    redo = sequence.downstream(target)
    conn.execute(
        update(steps)
        .where(steps.c.job_id == job["id"], steps.c.step.in_(redo), steps.c.superseded.is_(False))
        .values(superseded=True)
    )
    store.set_step_status(conn, a.step_run_id, S.CANCELLED, now, reason="more options requested")
    iteration = (job.get("iteration") or 0) + 1
    from worker.models import jobs

    conn.execute(update(jobs).where(jobs.c.id == job["id"]).values(iteration=iteration))
    job["iteration"] = iteration
    return engine.advance(conn, job, sequence, now).publish


def expire_due(now: datetime | None = None, limit: int = 500) -> int:
    """Expire pending approvals past their expiry and apply it to their jobs; returns how many."""
    now = now or utcnow()
    with transaction() as conn:
        due = list(
            conn.execute(
                select(approvals.c.id)
                .where(approvals.c.status == A.PENDING.value, approvals.c.expires_at <= now)
                .limit(limit)
            ).scalars()
        )
    count = 0
    for approval_id in due:
        with transaction() as conn:
            expired = store.set_approval_status(conn, approval_id, A.EXPIRED, now)
            if expired is not None:
                count += 1
                on_commit(lambda kind=expired.kind: prom.approval_decided(kind, A.EXPIRED.value, None))
        try:
            resume(approval_id, now)
        except Exception:  # one broken job must not stop the others' expiry (the sweeper retries it)
            log.exception("applying the expiry of approval %s failed", approval_id)
    return count


def close_pending(conn: Connection, job: Mapping[str, Any], now: datetime, why: str) -> None:
    """The job ended without its pending approvals: cancel them and replace their messages."""
    for a in store.cancel_pending_approvals(conn, job["id"], now):
        replace_message(conn, a.org_id, a.id, blocks.decided_message("Request closed", "cancelled", why, now))


# How a job that ended early reads on an approved action that was still waiting for Google.
_ENDED_WORDS = {
    "cancelled": "the job was cancelled while it waited for Google",
    "timeout": "the job ran out of time while it waited for Google",
    "failed": "the job failed while it waited for Google",
    "expired": "the job expired while it waited for Google",
}


def close_waiting(conn: Connection, job: Mapping[str, Any], now: datetime, status: str) -> int:
    """The job ended (`status`) while an approved action waited for Google: its message, which said
    "waiting … it will be sent", now says it was not sent. Returns how many messages changed."""
    import blocks.outcome
    from worker.models import SlackOutbox

    outbox = SlackOutbox.__table__
    rows = conn.execute(
        select(approvals.c.id, approvals.c.org_id, approvals.c.step, approvals.c.preview, outbox.c.blocks)
        .join(outbox, (outbox.c.approval_id == approvals.c.id) & (outbox.c.kind == "approval"))
        .where(
            approvals.c.job_id == job["id"],
            approvals.c.org_id == job["org_id"],
            approvals.c.status == A.APPROVED.value,
        )
    ).all()
    changed = 0
    for r in rows:
        if not blocks.outcome.shows_state(r.blocks, "waiting"):
            continue
        try:
            title = _title(job, registry.get(job["event_type"]).step(r.step), r.preview or {})
        except (KeyError, registry.UnknownSequence):
            title = str((r.preview or {}).get("title") or "Approval")
        why = _ENDED_WORDS.get(status, f"the job ended ({status}) while it waited for Google")
        message = blocks.outcome.action_outcome(
            title, "not_sent", why=why, todo="send it yourself if it is still wanted"
        )
        replace_message(conn, r.org_id, r.id, message, now)
        changed += 1
    return changed


def undo(approval_id: uuid.UUID, *, user_id: uuid.UUID, org_id: uuid.UUID | None = None, actor: str = "cli") -> str:
    """Undo an approved send inside its undo window: the job ends `cancelled` before the delayed
    step starts. Raises TooLate once that step has started, NotAuthorized/NotFound as `decide`."""
    from worker import engine
    from worker.errors import TooLate

    now = utcnow()
    with transaction() as conn:
        approval = _load(conn, approval_id, org_id)
        user = conn.execute(select(users).where(users.c.id == user_id, users.c.org_id == approval.org_id)).first()
        if user is None or not may_decide(conn, approval, user):
            raise NotAuthorized("only the approvers, the deal owner or an org admin may undo this")
        if approval.status != A.APPROVED:
            raise TooLate(f"nothing to undo: this approval is {approval.status}")
        locked = store.lock_job(conn, approval.job_id)
        job = dict(locked._mapping)
        sequence = registry.get(job["event_type"])
        after = set(sequence.dependents(approval.step))
        started = [
            r
            for r in store.step_states(conn, approval.job_id)
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
