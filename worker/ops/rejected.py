"""Reading the dead letter: `proactive rejected` filters over rejected_events, newest first.

Filters: `source` (exact, or every source under a prefix: `slack` matches `slack:action` and
`slack:events`), `reason` (case-insensitive text in the reason or the error type), `since` (a
duration back from now, `30m`, `1h`, `1d`, `2w`, or a date or ISO time, UTC when no offset is
given), `org_id`, `limit`. The `(created_at)` and `(org_id)` indexes serve them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, or_, select

from worker.models import RejectedEvent

table = RejectedEvent.__table__

_DURATION = re.compile(r"^(\d{1,6})\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime:
    """The time `--since` names; ValueError saying what is accepted otherwise."""
    value = text.strip().lower()
    match = _DURATION.match(value)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r} is neither a duration (30m, 1h, 1d, 2w) "
            "nor a date or time (2026-12-01, 2026-12-01T09:00)"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RejectedFilter:
    """What `proactive rejected` asks for."""

    source: str | None = None
    reason: str | None = None
    since: datetime | None = None
    org_id: uuid.UUID | None = None
    limit: int = 20


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_rejected(conn: Connection, wanted: RejectedFilter) -> list[Any]:
    """The matching rows, newest first."""
    q = select(table).order_by(table.c.created_at.desc(), table.c.id).limit(wanted.limit)
    if wanted.source:
        prefix = wanted.source.rstrip(":")
        q = q.where(or_(table.c.source == wanted.source, table.c.source.like(_escape_like(prefix) + ":%", escape="\\")))
    if wanted.reason:
        needle = "%" + _escape_like(wanted.reason.lower()) + "%"
        q = q.where(
            or_(
                func.lower(table.c.reason).like(needle, escape="\\"),
                func.lower(table.c.error_type).like(needle, escape="\\"),
            )
        )
    if wanted.since is not None:
        q = q.where(table.c.created_at >= wanted.since)
    if wanted.org_id is not None:
        q = q.where(table.c.org_id == wanted.org_id)
    return list(conn.execute(q))
