"""Alembic environment: the database URL comes from worker.config (DATABASE_URL), never from an ini."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from worker.db import make_engine
from worker.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render our UTCDateTime as a plain timezone-aware DateTime so migrations never import models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs go through batch mode
        render_item=render_item,
        compare_type=True,
    )


def run_migrations_online() -> None:
    """Run migrations on a live connection (the only mode we use)."""
    url = config.get_main_option("sqlalchemy.url") or None
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _configure(connectable)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations_online()
