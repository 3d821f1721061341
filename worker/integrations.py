"""What happens when a provider refuses an integration's credentials for good (Google's
`invalid_grant`): the integration is marked `revoked` so nothing else uses the dead credentials,
and its user is asked once, per revocation, to reconnect (a Slack DM with a reconnect link).
Used by the engine (a step's AuthRevoked), the Gmail sync and the watch renewal. A rep who never
connected Google gets the same kind of DM with a signed connect link (`ask_to_connect`), at most once
a day, when a step that must act as them starts waiting for it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, update

from worker.engine.states import predecessors
from worker.errors import AuthRevoked
from worker.google.links import OAuthNotConfigured, connect_url, reconnect_link
from worker.models import Integration
from worker.slack.delivery import enqueue_message

MAX_ERROR_CHARS = 2000
integrations = Integration.__table__


class IntegrationStatus(StrEnum):
    """Values of integrations.status."""

    ACTIVE = "active"  # its credentials are used
    REVOKED = "revoked"  # the provider refused them for good: nothing uses them until the user reconnects


# A revocation marks an active integration; connecting again (OAuth, a stored secret) makes it active.
INTEGRATION_TRANSITIONS: dict[IntegrationStatus, frozenset[IntegrationStatus]] = {
    IntegrationStatus.ACTIVE: frozenset({IntegrationStatus.REVOKED}),
    IntegrationStatus.REVOKED: frozenset({IntegrationStatus.ACTIVE}),
}
_REVOCABLE = [s.value for s in predecessors(INTEGRATION_TRANSITIONS, IntegrationStatus.REVOKED)]


def google_connect_link(org_id: uuid.UUID, user_id: uuid.UUID | None) -> str | None:
    """The user's signed Google connect link (absolute, from APP_URL, valid 7 days), or None when
    links cannot be signed here (OAUTH_STATE_SECRET unset) or nobody is named."""
    if user_id is None:
        return None
    try:
        return connect_url(org_id, user_id)
    except OAuthNotConfigured:
        return None


# Said instead of a link when connect links cannot be signed (OAUTH_STATE_SECRET unset).
NO_LINK = "ask an admin for your Google connect link (proactive gmail link --user YOUR_EMAIL)"


def ask_to_connect(
    conn: Connection,
    org_id: uuid.UUID,
    user_id: uuid.UUID | None,
    now: datetime,
    *,
    job_id: uuid.UUID | None = None,
) -> bool:
    """Queue one DM (in the caller's transaction) asking `user_id` to connect Google, with their signed
    connect link; at most one a day per user. True when a DM was queued."""
    if user_id is None:
        return False
    link = google_connect_link(org_id, user_id)
    where = f"connect here: {link}" if link else NO_LINK
    queued = enqueue_message(
        conn,
        org_id,
        kind="reconnect",
        message={
            "text": f"Google is not connected, so Proactive is holding what needs it until you connect; {where}",
            "blocks": [],
        },
        now=now,
        dedupe_key=f"connect:google:{user_id}:{now.date().isoformat()}",
        user_id=user_id,
        job_id=job_id,
    )
    return queued is not None


def mark_revoked(
    conn: Connection,
    org_id: uuid.UUID,
    err: AuthRevoked,
    now: datetime,
    *,
    integration_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    job_id: uuid.UUID | None = None,
) -> bool:
    """Mark the integration revoked (in the caller's transaction) and, on that transition only,
    queue one reconnect DM to its user. True when this call revoked it."""
    integration_id = integration_id or err.integration_id
    if integration_id is None:
        return False
    row = conn.execute(
        update(integrations)
        .where(
            integrations.c.id == integration_id,
            integrations.c.org_id == org_id,
            integrations.c.status.in_(_REVOCABLE),  # only the transition tells the user
        )
        .values(status=IntegrationStatus.REVOKED.value, last_error=str(err)[:MAX_ERROR_CHARS], updated_at=now)
        .returning(integrations.c.user_id, integrations.c.provider)
    ).first()
    if row is None:
        return False
    provider = (row.provider or err.provider or "the integration").capitalize()
    link = reconnect_link(row.provider or err.provider, org_id, row.user_id or user_id)
    enqueue_message(
        conn,
        org_id,
        kind="reconnect",
        message={
            "text": f"{provider} access was revoked, so Proactive stopped what needed it. Reconnect: {link}",
            "blocks": [],
        },
        now=now,
        dedupe_key=f"reconnect:{integration_id}:{now.isoformat()}",
        user_id=row.user_id or user_id,
        job_id=job_id,
    )
    return True
