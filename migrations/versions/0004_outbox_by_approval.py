"""slack_outbox: index on approval_id (a click finds its approval's message by it)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Without it every click and every approval replacement scanned the whole outbox
    (bench/edge.py: 4,356 sequential scans reading 1.1 M rows for 436 rows in the table)."""
    op.create_index(op.f("ix_slack_outbox_approval_id"), "slack_outbox", ["approval_id"], unique=False)


def downgrade() -> None:
    """Drop the index."""
    op.drop_index(op.f("ix_slack_outbox_approval_id"), table_name="slack_outbox")
