"""Retention: content older than an org's `retention_days` is purged, edge and log rows go after 30
days (docs/architecture.md#retention).

Content is what people wrote or the agent drafted: job payloads, step outputs and follow-ups,
approval previews and decision data, effects' stored results, email bodies and snippets, meeting
transcripts, proposal contents, campaign reply bodies and audit data. Purging clears it and stamps
`purged_at`; the rows stay with their metadata (who, what, when, status, durations, errors), so job
history, the audit trail and the metrics (worker/metrics/report.py, worker/metrics/rollup.py: they read no
content) are unchanged. A job's content goes with its steps', approvals' and effects', in one
transaction, only once the job is final: a job still queued, running or awaiting approval keeps
everything however old it is (and so does a proposal of such a job).

`cron_runs`, `gmail_pushes`, `rejected_events` and delivered (sent, console or failed) Slack
messages are deleted after 30 days; nothing references them. A message of a job the metrics have
not folded yet stays until it is folded (its latency is still read live).

A batch is at most `batch` rows (1,000; for jobs, 1,000 jobs with their steps, approvals and
effects, found by job id), chosen through an index (the partial (org_id, created_at) indexes of
unpurged rows, migration 0012), and commits: no long locks. Work
goes round-robin, one batch per (org, table) in turn. The Beat task (daily) stops after
TASK_BUDGET_S, so it never holds the `beat` queue long; what is left goes the next day, or at once
with `proactive purge` (which also shows, with --dry-run, what would go).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, exists, func, or_, select, update

from worker.celery_app import celery_app
from worker.crons.tasks import cron_now
from worker.db import transaction
from worker.engine.states import JOB_ACTIVE, JOB_FINAL
from worker.models import (
    AuditLog,
    CampaignReply,
    CronRun,
    Effect,
    Email,
    GmailPush,
    Meeting,
    Org,
    Proposal,
    RejectedEvent,
    SlackOutbox,
    approvals,
    jobs,
    steps,
    utcnow,
)
from worker.orgs import org_retention_days
from worker.slack.delivery import DeliveryStatus

log = logging.getLogger(__name__)

# Rows per statement (and per transaction).
BATCH = 1000
# Edge and log rows (cron_runs, gmail_pushes, rejected_events, delivered Slack messages) are kept this long.
LOG_KEEP_DAYS = 30
# The Beat task stops starting batches after this long (seconds); the rest waits for the next day.
TASK_BUDGET_S = 60.0

effects = Effect.__table__
outbox = SlackOutbox.__table__
DELIVERED = (DeliveryStatus.SENT, DeliveryStatus.CONSOLE, DeliveryStatus.FAILED)
FINAL = sorted(s.value for s in JOB_FINAL)
LIVE = sorted(s.value for s in JOB_ACTIVE)


# --------------------------------------------------------------------------- what is due (pure)


@dataclass(frozen=True)
class OrgDue:
    """One org's retention: its days, the instant before which its content goes, and the problem
    with its stored setting, if any (the default is used then)."""

    org_id: uuid.UUID
    name: str
    days: int
    cutoff: datetime
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "org_id": str(self.org_id),
            "name": self.name,
            "retention_days": self.days,
            "cutoff": self.cutoff.isoformat(),
            "problem": self.problem,
        }


def org_plan(orgs: Iterable[tuple[uuid.UUID, str, Mapping[str, Any] | None]], now: datetime) -> list[OrgDue]:
    """For each (id, name, settings): the retention and cutoff (content created before it goes)."""
    plan = []
    for org_id, name, settings in orgs:
        days, problem = org_retention_days(settings)
        plan.append(OrgDue(org_id, name, days, now - timedelta(days=days), problem))
    return plan


def log_cutoff(now: datetime) -> datetime:
    """Edge and log rows created before this instant are deleted."""
    return now - timedelta(days=LOG_KEEP_DAYS)


# --------------------------------------------------------------------------- the targets

Counts = dict[str, int]


class Target:
    """One kind of work: which rows are due (`count`) and one bounded batch of it (`run`). The first
    table in `tables` is the one a batch is counted in (a batch short of `batch` rows ends it)."""

    name: str
    tables: tuple[str, ...]
    per_org: bool = True

    def count(self, conn: Connection, cutoff: datetime, org_id: uuid.UUID | None) -> Counts:
        """Rows that would go now, per table."""
        raise NotImplementedError

    def run(self, conn: Connection, cutoff: datetime, org_id: uuid.UUID | None, now: datetime, batch: int) -> Counts:
        """Purge or delete one batch (at most `batch` rows of the first table), per table."""
        raise NotImplementedError


class JobContent(Target):
    """Final jobs' payloads with their steps' outputs and follow-ups, approvals' previews and decision
    data and effects' results, a batch of jobs at a time (steps and approvals are found by job id)."""

    name = "sequence_jobs"
    tables = ("sequence_jobs", "step_runs", "approvals", "effects")

    def _due(self, cutoff: datetime, org_id: uuid.UUID) -> ColumnElement[bool]:
        return and_(
            jobs.c.org_id == org_id,
            jobs.c.purged_at.is_(None),
            jobs.c.created_at < cutoff,
            jobs.c.status.in_(FINAL),
        )

    def _children(self, due_ids: Any, org_id: uuid.UUID) -> dict[str, ColumnElement[bool]]:
        return {
            "step_runs": and_(steps.c.org_id == org_id, steps.c.job_id.in_(due_ids), steps.c.purged_at.is_(None)),
            "approvals": and_(
                approvals.c.org_id == org_id, approvals.c.job_id.in_(due_ids), approvals.c.purged_at.is_(None)
            ),
            "effects": and_(effects.c.org_id == org_id, effects.c.job_id.in_(due_ids), effects.c.result.is_not(None)),
        }

    def count(self, conn: Connection, cutoff: datetime, org_id: uuid.UUID | None) -> Counts:
        assert org_id is not None
        due = self._due(cutoff, org_id)
        counts = {"sequence_jobs": conn.execute(select(func.count()).select_from(jobs).where(due)).scalar_one()}
        tables = {"step_runs": steps, "approvals": approvals, "effects": effects}
        for name, cond in self._children(select(jobs.c.id).where(due), org_id).items():
            counts[name] = conn.execute(select(func.count()).select_from(tables[name]).where(cond)).scalar_one()
        return counts

    def run(self, conn: Connection, cutoff: datetime, org_id: uuid.UUID | None, now: datetime, batch: int) -> Counts:
        assert org_id is not None
        ids = list(
            conn.execute(
                select(jobs.c.id).where(self._due(cutoff, org_id)).order_by(jobs.c.created_at).limit(batch)
            ).scalars()
        )
        if not ids:
            return dict.fromkeys(self.tables, 0)
        cond = self._children(ids, org_id)
        # not state moves (content cleared, purged_at stamped; every status stays): written here, not in
        # worker/engine/jobstore.py
        counts = {
            "step_runs": conn.execute(
                update(steps).where(cond["step_runs"]).values(output=None, follow_ups=None, purged_at=now)
            ).rowcount,
            "approvals": conn.execute(
                update(approvals).where(cond["approvals"]).values(preview={}, decision_data=None, purged_at=now)
            ).rowcount,
            "effects": conn.execute(update(effects).where(cond["effects"]).values(result=None)).rowcount,
        }
        counts["sequence_jobs"] = conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(ids), jobs.c.org_id == org_id, jobs.c.purged_at.is_(None))
            .values(payload={}, purged_at=now)
        ).rowcount
        return counts


