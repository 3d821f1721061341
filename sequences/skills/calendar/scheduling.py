"""Meeting scheduling: what a scheduling request asks for, and which free slots answer it.

Pure decisions (no I/O) for calendar_find_times: ``parse_scheduling_request`` reads the
``scheduling_text`` (an email body or a transcript sentence) into a ``SchedulingRequest``;
``freebusy_window`` is the UTC range to ask Google freebusy about; ``find_slots`` turns the busy
intervals it returns into at most five scored ``Slot`` values. The skills that call Google live
elsewhere.

Reading the text (English keywords, case-insensitive; anything unrecognised keeps its default, so
text in another language yields the defaults with ``matched == []``):

* Duration: 15/30/45/60/90/120 minutes, default 30. "quick chat/call/sync" → 15, "half an hour" → 30,
  "an hour" → 60, "an hour and a half" → 90, numbers with a unit ("20 min", "90 minutes", "2 hours",
  "1h30", "30 Minuten") → the nearest allowed value (a tie goes to the longer one). Explicit numbers
  beat vague phrases. Hour counts above 4 are ignored (they are clock times such as "10h").
* "Today" means the local date of ``now`` in the rep's zone. The *first open day* is today when it is
  a weekday before 17:00 local (the end of the working day), else the next weekday.
* Window, first rule that matches:

  ===========================  =============================================================
  phrase                       window (inclusive local dates)
  ===========================  =============================================================
  weekday names                each name's next occurrence: today counts only before 17:00
  ("Tuesday", "Tue or Wed")    local; the window runs from the earliest to the latest date and
                               ``weekdays`` restricts it to the named days. Abbreviations
                               (Mon, Tue, Tues, Wed, Thu, Thur, Thurs, Fri) count only when
                               capitalised ("Tue", not the French "tue"); Saturday and Sunday
                               are read but never offered (slots skip weekends).
  "next Tuesday", or names +   the named days of *next week* (below): said on a Monday,
  "next week"                  "next Tuesday" is 8 days away, not tomorrow.
  names + today/tomorrow       "tomorrow or Friday": both days (not with "next …")
  today / this morning /       today (literally: past working hours or a weekend gives no slots)
  tonight / later today
  tomorrow                     tomorrow; "day after tomorrow" → the day after
  end of the week              Thursday-Friday of the first open day's week, from the first open
                               day at the earliest; "by end of week" → the whole of "this week"
  early / end of next week     Monday-Tuesday / Thursday-Friday of next week
  this week or next            first open day → Friday of next week
  this week                    first open day → Friday of that day's week; so on Friday after
                               17:00 or on a weekend it is next week's Monday-Friday
  next week                    Monday-Friday of the next ISO week, i.e. after the current local
                               date's week: on a Saturday or a Sunday it is the coming Monday-Friday
                               (the same days as "this week" then)
  week after next              Monday-Friday of the ISO week after next week
  next N days / few / couple   N working days (few = 3, couple = 2, N ≤ 60) from the first open
                               day: "days" count working days since slots never fall on weekends
  (none)                       the next 5 working days from the first open day
  ===========================  =============================================================

* Part of day: "morning"/"before lunch" → 09:00-12:00, "afternoon"/"after lunch" → 12:00-17:00,
  "evening"/"tonight"/"after work" → 17:00-19:00. Working hours are 09:00-17:00; only an explicit
  evening request extends them (to 19:00). Two different parts ("morning or afternoon") → no
  restriction.

Slots (``find_slots``): every ``step_minutes`` from the start of the day's range (working hours, or
the part of day) in local wall-clock time, so 09:00 stays 09:00 local across DST changes; weekdays
only; inside ``window_start`` .. ``window_end + extra_days``; starting at least 30 minutes after
``now``; never overlapping a busy interval (touching one is allowed; empty or reversed intervals
block nothing). Score, from 100:

* -4 per eligible working day after the first one searched (the window's start, or today when the
  window began earlier), at most -40: earlier days first;
* time of day of the start: 10:00-11:30 and 13:00-14:30 → 0, 09:00-10:00 → -6, 11:30-13:00
  (lunch) → -10, 14:30-16:00 → -4, otherwise (16:00 on, or the evening) → -12;
* -6 for each side that is within 15 minutes of a busy block (back-to-back meetings).

Selection: the best slot of each day first (days ranked by that slot's score), then second slots
(-15 when within 2 hours of that day's first slot), never more than 2 a day nor ``max_slots`` in all;
ties go to the earlier start. The result is in chronological order.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PartOfDay = Literal["morning", "afternoon", "evening"]

ALLOWED_DURATIONS = (15, 30, 45, 60, 90, 120)  # minutes: the lengths a rep may book
DEFAULT_DURATION_MINUTES = 30  # minutes: when the text names no length
DEFAULT_WORKING_DAYS = 5  # working days: the window when the text names none
MAX_WINDOW_DAYS = 60  # working days: the longest "next N days" taken literally
MAX_HOURS_AS_DURATION = 4  # hours: a larger "N h" is a clock time ("10h"), not a length
END_OF_WORKING_DAY = time(17)  # local: after this, today no longer counts as an open day
WORKING_HOURS = (time(9), time(17))  # local: working hours 09:00-17:00
PART_OF_DAY_HOURS: dict[str, tuple[time, time]] = {
    "morning": (time(9), time(12)),
    "afternoon": (time(12), time(17)),
    "evening": (time(17), time(19)),  # beyond working hours: only offered when asked for
}
LEAD_TIME = timedelta(minutes=30)  # no slot starts sooner than this after `now` (time to accept)
BUFFER = timedelta(minutes=15)  # a gap shorter than this to a busy block is "back-to-back"
DAY_PENALTY = 4.0  # points per eligible working day after the window's first
MAX_DAY_PENALTY = 40.0  # points: the earliness penalty's ceiling
BACK_TO_BACK_PENALTY = 6.0  # points per side touching a busy block
SAME_DAY_NEAR = timedelta(hours=2)  # a second slot closer than this to the day's first one …
SAME_DAY_NEAR_PENALTY = 15.0  # … loses these points when second slots are chosen
MAX_SLOTS_PER_DAY = 2  # slots: spread the options across days
MAX_SCORE = 100.0  # points: a slot's score before penalties

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WEEKDAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EN_DASH = "\u2013"  # between a slot's start and end in its label
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class SchedulingRequest(BaseModel):
    """What a scheduling text asks for: a length, a window of local dates and optional filters."""

    model_config = ConfigDict(frozen=True)

    duration_minutes: int = DEFAULT_DURATION_MINUTES
    window_start: date  # local date in the rep's zone, inclusive
    window_end: date  # local date, inclusive
    window_text: str  # how the window reads to a person ("next week", "Tuesday or Wednesday")
    part_of_day: PartOfDay | None = None
    weekdays: list[int] | None = None  # 0 = Monday; None = any weekday
    matched: list[str] = Field(default_factory=list)  # the phrases that decided, in text order

    @field_validator("duration_minutes")
    @classmethod
    def _allowed_duration(cls, value: int) -> int:
        if value not in ALLOWED_DURATIONS:
            raise ValueError(f"duration_minutes must be one of {ALLOWED_DURATIONS}, got {value}")
        return value

    @field_validator("weekdays")
    @classmethod
    def _valid_weekdays(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if not value or any(not 0 <= day <= 6 for day in value):
            raise ValueError(f"weekdays must be a non-empty list of 0..6, got {value}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _ordered_window(self) -> SchedulingRequest:
        if self.window_end < self.window_start:
            raise ValueError(f"window_end {self.window_end} is before window_start {self.window_start}")
        return self


class Slot(BaseModel):
    """A free interval offered to the rep: UTC instants, a local label and its score (0-100)."""

    model_config = ConfigDict(frozen=True)

    start: datetime  # aware, UTC
    end: datetime  # aware, UTC
    label: str  # "Tue 1 Dec, 10:00-10:30 EST" in the rep's zone
    score: float


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")


# --------------------------------------------------------------------------- reading the text

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "few": 3, "couple": 2, "couple of": 2,
}  # fmt: skip
_MINUTE_WORDS = {"fifteen": 15, "thirty": 30, "forty-five": 45, "sixty": 60, "ninety": 90}
_HOUR_WORDS = {"two": 120, "three": 180}

_HOUR_UNIT = r"(?:hours?|hrs?|h)"
_MINUTE_UNIT = r"min\w*"  # min, mins, minute(s), and "Minuten"/"minutos" alike (no bare "m": "$5m")
_DURATION_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind)
    for pattern, kind in (
        (r"\b(?:(?:an?|one)\s+)?hour\s+and\s+a\s+half\b|\bone\s+and\s+a\s+half\s+hours?\b", "ninety"),
        (rf"\b(\d{{1,2}})\s*{_HOUR_UNIT}\s*(?:and\s+)?(\d{{1,2}})\s*{_MINUTE_UNIT}\b", "h_m"),
        (r"\b(\d{1,2})h(\d{2})\b", "h_m"),
        (r"\bhalf(?:\s+an|\s+a)?[\s-]*hour\b", "half"),
        (rf"\b(\d{{1,3}}(?:[.,]\d+)?)\s*-?\s*{_HOUR_UNIT}\b", "hours"),
        (rf"\b(\d{{1,3}})\s*-?\s*{_MINUTE_UNIT}\b", "minutes"),
        (r"\b(fifteen|thirty|forty[\s-]five|sixty|ninety)[\s-]*minutes?\b", "minute_word"),
        (r"\b(two|three)[\s-]*hours?\b", "hour_word"),
        (r"\b(?:an?|one)[\s-]*hour\b|\bhour[\s-]long\b", "hour"),
        (r"\b(?:quick|brief|short)\s+(?:chat|call|sync|catch[\s-]?up|question|intro)\b", "quick"),
    )
)


def _nearest_duration(minutes: float) -> int:
    return min(ALLOWED_DURATIONS, key=lambda allowed: (abs(allowed - minutes), -allowed))


def _duration_minutes(kind: str, match: re.Match[str]) -> float | None:
    """The length a duration rule's match names, or None when it does not name one after all."""
    fixed = {"ninety": 90.0, "half": 30.0, "hour": 60.0, "quick": 15.0}
    if kind in fixed:
        return fixed[kind]
    if kind == "h_m":
        hours, minutes = int(match.group(1)), int(match.group(2))
        return None if hours > MAX_HOURS_AS_DURATION else hours * 60.0 + minutes
    if kind == "hours":
        hours = float(match.group(1).replace(",", "."))
        return None if not 0 < hours <= MAX_HOURS_AS_DURATION else hours * 60.0
    if kind == "minutes":
        minutes = int(match.group(1))
        return float(minutes) if minutes > 0 else None
    if kind == "minute_word":
        return float(_MINUTE_WORDS[re.sub(r"[\s-]+", "-", match.group(1).lower())])
    return float(_HOUR_WORDS[match.group(1).lower()])  # hour_word


