"""The events API's own envelope, and one live job per (rep, deal)

- `sequence_jobs.source` 32 -> 120 characters: an API key's events are stored as
  `api:<key name>` (the edge that received them), not a source the caller picked.
- `sequence_jobs.idempotency_key` 300 -> 320 characters: a caller's keys are stored as
  `caller:<key>`, so they can never take a cron's, webhook's or follow-up's key.
- `sequence_jobs.live_key` (`<type>:<user_id>:<deal_id>` on the deal-bound sequences) with the partial
  unique index `ux_sequence_jobs_live (org_id, live_key)` over the live jobs (queued, running,
  awaiting approval, no cancel requested): the database lets one job per rep and deal be live, so
  concurrent fires cannot both start one. Existing jobs have no live key: they never block.
- `sequence_jobs.live_job_id`: a job skipped `already_live` names the live job it met.
- `sequence_jobs.scheduled_for`: an event fired with `delay_minutes` is a job whose first steps
  wait until then (visible and cancellable meanwhile).

Widening a VARCHAR is a catalog change on PostgreSQL (no table rewrite); the new columns are NULL,
so the index starts empty.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE_WHERE = "live_key IS NOT NULL AND status IN ('queued', 'running', 'awaiting_approval') AND NOT cancel_requested"


def upgrade() -> None:
    """Widen source and idempotency_key; add live_key (+ its partial unique index), live_job_id and
    scheduled_for."""
    with op.batch_alter_table("sequence_jobs") as batch:
        batch.alter_column("source", existing_type=sa.String(length=32), type_=sa.String(length=120))
        batch.alter_column("idempotency_key", existing_type=sa.String(length=300), type_=sa.String(length=320))
        batch.add_column(sa.Column("live_key", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("live_job_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ux_sequence_jobs_live",
        "sequence_jobs",
        ["org_id", "live_key"],
        unique=True,
        postgresql_where=sa.text(LIVE_WHERE),
        sqlite_where=sa.text(LIVE_WHERE),
    )


def downgrade() -> None:
    """Drop them; narrow the columns back (refused by PostgreSQL if a longer value is stored)."""
    op.drop_index("ux_sequence_jobs_live", table_name="sequence_jobs")
    with op.batch_alter_table("sequence_jobs") as batch:
        batch.drop_column("scheduled_for")
        batch.drop_column("live_job_id")
        batch.drop_column("live_key")
        batch.alter_column("idempotency_key", existing_type=sa.String(length=320), type_=sa.String(length=300))
        batch.alter_column("source", existing_type=sa.String(length=120), type_=sa.String(length=32))