class RowContent(Target):
    """One table's content columns cleared (and `purged_at` stamped) on rows older than the cutoff."""

    def __init__(self, table: Table, cleared: Mapping[str, Any], keep: Callable[[Table], Any] | None = None) -> None:
        self.table = table
        self.name = table.name
        self.tables = (table.name,)
        self.cleared = dict(cleared)
        self.keep = keep  # rows to keep whatever their age (a condition on the table)

    def _due(self, cutoff: datetime, org_id: uuid.UUID) -> ColumnElement[bool]:
        t = self.table
        cond = and_(t.c.org_id == org_id, t.c.purged_at.is_(None), t.c.created_at < cutoff)
        return cond if self.keep is None else and_(cond, ~self.keep(t))

    def count(self, conn: Connection, cutoff: datetime, org_id: uuid.UUID | None) -> Counts:
        assert org_id is not None
        n = conn.execute(select(func.count()).select_from(self.table).where(self._due(cutoff, org_id))).scalar_one()
        return {self.name: n}

    def run(self, conn: Connection, cutoff: datetime, org_id: uuid.UUID | None, now: datetime, batch: int) -> Counts:
        assert org_id is not None
        t = self.table
        chosen = select(t.c.id).where(self._due(cutoff, org_id)).order_by(t.c.created_at).limit(batch)
        done = conn.execute(
            update(t)
            .where(t.c.id.in_(chosen), t.c.org_id == org_id, t.c.purged_at.is_(None))
            .values(**self.cleared, purged_at=now)
        ).rowcount
        return {self.name: done}


