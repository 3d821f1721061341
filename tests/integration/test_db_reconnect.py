"""A worker whose pooled database connections were cut (a PostgreSQL restart, a failover, an idle
timeout) runs its next task on a new connection: nothing fails, nothing waits for the sweeper.
Real `celery worker` processes on PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Uuid, bindparam, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tests.conftest import Backend
from tests.support.engine import all_step_rows, event, reached
from tests.support.waiting import wait_for
from worker.db import get_engine, transaction
from worker.engine.events import fire_event
from worker.models import jobs
from worker.precompiled import Precompiled

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("test_sequences")]

# Well under the sweeper's 30 s re-publish: the job must not have waited for it.
PROMPT_S = 15.0


def done(job_id: object) -> str | None:
    return reached(job_id, "completed", "failed", "cancelled", "expired", "timeout")  # type: ignore[arg-type]


def cut_every_connection(database: str) -> int:
    """Terminate every other session on `database`, as a PostgreSQL restart does; returns how many."""
    with transaction() as conn:
        cut = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        ).scalar_one()
    get_engine().dispose()  # this process's own pooled connections were cut too
    return cut


def test_a_worker_runs_its_next_task_on_a_new_connection_after_they_were_cut(pg: Backend, workers, org):
    workers(concurrency=1, start_recovery=False)  # one pool child: it holds the one pooled connection
    warm = fire_event(event(org, "proposal_generation"))
    assert wait_for(lambda: done(warm.job_id)) == "completed"

    assert cut_every_connection(make_url(pg.env["DATABASE_URL"]).database or "") >= 1
    after = fire_event(event(org, "proposal_generation"))
    assert wait_for(lambda: done(after.job_id), timeout_s=PROMPT_S, what="job after the cut") == "completed"
    rows = all_step_rows(after.job_id)
    assert {r.status for r in rows} == {"succeeded"} and {r.attempt for r in rows} == {1}


def test_a_precompiled_statement_on_a_cut_connection_raises_operational_error_and_the_pool_recovers(pg: Backend):
    """The step path's statements run on the driver's cursor (worker/precompiled.py): a connection cut
    under them is reported as SQLAlchemy reports it (OperationalError, the connection invalidated),
    which is what makes a task run once more on a new connection."""
    by_id = Precompiled(select(jobs.c.id).where(jobs.c.id == bindparam("b_id", type_=Uuid())))
    with get_engine().connect() as victim:
        pid = victim.execute(text("SELECT pg_backend_pid()")).scalar_one()
        victim.rollback()
        with transaction() as killer:
            assert killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        with pytest.raises(OperationalError) as caught:
            by_id.first(victim, {"b_id": uuid.uuid4()})
        assert caught.value.connection_invalidated
    with transaction() as conn:  # the pool hands out a live connection again
        assert by_id.first(conn, {"b_id": uuid.uuid4()}) is None
