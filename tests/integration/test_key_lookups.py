"""The engine's and the skills' lookups by key read their rows through that key's index, whatever the
statistics (worker/models.py `checked`, `of_org`).

PostgreSQL plans a prepared statement generically from the statistics it has. On tables never
analyzed (a fresh deployment, a server without autovacuum) every candidate index costs the same, and
a plan that reads `WHERE id = $1 AND org_id = $2 AND status = $3` through the `org_id` or `status`
index, filtering on the id, is kept as the tables grow: every row of the org, or every running step,
read for one. The module has its own database (tests.support.private_backend): its tables are empty
and never analyzed, and each statement is planned generically there, as the driver sends it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import insert

from sequences.skills import common
from tests.conftest import Backend
from tests.support.private_backend import private_backend
from worker.db import transaction
from worker.engine import jobstore
from worker.models import Deal, Org, User
from worker.precompiled import Precompiled

pytestmark = pytest.mark.postgres

# The statements, and the index each must read through (a primary key, or the job's steps' key).
BY_KEY = {
    "claim a step": (jobstore._CLAIM_RUN, "pk_step_runs"),
    "lock a job for its completion": (jobstore._LOCK_FOR_COMPLETION, "pk_sequence_jobs"),
    "guard a running job": (jobstore._GUARD_RUNNING, "pk_sequence_jobs"),
    "a job's step states": (jobstore.STATES_OF_JOB, "uq_step_runs_job_id_step_iteration"),
    "a job's outputs": (Precompiled(jobstore._OUTPUTS), "uq_step_runs_job_id_step_iteration"),
    "a skill's deal": (Precompiled(common._loader(Deal)), "pk_deals"),
    "a skill's rep": (Precompiled(common._REP), "pk_users"),
}


@pytest.fixture(scope="module", autouse=True)
def backend(tmp_home: Path) -> Iterator[Backend]:
    with private_backend(tmp_home, "keys") as chosen:
        yield chosen


def generic_plan(backend: Backend, query: str, params: int) -> str:
    """EXPLAIN of `query` planned generically now, on the module's empty, never-analyzed tables."""
    dsn = backend.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute("SET plan_cache_mode = force_generic_plan")
        pg.execute(f"PREPARE q AS {query}")
        nulls = ", ".join(["NULL"] * params)
        return "\n".join(r[0] for r in pg.execute(f"EXPLAIN EXECUTE q({nulls})" if params else "EXPLAIN EXECUTE q"))


def sent(statement: Precompiled) -> tuple[str, int]:
    """The SQL the driver runs for `statement` and its number of parameters."""
    with transaction() as conn:
        plan = statement._plan(conn)
        assert plan is not None and plan.numbered is not None
        return plan.query, len(plan.numbered)


@pytest.mark.parametrize("what", list(BY_KEY))
def test_a_lookup_by_key_reads_that_key_on_tables_never_analyzed(backend: Backend, what: str):
    statement, index = BY_KEY[what]
    query, params = sent(statement)
    plan = generic_plan(backend, query, params)
    used = re.findall(r"(?:Index Scan|Index Only Scan|Bitmap Index Scan) (?:using|on) (\w+)", plan)
    # the table's own read through its key; a subquery's (the rep's org) through the org's primary key
    assert used[:1] == [index] and all(u.startswith(("pk_", "uq_")) for u in used), f"{what}:\n{query}\n{plan}"


def test_without_the_checks_some_lookup_goes_through_an_org_or_status_index(backend: Backend):
    """What the checks prevent, on the same tables: the same statements with plain conditions."""
    wrong = []
    for what, (statement, index) in BY_KEY.items():
        query, params = sent(statement)
        plain = re.sub(r"\(([^()]*)\) IS true", r"\1", query)
        assert plain != query, what
        plan = generic_plan(backend, plain, params)
        used = re.findall(r"(?:Index Scan|Index Only Scan|Bitmap Index Scan) (?:using|on) (\w+)", plan)
        if used[:1] != [index]:
            wrong.append(f"{what}: {used}")
    assert wrong, "every statement read its key even without the checks: this test shows nothing"
    assert any(re.search(r"ix_\w*(org_id|status)", w) for w in wrong), wrong


def test_a_user_lookup_by_id_is_still_scoped_to_its_org(backend: Backend):
    """The check changes how the org is read, not what it means: another org's user is not found."""
    mine, theirs, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with transaction() as conn:
        conn.execute(insert(Org.__table__), [{"id": mine, "name": "mine"}, {"id": theirs, "name": "theirs"}])
        conn.execute(insert(User.__table__), [{"id": user, "org_id": theirs, "email": "u@x.test", "name": "U"}])
        rep = Precompiled(common._REP)
        assert rep.first(conn, {"b_id": user, "b_org": mine}) is None
        found = rep.first(conn, {"b_id": user, "b_org": theirs})
        assert found is not None and found[0] == user