class OldRows(Target):
    """Rows deleted once older than LOG_KEEP_DAYS (by `age`), per org or across orgs."""

    def __init__(self, table: Table, age: str, *, per_org: bool, also: Callable[[Table], Any] | None = None) -> None:
        self.table = table
        self.name = table.name
        self.tables = (table.name,)
        self.age = table.c[age]
        self.per_org = per_org
        self.also = also  # a further condition rows must meet to go

    def _due(self, cutoff: datetime, org_id: uuid.UUID | None) -> ColumnElement[bool]:
        cond = self.age < cutoff
        if self.per_org:
            cond = and_(self.table.c.org_id == org_id, cond)
        return cond if self.also is None else and_(cond, self.also(self.table))

    def count(self, conn: Connection, cutoff: datetime, org_id: uuid.UUID | None) -> Counts:
        n = conn.execute(select(func.count()).select_from(self.table).where(self._due(cutoff, org_id))).scalar_one()
        return {self.name: n}

    def run(self, conn: Connection, cutoff: datetime, org_id: uuid.UUID | None, now: datetime, batch: int) -> Counts:
        t = self.table
        # No ORDER BY: any `batch` of the due rows will do, and the index scan stops after them.
        chosen = select(t.c.id).where(self._due(cutoff, org_id)).limit(batch)
        return {self.name: conn.execute(delete(t).where(t.c.id.in_(chosen))).rowcount}


def _of_live_job(t: Table) -> Any:
    """A proposal of a job still queued, running or awaiting approval (found by the job's id)."""
    return exists().where(jobs.c.id == t.c.job_id, jobs.c.status.in_(LIVE))


def _delivered_and_folded(t: Table) -> Any:
    """A message delivered (or given up), whose job, if any, the metrics have folded already."""
    unfolded_job = exists().where(jobs.c.id == t.c.job_id, jobs.c.rolled_up_at.is_(None))
    return and_(t.c.status.in_(DELIVERED), or_(t.c.job_id.is_(None), ~unfolded_job))


# Content purged after the org's retention, in this order (with their content columns).
CONTENT: tuple[Target, ...] = (
    JobContent(),
    RowContent(Email.__table__, {"body": None, "snippet": None}),
    RowContent(Meeting.__table__, {"transcript": None}),
    RowContent(Proposal.__table__, {"content": {}}, keep=_of_live_job),
    RowContent(CampaignReply.__table__, {"body": None}),
    RowContent(AuditLog.__table__, {"data": None}),
)
# Rows deleted after LOG_KEEP_DAYS: the org's delivered messages; the edge's and crons' rows (global:
# their org may be unknown, e.g. a rejected request or a cron tick).
LOGS: tuple[Target, ...] = (
    OldRows(outbox, "created_at", per_org=True, also=_delivered_and_folded),
    OldRows(CronRun.__table__, "started_at", per_org=False),
    OldRows(GmailPush.__table__, "received_at", per_org=False),
    OldRows(RejectedEvent.__table__, "created_at", per_org=False),
)
# What each table loses, for people (the CLI's table and docs).
WHAT = {
    "sequence_jobs": "payload",
    "step_runs": "output, follow-ups",
    "approvals": "preview, decision data",
    "effects": "stored result",
    "emails": "body, snippet",
    "meetings": "transcript",
    "proposals": "content",
    "campaign_replies": "body",
    "audit_log": "data",
    "slack_outbox": f"delivered messages deleted ({LOG_KEEP_DAYS} days)",
    "cron_runs": f"rows deleted ({LOG_KEEP_DAYS} days)",
    "gmail_pushes": f"rows deleted ({LOG_KEEP_DAYS} days)",
    "rejected_events": f"rows deleted ({LOG_KEEP_DAYS} days)",
}


