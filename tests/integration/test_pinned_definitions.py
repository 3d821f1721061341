"""A job finishes on the definition it started with: a deploy while it waits on an approval changes
nothing of its DAG (the steps after the approval, the approval step itself, what a "more options"
decision re-runs), and a step whose code the deploy removed fails it, saying so (real workers).

One deploy for the module: jobs of every test sequence are accepted and paused on their approval
under version 1, then version 2's worker runs and this process has version 2 registered, as the
deployed webhooks and CLI would; each test decides its jobs' approvals after the deploy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import Backend
from tests.support import pinned_sequences as versions
from tests.support.engine import (
    TestOrg,
    all_step_rows,
    event,
    executions,
    job_row,
    make_org,
    pending_approval,
    reached,
    settled,
    step_rows,
)
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from worker.db import transaction
from worker.engine import registry
from worker.engine.approvals import decide
from worker.engine.dag import Sequence
from worker.engine.events import fire_event
from worker.engine.executor import request_cancel
from worker.errors import InvalidDecision
from worker.models import RejectedEvent, SequenceDefinition, approvals, jobs, steps, utcnow

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def worker(pg: Backend, version: str) -> WorkerProcess:
    """A worker running `version` of the test sequences (the product's sequences too)."""
    env = {
        **pg.env,
        "PROACTIVE_SEQUENCE_MODULES": "sequences,tests.support.pinned_sequences",
        "PINNED_TEST_VERSION": version,
    }
    return WorkerProcess(env, pg.log_dir, f"pinned-v{version}").start()


@dataclass(frozen=True)
class Deployed:
    """Jobs paused on version 1 (by event type), with version 2 deployed."""

    org: TestOrg
    v1: dict[str, Sequence]
    v2: dict[str, Sequence]
    jobs: dict[str, uuid.UUID]


@pytest.fixture(scope="module")
def deployed(pg: Backend) -> Iterator[Deployed]:
    v1 = {s.event_type: s for s in versions.build("1")}
    v2 = {s.event_type: s for s in versions.build("2")}
    for event_type in v1:
        assert v1[event_type].definition_hash != v2[event_type].definition_hash
    org = make_org()
    with registry.overridden(v1.values()):  # this process accepts the events on version 1, as the fleet did
        first = worker(pg, "1")
        try:
            jobs = {t: fire_event(event(org, t)).job_id for t in v1}
            for job_id in jobs.values():
                assert wait_for(lambda job_id=job_id: settled(job_id)) == "awaiting_approval"
        finally:
            first.stop()
    with registry.overridden(v2.values()):  # the deploy: the webhooks, the CLI and the workers run version 2
        second = worker(pg, "2")
        try:
            yield Deployed(org, v1, v2, jobs)
        finally:
            second.stop()


def approve(d: Deployed, event_type: str, decision: str = "approve") -> uuid.UUID:
    """Decide the job's pending approval as its rep; returns the job id."""
    job_id = d.jobs[event_type]
    decide(pending_approval(job_id).id, decision, user_id=d.org.rep)
    return job_id


def ended(job_id: uuid.UUID) -> str:
    return wait_for(lambda: reached(job_id, "completed", "failed"), what="job resumed on version 2")


def test_a_deploy_while_a_job_waits_on_an_approval_does_not_change_its_dag(deployed: Deployed):
    d = deployed
    added, removed = approve(d, versions.ADDED), approve(d, versions.REMOVED)
    for job_id in (added, removed):
        ended(job_id)

    # The added step is not in the definition the job started with: it never ran, not even skipped.
    assert job_row(added).status == "completed"
    assert job_row(added).definition_hash == d.v1[versions.ADDED].definition_hash
    rows = step_rows(added)
    assert sorted(rows) == ["act", "prepare", "review"]
    assert {r.status for r in rows.values()} == {"succeeded"}

    # The step whose skill the deploy removed fails the job with an error that says so.
    job = job_row(removed)
    digest = d.v1[versions.REMOVED].definition_hash
    expected = (
        f"step send: skill tests.support.pinned_sequences:send_v1 is not in this deployment "
        f"(the job started on definition {digest[:8]})"
    )
    assert job.status == "failed" and job.error_step == "send"
    assert job.error.startswith(expected), job.error
    send = step_rows(removed)["send"]
    assert send.status == "failed" and send.error == job.error and send.error_class == "permanent"
    assert executions(removed, "send") == 0  # version 2's skill did not run in its place

    with transaction() as conn:  # each definition stored once, under the hash its jobs carry
        stored = dict(conn.execute(select(SequenceDefinition.definition_hash, SequenceDefinition.event_type)).all())
    assert stored[d.v1[versions.ADDED].definition_hash] == versions.ADDED and stored[digest] == versions.REMOVED


def test_an_approval_step_the_deploy_renamed_is_decided_and_applied_on_the_jobs_definition(deployed: Deployed):
    """Version 2 calls the approval step `check`; the paused job's approval names `review`. The
    decision is checked against, and applied on, version 1: the step after it gets the decision."""
    job_id = approve(deployed, versions.RENAMED)

    assert ended(job_id) == "completed", job_row(job_id).error
    rows = step_rows(job_id)
    assert sorted(rows) == ["act", "prepare", "review"]  # no `check` step appeared
    assert {r.status for r in rows.values()} == {"succeeded"}
    assert rows["review"].output["decision"] == "approve"
    assert rows["act"].output["saw_decision"] == "approve" and executions(job_id, "act") == 1


def test_more_options_reruns_the_steps_of_the_jobs_definition(deployed: Deployed):
    """Version 2 re-runs from `review` and has no `enrich`; the job paused on version 1 re-runs
    version 1's `prepare` and `enrich` before asking again."""
    job_id = approve(deployed, versions.RERUN, "more")
    asked_again = wait_for(lambda: pending_approval(job_id), what="the approval asked again")
    assert asked_again.step == "review"
    for name in ("prepare", "enrich", "review"):
        assert executions(job_id, name) == 2, name
    superseded = sorted(r.step for r in all_step_rows(job_id) if r.superseded)
    assert superseded == ["enrich", "prepare", "review"]  # the first round's runs, retired

    decide(asked_again.id, "approve", user_id=deployed.org.rep)
    assert ended(job_id) == "completed", job_row(job_id).error
    rows = step_rows(job_id)
    assert sorted(rows) == ["act", "enrich", "prepare", "review"]
    assert {r.iteration for r in rows.values()} == {1} and {r.status for r in rows.values()} == {"succeeded"}
    assert executions(job_id, "act") == 1


def test_a_decision_on_an_approval_step_the_deployed_sequence_lost_is_refused_saying_why(pg: Backend):
    """A job accepted before definitions were stored runs on the deployed sequence; when the deploy
    renamed its approval step, deciding it is refused with the reason (and recorded), not a crash."""
    org = make_org()
    with registry.overridden(versions.build("2")):
        job_id = fire_event(event(org, versions.RENAMED)).job_id
        request_cancel(job_id, org_id=org.id, actor="tests")  # a worker of this module may be running its step:
        assert wait_for(lambda: job_row(job_id).status == "cancelled", what="job cancelled")  # at its step boundary
        now = utcnow()
        with transaction() as conn:  # as before migration 0011: a hash no stored definition has
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(definition_hash="0" * 64))
            step_run_id = conn.execute(select(steps.c.id).where(steps.c.job_id == job_id)).scalars().first()
            approval_id = uuid.uuid4()
            conn.execute(
                approvals.insert().values(
                    id=approval_id,
                    org_id=org.id,
                    job_id=job_id,
                    step_run_id=step_run_id,
                    step="review",
                    kind="calendar_slots",
                    critical=True,
                    status="pending",
                    approver_user_ids=[str(org.rep)],
                    preview={},
                    expires_at=now + timedelta(hours=1),
                    created_at=now,
                )
            )
        why = "approval step 'review' is no longer in the campaign_daily_check sequence; it cannot be decided"
        with pytest.raises(InvalidDecision, match=why):
            decide(approval_id, "approve", user_id=org.rep)
    with transaction() as conn:
        recorded = (
            conn.execute(select(RejectedEvent.reason).where(RejectedEvent.body.contains(str(approval_id))))
            .scalars()
            .all()
        )
        status = conn.execute(select(approvals.c.status).where(approvals.c.id == approval_id)).scalar_one()
    assert any(e.startswith(why) for e in recorded) and status == "pending"
