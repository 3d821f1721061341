"""The approval records a job's steps leave, kept in the step's own transaction: open an approval
(its row and its Slack message), close the ones still pending when the job ends early, and tell an
approved action's message what became of the action (waiting for Google, not sent and why, sent).

The engine (worker/engine/executor.py) writes these as it moves a job; deciding and resuming an
approval (worker/engine/approvals.py) builds on the engine. Nothing here calls back into either, so
the engine depends on this module and never on the decision paths above it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, String, Uuid, bindparam, select

import blocks
import blocks.outcome
from worker.db import on_commit
from worker.engine import jobstore as store
from worker.engine import pinned, registry
from worker.engine.dag import Sequence, Step
from worker.engine.states import ApprovalStatus
from worker.integrations import NO_LINK, google_connect_link
from worker.metrics import prom
from worker.models import Org, SlackOutbox, User, approvals, of_org
from worker.precompiled import Precompiled, PrecompiledInsert
from worker.slack.delivery import enqueue_message, replace_message
from worker.worktime import working_hours_after, zone

A = ApprovalStatus
users = User.__table__
outbox = SlackOutbox.__table__


# The first approver's time zone (NULL when none or not in the org) and the org's, in one read.
_ZONES = Precompiled(
    select(
        select(users.c.timezone)
        .where(users.c.id == bindparam("b_user", type_=Uuid()), of_org(users.c.org_id, Org.id))
        .scalar_subquery()
        .label("user_tz"),
        Org.timezone,
    ).where(Org.id == bindparam("b_org", type_=Uuid()))
)
_INSERT = PrecompiledInsert(approvals)


def approval_title(job: Mapping[str, Any], step: Step, preview: Mapping[str, Any]) -> str:
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
    zones = _ZONES.first(conn, {"b_org": job["org_id"], "b_user": approver_ids[0] if approver_ids else None})
    tz_name, org_tz = zones if zones is not None else (None, None)
    expires_at = working_hours_after(now, zone(tz_name, org_tz or "UTC"), step.approval.expires_working_hours)
    approval_id = uuid.uuid4()
    _INSERT.run(
        conn,
        [
            {
                "id": approval_id,
                "org_id": job["org_id"],
                "job_id": job["id"],
                "step_run_id": step_run_id,
                "step": step.name,
                "kind": step.approval.kind,
                "critical": step.critical,
                "status": A.PENDING.value,
                "approver_user_ids": [str(u) for u in approver_ids],
                "preview": dict(preview),
                "response_url_uses": 0,
                "expires_at": expires_at,
                "created_at": now,
            }
        ],
    )
    on_commit(lambda: prom.approval_opened(step.approval.kind))
    message = blocks.approval_blocks(
        step.approval.kind, str(approval_id), {"title": approval_title(job, step, preview), **preview}
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


def display_name(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID | None) -> str:
    """How a decider is named in messages ("Alice Moreau"; "the system" for no user)."""
    if user_id is None:
        return "the system"
    row = conn.execute(
        select(users.c.name, users.c.email).where(users.c.id == user_id, of_org(users.c.org_id, org_id))
    ).first()
    return (row.name or row.email) if row else str(user_id)


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


# The approved approval of a step (its latest) with the blocks its outbox message shows now: one
# statement, built once with bound parameters (a step after an approval reads it on every success).
_APPROVED_WITH_MESSAGE = Precompiled(
    select(approvals, outbox.c.blocks.label("shown_blocks"))
    .outerjoin(
        outbox,
        (outbox.c.approval_id == approvals.c.id)
        & (outbox.c.org_id == approvals.c.org_id)
        & (outbox.c.kind == "approval"),
    )
    .where(
        approvals.c.job_id == bindparam("b_job", type_=Uuid()),
        approvals.c.org_id == bindparam("b_org", type_=Uuid()),
        approvals.c.step == bindparam("b_step", type_=String()),
        approvals.c.status == A.APPROVED.value,
    )
    .order_by(approvals.c.created_at.desc())
    .limit(1)
)


def approved_message_read(job: Mapping[str, Any], approval_step: Step) -> tuple[Precompiled, dict[str, Any]]:
    """The read `report_action` makes (the approved approval of `approval_step` with the blocks its
    message shows), as a statement and its parameters: a caller that sends it with its own reads
    hands the row on (`found`)."""
    return _APPROVED_WITH_MESSAGE, {"b_job": job["id"], "b_org": job["org_id"], "b_step": approval_step.name}


def sent_report_changes_nothing(conn: Connection, found: tuple[Any, ...] | None) -> bool:
    """Whether a "sent" report on the approval read as `found` (`approved_message_read`'s row) leaves
    its message alone: no approved approval, or a message that says neither "waiting" nor offers an
    email's Undo (so the step's completion writes nothing else)."""
    if found is None:
        return True
    shown = dict(zip(_APPROVED_WITH_MESSAGE.keys(conn), found, strict=True))["shown_blocks"]
    return not (blocks.outcome.shows_state(shown, "waiting") or blocks.outcome.offers_action(shown, "email_undo"))


NOT_READ: Any = object()  # `report_action(found=...)` not given: it reads the row itself


def report_action(
    conn: Connection,
    job: Mapping[str, Any],
    sequence: Sequence,
    step: Step,
    report: ActionReport,
    now: datetime,
    *,
    user_id: uuid.UUID | None = None,
    found: tuple[Any, ...] | None = NOT_READ,
) -> bool:
    """Replace the approved approval's message (the one whose buttons were clicked) with `report`,
    through the outbox (chat.update on its channel + ts, or the console inbox), in the caller's
    transaction. `user_id` is whose Google connect link to show. "sent" only replaces a message it
    makes stale: one that still says "waiting", or still offers an email's Undo button (the email went
    out: the button must go). False when nothing was replaced. `found`: the approval's row as
    `approved_message_read` returns it, when the caller read it already."""
    approval_step = approval_step_of(sequence, step)
    if approval_step is None:
        return False
    row = found
    if row is NOT_READ:
        row = _APPROVED_WITH_MESSAGE.first(conn, approved_message_read(job, approval_step)[1])
    if row is None:
        return False
    a = SimpleNamespace(**dict(zip(_APPROVED_WITH_MESSAGE.keys(conn), row, strict=True)))
    preview, data = a.preview or {}, a.decision_data or {}
    if report.state == "sent" and sent_report_changes_nothing(conn, row):
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
            approval_title(job, approval_step, preview),
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


def close_pending(conn: Connection, job: Mapping[str, Any], now: datetime, why: str) -> None:
    """The job ended without its pending approvals: cancel them and replace their messages."""
    for a in store.cancel_pending_approvals(conn, job["id"], now, org_id=job["org_id"]):
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
    rows = conn.execute(
        select(approvals.c.id, approvals.c.org_id, approvals.c.step, approvals.c.preview, outbox.c.blocks)
        .join(
            outbox,
            (outbox.c.approval_id == approvals.c.id)
            & (outbox.c.org_id == approvals.c.org_id)
            & (outbox.c.kind == "approval"),
        )
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
            title = approval_title(job, pinned.for_job(conn, job).step(r.step), r.preview or {})
        except (KeyError, registry.UnknownSequence):
            title = str((r.preview or {}).get("title") or "Approval")
        why = _ENDED_WORDS.get(status, f"the job ended ({status}) while it waited for Google")
        message = blocks.outcome.action_outcome(
            title, "not_sent", why=why, todo="send it yourself if it is still wanted"
        )
        replace_message(conn, r.org_id, r.id, message, now)
        changed += 1
    return changed