# --------------------------------------------------------------------------- running it


@dataclass
class PurgeReport:
    """What went (or, in a dry run, would go): rows per table, non-empty batches per target."""

    dry_run: bool
    orgs: list[OrgDue]
    rows: Counts = field(default_factory=lambda: dict.fromkeys(WHAT, 0))
    batches: Counts = field(default_factory=dict)
    finished: bool = True  # False when the time budget ran out with work left
    seconds: float = 0.0

    def add(self, counts: Counts) -> None:
        """Add one batch's (or one count's) rows."""
        for table, n in counts.items():
            self.rows[table] = self.rows.get(table, 0) + n

    @property
    def total(self) -> int:
        """Rows in every table."""
        return sum(self.rows.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (`proactive purge --json`, the Beat task's cron_runs counts)."""
        return {
            "dry_run": self.dry_run,
            "finished": self.finished,
            "seconds": round(self.seconds, 3),
            "rows": dict(self.rows),
            "batches": dict(self.batches),
            "orgs": [o.as_dict() for o in self.orgs],
        }


@dataclass
class _Work:
    target: Target
    cutoff: datetime
    org_id: uuid.UUID | None


def _work(plan: list[OrgDue], now: datetime, *, with_global: bool) -> list[_Work]:
    """Every (target, org) to do: content per org at its cutoff, logs at LOG_KEEP_DAYS."""
    work = [_Work(t, o.cutoff, o.org_id) for o in plan for t in CONTENT]
    work += [_Work(t, log_cutoff(now), o.org_id) for o in plan for t in LOGS if t.per_org]
    if with_global:
        work += [_Work(t, log_cutoff(now), None) for t in LOGS if not t.per_org]
    return work


def purge(
    *,
    now: datetime | None = None,
    org_id: uuid.UUID | None = None,
    dry_run: bool = False,
    batch: int = BATCH,
    budget_s: float | None = None,
    progress: Callable[[PurgeReport], None] | None = None,
) -> PurgeReport:
    """Purge what is due (every org, or only `org_id`: then the global log tables are left alone),
    `batch` rows per transaction, round-robin over (org, table) until nothing is left or `budget_s`
    has passed. `dry_run` counts instead (one read, nothing changed). `progress` sees the report
    after each batch."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    now = now or utcnow()
    started = time.monotonic()
    with transaction() as conn:
        q = select(Org.id, Org.name, Org.settings).order_by(Org.created_at, Org.id)
        if org_id is not None:
            q = q.where(Org.id == org_id)
        plan = org_plan(conn.execute(q).all(), now)
    report = PurgeReport(dry_run=dry_run, orgs=plan)
    work = _work(plan, now, with_global=org_id is None)
    if dry_run:
        with transaction() as conn:
            for w in work:
                report.add(w.target.count(conn, w.cutoff, w.org_id))
        report.seconds = time.monotonic() - started
        return report
    while work:
        for w in list(work):
            if budget_s is not None and time.monotonic() - started >= budget_s:
                report.finished = False
                report.seconds = time.monotonic() - started
                return report
            with transaction() as conn:
                counts = w.target.run(conn, w.cutoff, w.org_id, now, batch)
            report.add(counts)
            first = counts[w.target.tables[0]]
            if first:
                report.batches[w.target.name] = report.batches.get(w.target.name, 0) + 1
            if first < batch:
                work.remove(w)
            if progress is not None and first:
                report.seconds = time.monotonic() - started
                progress(report)
    report.seconds = time.monotonic() - started
    return report


@celery_app.task(name="proactive.retention", ignore_result=True, acks_late=True)
def retention_task() -> dict[str, Any]:
    """Beat entry (daily): purge what is due, for at most TASK_BUDGET_S. "Now" is the cron bodies'
    (PROACTIVE_CRON_CLOCK_FILE in tests walking a simulated day; the wall clock otherwise)."""
    report = purge(now=cron_now(), budget_s=TASK_BUDGET_S)
    for o in report.orgs:
        if o.problem:
            log.warning("retention: org %s (%s): %s", o.name, o.org_id, o.problem)
    log.info(
        "retention: %d rows purged or deleted in %.1f s%s",
        report.total,
        report.seconds,
        "" if report.finished else " (time budget spent: the rest goes tomorrow, or run `proactive purge`)",
    )
    return report.as_dict()