def _parse_duration(text: str, found: list[tuple[int, str]]) -> int:
    for pattern, kind in _DURATION_RULES:
        for match in pattern.finditer(text):
            minutes = _duration_minutes(kind, match)
            if minutes is not None:
                found.append((match.start(), match.group(0)))
                return _nearest_duration(minutes)
    return DEFAULT_DURATION_MINUTES


_PART_RULES: tuple[tuple[re.Pattern[str], PartOfDay], ...] = (
    (re.compile(r"\bmornings?\b|\bbefore\s+lunch\b", re.IGNORECASE), "morning"),
    (re.compile(r"\bafternoons?\b|\bafter\s+lunch\b", re.IGNORECASE), "afternoon"),
    (re.compile(r"\bevenings?\b|\btonight\b|\bafter\s+work\b", re.IGNORECASE), "evening"),
)


def _parse_part_of_day(text: str, found: list[tuple[int, str]]) -> PartOfDay | None:
    hits = [(part, match) for pattern, part in _PART_RULES if (match := pattern.search(text))]
    if len({part for part, _ in hits}) != 1:
        return None  # none, or ambiguous ("morning or afternoon"): no restriction
    part, match = hits[0]
    found.append((match.start(), match.group(0)))
    return part


_WEEKDAY_TOKENS = {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6,
    "mon": 0, "tue": 1, "tues": 1, "wed": 2, "thu": 3, "thur": 3, "thurs": 3, "fri": 4,
}  # fmt: skip
_WEEKDAY_RE = re.compile(
    r"\b(?:(next|this|coming)\s+)?(" + "|".join(sorted(_WEEKDAY_TOKENS, key=len, reverse=True)) + r")s?\b\.?",
    re.IGNORECASE,
)
_NUMBER = r"(\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|few|couple(?:\s+of)?)"
_WINDOW_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind)
    for pattern, kind in (
        (r"\bday\s+after\s+tomorrow\b", "day_after_tomorrow"),
        (r"\btoday\s+or\s+tomorrow\b", "today_or_tomorrow"),
        (r"\btoday\b|\bthis\s+(?:morning|afternoon|evening)\b|\btonight\b|\blater\s+today\b", "today"),
        (r"\btomorrow\b", "tomorrow"),
        (r"\bby\s+(?:the\s+)?end\s+of\s+(?:the\s+|this\s+)?week\b", "this_week"),
        (r"\bend\s+of\s+next\s+week\b|\blater?\s+next\s+week\b", "end_of_next_week"),
        (r"\bearly\s+next\s+week\b|\bbeginning\s+of\s+next\s+week\b", "early_next_week"),
        (r"\bend\s+of\s+(?:the\s+|this\s+)?week\b|\blater\s+this\s+week\b", "end_of_week"),
        (r"\bthis\s+week\s+or\s+next\b", "this_or_next_week"),
        (r"\b(?:the\s+)?week\s+after\s+next\b", "week_after_next"),
        (r"\bthis\s+week\b", "this_week"),
        (r"\bnext\s+week\b|\bcoming\s+week\b", "next_week"),
        (
            rf"\b(?:next|coming|within)\s+(?:the\s+)?(?:next\s+)?{_NUMBER}\s+(?:business\s+|working\s+|work\s+)?days\b",
            "next_n_days",
        ),
    )
)
_SINGLE_DAY_KINDS = frozenset({"day_after_tomorrow", "today_or_tomorrow", "today", "tomorrow"})
_NEXT_WEEK_RE = re.compile(r"\bnext\s+week\b", re.IGNORECASE)


