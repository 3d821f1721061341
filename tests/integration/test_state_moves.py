"""State moves through worker/engine/jobstore.py on the database: a move the transition table forbids
raises IllegalTransition before any SQL; a guarded move that lost its race is a value (False/None),
and the row keeps the status the winner gave it."""

from __future__ import annotations

import uuid
from collections import deque
from datetime import timedelta
from typing import Any

import pytest

from tests.support.engine import TestOrg, event, job_status, step_rows
from worker.db import get_engine, transaction
from worker.engine import driver, executor
from worker.engine import jobstore as store
from worker.engine.durations import Durations
from worker.engine.events import fire_event
from worker.engine.states import ApprovalStatus, IllegalTransition, JobStatus, StepStatus
from worker.models import utcnow
from worker.precompiled import LeaseLost

pytestmark = pytest.mark.usefixtures("test_sequences")

J, S, A = JobStatus, StepStatus, ApprovalStatus


def _completed_job(org: TestOrg) -> uuid.UUID:
    """A job (no worker runs it) moved to completed through the store."""
    job_id = fire_event(event(org, "proposal_generation")).job_id
    with transaction() as conn:
        assert store.set_job_status(conn, job_id, J.COMPLETED, utcnow(), old=J.QUEUED, org_id=org.id)
    return job_id


def test_ending_an_ended_job_raises_and_changes_nothing(pg, org):
    """end_job on a completed job is a caller's bug: it raises instead of doing nothing silently."""
    job_id = _completed_job(org)
    with transaction() as conn:
        job = dict(store.lock_job(conn, job_id, org_id=org.id)._mapping)
        with pytest.raises(IllegalTransition, match="completed -> failed is not allowed"):
            executor.end_job(conn, job, J.FAILED, utcnow(), error="boom")
    assert job_status(job_id) == J.COMPLETED


def test_a_move_the_table_forbids_raises_before_any_sql(pg, org):
    job_id = _completed_job(org)
    start = step_rows(job_id)["start"].id
    with transaction() as conn:
        with pytest.raises(IllegalTransition, match="completed -> running is not allowed"):
            store.set_job_status(conn, job_id, J.RUNNING, utcnow(), old=J.COMPLETED, org_id=org.id)
        with pytest.raises(IllegalTransition, match="completed -> cancelled is not allowed"):
            store.request_job_cancel(conn, job_id, "too late", old=J.COMPLETED, org_id=org.id)
        with pytest.raises(IllegalTransition, match="nothing may move to queued"):
            store.set_job_status(conn, job_id, J.QUEUED, utcnow(), org_id=org.id)
        with pytest.raises(IllegalTransition, match="queued -> succeeded is not allowed"):
            store.set_step_status(conn, start, S.SUCCEEDED, utcnow(), old=S.QUEUED, org_id=org.id)
        with pytest.raises(IllegalTransition, match="nothing may move to pending"):
            store.set_approval_status(conn, uuid.uuid4(), A.PENDING, utcnow(), org_id=org.id)
    assert job_status(job_id) == J.COMPLETED
    assert step_rows(job_id)["start"].status == S.QUEUED


def test_losing_a_race_is_a_value_not_an_error(pg, org):
    """The caller read `running`, another process completed the job meanwhile: the guarded UPDATE
    matches no row and says so; the winner's status stays."""
    job_id = _completed_job(org)
    with transaction() as conn:
        assert store.set_job_status(conn, job_id, J.FAILED, utcnow(), old=J.RUNNING, org_id=org.id) is False
        assert store.request_job_cancel(conn, job_id, "late", old=J.RUNNING, org_id=org.id) is False
    assert job_status(job_id) == J.COMPLETED


def test_a_completion_whose_attempt_was_reclaimed_meanwhile_stores_nothing(pg, org):
    """The finish and the plan after it go in one round trip (worker/precompiled.py `Deferred`): when
    another worker re-claimed the step while this attempt ran, the finish matches no row, LeaseLost
    is raised before the commit and nothing of the plan (the successors, the job's move) is stored."""
    job_id = fire_event(event(org, "proposal_generation")).job_id
    start = step_rows(job_id)["start"].id
    with transaction() as conn:
        claimed, _ = executor.claim(conn, start, utcnow())
    assert claimed is not None and claimed.attempt == 1
    with transaction() as conn:  # the lease ran out; another worker takes the step over
        later = utcnow() + timedelta(hours=1)
        assert store.claim_step(conn, start, later, later + timedelta(minutes=5), org_id=org.id) == (2, 0)
    outcome = executor.Outcome(S.SUCCEEDED, output={"from": "the first attempt"})
    with pytest.raises(LeaseLost, match=f"step run {start} attempt 1: matched 0 rows"), transaction() as conn:
        executor.complete(conn, claimed, outcome, utcnow(), inline_queues=frozenset({"steps"}), inline_budget_s=60)
    rows = step_rows(job_id)
    assert list(rows) == ["start"]  # no successor planned from the lost attempt
    assert (rows["start"].status, rows["start"].attempt, rows["start"].output) == (S.RUNNING, 2, None)
    assert job_status(job_id) == J.RUNNING


