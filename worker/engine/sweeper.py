"""The sweeper: repairs whatever the broker or a crash lost, from the database alone.

Each pass (Beat every minute, `proactive sweep`, and once when a worker starts):
- re-publishes `queued` steps older than 30 s whose retry delay has passed (a lost publish);
- re-publishes `running` steps whose lease expired (a killed worker): the claim takes them over;
- expires approvals past their expiry and applies it; resumes decided approvals not yet applied;
- reminds every approver once after 4 working hours (weekends do not count);
- times out jobs past their deadline;
- fires follow-ups whose delay has passed (after the timeouts: a job just fired is not judged);
- on PostgreSQL without autovacuum, ANALYZEs our tables never analyzed or mostly rewritten since
  (worker/planner_stats.py).
Every change is a conditional UPDATE, so several sweepers on several machines do no harm.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from celery import bootsteps
from celery.signals import worker_ready
from sqlalchemy import Connection, and_, func, or_, select, tuple_, update

import blocks
from worker.celery_app import celery_app
from worker.config import get_settings
from worker.db import transaction
from worker.engine import approvals as approvals_mod
from worker.engine import executor as engine
from worker.engine import jobstore as store
from worker.engine import pinned, registry
from worker.engine.events import fire_scheduled
from worker.engine.publish import Publish, publish_steps
from worker.engine.states import ApprovalStatus, JobStatus, StepStatus
from worker.metrics import prom
from worker.models import Org, User, approvals, jobs, of_org, steps, utcnow
from worker.planner_stats import analyze_unmanaged
from worker.slack.delivery import deliver_due, enqueue_message, publish_delivery, release_orphaned
from worker.worktime import working_hours_after, zone

log = logging.getLogger(__name__)
A, J, S = ApprovalStatus, JobStatus, StepStatus

# Rows handled per kind per pass; the next pass takes the rest.
BATCH = 1000
# Approvers get one reminder after this many working hours (weekdays in the rep's zone, as the expiry).
NUDGE_AFTER_H = 4
# Pages of BATCH candidate approvals one pass reads at most to find those due for their reminder.
NUDGE_PAGES = 10


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
    with transaction() as conn:  # a job's step is looked up in the definition it started with
        for row in rows:
            try:
                step = pinned.for_job(conn, row._mapping).step(row.step)
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
                select(steps.c.id, steps.c.step, jobs.c.event_type, jobs.c.definition_hash)
                .join(jobs, jobs.c.id == steps.c.job_id)
                .where(
                    steps.c.status == S.QUEUED.value,
                    steps.c.queued_at <= cutoff,
                    or_(steps.c.not_before.is_(None), steps.c.not_before <= now),
                )
                .limit(BATCH)
            )
        )
        # at most one re-publish per row per min_age_s; not a state move (queued_at only): written here
        if rows:
            conn.execute(update(steps).where(steps.c.id.in_([r.id for r in rows])).values(queued_at=now))
    return _publish_rows(rows)


def reclaim_expired(now: datetime) -> int:
    """Publish `running` steps whose lease expired; the next claim takes them over."""
    with transaction() as conn:
        rows = list(
            conn.execute(
                select(steps.c.id, steps.c.step, jobs.c.event_type, jobs.c.definition_hash)
                .join(jobs, jobs.c.id == steps.c.job_id)
                .where(steps.c.status == S.RUNNING.value, steps.c.lease_expires_at < now)
                .limit(BATCH)
            )
        )
    return _publish_rows(rows)


def reclaim_orphaned(now: datetime, alive_since: datetime | None, claimants: Sequence[str] | None = None) -> int:
    """Re-queue and publish the running steps of workers with no heartbeat since `alive_since` (or,
    given `claimants`, of those instances only; with no `alive_since`, claimants known dead, such as a
    worker's killed pool child), and give back the outbox leases they held, publishing those
    deliveries again: a killed worker's steps and Slack messages go out again within seconds
    (worker/engine/heartbeat.py decides when a worker may judge the others). How many steps and
    deliveries were published again."""
    with transaction() as conn:
        held = store.requeue_orphaned(conn, now, alive_since, claimants=claimants)
        found = (
            select(steps.c.id, steps.c.step, jobs.c.event_type, jobs.c.definition_hash)
            .join(jobs, and_(jobs.c.id == steps.c.job_id, of_org(jobs.c.org_id, steps.c.org_id)))
            .where(tuple_(steps.c.org_id, steps.c.id).in_(held))
        )
        rows = list(conn.execute(found)) if held else []
    if rows:
        ids = [str(r.id) for r in rows]
        log.warning("re-queued %d running step(s) whose worker stopped beating: %s", len(ids), ids)
    return (_publish_rows(rows) if rows else 0) + _reclaim_deliveries(now, alive_since, claimants)


def _reclaim_deliveries(now: datetime, alive_since: datetime | None, claimants: Sequence[str] | None) -> int:
    """The outbox part of `reclaim_orphaned`: leases given back (the rows stay marked as possibly
    posted, so their next delivery reconciles first), deliveries published at once."""
    with transaction() as conn:
        released = release_orphaned(conn, now, alive_since, claimants=claimants)
    if not released:
        return 0
    ids = [str(i) for i in released]
    log.warning("gave back %d Slack delivery lease(s) whose worker stopped beating: %s", len(ids), ids)
    return publish_delivery(released)


def resume_decided(now: datetime, min_age_s: float = 30.0) -> int:
    """Apply decisions recorded while no worker picked up their resume (broker or worker down)."""
    cutoff = now - timedelta(seconds=min_age_s)
    with transaction() as conn:
        ids = conn.execute(  # the sweeper's scan of every org; each resume is then scoped by the row's org
            select(approvals.c.id, approvals.c.org_id)
            .where(
                approvals.c.resumed_at.is_(None),
                approvals.c.status.in_([s.value for s in approvals_mod.DECIDED]),
                func.coalesce(approvals.c.decided_at, approvals.c.expires_at) <= cutoff,
            )
            .limit(BATCH)
        ).all()
    for approval_id, org_id in ids:
        try:
            approvals_mod.resume(approval_id, now, org_id=org_id)
        except Exception:  # one broken job must not stop the others (the next pass retries it)
            log.exception("resuming approval %s failed", approval_id)
    return len(ids)


def nudge(now: datetime) -> int:
    """Remind every approver, once, of an approval still pending NUDGE_AFTER_H working hours after it
    opened: counted like its expiry (worker/worktime.py) in the rep's zone (the first approver's, else
    the org's), so weekends do not count. One DM per approver (dedupe key per approval and approver)."""
    count = 0
    with transaction() as conn:
        for a in _nudge_due(conn, now):
            # conditional: one sweeper reminds, however many run. Not a state move (nudged_at only, the
            # approval stays pending): written here, not in jobstore
            claimed = conn.execute(
                update(approvals)
                .where(
                    approvals.c.id == a.id,
                    approvals.c.org_id == a.org_id,
                    approvals.c.status == A.PENDING.value,
                    approvals.c.nudged_at.is_(None),
                )
                .values(nudged_at=now)
                .returning(approvals.c.id)
            ).first()
            if claimed is None:
                continue
            title = str((a.preview or {}).get("title") or "").strip()
            what = f"a {a.kind.replace('_', ' ')} request" + (f" ({title})" if title else "")
            text = f"Reminder: {what} is waiting for your decision (expires {blocks.format_utc(a.expires_at)})."
            for approver in _approver_ids(a.approver_user_ids):
                enqueue_message(
                    conn,
                    a.org_id,
                    kind="approval_reminder",
                    message={"text": text, "blocks": []},
                    dedupe_key=f"approval-nudge:{a.id}:{approver}",
                    now=now,
                    job_id=a.job_id,
                    approval_id=a.id,
                    user_id=approver,
                )
            count += 1
    return count


def _approver_ids(values: list | None) -> list[uuid.UUID]:
    """The approval's approvers as UUIDs, in order, each once (a malformed entry is skipped)."""
    ids: list[uuid.UUID] = []
    for value in values or []:
        try:
            uid = uuid.UUID(str(value))
        except ValueError:
            continue
        if uid not in ids:
            ids.append(uid)
    return ids


def _nudge_due(conn: Connection, now: datetime) -> list:
    """Pending, not yet reminded approvals whose NUDGE_AFTER_H working hours have passed (at most
    BATCH). Working hours never run faster than the clock, so only approvals at least that many clock
    hours old are read, oldest first, a page at a time (an approval opened on a Friday evening waits
    for Monday without holding back the others)."""
    due: list = []
    cursor: tuple[datetime, uuid.UUID] | None = None
    for _page in range(NUDGE_PAGES):
        query = (
            select(
                approvals.c.id,
                approvals.c.org_id,
                approvals.c.job_id,
                approvals.c.kind,
                approvals.c.preview,
                approvals.c.approver_user_ids,
                approvals.c.created_at,
                approvals.c.expires_at,
            )
            .where(
                approvals.c.status == A.PENDING.value,
                approvals.c.nudged_at.is_(None),
                approvals.c.created_at <= now - timedelta(hours=NUDGE_AFTER_H),
                approvals.c.expires_at > now,
            )
            .order_by(approvals.c.created_at, approvals.c.id)
            .limit(BATCH)
        )
        if cursor is not None:
            query = query.where(tuple_(approvals.c.created_at, approvals.c.id) > cursor)
        rows = conn.execute(query).all()
        zones = _rep_zones(conn, rows)
        for a in rows:
            first = next(iter(_approver_ids(a.approver_user_ids)), None)
            tz = zones.get((a.org_id, first)) or zones.get((a.org_id, None)) or zone(None)
            if working_hours_after(a.created_at, tz, NUDGE_AFTER_H) <= now:
                due.append(a)
        if len(rows) < BATCH or len(due) >= BATCH:
            break
        cursor = (rows[-1].created_at, rows[-1].id)
    return due[:BATCH]


def _rep_zones(conn: Connection, rows: list) -> dict[tuple[uuid.UUID, uuid.UUID | None], ZoneInfo]:
    """The zone each approval's working hours count in, as its expiry's (worker/engine/approvals.py
    open_approval): keyed (org, first approver) for the approvers, (org, None) for the orgs."""
    orgs = {a.org_id for a in rows}
    firsts = {(a.org_id, ids[0]) for a in rows if (ids := _approver_ids(a.approver_user_ids))}
    if not orgs:
        return {}
    org_zones = dict(conn.execute(select(Org.id, Org.timezone).where(Org.id.in_(orgs))).all())
    zones: dict[tuple[uuid.UUID, uuid.UUID | None], ZoneInfo] = {
        (org_id, None): zone(org_zones.get(org_id)) for org_id in orgs
    }
    if firsts:
        users = conn.execute(
            select(User.org_id, User.id, User.timezone).where(tuple_(User.org_id, User.id).in_(sorted(firsts, key=str)))
        ).all()
        for u in users:
            zones[(u.org_id, u.id)] = zone(u.timezone, org_zones.get(u.org_id) or "UTC")
    return zones


def timeout_jobs(now: datetime) -> int:
    """End running jobs past their deadline (time awaiting approval does not count)."""
    with transaction() as conn:
        due = conn.execute(  # the sweeper's scan of every org; each job is then locked in its own
            select(jobs.c.id, jobs.c.org_id)
            .where(
                jobs.c.status.in_([J.QUEUED.value, J.RUNNING.value]),
                and_(jobs.c.deadline_at.is_not(None), jobs.c.deadline_at < now),
            )
            .limit(BATCH)
        ).all()
    count = 0
    for job_id, org_id in due:
        with transaction() as conn:
            locked = store.lock_job(conn, job_id, org_id=org_id)
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
    report.deliveries = deliver_due(now, age_s=age)
    report.timed_out = timeout_jobs(now)  # before the follow-ups: a job this pass fires is never judged by it
    report.followups_fired = fire_scheduled(now)
    with transaction() as conn:
        analyze_unmanaged(conn)
    prom.sweeper_repaired(report.as_dict())
    if any(report.as_dict().values()):
        log.info("sweep: %s", report.as_dict())
    return report


@celery_app.task(name="proactive.sweep", ignore_result=True, acks_late=True)
def sweep_task() -> dict[str, int]:
    """Beat entry (every minute): one sweeper pass."""
    return sweep().as_dict()


class RecoverOnReconnect(bootsteps.StartStopStep):
    """A worker whose broker connection came back (a broker restart, a network cut) runs its
    recovery pass again: the publishes the outage refused (next steps, producers' first steps,
    decided approvals, Slack messages) are sent at once instead of waiting for the sweeper. The
    first connection is left to the start-up pass itself (worker_ready). Added to the consumer's
    steps below: the worker imports this module (celery_app `imports`) before it builds them."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def __init__(self, parent: object, **kwargs: object) -> None:
        super().__init__(parent, **kwargs)
        self.connected_before = False

    def start(self, parent: object) -> None:
        if self.connected_before:
            recover("broker reconnect")
        self.connected_before = True


celery_app.steps["consumer"].add(RecoverOnReconnect)


@worker_ready.connect
def recover(why: str = "worker start", **_kwargs: object) -> None:
    """This worker's own recovery pass: re-publish every queued step and expired lease, resume the
    decided approvals and re-publish due deliveries. Run when the worker starts (on the embedded
    broker a SIGKILL loses fetched messages, so durability comes from the database), when its broker
    connection is back (RecoverOnReconnect, above) and when its database is back after an outage
    (heartbeat.Heartbeat.tick): what the outage refused runs now, not at the next sweep."""
    if not get_settings().recover_on_start:
        return
    try:
        report = SweepReport(republished=republish_queued(utcnow(), 0), reclaimed=reclaim_expired(utcnow()))
        resumed = resume_decided(utcnow(), 0)
        deliver_due(utcnow(), age_s=0)
        prom.sweeper_repaired({**report.as_dict(), "resumed": resumed})
        log.info("%s recovery: %s, %d decisions resumed", why, report.as_dict(), resumed)
    except Exception as exc:  # never keep a worker from starting
        log.warning("%s recovery failed: %s", why, exc)
