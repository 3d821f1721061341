"""Jobs remember whether they run in dry-run (sends recorded, Slack kept in the console inbox)

Decided once, when the event is accepted: the process setting PROACTIVE_DRY_RUN, a smoke event, or
the org's stored `dry_run` setting (seeded demo orgs start with it on). A job keeps the mode it
started with, so turning an org live never makes a half-run dry job send for real.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """sequence_jobs.dry_run (false for every existing job)."""
    op.add_column("sequence_jobs", sa.Column("dry_run", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    """Drop sequence_jobs.dry_run."""
    with op.batch_alter_table("sequence_jobs") as batch:
        batch.drop_column("dry_run")
