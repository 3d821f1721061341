"""The migration graph: one head, and upgrade -> downgrade -> upgrade works on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import inspect

from tests.support.services import ensure_postgres
from worker import migrate
from worker.db import make_engine
from worker.models import Base


def test_the_migration_graph_has_exactly_one_head():
    assert len(migrate.heads()) == 1


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_upgrade_downgrade_upgrade_on_postgres():
    ensure_postgres()
    name = f"proactive_mig_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        migrate.upgrade(url)
        assert migrate.at_head(url)
        assert _tables(url) == set(Base.metadata.tables)
        migrate.downgrade(url, "base")
        assert migrate.current(url) == ()
        assert _tables(url) == set()
        migrate.upgrade(url)
        assert migrate.at_head(url) and _tables(url) == set(Base.metadata.tables)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upgrade_downgrade_upgrade_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'deep' / 'dir' / 'p.db'}"  # missing directories are created
    migrate.upgrade(url)
    assert migrate.at_head(url) and _tables(url) == set(Base.metadata.tables)
    migrate.downgrade(url, "base")
    assert _tables(url) == set()
    migrate.upgrade(url)
    assert migrate.at_head(url)


def test_models_and_migrations_agree(tmp_path):
    """Autogenerate finds nothing to change after upgrade head: the models are fully migrated."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
