"""Each org's recording-webhook secret: made, rotated and checked (README "Recording webhook").

An org's recorder is an `integrations` row (provider `recorder`, one per org: a partial unique
index, migration 0013) whose encrypted credentials (worker/crypto.py, ENCRYPTION_KEYS) hold up to
two secrets, newest first: `{"secrets": [{"secret", "created_at", "expires_at"}]}`. The newest is
the current one; `rotate` makes a new current secret and keeps the one before it valid for a grace
period (7 days by default, `expires_at`) or until `finish_rotation`, so the recorder can be
reconfigured without refused deliveries. A secret is shown once, when it is made; only its
encrypted form is stored. Every change is audited (worker/audit.py) in the org.

`valid_secrets()` is what the webhook checks a signature against: one indexed read and one
decryption per request (the request names its org: `POST /webhooks/recording/<org_id>`).
"""

from __future__ import annotations

import secrets as random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from worker.audit import record
from worker.crypto import decrypt_json, encrypt_json
from worker.db import transaction
from worker.errors import NotFound, UserError
from worker.integrations import IntegrationStatus
from worker.models import Integration, Org, utcnow

integrations = Integration.__table__

PROVIDER = "recorder"
PREFIX = "rs_"  # recognisable in a config file; 32 random bytes follow
DEFAULT_GRACE = timedelta(days=7)  # how long the secret before a rotation stays valid
MAX_GRACE_DAYS = 90


class SecretExists(UserError):
    """The org already has a recorder secret (it was shown once): rotate it to get a new one."""

    http_status = 409


@dataclass(frozen=True)
class SecretInfo:
    """What the CLI reports after a change (the secret itself only when one was made)."""

    org_id: uuid.UUID
    integration_id: uuid.UUID
    secret: str | None
    previous_expires_at: datetime | None  # None: no previous secret is valid

    def as_dict(self) -> dict[str, Any]:
        """The `--json` shape."""
        return {
            "org_id": str(self.org_id),
            "integration_id": str(self.integration_id),
            "secret": self.secret,
            "previous_expires_at": self.previous_expires_at.isoformat() if self.previous_expires_at else None,
        }


# --------------------------------------------------------------------------- the stored list (pure)


def new_secret() -> str:
    """A fresh secret (43 url-safe characters after the prefix)."""
    return PREFIX + random.token_urlsafe(32)


