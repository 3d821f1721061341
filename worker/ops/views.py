"""Read-side queries shared by the CLI, the HTTP API and the admin pages: jobs, one job's timeline.

Every function takes an optional org id; when given, rows of other orgs are invisible (NotFound),
so an org's API key can never read another org's job. A job's `errors` counts its failed steps (a
`completed` job whose best-effort steps failed is never shown like a clean run), and `failed_steps`
names them with their errors. A job's detail also links its parent and its follow-up jobs and lists
its external side effects, so `proactive job ID`, `GET /api/jobs/<id>` and the timeline page show
the same facts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select

from worker.db import transaction
from worker.engine import pinned, registry
from worker.engine.dag import DefinitionError
from worker.engine.states import JOB_FINAL, JobStatus
from worker.errors import NotFound
from worker.models import Effect, Org, ScheduledEvent, SlackOutbox, User, approvals, jobs, steps
from worker.orgs import org_retention_days

outbox = SlackOutbox.__table__
effects = Effect.__table__
scheduled = ScheduledEvent.__table__

# States a caller waiting on a job stops at: final, or paused for a person.
SETTLED = frozenset({*JOB_FINAL, JobStatus.AWAITING_APPROVAL})
# First and longest pause between two looks at a waited-on job (seconds): quick jobs answer fast,
# slow ones cost at most four short queries a second.
WAIT_FIRST_POLL_S = 0.02
WAIT_MAX_POLL_S = 0.25


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# Error classes of a step that waits for the user to connect Google (engine.PARKED_CLASSES).
WAITING_CLASSES = frozenset({"auth_revoked", "not_connected"})


def _failed_count() -> Any:
    """Per job row: how many of its current (not superseded) step runs failed."""
    return (
        select(func.count())
        .select_from(steps)
        .where(
            steps.c.job_id == jobs.c.id,
            steps.c.org_id == jobs.c.org_id,
            steps.c.status == "failed",
            steps.c.superseded.is_(False),
        )
        .scalar_subquery()
    )


def list_jobs(
    conn: Connection,
    *,
    org_id: uuid.UUID | None = None,
    status: str | None = None,
    event_type: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Newest jobs first, filtered by org, status and type, each with its count of failed steps."""
    q = select(jobs, _failed_count().label("errors")).order_by(jobs.c.created_at.desc()).limit(limit)
    if org_id is not None:
        q = q.where(jobs.c.org_id == org_id)
    if status:
        q = q.where(jobs.c.status == status)
    if event_type:
        q = q.where(jobs.c.event_type == event_type)
    return [_job_summary(r) for r in conn.execute(q)]


def _job_summary(r: Any) -> dict[str, Any]:
    duration = None
    if r.finished_at and (r.started_at or r.created_at):
        duration = int(((r.finished_at - (r.started_at or r.created_at)).total_seconds()) * 1000) - (r.paused_ms or 0)
    return {
        "id": str(r.id),
        "org_id": str(r.org_id),
        "user_id": str(r.user_id) if r.user_id else None,
        "event_type": r.event_type,
        "source": r.source,
        "status": r.status,
        "reason": r.reason,
        "idempotency_key": r.idempotency_key,
        "parent_job_id": str(r.parent_job_id) if r.parent_job_id else None,
        "depth": r.depth,
        "error": r.error,
        "error_step": r.error_step,
        "errors": int(getattr(r, "errors", 0) or 0),
        "created_at": _iso(r.created_at),
        "started_at": _iso(r.started_at),
        "finished_at": _iso(r.finished_at),
        "duration_ms": duration,
        "cancel_requested": r.cancel_requested,
        "dry_run": bool(r.dry_run),  # sends recorded, not made; Slack kept in the console inbox
        # skipped already_live: the live job of the same rep and deal (worker/engine/one_live.py)
        "live_job_id": str(r.live_job_id) if getattr(r, "live_job_id", None) else None,
        # fired with delay_minutes: when its first steps may start
        "scheduled_for": _iso(getattr(r, "scheduled_for", None)),
        # when retention cleared its payload, step outputs and approval drafts (worker/ops/retention.py)
        "purged_at": _iso(getattr(r, "purged_at", None)),
    }


