"""worker/planner_stats.py on PostgreSQL: a table autovacuum leaves alone is ANALYZEd once it holds
rows, and a generic plan PostgreSQL cached while it was empty is replaced by one that reads the
primary key. The module has its own database (tests.support.private_backend): its tables start empty
and never analyzed, as a fresh deployment's; each test turns autovacuum off for the table it uses,
whatever the server's setting.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import insert

from tests.conftest import Backend
from tests.support.private_backend import private_backend
from tests.support.waiting import wait_for
from worker.db import transaction
from worker.engine import sweeper
from worker.models import Org, User
from worker.planner_stats import analyze_unmanaged

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module", autouse=True)
def backend(tmp_home: Path) -> Iterator[Backend]:
    with private_backend(tmp_home, "planner") as chosen:
        yield chosen


def dsn(backend: Backend) -> str:
    return backend.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")


def unmanaged(table: str, value: str = "false") -> None:
    """Autovacuum off for `table` (PostgreSQL keeps the value as written: false, off, 0...)."""
    with transaction() as conn:
        conn.exec_driver_sql(f'ALTER TABLE "{table}" SET (autovacuum_enabled = {value})')


def add_members(n: int) -> uuid.UUID:
    """A new org with n members; returns the org."""
    org_id = uuid.uuid4()
    with transaction() as conn:
        conn.execute(insert(Org.__table__), [{"id": org_id, "name": "planner"}])
        if n:
            members = [
                {"id": uuid.uuid4(), "org_id": org_id, "email": f"u{i}@x.test", "name": f"u{i}"} for i in range(n)
            ]
            conn.execute(insert(User.__table__), members)
    return org_id


def live_rows(table: str, at_least: int) -> None:
    """Wait until the statistics system counts the rows (backends report them when idle, within ~1 s)."""

    def counted() -> bool:
        with transaction() as conn:
            n = conn.exec_driver_sql(
                "SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = %(t)s", {"t": table}
            ).scalar_one()
        return n >= at_least

    wait_for(counted, timeout_s=15, what=f"{at_least} live rows of {table} counted")


def last_analyzed(table: str) -> object:
    with transaction() as conn:
        return conn.exec_driver_sql(
            "SELECT coalesce(last_analyze, last_autoanalyze) FROM pg_stat_user_tables WHERE relname = %(t)s",
            {"t": table},
        ).scalar_one()


def test_a_table_autovacuum_leaves_alone_is_analyzed_once_it_holds_rows(backend: Backend):
    unmanaged("orgs")
    with transaction() as conn:
        assert "orgs" not in analyze_unmanaged(conn, min_rows=5)  # empty: nothing to gather
    for _ in range(6):
        add_members(0)
    live_rows("orgs", 6)
    assert last_analyzed("orgs") is None
    with transaction() as conn:
        assert "orgs" in analyze_unmanaged(conn, min_rows=5)
    assert last_analyzed("orgs") is not None
    with transaction() as conn:
        assert "orgs" not in analyze_unmanaged(conn, min_rows=5)  # up to date now: not again


def test_the_sweeper_replaces_a_generic_plan_cached_on_an_empty_table(backend: Backend):
    """A prepared lookup by primary key (and org, as every query is scoped) planned generically while
    `users` was empty keeps its plan as the table fills, until the sweeper's pass ANALYZEs it."""
    unmanaged("users", "off")
    with psycopg.connect(dsn(backend), autocommit=True) as pg:
        pg.execute("SET plan_cache_mode = force_generic_plan")
        pg.execute("PREPARE by_id(uuid, uuid) AS SELECT name FROM users WHERE id = $1 AND org_id = $2")

        def plan() -> str:
            rows = pg.execute(f"EXPLAIN EXECUTE by_id('{uuid.uuid4()}', '{uuid.uuid4()}')").fetchall()
            return "\n".join(r[0] for r in rows)

        empty = plan()  # planned now, on the empty table
        add_members(3000)
        live_rows("users", 3000)
        sweeper.sweep()
        assert last_analyzed("users") is not None
        assert "pk_users" in plan(), f"on the empty table:\n{empty}\nafter the sweep:\n{plan()}"
