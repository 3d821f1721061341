"""Admin sign-in links: each one-time login link's id, so a link opens one browser session only

`proactive admin link` signs a token carrying a fresh `jti`; `GET /admin/login` marks the row used
with one conditional UPDATE, so a second use (or a copy of the URL in a log) is refused with 401.
`org_id` is NULL for a link that signs in to every org (the operator's admin session).

Also an index on sequence_jobs.parent_job_id: a job's timeline lists its follow-up jobs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The admin_logins table; follow-up jobs found by their parent."""
    op.create_table(
        "admin_logins",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_admin_logins_org_id_orgs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_admin_logins")),
    )
    op.create_index(op.f("ix_admin_logins_expires_at"), "admin_logins", ["expires_at"], unique=False)
    op.create_index(op.f("ix_sequence_jobs_parent_job_id"), "sequence_jobs", ["parent_job_id"], unique=False)


def downgrade() -> None:
    """Drop them."""
    op.drop_index(op.f("ix_sequence_jobs_parent_job_id"), table_name="sequence_jobs")
    op.drop_index(op.f("ix_admin_logins_expires_at"), table_name="admin_logins")
    op.drop_table("admin_logins")
