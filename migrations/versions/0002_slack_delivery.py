"""slack delivery: outbox scheduling columns and the shared rate_slots table

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_COLUMNS = (
    "urgent",
    "error_code",
    "not_before",
    "lease_expires_at",
    "admitted_at",
    "slot_at",
    "revision",
    "updated_at",
)


def upgrade() -> None:
    """Outbox rows learn when they may go, who is delivering them and Slack's error code;
    rate_slots paces calls per Slack channel across every worker."""
    op.create_table(
        "rate_slots",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("next_at_s", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_slots")),
    )
    with op.batch_alter_table("slack_outbox") as batch:
        batch.add_column(sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("error_code", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("slot_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_slack_outbox_status_not_before"), "slack_outbox", ["status", "not_before"], unique=False)
    op.create_index(
        op.f("ix_slack_outbox_user_id_admitted_at"), "slack_outbox", ["user_id", "admitted_at"], unique=False
    )


def downgrade() -> None:
    """Drop the delivery columns and rate_slots."""
    op.drop_index(op.f("ix_slack_outbox_user_id_admitted_at"), table_name="slack_outbox")
    op.drop_index(op.f("ix_slack_outbox_status_not_before"), table_name="slack_outbox")
    with op.batch_alter_table("slack_outbox") as batch:
        for name in reversed(NEW_COLUMNS):
            batch.drop_column(name)
    op.drop_table("rate_slots")
