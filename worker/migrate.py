"""Schema migrations through Alembic, configured in code (no alembic.ini needed once installed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from worker.config import get_settings
from worker.db import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config pointing at our migrations and at `url` (default DATABASE_URL)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().database_url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Apply migrations up to `revision` (creates the SQLite file and its directory if needed)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    """Revert migrations down to `revision`."""
    command.downgrade(alembic_config(url), revision)


def heads() -> tuple[str, ...]:
    """The head revisions of the migration graph (exactly one when the graph is healthy)."""
    return tuple(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def current(url: str | None = None) -> tuple[str, ...]:
    """The revisions the database is at (empty when never migrated)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def at_head(url: str | None = None) -> bool:
    """True when the database is at the single head (used by `/readyz` and the CLI)."""
    return set(current(url)) == set(heads())
