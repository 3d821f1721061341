"""Step-path indexes: no second org_id index, no index entries for finished steps and root jobs

Every step writes three versions of its `step_runs` row (queued, running, finished) and most steps
update their job's row; none of those updates can be HOT (each changes an indexed status), so each
version writes an entry into every index of its table. This revision drops what those entries paid
for without any reader needing it:

- the single-column `org_id` index of `step_runs`, `sequence_jobs`, `approvals` and `slack_outbox`:
  each table has another index leading with org_id, which serves the same lookups and the org
  cascade;
- the entries of finished steps in `step_runs (status, queued_at)`: its readers (the sweeper, the
  orphan re-queue, a worker's check of its children) look for queued or running steps only, so the
  index becomes partial over those two statuses;
- the entries of root jobs in `sequence_jobs (parent_job_id)`: it is read to find a job's follow-ups
  by their parent, so it becomes partial over jobs that have one.

On a large live table, run the same statements by hand with CREATE INDEX CONCURRENTLY first.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tables whose single-column org_id index goes (another index leads with org_id).
ORG_COVERED = ("step_runs", "sequence_jobs", "approvals", "slack_outbox")
LIVE_STEP = "status = 'queued' OR status = 'running'"
HAS_PARENT = "parent_job_id IS NOT NULL"


def _partial(where: str) -> dict[str, sa.TextClause]:
    return {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}


def upgrade() -> None:
    """Drop the covered org_id indexes; make the step status and parent-job indexes partial."""
    for table in ORG_COVERED:
        op.drop_index(f"ix_{table}_org_id", table_name=table)
    op.drop_index("ix_step_runs_status_queued_at", table_name="step_runs")
    op.create_index("ix_step_runs_status_queued_at", "step_runs", ["status", "queued_at"], **_partial(LIVE_STEP))
    op.drop_index("ix_sequence_jobs_parent_job_id", table_name="sequence_jobs")
    op.create_index("ix_sequence_jobs_parent_job_id", "sequence_jobs", ["parent_job_id"], **_partial(HAS_PARENT))


def downgrade() -> None:
    """The indexes as revision 0015 had them."""
    op.drop_index("ix_sequence_jobs_parent_job_id", table_name="sequence_jobs")
    op.create_index("ix_sequence_jobs_parent_job_id", "sequence_jobs", ["parent_job_id"])
    op.drop_index("ix_step_runs_status_queued_at", table_name="step_runs")
    op.create_index("ix_step_runs_status_queued_at", "step_runs", ["status", "queued_at"])
    for table in ORG_COVERED:
        op.create_index(f"ix_{table}_org_id", table, ["org_id"])
