"""Org metrics: what an org's jobs did over a window of 7, 30 or 90 local days (docs/metrics.md).

`org_metrics` runs a few aggregate queries, every one filtered by org and backed by an index
(`sequence_jobs (org_id, created_at)`, then step runs and approvals by job), and leaves the
arithmetic to the pure `worker/metrics_math.py`. The window is the last `range_days` days in the
org's time zone, today included, so `daily_counts` adds up to `total_sequences`. Counts and rates
are exact. Job durations and the skills' p95 are computed by PostgreSQL (`percentile_cont`);
the other percentiles, and all of them on SQLite, in Python from at most `MAX_SAMPLE` values per
measure (the newest of the window), with the same interpolation. `stuck_jobs`, pending approvals and the
outbox lag are the present state, whatever the age.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, String, and_, case, cast, func, select

from worker import metrics_math as mm
from worker.delivery import DeliveryStatus
from worker.errors import NotFound
from worker.models import Org, SlackOutbox, User, approvals, jobs, steps, utcnow
from worker.states import ApprovalStatus, JobStatus, StepStatus
from worker.worktime import zone

# The accepted ranges (API `range=`, CLI `--range`) and their length in local days.
RANGES = {"7d": 7, "30d": 30, "90d": 90}
# A running job with no step queued, started or finished for this long is stuck (seconds).
STUCK_AFTER_S = 30 * 60
# Most values loaded to compute one measure's percentiles (the newest of the window): bounds the
# memory and time of a 90-day window on a busy org.
MAX_SAMPLE = 100_000
# Error messages are grouped by their first this many characters.
ERROR_PREFIX_CHARS = 100
# Rows of `error_summary` and `top_skills`.
TOP_ERRORS = 10
TOP_SKILLS = 20
# Jobs whose duration counts and that count in the success rate.
FINISHED = (JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.TIMEOUT.value)

outbox = SlackOutbox.__table__


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
    bounds = mm.day_bounds(days, tz)
    start = bounds[0]
    in_window = and_(jobs.c.org_id == org_id, jobs.c.created_at >= start, jobs.c.created_at <= now)

    counts = _job_counts(conn, in_window, bounds)
    by_status: Counter[str] = Counter()
    by_source: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    per_day: dict[int, Counter[str]] = defaultdict(Counter)
    for day, source, event_type, status, n in counts:
        by_status[status] += n
        by_source[source] += n
        by_type[event_type] += n
        per_day[day][status] += n
    avg_ms, p50_ms, p95_ms = _job_durations(conn, in_window)
    return {
        "org_id": str(org_id),
        "org_name": org.name,
        "timezone": tz.key,
        "range_days": range_days,
        "window_start": start.isoformat(),
        "generated_at": now.isoformat(),
        "total_sequences": sum(by_status.values()),
        "sequences_by_source": mm.top(by_source),
        "sequences_by_type": mm.top(by_type),
        "sequences_by_status": mm.top(by_status),
        "avg_duration_ms": avg_ms,
        "p50_duration_ms": p50_ms,
        "p95_duration_ms": p95_ms,
        "success_rate": mm.success_rate(by_status["completed"], by_status["failed"], by_status["timeout"]),
        "stuck_jobs": _stuck_jobs(conn, org_id, now),
        "daily_counts": mm.daily_rows(days, per_day),
        "top_skills": _top_skills(conn, in_window),
        "error_summary": _error_summary(conn, in_window),
        "hitl": _hitl(conn, org_id, in_window, now),
        "slack": _slack(conn, org_id, in_window, start, now),
    }


def _job_counts(conn: Connection, in_window: Any, bounds: list[datetime]) -> list[Any]:
    """(day index, source, type, status, count) of the window's jobs; the day is the local day
    whose [start, next start) holds the job's created_at."""
    day = case(*[(jobs.c.created_at < bound, index) for index, bound in enumerate(bounds[1:])], else_=len(bounds) - 2)
    inner = select(day.label("day"), jobs.c.source, jobs.c.event_type, jobs.c.status).where(in_window).subquery()
    return list(
        conn.execute(
            select(inner.c.day, inner.c.source, inner.c.event_type, inner.c.status, func.count()).group_by(
                inner.c.day, inner.c.source, inner.c.event_type, inner.c.status
            )
        )
    )


