"""Re-encrypt stored credentials with the first key of ENCRYPTION_KEYS: step 3 of a key rotation
(put a new key first, re-encrypt, then drop the old key; SECURITY.md).

Every encrypted column is `integrations.credentials` (Google tokens, Instantly keys, recorder
secrets). The work goes org by org, one transaction each, rows locked while they are rewritten (a
Google token refresh writing the same row waits for it). A row no key can decrypt stops the command
with its id and org: the orgs done so far stay done, and running it again is safe (a row already
under the first key is simply re-encrypted again).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from worker.crypto import DecryptionError, rotate
from worker.db import transaction
from worker.errors import ProactiveError
from worker.models import Integration, Org

# Called after each org: (orgs done, orgs in all, credentials re-encrypted in that org).
Progress = Callable[[int, int, int], None]


class UndecryptableCredentials(ProactiveError):
    """A stored credential that no key of ENCRYPTION_KEYS decrypts (its key was removed too early)."""


@dataclass(frozen=True)
class Reencrypted:
    """What a run re-encrypted."""

    orgs: int
    credentials: int


def reencrypt_org(conn: Connection, org_id: uuid.UUID) -> int:
    """Re-encrypt the org's stored credentials with the first key; how many rows."""
    t = Integration.__table__
    rows = conn.execute(
        select(t.c.id, t.c.provider, t.c.credentials)
        .where(t.c.org_id == org_id, t.c.credentials.is_not(None))
        .order_by(t.c.id)
        .with_for_update()
    ).all()
    for row in rows:
        try:
            token = rotate(row.credentials)
        except DecryptionError:
            raise UndecryptableCredentials(
                f"the {row.provider} credentials of integration {row.id} (org {org_id}) cannot be decrypted "
                "with any key in ENCRYPTION_KEYS: put back the key that encrypted them, then run this again"
            ) from None
        conn.execute(update(t).where(t.c.id == row.id, t.c.org_id == org_id).values(credentials=token))
    return len(rows)


def reencrypt_all(progress: Progress | None = None) -> Reencrypted:
    """Re-encrypt every org's stored credentials, one transaction per org."""
    with transaction() as conn:
        org_ids = list(conn.execute(select(Org.id).order_by(Org.id)).scalars())
    total = 0
    for done, org_id in enumerate(org_ids, start=1):
        with transaction() as conn:
            count = reencrypt_org(conn, org_id)
        total += count
        if progress is not None:
            progress(done, len(org_ids), count)
    return Reencrypted(orgs=len(org_ids), credentials=total)
