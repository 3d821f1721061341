"""Accepting an event in one statement (worker/engine/events.py `accept_at_once`): once a process has
read an org's (and rep's) gate row, the next event's job and first steps are inserted and the gate
read again by one statement, which commits itself. What it must never change: the gate decides as it
would have read first (an org disabled, a sequence turned off, a rep opted out or moved or deleted
since), a duplicate key answers the existing job and leaves no row, another live job for the deal
makes an `already_live` skip. PostgreSQL + Redis, fire_event in process (no worker: the run_step
messages wait in the broker).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from tests.support import sequences as test_dags
from tests.support.engine import TestOrg, make_org
from tests.support.engine import event as envelope
from tests.support.statements import Sent
from worker.db import transaction
from worker.engine import registry
from worker.engine.dag import Sequence, Step
from worker.engine.events import fire_event
from worker.errors import InvalidEvent
from worker.models import Org, RejectedEvent, User, jobs, steps

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("dags")]

LINEAR = "campaign_daily_check"  # s1 -> ... -> s5: one first step
FANOUT = "proposal_generation"  # live-bound when its payload names a deal
TWO_FIRST = Sequence(
    "deal_risk_scan",
    payload_model=test_dags.TestPayload,
    steps=(Step("a", test_dags.noop), Step("b", test_dags.noop), Step("both", test_dags.noop, deps=("a", "b"))),
)


@pytest.fixture(scope="module")
def dags(pg) -> Iterator[None]:
    with registry.overridden((*test_dags.ALL, TWO_FIRST)):
        yield


def count(table: Any, *where: Any) -> int:
    with transaction() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def fire(org: TestOrg, event_type: str = LINEAR, **extra: Any) -> Any:
    return fire_event(envelope(org, event_type, **extra))


def set_org(org: TestOrg, **values: Any) -> None:
    with transaction() as conn:
        conn.execute(update(Org.__table__).where(Org.id == org.id).values(**values))


def set_user(user_id: uuid.UUID, **values: Any) -> None:
    with transaction() as conn:
        conn.execute(update(User.__table__).where(User.id == user_id).values(**values))


def test_a_remembered_gate_fires_the_job_and_its_steps_with_the_gate_read_in_one_statement(org: TestOrg):
    fire(org)  # reads the gate first, and remembers it
    with Sent() as sent:
        result = fire(org)
    assert len(sent.statements) == 1, sent.statements
    sql = sent.statements[0]
    assert sql.startswith("WITH new_job AS (INSERT INTO sequence_jobs")
    assert "new_steps AS (INSERT INTO step_runs" in sql and "FROM orgs LEFT OUTER JOIN users" in sql
    assert (sent.autocommitted, sent.round_trips) == (1, 1)  # the statement commits itself: no BEGIN, no COMMIT
    assert (result.status, result.duplicate) == ("queued", False)
    with transaction() as conn:
        rows = conn.execute(select(steps.c.step, steps.c.status).where(steps.c.job_id == result.job_id)).all()
    assert [tuple(r) for r in rows] == [("s1", "queued")]


def test_several_first_steps_go_in_the_same_statement(org: TestOrg):
    fire(org, TWO_FIRST.event_type)  # the gate remembered, the definition stored
    with Sent() as sent:
        result = fire(org, TWO_FIRST.event_type)
    assert len(sent.statements) == 1
    with transaction() as conn:
        rows = conn.execute(select(steps.c.step, steps.c.status).where(steps.c.job_id == result.job_id)).all()
    assert sorted(tuple(r) for r in rows) == [("a", "queued"), ("b", "queued")]


def test_a_delayed_job_is_held_in_the_transaction_of_its_insert(org: TestOrg):
    fire(org)
    with Sent() as sent:
        result = fire(org, delay_minutes=30)
    assert sent.autocommitted == 0 and sent.statements[1].startswith("UPDATE step_runs SET not_before")
    assert (sent.begins, sent.commits) == (1, 1)  # the insert and the hold commit together
    with transaction() as conn:
        held = conn.execute(select(steps.c.not_before).where(steps.c.job_id == result.job_id)).scalar_one()
    assert result.scheduled_for is not None and held == result.scheduled_for


def test_a_duplicate_key_answers_the_first_job_and_leaves_no_row(org: TestOrg, caplog: pytest.LogCaptureFixture):
    fire(org)
    first = fire(org, idempotency_key="once")
    with caplog.at_level(logging.DEBUG, "worker.engine.events"):
        again = fire(org, idempotency_key="once")
    assert "not inserted (its key or its live slot is taken)" in caplog.text
    assert (again.job_id, again.duplicate, first.duplicate) == (first.job_id, True, False)
    assert count(jobs, jobs.c.org_id == org.id) == 2
    assert count(steps, steps.c.org_id == org.id) == 2  # s1 of each job: none for the refused insert


def test_another_live_job_for_the_deal_is_an_already_live_skip(org: TestOrg):
    deal = str(uuid.uuid4())
    fire(org)
    live = fire(org, FANOUT, payload={"deal_id": deal})
    second = fire(org, FANOUT, payload={"deal_id": deal})
    assert (second.status, second.reason, second.live_job_id, second.duplicate) == (
        "skipped",
        "already_live",
        live.job_id,
        False,
    )
    assert count(steps, steps.c.job_id == second.job_id) == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda org: set_org(org, enabled=False), "org_disabled"),
        (lambda org: set_org(org, settings={"enabled_sequences": [FANOUT]}), "sequence_disabled"),
        (lambda org: set_user(org.rep, opted_out_sequences=[LINEAR]), "user_opted_out"),
    ],
    ids=["org disabled", "sequence disabled", "rep opted out"],
)
def test_a_gate_changed_since_it_was_remembered_decides(
    org: TestOrg, change: Any, reason: str, caplog: pytest.LogCaptureFixture
):
    assert fire(org).status == "queued"  # remembered
    change(org)
    with caplog.at_level(logging.DEBUG, "worker.engine.events"):
        result = fire(org)
    assert f"the gate of org {org.id} changed" in caplog.text  # sent at once, rolled back, read first
    assert (result.status, result.reason) == ("skipped", reason)
    assert count(steps, steps.c.job_id == result.job_id) == 0
    assert count(jobs, jobs.c.org_id == org.id) == 2  # the job the changed gate skipped, once


def test_a_rep_moved_to_another_org_or_deleted_since_is_refused(org: TestOrg, caplog: pytest.LogCaptureFixture):
    elsewhere = make_org()
    for user_id in (org.rep, org.other_rep):
        fire(org, user_id=str(user_id))  # both remembered
    set_user(org.rep, org_id=elsewhere.id)
    with transaction() as conn:
        conn.execute(delete(User.__table__).where(User.id == org.other_rep))
    for user_id in (org.rep, org.other_rep):
        refused = pytest.raises(InvalidEvent, match=f"user {user_id} is not a member of org {org.id}")
        with refused, caplog.at_level(logging.DEBUG, "worker.engine.events"):
            fire(org, user_id=str(user_id))
    # another gate row (moved: another org; deleted: no user), so nothing was written
    assert caplog.text.count(f"the gate of org {org.id} changed") == 2
    assert count(RejectedEvent.__table__, RejectedEvent.org_id == org.id) == 2  # each refusal recorded
    assert count(jobs, jobs.c.org_id == org.id) == 2  # the first two only
