"""The Slack outbox: every message a job sends is a row first (dedupe key unique), then delivered.

With no Slack token configured (the embedded default, tests, dry runs) delivery is the console
inbox: the row is marked `console` in the same transaction and `proactive inbox` renders it.
Posting through the Slack Web API, rate limits and quiet hours arrive with the Slack client.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update

from worker.config import get_settings
from worker.jobstore import insert_ignoring_conflicts
from worker.models import SlackOutbox

outbox = SlackOutbox.__table__


def enqueue_message(
    conn: Connection,
    org_id: uuid.UUID,
    *,
    kind: str,
    message: Mapping[str, Any],
    dedupe_key: str,
    now: datetime,
    user_id: uuid.UUID | None = None,
    channel: str | None = None,
    job_id: uuid.UUID | None = None,
    approval_id: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """Queue `message` ({"text", "blocks"}) for delivery once per `dedupe_key`.

    Returns the new outbox id, or None when a message with that key already exists.
    """
    console = not get_settings().slack_bot_token
    row = conn.execute(
        insert_ignoring_conflicts(conn, outbox, ["dedupe_key"])
        .values(
            id=uuid.uuid4(),
            org_id=org_id,
            dedupe_key=dedupe_key,
            user_id=user_id,
            job_id=job_id,
            approval_id=approval_id,
            kind=kind,
            channel=channel,
            text=str(message.get("text") or "")[:40_000],
            blocks=list(message.get("blocks") or []),
            status="console" if console else "pending",
            attempts=0,
            created_at=now,
            sent_at=now if console else None,
        )
        .returning(outbox.c.id)
    ).first()
    return row[0] if row else None


def replace_message(conn: Connection, org_id: uuid.UUID, approval_id: uuid.UUID, message: Mapping[str, Any]) -> None:
    """Replace the message of an approval (buttons gone, "decided by"/"expired"), as chat.update would."""
    conn.execute(
        update(outbox)
        .where(outbox.c.org_id == org_id, outbox.c.approval_id == approval_id, outbox.c.kind == "approval")
        .values(text=str(message.get("text") or "")[:40_000], blocks=list(message.get("blocks") or []))
    )


def inbox(conn: Connection, org_id: uuid.UUID | None = None, limit: int = 50) -> Sequence[Row]:
    """The newest outbox rows (all orgs when `org_id` is None), oldest first."""
    q = select(outbox).order_by(outbox.c.created_at.desc()).limit(limit)
    if org_id is not None:
        q = q.where(outbox.c.org_id == org_id)
    return list(reversed(list(conn.execute(q))))
