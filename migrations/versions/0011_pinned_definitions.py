"""Definitions pinned per job: sequence_definitions stores each sequence definition once per hash

A job must finish on the DAG it started with, not on whatever a later deploy registered for its event
type. `sequence_definitions` holds each definition as JSON (its steps: name, skill reference, deps,
critical, approval, when-condition and start_after references, queue, time limits, attempts) keyed by
the hash jobs already carry (`sequence_jobs.definition_hash`); the engine plans a job from the one its
hash names (worker/engine/pinned.py). Rows are written when the first job of a definition is accepted. No
tenant column: definitions are code, the same for every org.
Jobs accepted before this revision have no stored definition and keep running on the current one.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The sequence_definitions table (hash -> event type, definition JSON, first stored at)."""
    op.create_table(
        "sequence_definitions",
        sa.Column("definition_hash", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("definition_hash", name=op.f("pk_sequence_definitions")),
    )


def downgrade() -> None:
    """Drop sequence_definitions (jobs then run on the current definition again)."""
    op.drop_table("sequence_definitions")
