"""The sweeper: repairs whatever the broker or a crash lost, from the database alone.

Each pass (Beat every minute, `proactive sweep`, and once when a worker starts):
- re-publishes `queued` steps older than 30 s whose retry delay has passed (a lost publish);
- re-publishes `running` steps whose lease expired (a killed worker): the claim takes them over;
- expires approvals past their expiry and applies it; resumes decided approvals not yet applied;
- reminds approvers once after 4 h;
- fires follow-ups whose delay has passed;
- times out jobs past their deadline.
Every change is a conditional UPDATE, so several sweepers on several machines do no harm.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from celery.signals import worker_ready
from sqlalchemy import and_, func, or_, select, update

import blocks
from worker import approvals as approvals_mod
from worker import engine, prom, registry
from worker import jobstore as store
from worker.celery_app import celery_app
from worker.config import get_settings
from worker.db import transaction
from worker.delivery import deliver_due, enqueue_message
from worker.events import fire_scheduled
from worker.models import approvals, jobs, steps, utcnow
from worker.publish import Publish, publish_steps
from worker.states import ApprovalStatus, JobStatus, StepStatus

log = logging.getLogger(__name__)
A, J, S = ApprovalStatus, JobStatus, StepStatus

# Rows handled per kind per pass; the next pass takes the rest.
BATCH = 1000
# Approvers get one reminder after this long (hours).
NUDGE_AFTER_H = 4


@dataclass
class SweepReport:
    """Counts of what one pass did."""

    republished: int = 0
    reclaimed: int = 0
    expired_approvals: int = 0
    resumed: int = 0
    nudged: int = 0
    deliveries: int = 0
    followups_fired: int = 0
    timed_out: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict (CLI --json, logs)."""
        return asdict(self)


def _publish_rows(rows: list) -> int:
    pubs: list[Publish] = []
    for row in rows:
        try:
            step = registry.get(row.event_type).step(row.step)
        except (registry.UnknownSequence, KeyError):
            continue
        pubs.append(engine.publish_for(step, row.id))
    return publish_steps(pubs)


def republish_queued(now: datetime, min_age_s: float) -> int:
    """Publish again `queued` steps older than `min_age_s` whose not_before has passed."""
    cutoff = now - timedelta(seconds=min_age_s)
    with transaction() as conn:
        rows = list(
            conn.execute(
                select(steps.c.id, steps.c.step, jobs.c.event_type)
                .join(jobs, jobs.c.id == steps.c.job_id)
                .where(
                    steps.c.status == S.QUEUED.value,
                    steps.c.queued_at <= cutoff,
                    or_(steps.c.not_before.is_(None), steps.c.not_before <= now),
                )
                .limit(BATCH)
            )
        )
        if rows:  # at most one re-publish per row per min_age_s
            conn.execute(update(steps).where(steps.c.id.in_([r.id for r in rows])).values(queued_at=now))
    return _publish_rows(rows)


def reclaim_expired(now: datetime) -> int:
    """Publish `running` steps whose lease expired; the next claim takes them over."""
    with transaction() as conn:
        rows = list(
            conn.execute(
                select(steps.c.id, steps.c.step, jobs.c.event_type)
                .join(jobs, jobs.c.id == steps.c.job_id)
                .where(steps.c.status == S.RUNNING.value, steps.c.lease_expires_at < now)
                .limit(BATCH)
            )
        )
    return _publish_rows(rows)


def resume_decided(now: datetime, min_age_s: float = 30.0) -> int:
    """Apply decisions recorded while no worker picked up their resume (broker or worker down)."""
    cutoff = now - timedelta(seconds=min_age_s)
    with transaction() as conn:
        ids = list(
            conn.execute(
                select(approvals.c.id)
                .where(
                    approvals.c.resumed_at.is_(None),
                    approvals.c.status.in_([s.value for s in approvals_mod.DECIDED]),
                    func.coalesce(approvals.c.decided_at, approvals.c.expires_at) <= cutoff,
                )
                .limit(BATCH)
            ).scalars()
        )
    for approval_id in ids:
        try:
            approvals_mod.resume(approval_id, now)
        except Exception:  # one broken job must not stop the others (the next pass retries it)
            log.exception("resuming approval %s failed", approval_id)
    return len(ids)


