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
    later: Deferred | None = None,
) -> None:
    """Append one audit row (same transaction as the change it describes; queued in `later` with
    that change when given, sent in the same round trip)."""
    row = {
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
    if later is not None:
        later.insert(_INSERT, [row])
    else:
        _INSERT.run(conn, [row])
