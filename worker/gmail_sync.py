"""Gmail history sync (SPEC §4, issue 8): a push says "something changed in this mailbox"; a task
asks Gmail what (`users.history.list` from the stored history id), stores the new INBOX messages
and fires one `email_received` per message. One sync at a time per mailbox: a burst of pushes is
coalesced (see `request_sync`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Connection, update

from worker.db import on_commit
from worker.models import Integration

SYNC_TASK = "proactive.gmail_sync"


def request_sync(conn: Connection, org_id: uuid.UUID, integration_id: uuid.UUID, now: datetime) -> None:
    """Ask for a sync of one mailbox (in the caller's transaction): stamp `sync_wanted_at` and
    publish the sync task after commit. A sync already running sees the newer stamp and runs again."""
    conn.execute(
        update(Integration.__table__)
        .where(Integration.id == integration_id, Integration.org_id == org_id)
        .values(sync_wanted_at=now)
    )
    on_commit(lambda: _publish(org_id, integration_id))


def _publish(org_id: uuid.UUID, integration_id: uuid.UUID) -> None:
    from worker.celery_app import celery_app

    celery_app.send_task(SYNC_TASK, args=(str(org_id), str(integration_id)), queue="slow", ignore_result=True)
