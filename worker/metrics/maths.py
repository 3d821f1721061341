"""The arithmetic of the org metrics (worker/metrics/report.py): percentiles, rates, the local days of a
window and the zero-filled daily rows. Pure: plain values in, plain values out, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-th quantile (0 <= q <= 1) by linear interpolation between closest ranks (PostgreSQL's
    `percentile_cont`, numpy's default); None for no values."""
    if not 0 <= q <= 1:
        raise ValueError(f"q must be within 0..1 (got {q})")
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rounded(value: float | None) -> int | None:
    """A duration in whole milliseconds (None stays None)."""
    return None if value is None else round(value)


def rate(part: int, whole: int) -> float | None:
    """`part / whole` rounded to 4 places; None when `whole` is 0 (nothing to rate)."""
    return round(part / whole, 4) if whole else None


def success_rate(completed: int, failed: int, timed_out: int) -> float | None:
    """Completed over finished jobs (completed + failed + timeout); None when none finished."""
    return rate(completed, completed + failed + timed_out)


def window_days(now: datetime, tz: ZoneInfo, range_days: int) -> list[date]:
    """The `range_days` local dates of the window, oldest first, ending with `now`'s local date."""
    if range_days < 1:
        raise ValueError(f"range_days must be at least 1 (got {range_days})")
    today = now.astimezone(tz).date()
    return [today - timedelta(days=n) for n in range(range_days - 1, -1, -1)]


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which local `day` begins in `tz` (23 or 25 hours after the day before on a
    DST change)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def day_bounds(days: Sequence[date], tz: ZoneInfo) -> list[datetime]:
    """The UTC start of each day, then the start of the day after the last: len(days) + 1 instants."""
    if not days:
        return []
    return [day_start(d, tz) for d in days] + [day_start(days[-1] + timedelta(days=1), tz)]


def daily_rows(days: Sequence[date], counts: Mapping[int, Mapping[str, int]]) -> list[dict[str, object]]:
    """One row per day, zero-filled: `counts` maps a day's index in `days` to its counts by job
    status; `failed` counts failed and timeout (the finished jobs that did not succeed)."""
    rows: list[dict[str, object]] = []
    for index, day in enumerate(days):
        by_status = counts.get(index, {})
        rows.append(
            {
                "date": day.isoformat(),
                "total": sum(by_status.values()),
                "completed": by_status.get("completed", 0),
                "failed": by_status.get("failed", 0) + by_status.get("timeout", 0),
            }
        )
    return rows


def top(counts: Mapping[str, int], limit: int | None = None) -> dict[str, int]:
    """Counts ordered by count (descending), then name; the first `limit` when given."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return dict(ordered[:limit] if limit is not None else ordered)


def elapsed_ms(start: datetime, end: datetime, paused_ms: int = 0) -> float:
    """Milliseconds from `start` to `end`, less `paused_ms` (never below 0)."""
    return max(0.0, (end - start).total_seconds() * 1000 - paused_ms)
