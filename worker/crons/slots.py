"""Cron slot arithmetic (pure, no I/O): which UTC slot a tick is for, whose local time falls in it.

Beat ticks on a UTC schedule (beat_schedule.py); people live in IANA zones. Everything here is a
plain function of its arguments (the clock is passed in), so the tests pin `now` and walk both
DST transitions, half-hour zones and day boundaries without a server.

Rules (README.md#crons):
- A slot is the UTC interval `[start, start + length)`; `slot_start` floors an instant to it.
- A rep's briefing instant on a local day is that day's wall-clock `briefing_time` in the rep's
  zone. A wall time that does not exist (spring forward: 02:30 in New York on the second Sunday
  of March) is read with the offset before the gap, i.e. moved forward by the gap (03:30 EDT);
  a wall time that happens twice (fall back) is its first occurrence (`fold=0`). So every local
  day has exactly one briefing instant, and it falls in exactly one 15-minute slot.
- A brief more than `BRIEF_CATCH_UP` (2 h) late is skipped, not sent.
- An unreadable zone or briefing time never fails a tick: the org's zone (then UTC) and 08:00
  are used, and the problem is reported with the schedule (`Schedule.problems`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MORNING_SLOT = timedelta(minutes=15)
PREP_SLOT = timedelta(minutes=30)
HOURLY_SLOT = timedelta(hours=1)
BRIEF_CATCH_UP = timedelta(hours=2)  # a brief later than this is skipped (the catch-up rule)
PREP_WINDOW = (timedelta(minutes=30), timedelta(minutes=120))  # meetings starting this far ahead
DEFAULT_BRIEFING = time(8, 0)
DEFAULT_STALE_HOUR = 9  # the org's local hour of the daily stale-deal scan
DEFAULT_DAYS_INACTIVE = 7
MONDAY = 0

_HHMM = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(now: datetime) -> datetime:
    """`now` as an aware UTC datetime (a naive one is read as UTC)."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def slot_start(now: datetime, length: timedelta) -> datetime:
    """The start of the UTC slot of `length` that contains `now` (slots are aligned to the epoch,
    so 15-minute slots start at :00, :15, :30, :45)."""
    step = int(length.total_seconds())
    if step <= 0 or 86400 % step:
        raise ValueError(f"a slot length must divide a day, got {length}")
    seconds = int((utc(now) - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=seconds - seconds % step)


def recent_slots(now: datetime, length: timedelta, lookback: timedelta) -> list[datetime]:
    """Slot starts from the one `lookback` ago up to the current one, oldest first: what a tick
    re-checks so that a missed or crashed tick is caught up by the next one."""
    current = slot_start(now, length)
    first = slot_start(utc(now) - lookback, length)
    count = int((current - first) / length)
    return [first + i * length for i in range(count + 1)]


def slot_key(task: str, start: datetime, *parts: object) -> str:
    """The cron_runs key of a slot: `task:2026-11-25T08:15Z[:part...]`."""
    return ":".join([task, f"{utc(start):%Y-%m-%dT%H:%MZ}", *(str(p) for p in parts)])


def parse_zone(name: str | None) -> ZoneInfo | None:
    """The zone named `name`, or None when it is empty or not an IANA zone."""
    if not name or not isinstance(name, str) or not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_hhmm(value: str | None) -> time | None:
    """`"08:30"` -> time(8, 30); None for anything that is not a 24-hour HH:MM."""
    match = _HHMM.match(value) if isinstance(value, str) else None
    return time(int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class Schedule:
    """Where and when one rep's day starts, after defaults; `problems` says what was unreadable."""

    tz: ZoneInfo
    at: time
    problems: tuple[str, ...] = ()


def user_schedule(user_tz: str | None, org_tz: str | None, briefing_time: str | None) -> Schedule:
    """The rep's zone (else the org's, else UTC) and briefing time (else 08:00).

    A missing user zone is normal (the org default applies); an unreadable one is a problem.
    """
    problems: list[str] = []
    tz = parse_zone(user_tz)
    if tz is None and user_tz not in (None, ""):
        problems.append(f"invalid time zone {str(user_tz)[:64]!r}")
    if tz is None:
        tz = parse_zone(org_tz)
        if tz is None and org_tz not in (None, ""):
            problems.append(f"invalid org time zone {str(org_tz)[:64]!r}")
    at = parse_hhmm(briefing_time)
    if at is None and briefing_time not in (None, ""):
        problems.append(f"invalid briefing time {str(briefing_time)[:16]!r}")
    return Schedule(tz or ZoneInfo("UTC"), at or DEFAULT_BRIEFING, tuple(problems))


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant when the wall clock in `tz` reads `at` on `day` (gap: moved forward by the
    gap; repeated hour: the first occurrence)."""
    return datetime.combine(day, at, tzinfo=tz).replace(fold=0).astimezone(UTC)


def local_date(now: datetime, tz: ZoneInfo) -> date:
    """The calendar date in `tz` at `now`."""
    return utc(now).astimezone(tz).date()


def brief_day(at: time, tz: ZoneInfo, start: datetime, length: timedelta = MORNING_SLOT) -> date | None:
    """The local day whose briefing instant (`at` in `tz`) falls in the slot `[start, start+length)`,
    or None. Slots shorter than a day hold at most one."""
    start = utc(start)
    end = start + length
    first = start.astimezone(tz).date() - timedelta(days=1)
    for offset in range(3):
        day = first + timedelta(days=offset)
        if start <= local_instant(day, at, tz) < end:
            return day
    return None


def due_pairs(
    pairs: Iterable[tuple[str | None, str | None]], default_tz: str | None, start: datetime, length: timedelta
) -> dict[tuple[str | None, str | None], date]:
    """Of the distinct (time zone, briefing time) pairs of a set of users, those whose briefing
    instant falls in the slot, with the local day it is for. Users are selected by pair, so a tick
    evaluates each pair once instead of each user."""
    due: dict[tuple[str | None, str | None], date] = {}
    for tz_name, hhmm in pairs:
        sched = user_schedule(tz_name, default_tz, hhmm)
        day = brief_day(sched.at, sched.tz, start, length)
        if day is not None:
            due[(tz_name, hhmm)] = day
    return due


def brief_late(instant: datetime, now: datetime) -> bool:
    """True when a brief due at `instant` is more than 2 h late at `now` (skipped, not sent)."""
    return utc(now) - utc(instant) > BRIEF_CATCH_UP


def iso_week(day: date) -> str:
    """`2026-W48`: the ISO week of a local day (coaching_weekly's key and report week)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def stale_scan_day(now: datetime, tz: ZoneInfo, hour: int = DEFAULT_STALE_HOUR) -> date | None:
    """The org's local day when its daily stale-deal scan is due at `now` (its local clock has
    reached `hour`), else None. The scan's slot is the local day: a missed hourly tick is caught
    up by the next one that day."""
    local = utc(now).astimezone(tz)
    return local.date() if local.hour >= hour else None


def scan_hour(value: object) -> tuple[int, str | None]:
    """An org's configured stale-deal hour (0-23), or the default with the problem."""
    if value is None:
        return DEFAULT_STALE_HOUR, None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 23:
        return value, None
    parsed = parse_hhmm(value) if isinstance(value, str) else None
    if parsed is not None:
        return parsed.hour, None
    return DEFAULT_STALE_HOUR, f"invalid stale_deals_hour {str(value)[:16]!r}"


def days_inactive(value: object) -> tuple[int, str | None]:
    """An org's `days_inactive` setting (1-365), or the default with the problem."""
    if value is None:
        return DEFAULT_DAYS_INACTIVE, None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 365:
        return value, None
    return DEFAULT_DAYS_INACTIVE, f"invalid days_inactive {str(value)[:16]!r}"


def prep_window(start: datetime) -> tuple[datetime, datetime]:
    """Calendar events starting in `[start + 30 min, start + 120 min)` get a briefing."""
    start = utc(start)
    return start + PREP_WINDOW[0], start + PREP_WINDOW[1]