@dataclass(frozen=True)
class _Window:
    start: date
    end: date
    text: str
    weekdays: list[int] | None = None


def _first_open_day(local_now: datetime) -> date:
    """Today when it is a weekday before 17:00 local, else the next weekday."""
    day = local_now.date()
    if day.weekday() < 5 and local_now.time() < END_OF_WORKING_DAY:
        return day
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _add_working_days(start: date, count: int) -> date:
    """The last of `count` working days beginning at `start` (a weekday)."""
    day, left = start, count - 1
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def _next_occurrence(weekday: int, local_now: datetime) -> date:
    today = local_now.date()
    ahead = (weekday - today.weekday()) % 7
    if ahead == 0 and local_now.time() >= END_OF_WORKING_DAY:
        ahead = 7
    return today + timedelta(days=ahead)


def _weekday_window(text: str, local_now: datetime, found: list[tuple[int, str]]) -> _Window | None:
    days: list[int] = []
    in_next_week = bool(_NEXT_WEEK_RE.search(text))
    for match in _WEEKDAY_RE.finditer(text):
        token = match.group(2)
        if len(token) < 6 and not token[0].isupper():  # abbreviations only when capitalised
            continue
        days.append(_WEEKDAY_TOKENS[token.lower()])
        in_next_week = in_next_week or (match.group(1) or "").lower() == "next"
        found.append((match.start(), match.group(0).rstrip(".")))
    if not days:
        return None
    if in_next_week:
        next_monday = _monday(local_now.date()) + timedelta(days=7)
        dates = [next_monday + timedelta(days=day) for day in days]
        if (hit := _NEXT_WEEK_RE.search(text)) and not any(hit.group(0) == phrase for _, phrase in found):
            found.append((hit.start(), hit.group(0)))
    else:
        dates = [_next_occurrence(day, local_now) for day in days]
    names = " or ".join(WEEKDAY_NAMES[day] for day in sorted(set(days)))
    return _Window(min(dates), max(dates), f"next {names}" if in_next_week else names, sorted(set(days)))


