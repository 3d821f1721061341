"""Metrics roll-ups: settled jobs folded per org, local day and kind, so a 90-day window reads a few
thousand small rows instead of every job, step run, approval and message

`metrics_rollups` holds, per (org, span, local day, kind, key, detail), a count, a failure count, a sum
of milliseconds, a quantile sketch (JSON) and an example job (worker/metrics/fold.py lists the kinds);
span 1 is a day, span 7 the week starting that day (sketched kinds only: a 90-day window merges
about 24 sketches per measure, not 90).
`sequence_jobs.rolled_up_at` marks a job once folded; two partial indexes find the jobs not folded
yet (the metrics' live part, by org and creation) and those the roll-up may fold (by finish time).
Also an index on slack_outbox.job_id: a job's messages (first-message latency, the settle check),
and approvals (org_id, status): an org's pending approvals.
Existing jobs start unfolded: the roll-up task (every minute) or `proactive metrics-rollup` folds
them in batches.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNROLLED = "rolled_up_at IS NULL"
DUE = "rolled_up_at IS NULL AND finished_at IS NOT NULL"


def upgrade() -> None:
    """The metrics_rollups table; sequence_jobs.rolled_up_at and its two partial indexes; messages by job."""
    op.create_table(
        "metrics_rollups",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("span", sa.SmallInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("detail", sa.String(length=100), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("sum_ms", sa.Double(), nullable=False),
        sa.Column(
            "sketch", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("example_job_id", sa.String(length=36), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_metrics_rollups_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("org_id", "span", "day", "kind", "key", "detail", name=op.f("pk_metrics_rollups")),
    )
    op.add_column("sequence_jobs", sa.Column("rolled_up_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_sequence_jobs_unrolled",
        "sequence_jobs",
        ["org_id", "created_at"],
        postgresql_where=sa.text(UNROLLED),
        sqlite_where=sa.text(UNROLLED),
    )
    op.create_index(
        "ix_sequence_jobs_rollup_due",
        "sequence_jobs",
        ["finished_at"],
        postgresql_where=sa.text(DUE),
        sqlite_where=sa.text(DUE),
    )

    op.create_index(op.f("ix_slack_outbox_job_id"), "slack_outbox", ["job_id"], unique=False)
    op.create_index(op.f("ix_approvals_org_id_status"), "approvals", ["org_id", "status"], unique=False)


def downgrade() -> None:
    """Drop them."""
    op.drop_index(op.f("ix_approvals_org_id_status"), table_name="approvals")
    op.drop_index(op.f("ix_slack_outbox_job_id"), table_name="slack_outbox")
    op.drop_index("ix_sequence_jobs_rollup_due", table_name="sequence_jobs")
    op.drop_index("ix_sequence_jobs_unrolled", table_name="sequence_jobs")
    with op.batch_alter_table("sequence_jobs") as batch:
        batch.drop_column("rolled_up_at")
    op.drop_table("metrics_rollups")