def purged_note(purged_at: str | None, retention_days: int | None) -> str | None:
    """What a purged job's views say instead of showing its cleared content as if it were real
    ("content purged on 2026-03-01 (retention 90 days)"); None for a job not purged."""
    if not purged_at:
        return None
    kept = f" (retention {retention_days} days)" if retention_days else ""
    return f"content purged on {purged_at[:10]}{kept}: payload, step outputs and approval drafts are gone"


def job_detail(conn: Connection, job_id: uuid.UUID, org_id: uuid.UUID | None = None) -> dict[str, Any]:
    """One job with its steps (in sequence order, re-runs included) and approvals."""
    q = select(jobs).where(jobs.c.id == job_id)
    if org_id is not None:
        q = q.where(jobs.c.org_id == org_id)
    row = conn.execute(q).first()
    if row is None:
        raise NotFound(f"job {job_id} not found")
    out = _job_summary(row)
    out["payload"] = row.payload
    out["trace_id"] = row.trace_id
    # a purged job's content was cleared by retention: say so (and under which retention) rather than
    # showing an empty payload and no outputs as if the job had none
    out["retention_days"] = None
    if row.purged_at is not None:
        settings = conn.execute(select(Org.settings).where(Org.id == row.org_id)).scalar()
        out["retention_days"] = org_retention_days(settings)[0]
    out["purged"] = purged_note(out["purged_at"], out["retention_days"])
    try:  # the step order of the definition the job started with (worker/engine/pinned.py)
        order = {name: i for i, name in enumerate(pinned.for_job(conn, row._mapping).order)}
    except (registry.UnknownSequence, DefinitionError):
        order = {}
    step_rows = sorted(
        conn.execute(select(steps).where(steps.c.job_id == job_id, steps.c.org_id == row.org_id)),
        key=lambda s: (order.get(s.step, 999), s.iteration),
    )
    out["steps"] = [
        {
            "id": str(s.id),
            "step": s.step,
            "iteration": s.iteration,
            "superseded": s.superseded,
            "status": s.status,
            "reason": s.reason,
            "attempt": s.attempt,
            "queue": s.queue,
            "duration_ms": s.duration_ms,
            "error": s.error,
            "error_class": s.error_class,
            "waiting": s.status == "queued" and s.error_class in WAITING_CLASSES,
            "not_before": _iso(s.not_before),
            "queued_at": _iso(s.queued_at),
            "started_at": _iso(s.started_at),
            "finished_at": _iso(s.finished_at),
            "output": s.output,
            "cost_usd": s.cost_usd,
            "purged_at": _iso(s.purged_at),  # output cleared by retention
        }
        for s in step_rows
    ]
    out["failed_steps"] = [
        {"step": s["step"], "error": s["error"], "error_class": s["error_class"]}
        for s in out["steps"]
        if s["status"] == "failed" and not s["superseded"]
    ]
    out["errors"] = len(out["failed_steps"])
    names = dict(conn.execute(select(User.id, User.name).where(User.org_id == row.org_id)).all())
    out["approvals"] = [
        {
            "id": str(a.id),
            "step": a.step,
            "kind": a.kind,
            "status": a.status,
            "decision": a.decision,
            "decision_data": a.decision_data,
            "approvers": [names.get(uuid.UUID(str(u)), str(u)) for u in a.approver_user_ids or []],
            "decided_by": names.get(a.decided_by, str(a.decided_by)) if a.decided_by else None,
            "decided_at": _iso(a.decided_at),
            "expires_at": _iso(a.expires_at),
            "created_at": _iso(a.created_at),
            "purged_at": _iso(a.purged_at),  # preview and edits cleared by retention
        }
        for a in conn.execute(
            select(approvals)
            .where(approvals.c.job_id == job_id, approvals.c.org_id == row.org_id)
            .order_by(approvals.c.created_at)
        )
    ]
    out["messages"] = [
        {
            "id": str(m.id),
            "kind": m.kind,
            "status": m.status,
            "error_code": m.error_code,
            "error": m.error,
            "channel": m.channel,
            "ts": m.ts,
            "not_before": _iso(m.not_before),
            "attempts": m.attempts,
            "created_at": _iso(m.created_at),
            "sent_at": _iso(m.sent_at),
        }
        for m in conn.execute(
            select(outbox).where(outbox.c.job_id == job_id, outbox.c.org_id == row.org_id).order_by(outbox.c.created_at)
        )
    ]
    out["effects"] = [_effect(e) for e in conn.execute(_job_rows(effects, row).order_by(effects.c.created_at))]
    out.update(_relatives(conn, row))
    return out


