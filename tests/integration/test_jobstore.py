"""The state SQL under real concurrency on PostgreSQL: what a waiting transaction sees."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import update

from tests.support.engine import event, step_rows
from tests.support.waiting import wait_for
from worker.db import get_engine
from worker.engine import jobstore as store
from worker.engine.events import fire_event
from worker.models import steps

pytestmark = pytest.mark.usefixtures("test_sequences")


def test_a_completion_waiting_for_the_job_lock_sees_the_sibling_that_held_it(pg, org):
    """Two branches finish together: the second, once it gets the lock, must see the first as
    succeeded, or neither queues the join (PostgreSQL re-checks only the locked row when a
    `FOR UPDATE` waits, so the step states must be read by a statement issued after the lock)."""
    job_id = fire_event(event(org, "proposal_generation")).job_id  # no worker: rows stay as inserted
    start = step_rows(job_id)["start"].id
    seen: dict[str, str] = {}

    with get_engine().connect() as first:
        tx = first.begin()
        store.lock_job_with_steps(first, job_id, org_id=org.id)
        first.execute(update(steps).where(steps.c.id == start).values(status="succeeded"))

        def second_branch() -> None:
            with get_engine().connect() as second, second.begin():
                # blocks until `first` commits
                _job, states, _ = store.lock_job_with_steps(second, job_id, org_id=org.id)
                seen.update({s.step: s.status for s in states})

        t = threading.Thread(target=second_branch)
        t.start()
        wait_for(lambda: not t.is_alive() or _blocked_on_lock(), timeout_s=10, what="second waits on the lock")
        assert t.is_alive()  # it really waited
        tx.commit()
        t.join(10)
    assert seen == {"start": "succeeded"}


def _blocked_on_lock() -> bool:
    with get_engine().connect() as conn:
        return bool(
            conn.exec_driver_sql(
                "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()"
            ).scalar()
        )
