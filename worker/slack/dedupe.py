"""Events API de-duplication: Slack retries a delivery it thinks failed, so each event id is
handled once (`slack_events_seen`)."""

from __future__ import annotations

from worker.db import transaction
from worker.engine.jobstore import insert_ignoring_conflicts
from worker.models import SlackEventSeen, utcnow

seen_events = SlackEventSeen.__table__

EVENT_ID_MAX = 64  # characters of slack_events_seen.event_id


def first_delivery(event_id: str | None, team_id: str | None) -> bool:
    """Remember an Events API delivery; False when this event id was already handled (a retry)."""
    if not event_id:
        return True  # nothing to deduplicate on
    with transaction() as conn:
        row = conn.execute(
            insert_ignoring_conflicts(conn, seen_events, ["event_id"])
            .values(event_id=event_id[:EVENT_ID_MAX], team_id=(team_id or None) and team_id[:32], received_at=utcnow())
            .returning(seen_events.c.event_id)
        ).first()
    return row is not None