def _count(word: str) -> int:
    word = " ".join(word.lower().split())
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _rule_window(kind: str, match: re.Match[str], local_now: datetime) -> _Window:
    today = local_now.date()
    open_day = _first_open_day(local_now)
    week = _monday(open_day)
    next_week = _monday(today) + timedelta(days=7)
    if kind == "today":
        return _Window(today, today, "today")
    if kind == "today_or_tomorrow":
        return _Window(today, today + timedelta(days=1), "today or tomorrow")
    if kind == "tomorrow":
        return _Window(today + timedelta(days=1), today + timedelta(days=1), "tomorrow")
    if kind == "day_after_tomorrow":
        return _Window(today + timedelta(days=2), today + timedelta(days=2), "the day after tomorrow")
    if kind == "end_of_week":
        return _Window(max(open_day, week + timedelta(days=3)), week + timedelta(days=4), "end of the week")
    if kind == "end_of_next_week":
        return _Window(next_week + timedelta(days=3), next_week + timedelta(days=4), "end of next week")
    if kind == "early_next_week":
        return _Window(next_week, next_week + timedelta(days=1), "early next week")
    if kind == "this_or_next_week":
        return _Window(open_day, week + timedelta(days=11), "this week or next")
    if kind == "this_week":
        return _Window(open_day, week + timedelta(days=4), "this week")
    if kind == "next_week":
        return _Window(next_week, next_week + timedelta(days=4), "next week")
    if kind == "week_after_next":
        return _Window(next_week + timedelta(days=7), next_week + timedelta(days=11), "the week after next")
    count = max(1, min(MAX_WINDOW_DAYS, _count(match.group(1))))  # next_n_days
    return _Window(open_day, _add_working_days(open_day, count), f"next {count} working days")


