"""A step that fails for good shows as a failed Celery task (what Flower counts), not a success: the
failure is recorded on the job first, the message is acked (no redelivery), and Celery logs one line
naming the step and its error instead of a traceback."""

from __future__ import annotations

import pytest

from tests.support.engine import event, reached, step_rows
from tests.support.waiting import wait_for
from worker.engine.events import fire_event
from worker.engine.tasks import run_step
from worker.errors import StepFailed

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("test_sequences")]


def test_a_failed_step_fails_its_task_and_a_clean_one_succeeds(pg, org):
    """The real task body, run in this process (no worker consumes: the steps wait for us)."""
    hard = fire_event(event(org, "meeting_ended", {"fail_steps": ["optional", "vital"]}))
    first = step_rows(hard.job_id)
    ran = {name: run_step.apply(args=[str(row.id)]) for name, row in first.items() if row.status == "queued"}
    failed = [name for name, result in ran.items() if result.state == "FAILURE"]
    assert failed, {name: r.state for name, r in ran.items()}
    errors = [str(ran[name].result) for name in failed]
    assert all(isinstance(ran[name].result, StepFailed) for name in failed)
    assert any("refuses bad data" in e for e in errors)
    rows = step_rows(hard.job_id)
    assert {name for name, r in rows.items() if r.status == "failed"} == {
        e.split(":")[0] for text in errors for e in text.split("; ")
    }  # exactly the steps recorded as failed are named

    clean = fire_event(event(org, "meeting_ended", {}))
    results = [run_step.apply(args=[str(r.id)]) for r in step_rows(clean.job_id).values() if r.status == "queued"]
    assert results and {r.state for r in results} == {"SUCCESS"}


def test_a_worker_logs_the_failed_task_in_one_line(workers, org):
    worker = workers()
    hard = fire_event(event(org, "meeting_ended", {"fail_steps": ["optional", "vital"]}))
    assert wait_for(lambda: reached(hard.job_id, "failed")) == "failed"
    line = wait_for(
        lambda: next((ln for ln in worker.log().splitlines() if "raised expected: StepFailed" in ln), None),
        what="the task's failure in the worker log",
    )
    assert "refuses bad data" in line
    assert "Traceback" not in worker.log()  # an expected failure, not a crash
