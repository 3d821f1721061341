"""Working-time arithmetic in a rep's own time zone (pure; zoneinfo, DST-safe).

Approvals expire after 24 *working* hours in the approver's zone: the clock only runs on
local weekdays, so a request sent on Friday afternoon is still open on Monday morning.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKEND = (5, 6)  # Saturday, Sunday (datetime.weekday())


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """ZoneInfo for `name`, or for `fallback` when the name is empty or unknown."""
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _next_local_midnight(local: datetime, tz: ZoneInfo) -> datetime:
    day = local.date() + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=tz)


def working_hours_after(start: datetime, tz: ZoneInfo, hours: float) -> datetime:
    """The UTC instant when `hours` of weekday time in `tz` have passed since `start` (aware)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    remaining = timedelta(hours=hours)
    cursor = start.astimezone(UTC)
    while True:
        local = cursor.astimezone(tz)
        midnight = _next_local_midnight(local, tz).astimezone(UTC)
        if local.weekday() in WEEKEND:
            cursor = midnight
            continue
        available = midnight - cursor
        if remaining <= available:
            return cursor + remaining
        remaining -= available
        cursor = midnight


def next_working_morning(now: datetime, tz: ZoneInfo, at: time = time(9, 0)) -> datetime:
    """The next weekday `at` (local) strictly after `now`, in UTC ("send later" snoozes to it)."""
    local = now.astimezone(tz)
    day = local.date()
    for _ in range(8):
        candidate = datetime.combine(day, at, tzinfo=tz)
        if candidate > local and candidate.weekday() not in WEEKEND:
            return candidate.astimezone(UTC)
        day += timedelta(days=1)
    raise AssertionError("unreachable: a weekday comes within 8 days")