def _first_step_completed(fired: dict[str, Any], first_step: str) -> tuple[uuid.UUID, executor.Advance]:
    """Fire `fired`, claim its `first_step` here and complete it succeeded with the inline queue and
    budget a worker has; (the job, what the completion left to do)."""
    job_id = fire_event(fired).job_id
    with transaction() as conn:
        first, _ = executor.claim(conn, step_rows(job_id)[first_step].id, utcnow())
    assert first is not None
    with transaction() as conn:
        adv = executor.complete(
            conn, first, executor.Outcome(S.SUCCEEDED), utcnow(), inline_queues=frozenset({"steps"}), inline_budget_s=60
        )
    return job_id, adv


def _inline_second_step(org: TestOrg) -> tuple[uuid.UUID, executor.Claimed]:
    """A linear job whose first step completed with its successor claimed inline (the claim carries
    the job's step states: its completion may be guarded)."""
    job_id, adv = _first_step_completed(event(org, "campaign_daily_check", user_id=None), "s1")
    assert adv.inline is not None and adv.inline.step.name == "s2" and adv.inline.states is not None
    return job_id, adv.inline


def _complete_guarded(claimed: executor.Claimed) -> executor.Advance:
    outcome = executor.Outcome(S.SUCCEEDED, output={"n": 2})
    with transaction() as conn:
        assert executor.guarded(conn, claimed, outcome)
        return executor.complete(
            conn, claimed, outcome, utcnow(), inline_queues=frozenset({"steps"}), inline_budget_s=60, guard=True
        )


def test_a_guarded_completion_stores_the_step_and_its_successor(pg, org):
    job_id, second = _inline_second_step(org)
    adv = _complete_guarded(second)
    rows = step_rows(job_id)
    assert (rows["s2"].status, rows["s2"].output) == (S.SUCCEEDED, {"n": 2})
    assert adv.inline is not None and adv.inline.step.name == "s3"
    assert (rows["s3"].status, rows["s3"].attempt) == (S.RUNNING, 1)  # claimed inline, committed
    assert job_status(job_id) == J.RUNNING


def test_a_guarded_completion_of_a_job_asked_to_cancel_stores_nothing_and_the_locked_one_cancels(pg, org):
    """The guard finds the cancel asked while the step ran: the transaction rolls back (no successor,
    the step still running), and the completion under the lock ends the job as asked."""
    job_id, second = _inline_second_step(org)
    with transaction() as conn:
        assert store.request_job_cancel(conn, job_id, "rep asked", old=J.RUNNING, org_id=org.id)
    with pytest.raises(executor.Unguarded, match=f"job {job_id} running on iteration 0: matched 0 rows, expected 1"):
        _complete_guarded(second)
    rows = step_rows(job_id)
    assert list(rows) == ["s1", "s2"] and rows["s2"].status == S.RUNNING
    with transaction() as conn:
        adv = executor.complete(
            conn, second, executor.Outcome(S.SUCCEEDED), utcnow(), inline_queues=frozenset({"steps"})
        )
    assert adv.inline is None and job_status(job_id) == J.CANCELLED
    assert step_rows(job_id)["s2"].status == S.SUCCEEDED


def test_a_guarded_completion_whose_attempt_was_reclaimed_stores_nothing(pg, org):
    job_id, second = _inline_second_step(org)
    with transaction() as conn:  # the lease ran out; another worker takes the step over
        later = utcnow() + timedelta(hours=1)
        assert store.claim_step(conn, second.step_run_id, later, later + timedelta(minutes=5), org_id=org.id) == (2, 0)
    with pytest.raises(executor.Unguarded, match=f"step run {second.step_run_id} attempt 1: matched 0 rows"):
        _complete_guarded(second)
    rows = step_rows(job_id)
    assert list(rows) == ["s1", "s2"] and (rows["s2"].status, rows["s2"].attempt) == (S.RUNNING, 2)


def test_guarded_completions_carry_a_linear_job_to_its_end(pg, org):
    """Each inline step of the chain completes guarded, the last one moving the job to completed in
    the same statement that locked it."""
    job_id, current = _inline_second_step(org)
    for name in ("s2", "s3", "s4", "s5"):
        assert current is not None and current.step.name == name
        current = _complete_guarded(current).inline
    assert current is None
    assert job_status(job_id) == J.COMPLETED
    assert {name: row.status for name, row in step_rows(job_id).items()} == dict.fromkeys(
        ("s1", "s2", "s3", "s4", "s5"), S.SUCCEEDED
    )


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> Durations:
    """This process's step durations, starting empty (what a new worker process knows)."""
    fresh = Durations()
    monkeypatch.setattr(executor, "DURATIONS", fresh)
    return fresh


def _fanout_started(org: TestOrg) -> tuple[uuid.UUID, executor.Advance]:
    """A fan-out job (start -> left, right -> join) whose first step completed with the inline budget
    a worker has."""
    return _first_step_completed(event(org, "proposal_generation"), "start")