def nudge(now: datetime) -> int:
    """Remind approvers once about approvals pending for more than NUDGE_AFTER_H hours."""
    count = 0
    with transaction() as conn:
        rows = list(
            conn.execute(
                update(approvals)
                .where(
                    approvals.c.status == A.PENDING.value,
                    approvals.c.nudged_at.is_(None),
                    approvals.c.created_at <= now - timedelta(hours=NUDGE_AFTER_H),
                    approvals.c.expires_at > now,
                )
                .values(nudged_at=now)
                .returning(
                    approvals.c.id,
                    approvals.c.org_id,
                    approvals.c.job_id,
                    approvals.c.kind,
                    approvals.c.approver_user_ids,
                    approvals.c.expires_at,
                )
            )
        )
        for a in rows:
            approver = a.approver_user_ids[0] if a.approver_user_ids else None
            text = (
                f"Reminder: a {a.kind.replace('_', ' ')} request is waiting for your decision "
                f"(expires {blocks.format_utc(a.expires_at)})."
            )
            enqueue_message(
                conn,
                a.org_id,
                kind="approval_reminder",
                message={"text": text, "blocks": []},
                dedupe_key=f"approval-nudge:{a.id}",
                now=now,
                job_id=a.job_id,
                approval_id=a.id,
                user_id=uuid.UUID(str(approver)) if approver else None,
            )
            count += 1
    return count


def timeout_jobs(now: datetime) -> int:
    """End running jobs past their deadline (time awaiting approval does not count)."""
    with transaction() as conn:
        ids = list(
            conn.execute(
                select(jobs.c.id)
                .where(
                    jobs.c.status.in_([J.QUEUED.value, J.RUNNING.value]),
                    and_(jobs.c.deadline_at.is_not(None), jobs.c.deadline_at < now),
                )
                .limit(BATCH)
            ).scalars()
        )
    count = 0
    for job_id in ids:
        with transaction() as conn:
            locked = store.lock_job(conn, job_id)
            if locked is None or locked.status not in (J.QUEUED, J.RUNNING) or locked.deadline_at >= now:
                continue
            try:
                sequence = registry.get(locked.event_type)
            except registry.UnknownSequence:
                sequence = None
            engine.end_job(
                conn,
                dict(locked._mapping),
                J.TIMEOUT,
                now,
                reason="deadline passed",
                error="job deadline passed",
                sequence=sequence,
            )
            count += 1
    return count


def sweep(now: datetime | None = None, *, requeue_after_s: float | None = None) -> SweepReport:
    """One full pass; safe to run anywhere, any number of times."""
    now = now or utcnow()
    age = get_settings().requeue_after_s if requeue_after_s is None else requeue_after_s
    report = SweepReport()
    report.republished = republish_queued(now, age)
    report.reclaimed = reclaim_expired(now)
    report.expired_approvals = approvals_mod.expire_due(now)
    report.resumed = resume_decided(now)
    report.nudged = nudge(now)
    report.deliveries = deliver_due(now)
    report.followups_fired = fire_scheduled(now)
    report.timed_out = timeout_jobs(now)
    prom.sweeper_repaired(report.as_dict())
    if any(report.as_dict().values()):
        log.info("sweep: %s", report.as_dict())
    return report


@celery_app.task(name="proactive.sweep", ignore_result=True, acks_late=True)
def sweep_task() -> dict[str, int]:
    """Beat entry (every minute): one sweeper pass."""
    return sweep().as_dict()


@worker_ready.connect
def _recover_on_start(**_kwargs: object) -> None:
    """A starting worker re-publishes every queued step and expired lease (on the
    embedded broker a SIGKILL loses fetched messages, so durability comes from the database)."""
    if not get_settings().recover_on_start:
        return
    try:
        report = SweepReport(republished=republish_queued(utcnow(), 0), reclaimed=reclaim_expired(utcnow()))
        resumed = resume_decided(utcnow(), 0)
        deliver_due(utcnow())
        prom.sweeper_repaired({**report.as_dict(), "resumed": resumed})
        log.info("worker start recovery: %s, %d decisions resumed", report.as_dict(), resumed)
    except Exception as exc:  # never keep a worker from starting
        log.warning("start-up recovery failed: %s", exc)
