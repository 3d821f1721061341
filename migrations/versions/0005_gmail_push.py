"""Gmail push: the pushes received (deduplicated on Pub/Sub's messageId), the per-mailbox sync lease,
and an index to find a mailbox's integrations by address

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Tables and columns for Gmail push and history sync."""
    op.create_table(
        "gmail_pushes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("subscription", sa.String(length=300), nullable=True),
        sa.Column("email_address", sa.String(length=320), nullable=True),
        sa.Column("history_id", sa.String(length=32), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("integrations", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gmail_pushes")),
        sa.UniqueConstraint("message_id", name=op.f("uq_gmail_pushes_message_id")),
    )
    op.create_index(op.f("ix_gmail_pushes_email_address"), "gmail_pushes", ["email_address"], unique=False)
    op.add_column("integrations", sa.Column("sync_wanted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("integrations", sa.Column("sync_lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_integrations_provider_account"), "integrations", ["provider", "account"], unique=False)


def downgrade() -> None:
    """Drop them."""
    op.drop_index(op.f("ix_integrations_provider_account"), table_name="integrations")
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("sync_lease_until")
        batch.drop_column("sync_wanted_at")
    op.drop_index(op.f("ix_gmail_pushes_email_address"), table_name="gmail_pushes")
    op.drop_table("gmail_pushes")
