"""The return date an out-of-office reply names ("back on 3 December", "bis 3. Dezember").

Pure functions (no I/O); ``now`` is passed in.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sequences.skills.dates import MONTHS
from sequences.skills.email.quoted_text import strip_quoted
from sequences.skills.email.text import fold, rx

ANCHOR_WINDOW_CHARS = 40  # chars before a date in which "until"/"back on" anchors it as the return date


_MONTHS = MONTHS  # month names (en/de/fr/es, case-folded) → month number
_WEEKDAYS: dict[str, int] = {
    **{d: i for i, d in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])},
    **{d: i for i, d in enumerate(["montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"])},
    **{d: i for i, d in enumerate(["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"])},
    **{d: i for i, d in enumerate(["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"])},
    "miercoles": 2,
    "sabado": 5,
}  # weekday names (en/de/fr/es, case-folded) → Monday=0

_MONTH_ALT = "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True))
_WEEKDAY_ALT = "|".join(sorted(map(re.escape, _WEEKDAYS), key=len, reverse=True))
_ISO_DATE_RE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_NUMERIC_DATE_RE = re.compile(r"(?<![\d.:/])(\d{1,2})([./])(\d{1,2})(?:\2(\d{4}|\d{2}))?(?![\d/]|\.\d)")
_DAY_MONTH_RE = re.compile(
    rf"(?<!\w)(\d{{1,2}})(?:st|nd|rd|th|er|\.)?\s+(?:of\s+|de\s+)?({_MONTH_ALT})(?!\w)\.?(?:,?\s+(?:de\s+)?(\d{{4}}))?"
)
_MONTH_DAY_RE = re.compile(rf"(?<!\w)({_MONTH_ALT})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?!\d)(?:,?\s+(\d{{4}}))?")
_WEEKDAY_RE = re.compile(rf"(?<!\w)({_WEEKDAY_ALT})(?!\w)")
_RELATIVE_RE = rx(
    r"tomorrow",
    r"morgen",
    r"demain",
    r"mañana",
    r"next week",
    r"nächste woche",
    r"nächsten woche",
    r"la semaine prochaine",
    r"la próxima semana",
    r"la semana que viene",
)
_ANCHOR_RE = rx(
    r"until",
    r"till",
    r"til",
    r"through",
    r"thru",
    r"back",
    r"return\w*",
    r"in the office",
    r"bis",
    r"zurück",
    r"wieder",
    r"ab",
    r"jusqu'au",
    r"jusqu'à",
    r"retour",
    r"hasta",
    r"regreso",
    r"regresaré",
    r"vuelvo",
    r"volveré",
    r"de vuelta",
)


def _in_year(today: date, month: int, day: int, year: int | None) -> date | None:
    try:
        if year is not None:
            return date(year + 2000 if year < 100 else year, month, day)
        candidate = date(today.year, month, day)
        return candidate if candidate >= today else date(today.year + 1, month, day)
    except ValueError:
        return None


def _date_mentions(text: str, today: date) -> list[tuple[int, date]]:
    """Every date the text names, as (position, date), explicit dates before weekday/relative ones."""
    found: list[tuple[int, date]] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, value: date | None) -> None:
        if value is not None and not any(s < end and start < e for s, e in taken):
            found.append((start, value))
            taken.append((start, end))

    for m in _ISO_DATE_RE.finditer(text):
        add(m.start(), m.end(), _in_year(today, int(m.group(2)), int(m.group(3)), int(m.group(1))))
    for m in _DAY_MONTH_RE.finditer(text):
        year = int(m.group(3)) if m.group(3) else None
        add(m.start(), m.end(), _in_year(today, _MONTHS[m.group(2)], int(m.group(1)), year))
    for m in _MONTH_DAY_RE.finditer(text):
        year = int(m.group(3)) if m.group(3) else None
        add(m.start(), m.end(), _in_year(today, _MONTHS[m.group(1)], int(m.group(2)), year))
    for m in _NUMERIC_DATE_RE.finditer(text):
        a, sep, b = int(m.group(1)), m.group(2), int(m.group(3))
        year = int(m.group(4)) if m.group(4) else None
        orders = [(b, a)] if sep == "." else [(a, b), (b, a)]  # "." is day.month; "/" may be either
        options = [d for d in (_in_year(today, mo, dy, year) for mo, dy in orders) if d is not None]
        add(m.start(), m.end(), min(options) if options else None)
    for m in _WEEKDAY_RE.finditer(text):
        ahead = (_WEEKDAYS[m.group(1)] - today.weekday() - 1) % 7 + 1  # strictly after today
        add(m.start(), m.end(), today + timedelta(days=ahead))
    for m in _RELATIVE_RE.finditer(text):
        word = m.group(0)
        if "week" in word or "woche" in word or "semaine" in word or "semana" in word:
            add(m.start(), m.end(), today + timedelta(days=7 - today.weekday()))  # next Monday
        else:
            add(m.start(), m.end(), today + timedelta(days=1))
    return found


def ooo_until(body: str | None, now: datetime | date) -> date | None:
    """Best-effort return date from an out-of-office reply, or None.

    Dates: ISO ``2026-12-03``; ``3 December``/``December 3rd``/``3. Dezember``/``3 de diciembre`` (en, de,
    fr, es month names); numeric ``03.12.`` (day.month) and ``12/03`` (either order: the reading that
    comes soonest on or after today); weekday names (the next such day strictly after today); "tomorrow",
    "next week" (its Monday). A date without a year is the next one on or after today. A date within 40
    characters after "until", "back", "returning", "bis", "zurück", "jusqu'au", "hasta", … is the return
    date (the latest such one wins); without any anchor the latest date named wins. The date is returned
    as written: "until 3 December" gives 3 December, whether or not that day is still away.
    """
    text = fold(strip_quoted(body))
    if not text:
        return None
    today = now.date() if isinstance(now, datetime) else now
    mentions = _date_mentions(text, today)
    if not mentions:
        return None
    anchored = [d for pos, d in mentions if _ANCHOR_RE.search(text[max(0, pos - ANCHOR_WINDOW_CHARS) : pos])]
    return max(anchored or [d for _, d in mentions])
