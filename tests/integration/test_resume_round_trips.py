"""The resume of a decision in two round trips (worker/engine/approvals.py `apply_decision` with the
approval's org and job, as a resume message carries them): the job's lock, the decision's claim and
the reads of the job's step states and outputs together, then the writes with the COMMIT. What it
must not change: the step after the approval gets the same inputs (the approval's output and every
upstream output) as the resume that reads them under the lock, and a message naming another job
falls back to that path. PostgreSQL + Redis, in process (no worker: messages wait in the broker).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import sequences as test_dags
from tests.support.engine import TestOrg, event, job_status, pending_approval, step_rows
from tests.support.statements import Sent
from worker.db import begin, get_engine
from worker.engine import driver, registry
from worker.engine.approvals import apply_decision, decide
from worker.engine.events import fire_event
from worker.engine.executor import Advance
from worker.models import utcnow

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("dags")]


@pytest.fixture(scope="module")
def dags(pg) -> Iterator[None]:
    with registry.overridden(test_dags.ALL):
        yield


def paused(org: TestOrg) -> tuple[uuid.UUID, Any]:
    """A prepare -> review -> act job run here up to its approval, decided ("approve" with data);
    (its id, the approval)."""
    job_id = fire_event(event(org, "calendar_find_times")).job_id
    for step in ("prepare", "review"):
        driver.execute(step_rows(job_id)[step].id)
    approval = pending_approval(job_id)
    decide(approval.id, "approve", user_id=org.rep, data={"note": "go"})
    return job_id, approval


def resume(approval: Any, **ids: uuid.UUID | None) -> tuple[Advance, Sent]:
    """Apply the decision as the resume task does (the step after it claimed inline), counted."""
    with get_engine().connect() as conn, Sent() as sent, begin(conn):
        adv = apply_decision(conn, approval.id, utcnow(), inline_queues=frozenset({"steps"}), **ids)
    return adv, sent


def test_a_resume_told_its_org_and_job_takes_two_round_trips_and_hands_on_every_input(org: TestOrg):
    job_id, approval = paused(org)
    adv, sent = resume(approval, org_id=org.id, job_id=job_id)
    assert sent.round_trips == 2, sent.statements
    assert sent.statements[0].startswith("SELECT sequence_jobs.id") and "FOR UPDATE" in sent.statements[0]
    assert sent.statements[1].startswith("UPDATE approvals SET resumed_at")
    assert all(not s.startswith(("UPDATE", "INSERT")) for s in sent.statements[2:4])  # the reads, before any write
    assert adv.inline is not None and adv.inline.step.name == "act"
    assert set(adv.inline.inputs) == {"prepare", "review"}
    review = adv.inline.inputs["review"]
    assert (review["decision"], review["data"], review["decided_by"]) == ("approve", {"note": "go"}, str(org.rep))
    assert adv.inline.job["status"] == "running"  # as the resume left it: its completion may be guarded

    rows = step_rows(job_id)
    assert (rows["review"].status, rows["act"].status) == ("succeeded", "running")
    assert rows["review"].output == review

    # The step carries out the approval: its completion reads the approval's message with the job's
    # lock, and as its report changes nothing ("Approved by ..." is still true) it stores its outcome,
    # the job's end and the COMMIT in one more round trip.
    with get_engine().connect() as conn, Sent() as sent:
        assert driver.run_claimed(conn, adv.inline, 0.0) == []
    skill = [s for s in sent.statements if s.startswith("INSERT INTO audit_log")]  # the test step's own
    assert len(skill) == 1 and sent.round_trips == 2 + 3, sent.statements  # + its BEGIN, INSERT, COMMIT
    engine = [s for s in sent.statements if s not in skill]
    heads = [" ".join(s.split(" ", 2)[:2]) for s in engine]
    assert heads == ["SELECT sequence_jobs.id,", "SELECT step_runs.step,", "SELECT approvals.id,", "WITH w0"]
    assert "LEFT OUTER JOIN slack_outbox" in engine[2] and "UPDATE step_runs" in engine[3]
    assert (step_rows(job_id)["act"].status, job_status(job_id)) == ("succeeded", "completed")


def test_the_step_after_the_approval_gets_the_same_inputs_either_way(org: TestOrg):
    ids = {"told": None, "read": None, "another job": None}
    for how in ids:
        job_id, approval = paused(org)
        told = {"told": {"org_id": org.id, "job_id": job_id}, "another job": {"org_id": org.id, "job_id": uuid.uuid4()}}
        adv, sent = resume(approval, **told.get(how, {}))
        assert adv.inline is not None, how
        inputs = adv.inline.inputs
        ids[how] = (sorted(inputs), inputs["prepare"], {k: inputs["review"][k] for k in ("decision", "data")})
        with get_engine().connect() as conn:  # the claimed step runs here, as the resume task runs it
            assert driver.run_claimed(conn, adv.inline, 0.0) == []
        act = step_rows(job_id)["act"]
        assert act.status == "succeeded" and act.output["saw_decision"] == "approve", how
        if how != "told":
            assert sent.round_trips > 2, how  # the reads under the lock, one by one
    assert ids["told"] == ids["read"] == ids["another job"]