def _parse_window(text: str, local_now: datetime, found: list[tuple[int, str]]) -> _Window:
    window = _weekday_window(text, local_now, found)
    if window is not None and not window.text.startswith("next "):
        for pattern, kind in _WINDOW_RULES:  # "tomorrow or Friday": a named day joins the names
            if kind in _SINGLE_DAY_KINDS and (match := pattern.search(text)) is not None:
                found.append((match.start(), match.group(0)))
                day = _rule_window(kind, match, local_now)
                days = sorted({*(window.weekdays or []), day.start.weekday(), day.end.weekday()})
                return _Window(
                    min(day.start, window.start), max(day.end, window.end), f"{day.text} or {window.text}", days
                )
    if window is not None:
        return window
    for pattern, kind in _WINDOW_RULES:
        match = pattern.search(text)
        if match is not None:
            found.append((match.start(), match.group(0)))
            return _rule_window(kind, match, local_now)
    open_day = _first_open_day(local_now)
    end = _add_working_days(open_day, DEFAULT_WORKING_DAYS)
    return _Window(open_day, end, f"next {DEFAULT_WORKING_DAYS} working days")


def parse_scheduling_request(text: str, now: datetime, tz: ZoneInfo) -> SchedulingRequest:
    """Read a free-text scheduling request (rules in the module docstring); never fails on text.

    ``now`` must be timezone-aware; dates are resolved in ``tz`` (the rep's zone).
    """
    _require_aware("now", now)
    normal = " ".join(str(text or "").replace("\u2013", "-").replace("\u2014", "-").split())
    local_now = now.astimezone(tz)
    found: list[tuple[int, str]] = []
    duration = _parse_duration(normal, found)
    part = _parse_part_of_day(normal, found)
    window = _parse_window(normal, local_now, found)
    matched: list[str] = []
    for _, phrase in sorted(found, key=lambda hit: hit[0]):
        if phrase not in matched:
            matched.append(phrase)
    return SchedulingRequest(
        duration_minutes=duration,
        window_start=window.start,
        window_end=window.end,
        window_text=window.text,
        part_of_day=part,
        weekdays=window.weekdays,
        matched=matched,
    )


