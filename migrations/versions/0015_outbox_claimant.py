"""Outbox claimant: a Slack delivery killed with its worker goes out again within seconds

A delivery that takes an outbox row's lease records its claimant (the worker's heartbeat instance, or
`<instance>/<pid>` for a pool child) in `slack_outbox.claimed_by`. Live workers give back the leases
of claimants whose beat stopped (and of their own gone pool children) and publish the delivery again
at once; the row stays marked as one that may have been posted, so the next delivery looks in the
channel's history first (worker/slack/delivery.py). Existing rows have no claimant: their leases run
out as before.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The claimant column of the outbox."""
    op.add_column("slack_outbox", sa.Column("claimed_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop it (outbox leases fall back to running out)."""
    with op.batch_alter_table("slack_outbox") as batch:
        batch.drop_column("claimed_by")
