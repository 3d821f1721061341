"""Retention: `purged_at` on the rows whose content is purged after an org's retention, and the
indexes the purge reads

Content (email bodies, transcripts, drafts, step outputs, event payloads, audit data) older than the
org's `retention_days` (default 90) is cleared by a daily Beat task in bounded batches
(worker/ops/retention.py); the rows stay with their metadata (who, what, when, status) and `purged_at`.
Added: `purged_at` on sequence_jobs, step_runs, approvals, emails, meetings, proposals,
campaign_replies and audit_log; a partial index (org_id, created_at) WHERE purged_at IS NULL on
each table the purge walks by age (sequence_jobs, emails, meetings, proposals, campaign_replies,
audit_log), so a batch reads only rows not purged yet, however much history is kept; step runs and
approvals are reached through their job (existing job_id indexes). Rows kept 30 days are deleted
by age: cron_runs gains an index on started_at and gmail_pushes on received_at (rejected_events
and slack_outbox have theirs).
Existing rows start unpurged: the first daily run (or `proactive purge`) catches up in batches.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPURGED = "purged_at IS NULL"
# tables gaining purged_at, and which of them the purge walks by (org_id, created_at)
PURGED_TABLES = (
    "sequence_jobs",
    "step_runs",
    "approvals",
    "emails",
    "meetings",
    "proposals",
    "campaign_replies",
    "audit_log",
)
BY_AGE = ("sequence_jobs", "emails", "meetings", "proposals", "campaign_replies", "audit_log")


def upgrade() -> None:
    """purged_at columns, the partial (org_id, created_at) indexes of unpurged rows, and the age
    indexes of cron_runs and gmail_pushes."""
    for table in PURGED_TABLES:
        op.add_column(table, sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    for table in BY_AGE:
        op.create_index(
            f"ix_{table}_unpurged",
            table,
            ["org_id", "created_at"],
            postgresql_where=sa.text(UNPURGED),
            sqlite_where=sa.text(UNPURGED),
        )
    op.create_index(op.f("ix_cron_runs_started_at"), "cron_runs", ["started_at"], unique=False)
    op.create_index(op.f("ix_gmail_pushes_received_at"), "gmail_pushes", ["received_at"], unique=False)


def downgrade() -> None:
    """Drop them."""
    op.drop_index(op.f("ix_gmail_pushes_received_at"), table_name="gmail_pushes")
    op.drop_index(op.f("ix_cron_runs_started_at"), table_name="cron_runs")
    for table in BY_AGE:
        op.drop_index(f"ix_{table}_unpurged", table_name=table)
    for table in PURGED_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("purged_at")
