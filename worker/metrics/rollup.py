"""The metrics roll-up: each settled job folded into `metrics_rollups` once (docs/metrics.md).

A job is settled when it is final, finished at least `SETTLE_S` ago and none of its Slack messages
is still waiting to go out: nothing the metrics count can change any more. The roll-up claims a
batch of settled jobs (`rolled_up_at`), folds them with their step runs, approvals and first
messages (worker/metrics/fold.py) into cells per org and local day, and adds the cells to the
stored rows, all in one transaction: a job is counted in the roll-up or in the metrics' live part,
never both, never neither. One roll-up runs at a time (a PostgreSQL advisory lock; the claim's
row count is checked too). Beat runs it every minute (`proactive.metrics_rollup`);
`proactive metrics-rollup` catches up a backlog (after the upgrade that introduced it) with progress.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Uuid, and_, any_, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from worker.celery_app import celery_app
from worker.db import transaction
from worker.engine.states import JOB_FINAL
from worker.metrics.fold import DAY, WEEK, ApprovalFacts, Cell, CellKey, JobFacts, StepFacts, fold, weekly
from worker.metrics.sketch import Sketch
from worker.models import MetricsRollup, Org, SlackOutbox, approvals, jobs, steps, utcnow
from worker.slack.delivery import DeliveryStatus
from worker.worktime import zone

log = logging.getLogger(__name__)

# A final job is folded this long after it finished (seconds): late writes of its own have landed.
SETTLE_S = 5 * 60
# Jobs folded per transaction, and batches per Beat run (the rest waits for the next minute).
BATCH = 5000
TASK_BATCHES = 10
# pg_try_advisory_xact_lock key: one roll-up at a time.
LOCK_KEY = 0x6D65747269637321  # "metrics!"

rollups = MetricsRollup.__table__
outbox = SlackOutbox.__table__


def load_facts(conn: Connection, which: Any) -> list[JobFacts]:
    """The jobs matching `which` (a condition on `sequence_jobs`) with their step runs, approvals
    and first Slack message: the jobs first, then three queries by their ids (index-backed)."""
    found: dict[uuid.UUID, JobFacts] = {}
    org_ids: set[uuid.UUID] = set()
    for r in conn.execute(
        select(
            jobs.c.id,
            jobs.c.org_id,
            jobs.c.created_at,
            jobs.c.source,
            jobs.c.event_type,
            jobs.c.status,
            jobs.c.finished_at,
            jobs.c.paused_ms,
            func.coalesce(jobs.c.error, jobs.c.reason, "").label("message"),
        ).where(which)
    ).all():
        org_ids.add(r.org_id)
        found[r.id] = JobFacts(
            str(r.id), r.created_at, r.source, r.event_type, r.status, r.finished_at, r.paused_ms or 0, r.message
        )
    if not found:
        return []

    def of_jobs(table: Any) -> Any:
        """Rows of `table` belonging to the jobs found (and to their orgs)."""
        if conn.dialect.name == "postgresql":  # one array parameter, however many jobs
            ids = bindparam("job_ids", list(found), type_=ARRAY(Uuid()))
            return and_(table.c.org_id.in_(org_ids), table.c.job_id == any_(ids))
        return and_(table.c.org_id.in_(org_ids), table.c.job_id.in_(select(jobs.c.id).where(which)))

    for r in conn.execute(
        select(
            steps.c.job_id, steps.c.step, steps.c.status, steps.c.duration_ms, steps.c.error_class, steps.c.error
        ).where(of_jobs(steps))
    ).all():
        found[r.job_id].steps.append(StepFacts(r.step, r.status, r.duration_ms, r.error_class, r.error))
    for r in conn.execute(
        select(approvals.c.job_id, approvals.c.status, approvals.c.created_at, approvals.c.decided_at).where(
            of_jobs(approvals)
        )
    ).all():
        found[r.job_id].approvals.append(ApprovalFacts(r.status, r.created_at, r.decided_at))
    for job_id, first_queued, first_sent in conn.execute(
        select(outbox.c.job_id, func.min(outbox.c.created_at), func.min(outbox.c.sent_at))
        .where(of_jobs(outbox))
        .group_by(outbox.c.job_id)
    ).all():
        facts = found[job_id]
        facts.first_queued, facts.first_sent = first_queued, first_sent
    return list(found.values())


def local_day(tz_name: str | None) -> Callable[[datetime], date]:
    """The local date of an instant in a zone (the org's)."""
    tz = zone(tz_name)
    return lambda instant: instant.astimezone(tz).date()


def roll_up_batch(conn: Connection, now: datetime, *, batch: int = BATCH, settle_s: float = SETTLE_S) -> int | None:
    """Fold up to `batch` settled jobs in the caller's transaction; how many were folded, or None
    when another roll-up holds the lock (nothing done)."""
    if (
        conn.dialect.name == "postgresql"
        and not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}).scalar()
    ):
        return None
    waiting = select(outbox.c.id).where(outbox.c.job_id == jobs.c.id, outbox.c.status == DeliveryStatus.PENDING)
    due = conn.execute(
        select(jobs.c.id, jobs.c.org_id)
        .where(
            jobs.c.rolled_up_at.is_(None),
            jobs.c.finished_at.is_not(None),
            jobs.c.finished_at <= now - timedelta(seconds=settle_s),
            jobs.c.status.in_([s.value for s in JOB_FINAL]),
            ~waiting.exists(),
        )
        .order_by(jobs.c.org_id, jobs.c.created_at)  # a batch touches few (org, day) cells
        .limit(batch)
    ).all()
    if not due:
        return 0
    ids = [r.id for r in due]
    # not a state move (the roll-up's own stamp on ended jobs): written here, not in worker/engine/jobstore.py
    claimed = conn.execute(
        update(jobs).where(jobs.c.id.in_(ids), jobs.c.rolled_up_at.is_(None)).values(rolled_up_at=now)
    ).rowcount
    if claimed != len(ids):  # another roll-up took some of them (SQLite has no advisory lock)
        raise RollupConflict(f"claimed {claimed} of {len(ids)} jobs: another roll-up is running")
    by_org: dict[uuid.UUID, list[str]] = defaultdict(list)
    for r in due:
        by_org[r.org_id].append(str(r.id))
    zones = dict(conn.execute(select(Org.id, Org.timezone).where(Org.id.in_(list(by_org)))).all())
    facts = {f.id: f for f in load_facts(conn, jobs.c.id.in_(ids))}
    for org_id, job_ids in by_org.items():
        cells = fold((facts[j] for j in job_ids if j in facts), local_day(zones.get(org_id)))
        store_cells(conn, org_id, DAY, cells, now)
        store_cells(conn, org_id, WEEK, weekly(cells), now)
    return len(ids)