def org_names(conn: Connection, org_ids: Iterable[uuid.UUID | str]) -> dict[str, str]:
    """The names of the given orgs, keyed by id as text (unknown ids are left out)."""
    ids = {uuid.UUID(str(i)) for i in org_ids}
    if not ids:
        return {}
    return {str(i): name for i, name in conn.execute(select(Org.id, Org.name).where(Org.id.in_(ids)))}


def _job_rows(table: Any, job: Any) -> Any:
    """SELECT of `table`'s rows belonging to `job` (org-scoped like every read)."""
    return select(table).where(table.c.job_id == job.id, table.c.org_id == job.org_id)


def _effect(e: Any) -> dict[str, Any]:
    """One external side effect: its name (the last part of its key), state, and what it was about
    (a dry run's recorded request, or the provider's id); never the stored result itself."""
    result = e.result or {}
    request = result.get("request") or {}
    recipients = request.get("to") or request.get("attendees") or []
    return {
        "step": e.step,
        "name": e.key.rsplit(":", 1)[-1],
        "status": e.status,
        "attempt": e.attempt,
        "dry_run": bool(result.get("dry_run")),
        "subject": request.get("subject") or request.get("summary"),
        "recipients": [str(r) for r in recipients][:10],
        "provider_id": None if result.get("dry_run") else result.get("id"),
        "created_at": _iso(e.created_at),
        "done_at": _iso(e.done_at),
    }


def _relatives(conn: Connection, job: Any) -> dict[str, Any]:
    """The job's parent (the job whose completion fired it), its follow-up jobs, and the follow-ups
    still waiting for their time (`scheduled_events`), all within its org."""
    brief = (jobs.c.id, jobs.c.event_type, jobs.c.status, jobs.c.created_at)
    parent = None
    if job.parent_job_id is not None:
        parent = conn.execute(select(*brief).where(jobs.c.id == job.parent_job_id, jobs.c.org_id == job.org_id)).first()
    children = conn.execute(
        select(*brief).where(jobs.c.parent_job_id == job.id, jobs.c.org_id == job.org_id).order_by(jobs.c.created_at)
    )
    waiting = conn.execute(
        select(scheduled)
        .where(scheduled.c.parent_job_id == job.id, scheduled.c.org_id == job.org_id, scheduled.c.fired_at.is_(None))
        .order_by(scheduled.c.fire_at)
    )

    def link(r: Any) -> dict[str, Any]:
        return {"id": str(r.id), "event_type": r.event_type, "status": r.status, "created_at": _iso(r.created_at)}

    return {
        "parent": link(parent) if parent is not None else None,
        "follow_ups": [link(r) for r in children],
        "scheduled_follow_ups": [
            {"event_type": (r.event or {}).get("type"), "fire_at": _iso(r.fire_at), "error": r.error} for r in waiting
        ],
    }


def wait_settled(job_id: uuid.UUID, timeout_s: float) -> str:
    """Poll the job until it is final or paused, or `timeout_s` passes; returns the latest status."""
    deadline = time.monotonic() + timeout_s
    pause = WAIT_FIRST_POLL_S
    q = select(jobs.c.status).where(jobs.c.id == job_id)
    while True:
        with transaction() as conn:
            status = conn.execute(q).scalar_one()
        left = deadline - time.monotonic()
        if status in SETTLED or left <= 0:
            return status
        time.sleep(min(pause, left))  # a poll on a deadline, not a synchronisation
        pause = min(pause * 1.5, WAIT_MAX_POLL_S)
