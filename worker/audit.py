"""The audit log: who decided or changed what, and when (one INSERT in the caller's transaction)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection

from worker.models import AuditLog, utcnow
from worker.precompiled import Deferred, PrecompiledInsert

_INSERT = PrecompiledInsert(AuditLog.__table__)


def record(
    conn: Connection,
    org_id: uuid.UUID,
    *,
    action: str,
    target_type: str,
    target_id: str,
    actor: str | None = None,
    actor_user_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append one audit row (same transaction as the change it describes)."""
    _INSERT.run(conn, [_row(org_id, action, target_type, target_id, actor, actor_user_id, data)])


def record_later(
    later: Deferred,
    org_id: uuid.UUID,
    *,
    action: str,
    target_type: str,
    target_id: str,
    actor: str | None = None,
    actor_user_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """`record`, queued in `later` with the change it describes (sent in the same round trip)."""
    later.insert(_INSERT, [_row(org_id, action, target_type, target_id, actor, actor_user_id, data)])


def _row(
    org_id: uuid.UUID,
    action: str,
    target_type: str,
    target_id: str,
    actor: str | None,
    actor_user_id: uuid.UUID | None,
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "org_id": org_id,
        "actor": actor,
        "actor_user_id": actor_user_id,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "data": data,
        "created_at": utcnow(),
    }
