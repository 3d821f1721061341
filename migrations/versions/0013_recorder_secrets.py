"""Recorder secrets per org: at most one recorder integration per org, found by its org

Each org's meeting recorder gets its own webhook secret (`proactive recorder secret`), stored
encrypted in an `integrations` row with provider "recorder" (current + previous secret during a
rotation, worker/recorder/secrets.py). `POST /webhooks/recording/<org_id>` reads that row on every
delivery, and two concurrent `recorder secret` commands must not make two rows: a partial unique
index on `integrations (org_id) WHERE provider = 'recorder'` does both. No row exists before this
revision (nothing made recorder integrations), so it applies to any database.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_integrations_recorder_org"
WHERE = sa.text("provider = 'recorder'")


def upgrade() -> None:
    """The partial unique index."""
    op.create_index(INDEX, "integrations", ["org_id"], unique=True, postgresql_where=WHERE, sqlite_where=WHERE)


def downgrade() -> None:
    """Drop it (recorder rows stay; nothing else read the index)."""
    op.drop_index(INDEX, table_name="integrations")