def _job_durations(conn: Connection, in_window: Any) -> tuple[int | None, int | None, int | None]:
    """Average, p50 and p95 (ms) of wall time less time awaiting approval, over the window's finished
    jobs: in the query on PostgreSQL; elsewhere from the newest MAX_SAMPLE jobs."""
    finished = and_(in_window, jobs.c.status.in_(FINISHED), jobs.c.finished_at.is_not(None))
    if conn.dialect.name == "postgresql":
        wall_ms = func.extract("epoch", jobs.c.finished_at - jobs.c.created_at) * 1000 - jobs.c.paused_ms
        ms = func.greatest(wall_ms, 0)
        avg, p50, p95 = conn.execute(
            select(
                func.avg(ms), func.percentile_cont(0.5).within_group(ms), func.percentile_cont(0.95).within_group(ms)
            ).where(finished)
        ).one()
        return mm.rounded(None if avg is None else float(avg)), mm.rounded(p50), mm.rounded(p95)
    rows = conn.execute(
        select(jobs.c.created_at, jobs.c.finished_at, jobs.c.paused_ms)
        .where(finished)
        .order_by(jobs.c.created_at.desc())
        .limit(MAX_SAMPLE)
    )
    durations = [mm.elapsed_ms(r.created_at, r.finished_at, r.paused_ms or 0) for r in rows]
    p50, p95 = mm.summarize_ms(durations, 0.5, 0.95)
    return mm.rounded(mm.mean(durations)), p50, p95


def _stuck_jobs(conn: Connection, org_id: uuid.UUID, now: datetime) -> list[dict[str, Any]]:
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
        .where(jobs.c.org_id == org_id, jobs.c.status == JobStatus.RUNNING.value)
        .group_by(jobs.c.id, jobs.c.event_type, jobs.c.created_at, jobs.c.reason)
    )
    stuck: list[dict[str, Any]] = []
    for r in conn.execute(progress):
        last = max(t for t in (r.created_at, r.queued, r.started, r.finished) if t is not None)
        if last < quiet_since:
            minutes = int((now - last).total_seconds() // 60)
            why = f"running, no step progress for {minutes} min"
            stuck.append(_stuck(r.id, r.event_type, last, why + (f" ({r.reason})" if r.reason else "")))
    expired = (
        select(jobs.c.id, jobs.c.event_type, approvals.c.kind, approvals.c.expires_at)
        .select_from(approvals.join(jobs, jobs.c.id == approvals.c.job_id))
        .where(
            approvals.c.org_id == org_id,
            approvals.c.status == ApprovalStatus.PENDING.value,
            approvals.c.expires_at < now,
        )
    )
    for r in conn.execute(expired):
        stuck.append(_stuck(r.id, r.event_type, r.expires_at, f"approval {r.kind} pending past its expiry"))
    return sorted(stuck, key=lambda s: s["since"])


def _stuck(job_id: uuid.UUID, event_type: str, since: datetime, why: str) -> dict[str, Any]:
    return {"job_id": str(job_id), "type": event_type, "since": since.isoformat(), "why": why}


def _window_steps(in_window: Any) -> Any:
    """Step runs of the window's jobs (joined through the job, so the step index by job is used)."""
    return steps.join(jobs, and_(jobs.c.id == steps.c.job_id, in_window))


def _top_skills(conn: Connection, in_window: Any) -> list[dict[str, Any]]:
    """Step runs per step name: runs, failure rate, p95 duration (ms); the most run first. On
    PostgreSQL the p95 is `percentile_cont` in the same query (exact, nothing shipped); elsewhere it
    is computed here from the newest MAX_SAMPLE durations."""
    failed = func.sum(case((steps.c.status == StepStatus.FAILED.value, 1), else_=0))
    columns = [steps.c.step, func.count().label("runs"), failed.label("failed")]
    in_sql = conn.dialect.name == "postgresql"
    if in_sql:
        columns.append(func.percentile_cont(0.95).within_group(steps.c.duration_ms).label("p95"))
    rows = list(
        conn.execute(
            select(*columns)
            .select_from(_window_steps(in_window))
            .group_by(steps.c.step)
            .order_by(func.count().desc(), steps.c.step)
            .limit(TOP_SKILLS)
        )
    )
    p95: dict[str, int | None] = (
        {r.step: mm.rounded(r.p95) for r in rows} if in_sql else _step_p95(conn, in_window, rows)
    )
    return [
        {
            "step": r.step,
            "runs": r.runs,
            "failed": int(r.failed or 0),
            "failure_rate": mm.rate(int(r.failed or 0), r.runs),
            "p95_duration_ms": p95[r.step],
        }
        for r in rows
    ]


def _step_p95(conn: Connection, in_window: Any, rows: list[Any]) -> dict[str, int | None]:
    """The p95 duration (ms) of each step in `rows`, from the newest MAX_SAMPLE durations."""
    durations: dict[str, list[float]] = defaultdict(list)
    if rows:
        for step, duration_ms in conn.execute(
            select(steps.c.step, steps.c.duration_ms)
            .select_from(_window_steps(in_window))
            .where(steps.c.step.in_([r.step for r in rows]), steps.c.duration_ms.is_not(None))
            .order_by(jobs.c.created_at.desc())
            .limit(MAX_SAMPLE)
        ):
            durations[step].append(duration_ms)
    return {r.step: mm.summarize_ms(durations[r.step], 0.95)[0] for r in rows}


def _error_summary(conn: Connection, in_window: Any) -> list[dict[str, Any]]:
    """Failed step runs (best-effort failures inside completed jobs included) and timed-out jobs,
    grouped by error class and the first ERROR_PREFIX_CHARS of the message: the TOP_ERRORS largest."""
    message = func.substr(func.coalesce(steps.c.error, ""), 1, ERROR_PREFIX_CHARS)
    error_class = func.coalesce(steps.c.error_class, "unknown")
    step_errors = conn.execute(
        select(error_class, message, func.count(), func.min(cast(steps.c.job_id, String)))
        .select_from(_window_steps(in_window))
        .where(steps.c.status == StepStatus.FAILED.value)
        .group_by(error_class, message)
    )
    job_message = func.substr(func.coalesce(jobs.c.error, jobs.c.reason, ""), 1, ERROR_PREFIX_CHARS)
    timeouts = conn.execute(
        select(job_message, func.count(), func.min(cast(jobs.c.id, String)))
        .where(in_window, jobs.c.status == JobStatus.TIMEOUT.value)
        .group_by(job_message)
    )
    groups = [(cls, msg, n, example) for cls, msg, n, example in step_errors]
    groups += [(JobStatus.TIMEOUT.value, msg, n, example) for msg, n, example in timeouts]
    groups.sort(key=lambda g: (-g[2], g[0], g[1]))
    return [  # the id's text differs by backend (SQLite keeps 32 hex digits): one form out
        {"error_class": cls, "message": msg, "count": n, "example_job_id": _id_text(example)}
        for cls, msg, n, example in groups[:TOP_ERRORS]
    ]


def _hitl(conn: Connection, org_id: uuid.UUID, in_window: Any, now: datetime) -> dict[str, Any]:
    """Approvals of the window's jobs (opened, decided, expired, time to decision) and the approvals
    pending now per rep (any age)."""
    rows = list(
        conn.execute(
            select(approvals.c.status, approvals.c.created_at, approvals.c.decided_at)
            .select_from(approvals.join(jobs, and_(jobs.c.id == approvals.c.job_id, in_window)))
            .where(approvals.c.org_id == org_id)
            .order_by(approvals.c.created_at.desc())
            .limit(MAX_SAMPLE)
        )
    )
    to_decision = [mm.elapsed_ms(r.created_at, r.decided_at) for r in rows if r.decided_at is not None]
    median, p90 = mm.summarize_ms(to_decision, 0.5, 0.9)
    return {
        "opened": len(rows),
        "decided": len(to_decision),
        "expired": sum(1 for r in rows if r.status == ApprovalStatus.EXPIRED.value),
        "pending": sum(1 for r in rows if r.status == ApprovalStatus.PENDING.value),
        "median_decision_ms": median,
        "p90_decision_ms": p90,
        "pending_by_rep": _pending_by_rep(conn, org_id, now),
    }


def _pending_by_rep(conn: Connection, org_id: uuid.UUID, now: datetime) -> list[dict[str, Any]]:
    """Approvals pending now per approver: how many and the oldest one's age (ms); the oldest first."""
    count: Counter[str] = Counter()
    oldest: dict[str, datetime] = {}
    pending = select(approvals.c.approver_user_ids, approvals.c.created_at).where(
        approvals.c.org_id == org_id, approvals.c.status == ApprovalStatus.PENDING.value
    )
    for approvers, created_at in conn.execute(pending):
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
        )
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


