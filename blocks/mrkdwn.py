"""Safe mrkdwn snippets made from user data: names, bullet lists, links, times, amounts, rates.

Everything returned here is already escaped and bounded, ready to go into a section or context.
Times use Slack's ``<!date^…>`` token, so each reader sees their own time zone; its fallback (and
what ``render_text`` shows) is the UTC time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from blocks import coerce
from blocks.limits import SECTION_TEXT_MAX, escape, truncate

NAME_MAX = 200  # characters kept of a name, title or address, so one item stays readable
ITEM_MAX = 500  # characters kept of one bullet
LINK_URL_MAX = 1000  # characters: a longer URL is shown as text rather than cut into a broken link
LIST_LIMIT = SECTION_TEXT_MAX - 200  # characters of a bullet list, leaving room for its heading

_URL = re.compile(r"https?://[^\s<>|]+", re.IGNORECASE)


def name(value: Any, default: str = "—", limit: int = NAME_MAX) -> str:
    """A short user text (name, title, subject), escaped and truncated; blank gives ``default``."""
    return truncate(escape(coerce.text(value, default)), limit)


def bullets(lines: Iterable[str], limit: int = LIST_LIMIT, item_max: int = ITEM_MAX, empty: str = "") -> str:
    """Already-escaped ``lines`` as "• " bullets within ``limit`` characters in all.

    Each line is cut to ``item_max``; lines that do not fit are counted in a last "…and N more"
    line. No lines gives ``empty``.
    """
    items = [line for line in lines if line.strip()]
    if not items:
        return empty
    shown: list[str] = []
    used = 0
    reserve = 40  # characters kept free for the "…and N more" line
    for index, item in enumerate(items):
        line = truncate(f"• {' '.join(item.split())}", item_max)
        room = limit if index == len(items) - 1 else limit - reserve
        if used + len(line) + 1 > room:
            shown.append(f"…and {len(items) - index} more")
            break
        shown.append(line)
        used += len(line) + 1
    return "\n".join(shown)


def when(value: Any, token: str = "{date_short_pretty} at {time}", fallback: str = "%Y-%m-%d %H:%M UTC") -> str:
    """A time (aware ``datetime`` or ISO string; naive means UTC) as a Slack date token.

    Slack shows ``token`` in the reader's time zone; ``fallback`` (a strftime format, in UTC) is
    shown where tokens are not rendered. Text that is not a time is shown escaped as given; nothing
    gives "".
    """
    at = value if isinstance(value, datetime) else _parse(coerce.text(value))
    if at is None:
        return name(value, default="")
    at_utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return f"<!date^{int(at_utc.timestamp())}^{token}|{at_utc.strftime(fallback)}>"


def _parse(value: str) -> datetime | None:
    if not value or len(value) > 64:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def link(url: Any, label: str) -> str:
    """``<url|label>`` for an http(s) URL, else the value as escaped text ("" when blank)."""
    target = coerce.text(url)
    if len(target) <= LINK_URL_MAX and _URL.fullmatch(target):
        return f"<{escape(target)}|{escape(label)}>"
    return name(target, default="")


def money(value: Any, currency: Any) -> str:
    """``USD 12,500`` (no decimals); an unknown amount gives "value unknown"."""
    amount = coerce.number(value)
    if amount is None:
        return "value unknown"
    code = coerce.text(currency)
    return name(f"{code} {amount:,.0f}" if code else f"{amount:,.0f}")


def count(value: Any) -> str:
    """A whole number with thousands separators, "—" when unknown."""
    number = coerce.integer(value)
    return "—" if number is None else f"{number:,}"


def plural(number: int, noun: str, many: str | None = None) -> str:
    """``1 meeting``, ``3 meetings``, ``2 replies`` (``many`` when adding "s" is wrong)."""
    return f"{number:,} {noun if number == 1 else many or noun + 's'}"


def percent(value: Any, digits: int = 1) -> str:
    """A percentage given as a number (``35.2`` → "35.2 %"), "—" when unknown."""
    number = coerce.number(value)
    return "—" if number is None else f"{number:.{digits}f} %"


def person(display_name: Any, email: Any) -> str:
    """ "Bob Smith (bob@acme.com)", or whichever of the two is known, or "—"."""
    who, address = coerce.text(display_name), coerce.text(email)
    if who and address and who != address:
        return f"{name(who)} ({name(address)})"
    return name(who or address)


def duration(seconds: Any) -> str:
    """``150`` → "2 min 30 s", ``3900`` → "1 h 5 min"; "—" when unknown."""
    total = coerce.integer(seconds)
    if total is None:
        return "—"
    sign, total = ("-" if total < 0 else ""), abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    if minutes:
        return f"{sign}{minutes} min {secs} s" if secs else f"{sign}{minutes} min"
    return f"{sign}{secs} s"
