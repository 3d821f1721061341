"""Org metrics: what an org's jobs did over a window of 7, 30 or 90 local days (docs/metrics.md).

`org_metrics` adds two halves, folded by one definition (worker/metrics/fold.py): the window's
days of `metrics_rollups` (settled jobs, folded once by worker/metrics/rollup.py) and the window's
jobs not rolled up yet (running, awaiting approval, just finished), read through a small partial
index and folded here. Counts and rates are exact; percentiles come from mergeable sketches,
within 1% (worker/metrics/sketch.py). The window is the last `range_days` days in the org's time
zone, today included, so `daily_counts` adds up to `total_sequences`. `stuck_jobs`, pending
approvals and the outbox lag are the present state, whatever the age.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from worker.engine.states import ApprovalStatus, JobStatus
from worker.errors import NotFound
from worker.metrics import maths as mm
from worker.metrics.fold import DAY, SKETCHED, WEEK, Totals, fold, sketch_periods, summarize
from worker.metrics.rollup import load_facts
from worker.models import MetricsRollup, Org, SlackOutbox, User, approvals, jobs, steps, utcnow
from worker.slack.delivery import DeliveryStatus
from worker.worktime import zone

# The accepted ranges (API `range=`, CLI `--range`) and their length in local days.
RANGES = {"7d": 7, "30d": 30, "90d": 90}
# A running job with no step queued, started or finished for this long is stuck (seconds).
STUCK_AFTER_S = 30 * 60

outbox = SlackOutbox.__table__
rollups = MetricsRollup.__table__


def parse_range(value: str | None) -> int:
    """Days of a range name (`7d`, `30d`, `90d`; None means 7d); ValueError naming the accepted ones."""
    name = (value or "7d").strip()
    if name not in RANGES:
        raise ValueError(f"unknown range {value[:20]!r}: use one of {', '.join(RANGES)}")
    return RANGES[name]


def org_metrics(conn: Connection, org_id: uuid.UUID, range_days: int, now: datetime | None = None) -> dict[str, Any]:
    """Every metric of `org_id` over the last `range_days` local days (docs/metrics.md has the
    definitions). Raises NotFound for an unknown org."""
    now = now or utcnow()
    org = conn.execute(select(Org.name, Org.timezone).where(Org.id == org_id)).one_or_none()
    if org is None:
        raise NotFound(f"org {org_id} not found")
    tz = zone(org.timezone)
    days = mm.window_days(now, tz, range_days)
    start = mm.day_start(days[0], tz)

    totals = Totals()
    stored = and_(rollups.c.org_id == org_id, rollups.c.span == DAY, rollups.c.day.between(days[0], days[-1]))
    _add_stored_counts(conn, totals, stored)
    live = and_(
        jobs.c.org_id == org_id, jobs.c.rolled_up_at.is_(None), jobs.c.created_at >= start, jobs.c.created_at <= now
    )
    totals.add_cells(fold(load_facts(conn, live), lambda instant: instant.astimezone(tz).date()))
    _add_stored_sketches(conn, totals, org_id, days)

    fields = summarize(totals, days)
    pending = _pending_approvals(conn, org_id)
    fields["hitl"]["pending_by_rep"] = _pending_by_rep(conn, org_id, pending, now)
    fields["slack"].update(_outbox_lag(conn, org_id, now))
    return {
        "org_id": str(org_id),
        "org_name": org.name,
        "timezone": tz.key,
        "range_days": range_days,
        "window_start": start.isoformat(),
        "generated_at": now.isoformat(),
        **fields,
        "stuck_jobs": _stuck_jobs(conn, org_id, pending, now),
    }


def _add_stored_counts(conn: Connection, totals: Totals, stored: Any) -> None:
    """The rolled-up cells of the window, added up in the query (per day for job statuses only)."""
    day = case((rollups.c.kind == "status", rollups.c.day), else_=None).label("day")
    group = (day, rollups.c.kind, rollups.c.key, rollups.c.detail)
    for r in conn.execute(
        select(
            *group,
            func.sum(rollups.c.n).label("n"),
            func.sum(rollups.c.failed).label("failed"),
            func.sum(rollups.c.sum_ms).label("sum_ms"),
            func.min(rollups.c.example_job_id).label("example"),
        )
        .where(stored)
        .group_by(*group)
    ).all():
        totals.add(r.day, r.kind, r.key, r.detail, int(r.n), int(r.failed), float(r.sum_ms), r.example)


def _add_stored_sketches(conn: Connection, totals: Totals, org_id: uuid.UUID, days: list[Any]) -> None:
    """The rolled-up sketches the answer needs (durations, decisions, Slack latencies and the top
    skills'; other steps' sketches are never read): week cells for the window's whole weeks, day
    cells for the days around them."""
    weeks, edge_days = sketch_periods(days)
    kinds = [k for k in SKETCHED if k != "step"]
    wanted = or_(rollups.c.kind.in_(kinds), and_(rollups.c.kind == "step", rollups.c.key.in_(totals.top_steps())))
    periods = or_(
        and_(rollups.c.span == WEEK, rollups.c.day.in_(weeks)),
        and_(rollups.c.span == DAY, rollups.c.day.in_(edge_days)),
    )
    for kind, key, sketch in conn.execute(
        select(rollups.c.kind, rollups.c.key, rollups.c.sketch).where(
            rollups.c.org_id == org_id, periods, wanted, rollups.c.sketch.is_not(None)
        )
    ).all():
        totals.add_sketch(kind, key, sketch)


def _pending_approvals(conn: Connection, org_id: uuid.UUID) -> list[Any]:
    """The org's approvals pending now, with their job's type (approvals (org_id, status) index)."""
    return conn.execute(
        select(
            approvals.c.job_id,
            approvals.c.kind,
            approvals.c.approver_user_ids,
            approvals.c.created_at,
            approvals.c.expires_at,
            jobs.c.event_type,
        )
        .select_from(approvals.join(jobs, jobs.c.id == approvals.c.job_id))
        .where(approvals.c.org_id == org_id, approvals.c.status == ApprovalStatus.PENDING.value)
    ).all()


def _stuck_jobs(conn: Connection, org_id: uuid.UUID, pending: list[Any], now: datetime) -> list[dict[str, Any]]:
    """Running jobs with no step progress for STUCK_AFTER_S and approvals pending past expiry (any age)."""
    quiet_since = now - timedelta(seconds=STUCK_AFTER_S)
    progress = (
        select(
            jobs.c.id,
            jobs.c.event_type,
            jobs.c.created_at,
            jobs.c.reason,
            func.max(steps.c.queued_at).label("queued"),
            func.max(steps.c.started_at).label("started"),
            func.max(steps.c.finished_at).label("finished"),
        )
        .select_from(jobs.outerjoin(steps, steps.c.job_id == jobs.c.id))
        .where(
            jobs.c.org_id == org_id,
            jobs.c.status == JobStatus.RUNNING.value,
            jobs.c.rolled_up_at.is_(None),  # always true of a running job: lets the small partial index serve
        )
        .group_by(jobs.c.id, jobs.c.event_type, jobs.c.created_at, jobs.c.reason)
    )
    stuck: list[dict[str, Any]] = []
    for r in conn.execute(progress).all():
        last = max(t for t in (r.created_at, r.queued, r.started, r.finished) if t is not None)
        if last < quiet_since:
            minutes = int((now - last).total_seconds() // 60)
            why = f"running, no step progress for {minutes} min"
            stuck.append(_stuck(r.id, r.event_type, last, why + (f" ({r.reason})" if r.reason else "")))
    for r in pending:
        if r.expires_at < now:
            stuck.append(_stuck(r.job_id, r.event_type, r.expires_at, f"approval {r.kind} pending past its expiry"))
    return sorted(stuck, key=lambda s: s["since"])


def _stuck(job_id: uuid.UUID, event_type: str, since: datetime, why: str) -> dict[str, Any]:
    return {"job_id": str(job_id), "type": event_type, "since": since.isoformat(), "why": why}


def _pending_by_rep(conn: Connection, org_id: uuid.UUID, pending: list[Any], now: datetime) -> list[dict[str, Any]]:
    """Approvals pending now per approver: how many and the oldest one's age (ms); the oldest first."""
    count: Counter[str] = Counter()
    oldest: dict[str, datetime] = {}
    for r in pending:
        approvers, created_at = r.approver_user_ids, r.created_at
        for user in approvers or [None]:
            key = _id_text(user) if user else ""
            count[key] += 1
            oldest[key] = min(oldest.get(key, created_at), created_at)
    if not count:
        return []
    names = {
        str(uid): name
        for uid, name in conn.execute(
            select(User.id, func.coalesce(User.name, User.email)).where(
                User.org_id == org_id, User.id.in_([uuid.UUID(k) for k in count if _is_uuid(k)])
            )
        ).all()
    }
    rows = [
        {
            "user_id": key or None,
            "name": names.get(key, key or "nobody (no approver)"),
            "pending": n,
            "oldest_age_ms": round(mm.elapsed_ms(oldest[key], now)),
        }
        for key, n in count.items()
    ]
    return sorted(rows, key=lambda r: -r["oldest_age_ms"])


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _id_text(value: Any) -> str:
    """An id as canonical UUID text (stored JSON may hold either form), or as it is."""
    text = str(value)
    return str(uuid.UUID(text)) if _is_uuid(text) else text


def _outbox_lag(conn: Connection, org_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """The org's outbox now: messages still pending, and the oldest one's age (ms)."""
    pending_count, pending_oldest = conn.execute(
        select(func.count(), func.min(outbox.c.created_at)).where(
            outbox.c.org_id == org_id, outbox.c.status == DeliveryStatus.PENDING
        )
    ).one()
    return {
        "outbox_pending": pending_count,
        "outbox_oldest_pending_age_ms": round(mm.elapsed_ms(pending_oldest, now)) if pending_oldest else None,
    }
