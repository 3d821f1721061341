"""Google test helpers: connected integrations with credentials the fake Google accepts (or refuses)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from tests.fakes.google import FakeGoogle
from tests.support.engine import TestOrg
from worker.crypto import encrypt_json
from worker.db import transaction
from worker.models import Integration, utcnow

integrations = Integration.__table__


def credentials(fake: FakeGoogle, account: str, *, revoked: bool = False) -> bytes:
    """Encrypted credentials for `account`: a valid access token, or (revoked) only a refresh token
    the fake refuses with invalid_grant."""
    refresh = f"1//refresh-{uuid.uuid4().hex[:8]}"
    if revoked:
        fake.revoke(refresh)
        token, expiry = None, None
    else:
        fake.grant(refresh, account)
        token, expiry = fake.issue_access_token(account), (utcnow() + timedelta(hours=1)).isoformat()
    return encrypt_json(
        {
            "token": token,
            "refresh_token": refresh,
            "expiry": expiry,
            "scopes": ["https://www.googleapis.com/auth/gmail.readonly"],
        }
    )


def connect(
    org: TestOrg,
    account: str,
    expiration: datetime | None,
    *,
    creds: bytes | None = None,
    status: str = "active",
    provider: str = "google",
    history_id: str | None = None,
    last_error: str | None = None,
) -> uuid.UUID:
    """Insert an integration for the org's rep; returns its id."""
    integration_id = uuid.uuid4()
    with transaction() as conn:
        conn.execute(
            integrations.insert().values(
                id=integration_id,
                org_id=org.id,
                user_id=org.rep,
                provider=provider,
                account=account,
                credentials=creds,
                scopes=[],
                status=status,
                history_id=history_id,
                watch_expiration=expiration,
                last_error=last_error,
            )
        )
    return integration_id