def test_ready_siblings_this_process_ran_fast_are_claimed_with_the_inline_step(pg, org, measured):
    """Both branches measured at a few ms: the completion claims them together for this task (same
    claim time, attempt 1, nothing published) instead of sending one to another worker."""
    for name in ("left", "right"):
        measured.observe(("proposal_generation", name), 2.0)
    job_id, adv = _fanout_started(org)
    assert adv.inline is not None and adv.inline.step.name == "left"
    assert [c.step.name for c in adv.joined] == ["right"] and adv.publish == []
    rows = step_rows(job_id)
    assert {n: (rows[n].status, rows[n].attempt) for n in ("left", "right")} == dict.fromkeys(
        ("left", "right"), (S.RUNNING, 1)
    )
    assert rows["left"].started_at == rows["right"].started_at


def test_siblings_this_process_never_ran_are_published_to_run_in_parallel(pg, org, measured):
    measured.observe(("proposal_generation", "left"), 2.0)  # the inline one is known, its sibling is not
    job_id, adv = _fanout_started(org)
    assert adv.inline is not None and adv.inline.step.name == "left" and adv.joined == []
    assert [p.step_run_id for p in adv.publish] == [step_rows(job_id)["right"].id]
    assert (step_rows(job_id)["right"].status, step_rows(job_id)["right"].attempt) == (S.QUEUED, 0)


def test_steps_claimed_ahead_are_given_back_when_the_task_has_no_time_left(pg, org, measured):
    """The task's budget is spent before a joined step's turn: it goes back to queued with its
    attempt uncounted, and the next claim (the published message's) is its first attempt."""
    for name in ("left", "right"):
        measured.observe(("proposal_generation", name), 2.0)
    job_id, adv = _fanout_started(org)
    with get_engine().connect() as conn:
        assert driver._next_held(conn, deque(adv.joined), time_left_s=0.0) is None
    right = step_rows(job_id)["right"]
    assert (right.status, right.attempt, right.claimed_by, right.started_at) == (S.QUEUED, 0, None, None)
    with transaction() as conn:
        again, _ = executor.claim(conn, right.id, utcnow())
    assert again is not None and again.attempt == 1


def test_a_step_claimed_ahead_and_taken_over_meanwhile_is_not_given_back(pg, org, measured):
    """Its lease was taken over (another worker runs it now): giving back matches no row."""
    for name in ("left", "right"):
        measured.observe(("proposal_generation", name), 2.0)
    job_id, adv = _fanout_started(org)
    right_id = adv.joined[0].step_run_id
    with transaction() as conn:
        later = utcnow() + timedelta(hours=1)
        assert store.claim_step(conn, right_id, later, later + timedelta(minutes=5), org_id=org.id) == (2, 0)
    with get_engine().connect() as conn:
        driver.release(conn, deque(adv.joined))
    assert (step_rows(job_id)["right"].status, step_rows(job_id)["right"].attempt) == (S.RUNNING, 2)


def test_a_cancel_asked_while_a_joined_step_waits_its_turn_keeps_it_from_starting(pg, org, measured):
    """`left` runs inline with `right` claimed behind it; the rep cancels meanwhile. The completion
    of `left` says the job does not run on (`halt`), the driver gives `right` back, and its claim
    skips it and ends the job cancelled: `right`'s skill never runs."""
    for name in ("left", "right"):
        measured.observe(("proposal_generation", name), 2.0)
    job_id, adv = _fanout_started(org)
    left, right = adv.inline, adv.joined[0]
    assert left is not None
    with transaction() as conn:
        assert store.request_job_cancel(conn, job_id, "rep asked", old=J.RUNNING, org_id=org.id)
    with transaction() as conn:
        done = executor.complete(
            conn, left, executor.Outcome(S.SUCCEEDED), utcnow(), inline_queues=frozenset({"steps"}), inline_budget_s=60
        )
    assert done.halt and done.inline is None and done.joined == []
    assert job_status(job_id) == J.RUNNING  # `right` is still held (running): the cancel waits for it
    with get_engine().connect() as conn:
        driver.release(conn, deque([right]))
    with transaction() as conn:
        again, _ = executor.claim(conn, right.step_run_id, utcnow())
    assert again is None
    assert step_rows(job_id)["right"].status == S.SKIPPED and job_status(job_id) == J.CANCELLED


def test_a_job_that_runs_on_does_not_halt_the_steps_claimed_ahead(pg, org, measured):
    for name in ("left", "right"):
        measured.observe(("proposal_generation", name), 2.0)
    job_id, adv = _fanout_started(org)
    assert adv.inline is not None and not adv.halt
    with transaction() as conn:
        done = executor.complete(
            conn,
            adv.inline,
            executor.Outcome(S.SUCCEEDED),
            utcnow(),
            inline_queues=frozenset({"steps"}),
            inline_budget_s=60,
        )
    assert not done.halt and done.inline is None  # `join` waits for `right`, which this task holds
    assert step_rows(job_id)["right"].status == S.RUNNING