class RollupConflict(Exception):
    """Another roll-up claimed some of the same jobs: this transaction is rolled back, nothing counted twice."""


def store_cells(conn: Connection, org_id: uuid.UUID, span: int, cells: dict[CellKey, Cell], now: datetime) -> None:
    """Add `cells` (of `span` days) to the org's stored rows: read the ones that exist, merge, write
    all back in one upsert (one roll-up runs at a time, so nothing changes them in between)."""
    if not cells:
        return
    days = sorted({day for day, _kind, _key, _detail in cells})
    existing = {
        (r.day, r.kind, r.key, r.detail): r
        for r in conn.execute(
            select(rollups).where(rollups.c.org_id == org_id, rollups.c.span == span, rollups.c.day.in_(days))
        ).all()
    }
    rows: list[dict[str, Any]] = []
    for key, cell in cells.items():
        old = existing.get(key)
        sketch = cell.sketch
        if old is not None:
            cell.add(old.n, old.failed, old.sum_ms, old.example_job_id)
            if old.sketch:
                sketch = sketch or Sketch()
                sketch.merge(old.sketch)
        day, kind, name, detail = key
        rows.append(
            {
                "org_id": org_id,
                "span": span,
                "day": day,
                "kind": kind,
                "key": name,
                "detail": detail,
                "n": cell.n,
                "failed": cell.failed,
                "sum_ms": cell.sum_ms,
                "sketch": sketch.to_json() if sketch is not None else None,
                "example_job_id": cell.example,
                "updated_at": now,
            }
        )
    upsert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(rollups)
    replaced = ("n", "failed", "sum_ms", "sketch", "example_job_id", "updated_at")
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=["org_id", "span", "day", "kind", "key", "detail"],
            set_={name: getattr(upsert.excluded, name) for name in replaced},
        ),
        rows,
    )


def roll_up(
    now: datetime | None = None,
    *,
    batch: int = BATCH,
    max_batches: int | None = None,
    settle_s: float = SETTLE_S,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Fold settled jobs, `batch` per transaction, until none is left (or `max_batches`); returns
    how many were folded. `progress` is told the running total after each batch."""
    now = now or utcnow()
    total = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        try:
            with transaction() as conn:
                done = roll_up_batch(conn, now, batch=batch, settle_s=settle_s)
        except RollupConflict as exc:
            log.info("metrics roll-up: %s", exc)
            break
        if done is None:
            log.info("metrics roll-up: another roll-up is running")
            break
        total += done
        batches += 1
        if progress is not None and done:
            progress(total)
        if done < batch:
            break
    return total


def unrolled(conn: Connection, org_ids: Iterable[uuid.UUID] | None = None) -> int:
    """How many jobs are not folded yet (all orgs, or those given)."""
    q = select(func.count()).select_from(jobs).where(jobs.c.rolled_up_at.is_(None))
    if org_ids is not None:
        q = q.where(jobs.c.org_id.in_(list(org_ids)))
    return int(conn.execute(q).scalar_one())


@celery_app.task(name="proactive.metrics_rollup", ignore_result=True, acks_late=True)
def rollup_task() -> int:
    """Beat entry (every minute): fold the settled jobs, at most TASK_BATCHES batches."""
    folded = roll_up(max_batches=TASK_BATCHES)
    if folded:
        log.info("metrics roll-up: %d jobs folded", folded)
    return folded
