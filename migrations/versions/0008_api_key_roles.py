"""API key roles: an org key is either an "events" key or an "admin" key

Until now every org API key could read its org's admin metrics. `api_keys.role` says what a key may do:
"events" (the default, and what every existing key becomes) sends events and reads jobs; "admin" can also
use the org-scoped admin API (`GET /api/admin/metrics` for its own org). The server default keeps keys
created by older code, and every existing row, at "events", so upgrading takes no access away except the
admin metrics an ordinary key should never have had.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """api_keys.role, "events" for every existing key."""
    op.add_column(
        "api_keys",
        sa.Column("role", sa.String(length=16), server_default="events", nullable=False),
    )


def downgrade() -> None:
    """Drop it (every key is back to what an "events" key can do, plus the admin metrics)."""
    op.drop_column("api_keys", "role")
