"""Due dates a sentence names ("by Friday", "in two weeks", "3. Dezember"), resolved against the
meeting's date, and dates written back as text. Pure functions (no I/O). The rules:

Due dates (``due_from_text``), relative to the meeting's date as given
    today/EOD → that day; tomorrow → +1; day after tomorrow → +2; end of week/this week/EOW → the
    first Friday on or after it; next week → the Friday of the following week; end of month → its last
    day; "next <weekday>" → that weekday in the following (Monday-started) week; a bare weekday ("by
    Friday", "on Tuesday") → the first such day strictly after the meeting; "in N days/weeks"; "December
    3"/"3rd of December"/"3. Dezember" → the next such date on or after the meeting. A date introduced
    by "by"/"until"/"before"/"bis" wins over other dates in the sentence, else the first.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sequences.skills.dates import MONTHS
from sequences.skills.meetings.text import fold

WEEKDAYS: dict[str, int] = {
    **{d: i for i, d in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])},
    **{d: i for i, d in enumerate(["montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"])},
}  # weekday names (en/de) → Monday=0
_MONTHS = MONTHS  # month names (en/de/fr/es) → month number
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
_WD = "|".join(sorted(WEEKDAYS, key=len, reverse=True))
_MO = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DUE_RE = re.compile(
    r"(?P<anchor>(?<!\w)(?:by|until|before|no later than|bis(?: zum| spätestens)?|spätestens)\s+"
    r"(?:(?:the|this|on|am|end of)\s+)?)?"
    r"(?:"
    rf"(?P<nextwd>(?<!\w)(?:next|nächsten|nächster|kommenden)\s+(?P<wd1>{_WD}))"
    r"|(?P<nextweek>(?<!\w)(?:next week|nächste woche|nächsten woche|kommende woche))"
    rf"|(?P<wd2>(?<!\w)(?:{_WD}))"
    r"|(?P<dat>(?<!\w)(?:day after tomorrow|übermorgen))"
    r"|(?P<tom>(?<!\w)tomorrow|(?<!guten )(?<!\w)morgen)"
    r"|(?P<today>(?<!\w)(?:today|tonight|eod|end of (?:the )?day|heute))"
    r"|(?P<eow>(?<!\w)(?:end of (?:the )?week|eow|this week|diese woche|ende der woche))"
    r"|(?P<eom>(?<!\w)(?:end of (?:the )?month|eom|ende des monats|monatsende))"
    r"|(?P<in>(?<!\w)in\s+(?P<n>\d{1,2}|a|an|one|two|three|four|five|six|seven)\s+(?P<unit>days?|weeks?|tagen?|wochen?))"
    rf"|(?P<md>(?<!\w)(?P<mo1>{_MO})\.?\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?(?!\d))"
    rf"|(?P<dm>(?<!\w)(?P<d2>\d{{1,2}})(?:st|nd|rd|th|\.)?\s+(?:of\s+)?(?P<mo2>{_MO}))"
    r")(?!\w)"
)


def _first_on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def _next_monday(day: date) -> date:
    return day + timedelta(days=7 - day.weekday())


def _month_day(day: date, month: int, dom: int) -> date | None:
    try:
        candidate = date(day.year, month, dom)
        return candidate if candidate >= day else date(day.year + 1, month, dom)
    except ValueError:
        return None


def _resolve(match: re.Match[str], day: date) -> date | None:
    if match.group("nextwd"):
        return _next_monday(day) + timedelta(days=WEEKDAYS[match.group("wd1")])
    if match.group("nextweek"):
        return _next_monday(day) + timedelta(days=4)
    if match.group("wd2"):
        return day + timedelta(days=(WEEKDAYS[match.group("wd2")] - day.weekday() - 1) % 7 + 1)
    if match.group("dat"):
        return day + timedelta(days=2)
    if match.group("tom"):
        return day + timedelta(days=1)
    if match.group("today"):
        return day
    if match.group("eow"):
        return _first_on_or_after(day, 4)
    if match.group("eom"):
        following = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        return following - timedelta(days=1)
    if match.group("in"):
        raw = match.group("n")
        count = int(raw) if raw.isdigit() else _NUMBERS[raw]
        unit = match.group("unit")
        return day + timedelta(days=count * (7 if unit.startswith(("week", "woche")) else 1))
    if match.group("md"):
        return _month_day(day, _MONTHS[match.group("mo1")], int(match.group("d1")))
    return _month_day(day, _MONTHS[match.group("mo2")], int(match.group("d2")))


def due_from_text(text: str, meeting_date: date | datetime) -> date | None:
    """The date a sentence names, relative to the meeting's date (rules in the module docstring)."""
    day = meeting_date.date() if isinstance(meeting_date, datetime) else meeting_date
    matches = list(_DUE_RE.finditer(fold(text)))
    if not matches:
        return None
    anchored = [m for m in matches if m.group("anchor")]
    for match in anchored + [m for m in matches if not m.group("anchor")]:
        resolved = _resolve(match, day)
        if resolved is not None:
            return resolved
    return None


def names_a_date(text: str) -> bool:
    """Whether a text already names a date ("a call next Tuesday"), so none needs appending."""
    return _DUE_RE.search(fold(text)) is not None


_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def day_text(day: date) -> str:
    """A date as a sentence names it: "Friday 11 December"."""
    return f"{_WEEKDAY_NAMES[day.weekday()]} {day.day} {_MONTH_NAMES[day.month - 1]}"


def short_day_text(day: date) -> str:
    """A date in a short line: "Fri 11 Dec"."""
    return f"{_WEEKDAY_NAMES[day.weekday()][:3]} {day.day} {_MONTH_NAMES[day.month - 1][:3]}"
