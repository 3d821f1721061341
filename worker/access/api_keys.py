"""Org API keys for `POST /api/events` and `GET /api/jobs/<id>`.

A key is shown once when it is created; only its SHA-256 digest is stored (the key is 256 random
bits, so a fast unsalted digest is enough: there is nothing to brute-force). `org_for_key` is one
indexed SELECT by digest; `last_used_at` is refreshed at most once a minute per key, so it almost
never writes. `authenticate` (the web edge's entry) remembers a live key for AUTH_CACHE_S in the
process, so a busy client costs no database round trip per request; a revocation therefore reaches
other processes within AUTH_CACHE_S (at once in the revoking one). Revoking stamps `revoked_at`; the
row stays for the record.

Every key has a role (`ApiKeyRole`, migration 0008): `events` (the default) fires events and reads
jobs of its org; `admin` can also use the org-scoped admin API (`GET /api/admin/metrics`, its own org
only). The role is remembered with the org (`KeyAuth`), so the cache never answers an org without
its role; a role is set when the key is created and never changes, so the cache cannot go stale on it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from worker.db import transaction
from worker.errors import NotFound, UserError
from worker.memo import ShortMemory
from worker.models import ApiKey, Org, utcnow

api_keys = ApiKey.__table__

# Every key starts with this, so a leaked one is recognisable (secret scanners) and a token that
# cannot be a key is refused without a database round trip.
KEY_PREFIX = "pk_"
# Random bytes in a key (256 bits).
KEY_BYTES = 32
# Characters of the key kept in clear (`prefix` column, 16 max) to tell keys apart in listings.
SHOWN_CHARS = 11
# How stale `last_used_at` may get (seconds): one UPDATE per key per minute at most.
LAST_USED_RESOLUTION_S = 60
# Longest key name (characters; the column's size).
MAX_NAME_CHARS = 100
# How long a process trusts a key it has seen live (seconds): how late a revocation may be noticed.
AUTH_CACHE_S = 5.0
# Most keys remembered per process (the memory is dropped whole when full).
AUTH_CACHE_MAX = 10_000


class ApiKeyRole(StrEnum):
    """What a key may do (`api_keys.role`)."""

    EVENTS = "events"  # POST /api/events and GET /api/jobs/<id> for its org (the default)
    ADMIN = "admin"  # all of that, plus the org-scoped admin API for its own org

    @classmethod
    def parse(cls, value: str) -> ApiKeyRole:
        """The role named `value`; UserError listing the accepted names otherwise."""
        try:
            return cls(value)
        except ValueError:
            accepted = ", ".join(r.value for r in cls)
            raise UserError(f"unknown API key role {str(value)[:40]!r}; accepted: {accepted}") from None


ROLES = tuple(r.value for r in ApiKeyRole)


@dataclass(frozen=True)
class KeyAuth:
    """Who a live key speaks for: its org and its role; `name` (the key's, for the source of its
    events: `api:<name>`) is informative and not part of equality."""

    org_id: uuid.UUID
    role: ApiKeyRole
    name: str = field(default="", compare=False)

    @property
    def is_admin(self) -> bool:
        """True for a key with the admin role (the org-scoped admin API)."""
        return self.role is ApiKeyRole.ADMIN


# digest -> (org id, role), live keys only
_live: ShortMemory[str, KeyAuth] = ShortMemory(AUTH_CACHE_S, AUTH_CACHE_MAX)


@dataclass(frozen=True)
class KeyInfo:
    """A stored key as people see it (never the key itself)."""

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    role: str = ApiKeyRole.EVENTS.value

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (CLI `--json`)."""
        return {
            "id": str(self.id),
            "org_id": str(self.org_id),
            "name": self.name,
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "role": self.role,
        }


