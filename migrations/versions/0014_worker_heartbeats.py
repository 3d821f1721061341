"""Worker heartbeats: a killed worker's running steps are re-queued within seconds

Each worker process keeps a `worker_heartbeats` row (a random instance id per start, its Celery node
name, host and pid) and moves its `beat_at` every few seconds from a thread of its own; every claim
records the claimant in `step_runs.claimed_by`. Live workers re-queue the running steps of a claimant
whose beat stopped (worker/engine/heartbeat.py), and a worker restarted under the same name re-queues
its previous instance's at once. Existing rows have no claimant: they keep the lease rule alone.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The heartbeat table and the claimant column."""
    op.create_table(
        "worker_heartbeats",
        sa.Column("instance", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance", name=op.f("pk_worker_heartbeats")),
    )
    op.create_index(op.f("ix_worker_heartbeats_name"), "worker_heartbeats", ["name"], unique=False)
    op.create_index(op.f("ix_worker_heartbeats_beat_at"), "worker_heartbeats", ["beat_at"], unique=False)
    op.add_column("step_runs", sa.Column("claimed_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop them (claims fall back to the lease rule alone)."""
    with op.batch_alter_table("step_runs") as batch:
        batch.drop_column("claimed_by")
    op.drop_index(op.f("ix_worker_heartbeats_beat_at"), table_name="worker_heartbeats")
    op.drop_index(op.f("ix_worker_heartbeats_name"), table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