def _slack(conn: Connection, org_id: uuid.UUID, in_window: Any, start: datetime, now: datetime) -> dict[str, Any]:
    """Event → first Slack message latency (queued and sent) over the window's jobs, and the lag of
    the org's outbox now (pending rows: count, oldest age)."""
    first = conn.execute(
        select(jobs.c.created_at, func.min(outbox.c.created_at), func.min(outbox.c.sent_at))
        .select_from(outbox.join(jobs, and_(jobs.c.id == outbox.c.job_id, in_window)))
        .where(outbox.c.org_id == org_id, outbox.c.created_at >= start)
        .group_by(jobs.c.id, jobs.c.created_at)
        .order_by(jobs.c.created_at.desc())
        .limit(MAX_SAMPLE)
    )
    queued: list[float] = []
    sent: list[float] = []
    for created_at, first_queued, first_sent in first:
        queued.append(mm.elapsed_ms(created_at, first_queued))
        if first_sent is not None:
            sent.append(mm.elapsed_ms(created_at, first_sent))
    queued_p50, queued_p95 = mm.summarize_ms(queued, 0.5, 0.95)
    sent_p50, sent_p95 = mm.summarize_ms(sent, 0.5, 0.95)
    pending_count, pending_oldest = conn.execute(
        select(func.count(), func.min(outbox.c.created_at)).where(
            outbox.c.org_id == org_id, outbox.c.status == DeliveryStatus.PENDING
        )
    ).one()
    return {
        "jobs_with_messages": len(queued),
        "first_message_queued_p50_ms": queued_p50,
        "first_message_queued_p95_ms": queued_p95,
        "first_message_sent_p50_ms": sent_p50,
        "first_message_sent_p95_ms": sent_p95,
        "outbox_pending": pending_count,
        "outbox_oldest_pending_age_ms": round(mm.elapsed_ms(pending_oldest, now)) if pending_oldest else None,
    }