def hash_key(key: str) -> str:
    """The stored form of a key: SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()


def generate_key() -> str:
    """A new random key (`pk_` + 43 URL-safe characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def _role(value: Any) -> ApiKeyRole:
    """A stored role; anything unknown (a hand-edited row) counts as the least: events."""
    try:
        return ApiKeyRole(value)
    except ValueError:
        return ApiKeyRole.EVENTS


def _info(row: Any) -> KeyInfo:
    return KeyInfo(
        row.id,
        row.org_id,
        row.name,
        row.prefix,
        row.created_at,
        row.revoked_at,
        row.last_used_at,
        _role(row.role).value,
    )


def create_key(
    org_id: uuid.UUID,
    name: str,
    *,
    role: ApiKeyRole | str = ApiKeyRole.EVENTS,
    now: datetime | None = None,
) -> tuple[str, KeyInfo]:
    """Create a key for `org_id` with `role`; returns the plaintext (show it once, it is not stored)
    and the row. UserError for an empty or long name or an unknown role."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise UserError(f"a key name must be 1 to {MAX_NAME_CHARS} characters")
    role = ApiKeyRole.parse(role)
    key = generate_key()
    values = {
        "id": uuid.uuid4(),
        "org_id": org_id,
        "name": name,
        "prefix": key[:SHOWN_CHARS],
        "key_hash": hash_key(key),
        "created_at": now or utcnow(),
        "revoked_at": None,
        "last_used_at": None,
        "role": role.value,
    }
    with transaction() as conn:
        if conn.execute(select(Org.id).where(Org.id == org_id)).first() is None:
            raise NotFound(f"unknown org {org_id}")
        conn.execute(insert(api_keys).values(**values))
    info = KeyInfo(values["id"], org_id, name, values["prefix"], values["created_at"], None, None, role.value)
    return key, info


def auth_for_key(conn: Connection, key: str, *, now: datetime | None = None) -> KeyAuth | None:
    """The org and role of a live (not revoked) key, or None; refreshes `last_used_at` when stale."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = conn.execute(
        select(api_keys.c.id, api_keys.c.org_id, api_keys.c.role, api_keys.c.name, api_keys.c.last_used_at).where(
            api_keys.c.key_hash == hash_key(key), api_keys.c.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    now = now or utcnow()
    stale_before = now - timedelta(seconds=LAST_USED_RESOLUTION_S)
    if row.last_used_at is None or row.last_used_at < stale_before:
        conn.execute(  # conditional: concurrent requests with one key write it once
            update(api_keys)
            .where(
                api_keys.c.id == row.id,
                or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < stale_before),
            )
            .values(last_used_at=now)
        )
    return KeyAuth(row.org_id, _role(row.role), row.name)


def org_for_key(conn: Connection, key: str, *, now: datetime | None = None) -> uuid.UUID | None:
    """The org a live (not revoked) key belongs to, or None (`auth_for_key` without the role)."""
    auth = auth_for_key(conn, key, now=now)
    return auth.org_id if auth is not None else None


def authenticate_key(key: str) -> KeyAuth | None:
    """The org and role of a live key, from this process's short memory or the database (own
    transaction). The memory holds both together: a hit never answers an org without its role."""
    digest = hash_key(key)
    hit = _live.get(digest)
    if hit is not None:
        return hit
    with transaction() as conn:
        auth = auth_for_key(conn, key)
    if auth is None:
        _live.forget(digest)
        return None
    _live.put(digest, auth)
    return auth


def authenticate(key: str) -> uuid.UUID | None:
    """The org of a live key (`authenticate_key` without the role; same memory)."""
    auth = authenticate_key(key)
    return auth.org_id if auth is not None else None


def forget_keys() -> None:
    """Drop this process's memory of live keys (after a revocation, and in tests)."""
    _live.forget()


def list_keys(conn: Connection, org_id: uuid.UUID | None = None) -> list[KeyInfo]:
    """Keys, oldest first, optionally of one org (revoked ones included)."""
    q = select(api_keys).order_by(api_keys.c.created_at)
    if org_id is not None:
        q = q.where(api_keys.c.org_id == org_id)
    return [_info(r) for r in conn.execute(q)]


def revoke(key_id: uuid.UUID, *, now: datetime | None = None) -> KeyInfo:
    """Revoke a key (idempotent: an already revoked key keeps its first revocation time)."""
    with transaction() as conn:
        conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now or utcnow())
        )
        row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
    forget_keys()
    if row is None:
        raise NotFound(f"API key {key_id} not found")
    return _info(row)
