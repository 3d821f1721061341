"""Google Calendar calls the skills make: busy intervals (freebusy.query) and an idempotent event insert.

An insert carries an event id derived from the caller's `request_id`, so a retried step re-sends the
same id: Calendar answers 409 duplicate and we return the event the first attempt created.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

from googleapiclient.errors import HttpError

from worker.errors import PermanentError, TransientError
from worker.google.client import call

# Calendar event ids: characters of base32hex (0-9, a-v), 5 to 1024 of them (Events resource, `id`).
EVENT_ID_ALPHABET = frozenset("0123456789abcdefghijklmnopqrstuv")
TRANSIENT_CALENDAR_REASONS = frozenset({"backendError", "internalError"})


def _rfc3339(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: pass timezone-aware datetimes")
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def event_id_for(request_id: str) -> str:
    """A deterministic Calendar event id for `request_id`: base32hex of its SHA-256, lowercase (52 chars)."""
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return base64.b32hexencode(digest).decode("ascii").rstrip("=").lower()


def free_busy(
    service: Any, calendar_id: str, time_min: datetime, time_max: datetime
) -> list[tuple[datetime, datetime]]:
    """Busy intervals of one calendar between `time_min` and `time_max` (aware UTC datetimes, sorted)."""
    body = {"timeMin": _rfc3339(time_min), "timeMax": _rfc3339(time_max), "items": [{"id": calendar_id}]}
    answer = call(service.freebusy().query(body=body))
    calendar = (answer.get("calendars") or {}).get(calendar_id)
    if calendar is None:
        raise PermanentError(f"freebusy answered nothing for calendar {calendar_id!r}")
    errors = calendar.get("errors") or []
    if errors:
        reasons = {e.get("reason", "") for e in errors}
        family = TransientError if reasons & TRANSIENT_CALENDAR_REASONS else PermanentError
        raise family(f"freebusy for {calendar_id!r} failed: {', '.join(sorted(reasons))}")
    busy = [(_parse(b["start"]), _parse(b["end"])) for b in calendar.get("busy") or []]
    return sorted(busy)


def insert_event(
    service: Any,
    calendar_id: str,
    summary: str,
    start: datetime,
    end: datetime,
    attendees: list[str],
    description: str,
    request_id: str,
) -> dict[str, str]:
    """Create the event (invitations sent to the attendees) once per `request_id`: `{id, htmlLink}`."""
    if end <= start:
        raise PermanentError(f"event ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    event_id = event_id_for(request_id)
    body = {
        "id": event_id,
        "summary": summary,
        "description": description,
        "start": {"dateTime": _rfc3339(start)},
        "end": {"dateTime": _rfc3339(end)},
        "attendees": [{"email": a} for a in attendees],
    }
    request = service.events().insert(calendarId=calendar_id, body=body, sendUpdates="all")
    try:
        event = call(request)
    except PermanentError as exc:
        if not (isinstance(exc.__cause__, HttpError) and exc.__cause__.status_code == 409):
            raise
        # Duplicate id: an earlier attempt created it (the id is ours alone). Return that event.
        event = call(service.events().get(calendarId=calendar_id, eventId=event_id))
    return {"id": event["id"], "htmlLink": event.get("htmlLink", "")}
