"""A PostgreSQL database and a Redis DB that one test module holds alone, applied to this process.

The crons scan every org, so their tests must not see the orgs of the session's shared database:
each such module creates its own (migrated to head), claims a Redis DB of its own, and drops both
when it is done.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import Backend, _claim_redis_db, apply_env

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def private_backend(tmp_home: Path, label: str, extra_env: Mapping[str, str] | None = None) -> Iterator[Backend]:
    """A fresh database `proactive_<label>_<random>` and a Redis DB, with `extra_env`, applied to
    this process until the block ends; then the settings and engine are reset and both dropped."""
    import psycopg

    from tests.support.services import ensure_postgres, ensure_redis
    from worker import migrate
    from worker.config import reset_settings
    from worker.db import reset_engine

    ensure_postgres()
    ensure_redis()
    name = f"proactive_{label}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    redis_db, lease = _claim_redis_db()
    env = {"DATABASE_URL": url, "BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}", **(extra_env or {})}
    try:
        migrate.upgrade(url)
        with pytest.MonkeyPatch.context() as mp:
            apply_env(mp, env)
            yield Backend("postgres", env, tmp_home / f"logs-{label}")
    finally:
        reset_settings()
        reset_engine()
        lease.release()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
