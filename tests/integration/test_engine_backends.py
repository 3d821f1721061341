"""The engine end to end on every backend: PostgreSQL + Redis, PostgreSQL + RabbitMQ and the embedded
SQLite pair, with a real prefork `celery worker` consuming (happy path, branches, idempotency,
pause/resume)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from tests.support.engine import (
    approvals_of,
    event,
    executions,
    job_row,
    job_status,
    pending_approval,
    reached,
    settled,
    step_rows,
)
from tests.support.waiting import wait_for
from worker.db import transaction
from worker.engine.approvals import decide
from worker.engine.events import fire_event, stored_key
from worker.models import jobs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("test_sequences"),
    pytest.mark.parametrize("backend", ["postgres", "rabbitmq", "sqlite"], indirect=True, scope="module"),
]


def test_fan_out_and_join_run_every_step_exactly_once(backend, shared_worker, org):
    result = fire_event(event(org, "proposal_generation"))
    assert not result.duplicate
    assert wait_for(lambda: settled(result.job_id), what="job settled") == "completed"
    rows = step_rows(result.job_id)
    assert set(rows) == {"start", "left", "right", "join", "finish"}
    for name, row in rows.items():
        assert row.status == "succeeded", (name, row.status, row.error)
        assert row.attempt == 1
        assert executions(result.job_id, name) == 1
    assert rows["join"].output["inputs"] == ["left", "right", "start"]  # both branches and what came before
    assert rows["join"].started_at >= max(rows["left"].finished_at, rows["right"].finished_at)
    job = job_row(result.job_id)
    assert job.started_at is not None and job.finished_at is not None


def test_fast_branches_run_one_after_another_in_the_task_that_made_them_ready(backend, shared_worker, org):
    """Once a worker process has run both branches and measured them at a few ms, the completion of
    `start` claims them together for its own task (same claim time) instead of publishing one to
    run in parallel; every step still runs once and the join sees both."""
    together = None
    for _ in range(20):  # each pool process learns the durations of the steps it runs
        job_id = fire_event(event(org, "proposal_generation")).job_id
        assert wait_for(lambda j=job_id: settled(j), what="job settled") == "completed"
        rows = step_rows(job_id)
        assert {n: (r.status, executions(job_id, n)) for n, r in rows.items()} == dict.fromkeys(
            ("start", "left", "right", "join", "finish"), ("succeeded", 1)
        )
        assert rows["join"].output["inputs"] == ["left", "right", "start"]
        if rows["left"].started_at == rows["right"].started_at:
            together = job_id
            break
    assert together is not None, "no job of 20 ran its branches in one task"


def test_same_key_fired_50_times_concurrently_makes_one_job(backend, shared_worker, org):
    ev = event(org, "campaign_daily_check", user_id=None)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: fire_event(dict(ev)), range(50)))
    job_ids = {r.job_id for r in results}
    assert len(job_ids) == 1
    assert sum(not r.duplicate for r in results) == 1
    with transaction() as conn:
        count = conn.execute(
            select(func.count())
            .select_from(jobs)
            .where(jobs.c.org_id == org.id, jobs.c.idempotency_key == stored_key("api", ev["idempotency_key"]))
        ).scalar_one()
    assert count == 1
    job_id = job_ids.pop()
    assert wait_for(lambda: settled(job_id)) == "completed"
    assert all(executions(job_id, f"s{i}") == 1 for i in range(1, 6))


def test_when_predicates_choose_a_branch_and_skips_propagate(backend, shared_worker, org):
    reply = fire_event(event(org, "email_received", {"intent": "reply"}))
    neither = fire_event(event(org, "email_received", {"intent": "fyi"}))
    assert wait_for(lambda: settled(reply.job_id)) == "completed"
    assert wait_for(lambda: settled(neither.job_id)) == "completed"

    taken = {n: (r.status, r.reason) for n, r in step_rows(reply.job_id).items()}
    assert taken == {
        "classify": ("succeeded", None),
        "draft-reply": ("succeeded", None),
        "review-reply": ("succeeded", None),
        "book": ("skipped", "not_booking"),
        "wrap-up": ("succeeded", None),
    }
    untaken = {n: (r.status, r.reason) for n, r in step_rows(neither.job_id).items()}
    assert untaken["draft-reply"] == ("skipped", "not_reply")
    assert untaken["review-reply"] == ("skipped", "upstream_skipped:draft-reply")
    assert untaken["wrap-up"][0] == "skipped"  # every dependency was skipped
    assert executions(neither.job_id, "wrap-up") == 0


def test_pause_resume_hands_the_decision_to_the_next_step(backend, shared_worker, org):
    result = fire_event(event(org, "calendar_find_times"))
    assert wait_for(lambda: settled(result.job_id)) == "awaiting_approval"
    approval = pending_approval(result.job_id)
    assert approval is not None and approval.kind == "calendar_slots"
    assert step_rows(result.job_id)["review"].status == "awaiting_approval"
    assert "act" not in step_rows(result.job_id)

    decision = decide(approval.id, "send_invite", user_id=org.rep, data={"slot": "2026-12-01T15:00:00Z"})
    assert decision.status == "approved"
    assert wait_for(lambda: reached(result.job_id, "completed", "failed"), what="resumed job done") == "completed"
    act = step_rows(result.job_id)["act"].output
    assert act["saw_decision"] == "send_invite"
    assert act["saw_data"] == {"slot": "2026-12-01T15:00:00Z"}
    assert act["decided_by"] == str(org.rep)
    job = job_row(result.job_id)
    assert job.paused_ms > 0 and job.paused_at is None
    # the resume claimed the step after the approval in its own transaction (no claim of its own):
    # the step started at the resume's time, on the worker that applied the decision
    resumed = next(a for a in approvals_of(result.job_id) if a.id == approval.id)
    assert step_rows(result.job_id)["act"].started_at == resumed.resumed_at
    assert step_rows(result.job_id)["act"].attempt == 1


def test_gated_event_is_a_visible_skipped_job(backend, shared_worker, org):
    first = event(org, "proposal_generation", depth=6)
    deep = fire_event(first)
    assert (deep.status, deep.reason) == ("skipped", "chain_too_deep")
    assert job_status(deep.job_id) == "skipped"
    assert step_rows(deep.job_id) == {}
    assert job_row(deep.job_id).idempotency_key == stored_key("api", first["idempotency_key"])
    again = fire_event(event(org, "proposal_generation", depth=6, idempotency_key=first["idempotency_key"]))
    assert again.duplicate and again.job_id == deep.job_id


def test_unknown_org_is_rejected_and_recorded(backend, shared_worker, org):
    from worker.errors import InvalidEvent
    from worker.models import RejectedEvent

    ghost = uuid.uuid4()
    with pytest.raises(InvalidEvent, match=f"unknown org {ghost}"):
        fire_event({**event(org, "deal_risk_scan"), "org_id": str(ghost), "user_id": None})
    with transaction() as conn:
        row = conn.execute(select(RejectedEvent.__table__).where(RejectedEvent.org_id == ghost)).one()
    assert row.error_type == "InvalidEvent" and "unknown org" in row.reason
    with transaction() as conn:
        assert conn.execute(select(func.count()).select_from(jobs).where(jobs.c.org_id == ghost)).scalar_one() == 0