# --------------------------------------------------------------------------- finding slots


def freebusy_window(request: SchedulingRequest, tz: ZoneInfo, extra_days: int = 0) -> tuple[datetime, datetime]:
    """The UTC range covering the window's local days (midnight to midnight), widened by `extra_days`."""
    if extra_days < 0:
        raise ValueError(f"extra_days must be ≥ 0, got {extra_days}")
    start = datetime.combine(request.window_start, time(0), tzinfo=tz)
    end = datetime.combine(request.window_end + timedelta(days=extra_days + 1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def _merge_busy(busy: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Busy intervals in UTC, sorted, with overlapping or touching ones merged; empty ones dropped."""
    intervals = []
    for start, end in busy:
        _require_aware("busy start", start)
        _require_aware("busy end", end)
        if end > start:
            intervals.append((start.astimezone(UTC), end.astimezone(UTC)))
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _hours_for(part: str | None, working_hours: tuple[time, time]) -> tuple[time, time]:
    opens, closes = working_hours
    if part is None:
        return opens, closes
    part_opens, part_closes = PART_OF_DAY_HOURS[part]
    if part == "evening":
        return part_opens, part_closes  # asked for explicitly: beyond working hours on purpose
    return max(opens, part_opens), min(closes, part_closes)


def _time_penalty(local_start: datetime) -> float:
    minute = local_start.hour * 60 + local_start.minute
    if 600 <= minute < 690 or 780 <= minute <= 870:  # 10:00-11:30, 13:00-14:30
        return 0.0
    if 540 <= minute < 600:  # 09:00-10:00: first thing in the morning
        return 6.0
    if 690 <= minute < 780:  # 11:30-13:00: lunch
        return 10.0
    if 870 < minute < 960:  # 14:30-16:00
        return 4.0
    return 12.0  # late afternoon, evening or outside the usual day


def _label(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    day = f"{_WEEKDAY_ABBR[local_start.weekday()]} {local_start.day} {_MONTH_ABBR[local_start.month - 1]}"
    return f"{day}, {local_start:%H:%M}{EN_DASH}{local_end:%H:%M} {local_start.tzname()}"


@dataclass(frozen=True)
class _Candidate:
    start: datetime
    end: datetime
    day: date
    score: float


def _day_candidates(
    day: date,
    day_index: int,
    hours: tuple[time, time],
    duration: timedelta,
    step_minutes: int,
    earliest: datetime,
    starts: list[datetime],
    ends: list[datetime],
    tz: ZoneInfo,
) -> list[_Candidate]:
    close_utc = datetime.combine(day, hours[1], tzinfo=tz).astimezone(UTC)
    first_minute = hours[0].hour * 60 + hours[0].minute
    last_minute = hours[1].hour * 60 + hours[1].minute
    day_offset = min(MAX_DAY_PENALTY, DAY_PENALTY * day_index)
    found = []
    for minute in range(first_minute, last_minute, step_minutes):
        wall = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz)
        start = wall.astimezone(UTC)
        if start.astimezone(tz).replace(tzinfo=None) != wall.replace(tzinfo=None):
            continue  # a wall time skipped by a DST change does not exist
        end = start + duration
        if end > close_utc or start < earliest:
            continue
        before = bisect_left(starts, end)  # blocks are merged: only the last one starting before the end …
        if before and ends[before - 1] > start:
            continue  # … can overlap the slot
        penalty = day_offset + _time_penalty(wall)
        if before and start - ends[before - 1] < BUFFER:
            penalty += BACK_TO_BACK_PENALTY
        if before < len(starts) and starts[before] - end < BUFFER:  # the next block starts at/after the end
            penalty += BACK_TO_BACK_PENALTY
        found.append(_Candidate(start, end, day, round(max(0.0, MAX_SCORE - penalty), 1)))
    return found


def _select(candidates: list[_Candidate], max_slots: int) -> list[_Candidate]:
    ranked = sorted(candidates, key=lambda c: (-c.score, c.start))
    firsts: dict[date, _Candidate] = {}
    for candidate in ranked:
        if len(firsts) >= max_slots:
            break
        firsts.setdefault(candidate.day, candidate)
    chosen = list(firsts.values())
    if MAX_SLOTS_PER_DAY > 1 and len(chosen) < max_slots:

        def adjusted(candidate: _Candidate) -> float:
            first = firsts[candidate.day]
            near = abs(candidate.start - first.start) < SAME_DAY_NEAR
            return candidate.score - (SAME_DAY_NEAR_PENALTY if near else 0.0)

        seconds = [c for c in candidates if c.day in firsts and c is not firsts[c.day]]
        taken: set[date] = set()
        for candidate in sorted(seconds, key=lambda c: (-adjusted(c), c.start)):
            if len(chosen) >= max_slots:
                break
            first = firsts[candidate.day]
            if candidate.day in taken or (candidate.start < first.end and first.start < candidate.end):
                continue
            chosen.append(candidate)
            taken.add(candidate.day)
    return sorted(chosen, key=lambda c: c.start)


def find_slots(
    busy: Sequence[tuple[datetime, datetime]],
    request: SchedulingRequest,
    tz: ZoneInfo,
    now: datetime,
    *,
    working_hours: tuple[time, time] = WORKING_HOURS,
    step_minutes: int = 15,
    max_slots: int = 5,
    extra_days: int = 0,
) -> list[Slot]:
    """Up to `max_slots` free, scored slots for `request` in `tz` (rules in the module docstring).

    ``busy`` holds aware (start, end) pairs in any zone, in any order, possibly overlapping.
    ``extra_days`` widens the window's end ("more options" asks again with 10 more days).
    """
    _require_aware("now", now)
    if step_minutes <= 0:
        raise ValueError(f"step_minutes must be positive, got {step_minutes}")
    if extra_days < 0:
        raise ValueError(f"extra_days must be ≥ 0, got {extra_days}")
    if working_hours[1] <= working_hours[0]:
        raise ValueError(f"working hours must end after they start, got {working_hours}")
    if max_slots <= 0:
        return []
    blocks = _merge_busy(busy)
    starts, ends = [block[0] for block in blocks], [block[1] for block in blocks]
    hours = _hours_for(request.part_of_day, working_hours)
    if hours[1] <= hours[0]:
        return []  # the part of day lies outside these working hours
    duration = timedelta(minutes=request.duration_minutes)
    earliest = now.astimezone(UTC) + LEAD_TIME
    day = max(request.window_start, now.astimezone(tz).date())
    last_day = request.window_end + timedelta(days=extra_days)
    candidates: list[_Candidate] = []
    day_index = 0
    while day <= last_day:
        if day.weekday() < 5 and (request.weekdays is None or day.weekday() in request.weekdays):
            candidates += _day_candidates(day, day_index, hours, duration, step_minutes, earliest, starts, ends, tz)
            day_index += 1
        day += timedelta(days=1)
    return [
        Slot(start=c.start, end=c.end, label=_label(c.start, c.end, tz), score=c.score)
        for c in _select(candidates, max_slots)
    ]