def _at(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def usable(entries: Sequence[Mapping[str, Any]], now: datetime) -> list[str]:
    """The secrets that verify a request at `now`: the current one, and a previous one until its
    `expires_at`."""
    out = []
    for entry in entries:
        expires = _at(entry.get("expires_at"))
        secret = entry.get("secret")
        if isinstance(secret, str) and secret and (expires is None or now < expires):
            out.append(secret)
    return out


def rotated(entries: Sequence[Mapping[str, Any]], secret: str, now: datetime, grace: timedelta) -> list[dict[str, Any]]:
    """The list after a rotation: the new secret, then the current one valid for `grace` (older or
    expired ones are dropped)."""
    new = {"secret": secret, "created_at": now.isoformat(), "expires_at": None}
    current = next((dict(e) for e in entries if not e.get("expires_at")), None)
    if current is None:
        return [new]
    current["expires_at"] = (now + grace).isoformat()
    return [new, current]


def finished(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The list once the rotation is finished: the current secret only."""
    return [dict(e) for e in entries if not e.get("expires_at")][:1]


def previous_expiry(entries: Sequence[Mapping[str, Any]], now: datetime) -> datetime | None:
    """When the previous secret stops working (None: there is none still valid)."""
    times = [t for e in entries if (t := _at(e.get("expires_at"))) is not None and t > now]
    return max(times) if times else None


# --------------------------------------------------------------------------- the database


_SECRETS = select(integrations.c.credentials).where(
    integrations.c.provider == PROVIDER, integrations.c.status == "active"
)


def valid_secrets(conn: Connection, org_id: uuid.UUID, now: datetime | None = None) -> list[str]:
    """The org's secrets that verify a request now ([] when it has none). Raises the crypto errors
    when ENCRYPTION_KEYS cannot decrypt them (a server misconfiguration, not the sender's fault)."""
    token = conn.execute(_SECRETS.where(integrations.c.org_id == org_id)).scalar()
    if token is None:
        return []
    return usable(decrypt_json(token).get("secrets") or [], now or utcnow())


def _row(conn: Connection, org_id: uuid.UUID) -> Any:
    return conn.execute(
        select(integrations.c.id, integrations.c.credentials)
        .where(integrations.c.org_id == org_id, integrations.c.provider == PROVIDER)
        .with_for_update()
    ).first()


def _entries(row: Any) -> list[dict[str, Any]]:
    return list(decrypt_json(row.credentials).get("secrets") or []) if row.credentials else []


def create(org_id: uuid.UUID, *, actor: str, now: datetime | None = None) -> SecretInfo:
    """Make the org's first recorder secret (SecretExists when it has one: `rotate` instead)."""
    now = now or utcnow()
    secret = new_secret()
    with transaction() as conn:
        if conn.execute(select(Org.id).where(Org.id == org_id)).first() is None:
            raise NotFound(f"unknown org {org_id}")
        row = _row(conn, org_id)
        if row is not None and usable(_entries(row), now):
            raise SecretExists(
                f"org {org_id} already has a recorder secret (shown once, when it was made): "
                "`proactive recorder secret --org ID --rotate` makes a new one"
            )
        credentials = encrypt_json({"secrets": rotated([], secret, now, DEFAULT_GRACE)})
        if row is None:
            integration_id = uuid.uuid4()
            conn.execute(
                insert(integrations).values(
                    id=integration_id,
                    org_id=org_id,
                    provider=PROVIDER,
                    credentials=credentials,
                    scopes=[],
                    status=IntegrationStatus.ACTIVE,
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            integration_id = row.id
            conn.execute(
                update(integrations)
                .where(integrations.c.id == row.id)
                .values(credentials=credentials, status=IntegrationStatus.ACTIVE, updated_at=now)
            )
        _audit(conn, org_id, integration_id, "recorder.secret_created", actor)
    return SecretInfo(org_id, integration_id, secret, None)


def rotate(
    org_id: uuid.UUID, *, actor: str, grace: timedelta = DEFAULT_GRACE, now: datetime | None = None
) -> SecretInfo:
    """A new current secret; the current one stays valid for `grace` (or until `finish_rotation`)."""
    now = now or utcnow()
    secret = new_secret()
    with transaction() as conn:
        row = _row(conn, org_id)
        if row is None or not usable(_entries(row), now):
            raise NotFound(f"org {org_id} has no recorder secret yet: `proactive recorder secret --org ID` makes one")
        entries = rotated(_entries(row), secret, now, grace)
        conn.execute(
            update(integrations)
            .where(integrations.c.id == row.id)
            .values(credentials=encrypt_json({"secrets": entries}), updated_at=now)
        )
        expires = previous_expiry(entries, now)
        _audit(conn, org_id, row.id, "recorder.secret_rotated", actor, {"previous_expires_at": _iso(expires)})
    return SecretInfo(org_id, row.id, secret, expires)


def finish_rotation(org_id: uuid.UUID, *, actor: str, now: datetime | None = None) -> SecretInfo:
    """Stop accepting the previous secret now."""
    now = now or utcnow()
    with transaction() as conn:
        row = _row(conn, org_id)
        if row is None:
            raise NotFound(f"org {org_id} has no recorder secret: nothing to finish")
        entries = _entries(row)
        if previous_expiry(entries, now) is None:
            raise UserError(f"org {org_id} has no rotation in progress (no previous recorder secret is valid)")
        conn.execute(
            update(integrations)
            .where(integrations.c.id == row.id)
            .values(credentials=encrypt_json({"secrets": finished(entries)}), updated_at=now)
        )
        _audit(conn, org_id, row.id, "recorder.rotation_finished", actor)
    return SecretInfo(org_id, row.id, None, None)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _audit(
    conn: Connection,
    org_id: uuid.UUID,
    integration_id: uuid.UUID,
    action: str,
    actor: str,
    data: dict[str, Any] | None = None,
) -> None:
    record(
        conn, org_id, action=action, target_type="integration", target_id=str(integration_id), actor=actor, data=data
    )
