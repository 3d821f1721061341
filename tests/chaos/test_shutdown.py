"""A worker stopped as a container platform stops it, while steps run: SIGTERM to its whole process
group (`docker stop`, a Kubernetes pod deletion), SIGKILL after a short grace if it still runs, and a
replacement started under a new name (a new pod). Before worker heartbeats, the steps a worker held
when it was killed after a 5 s grace waited ~121 s for their lease; now they run again within
seconds. And SIGTERM alone: the warm shutdown finishes or hands back what it runs, nothing is lost.

Every accepted job ends completed, every approval DM, email, invite and confirmation DM reaches the
fakes once, and the steps the stopped worker held run again (or end) within RECOVERY_P95_S of the
SIGTERM (p95).
"""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import select

from tests.support.chaos import ChaosRun, Stage, chaos_run, record
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from worker.db import transaction
from worker.models import steps

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.chaos]

RECOVERY_P95_S = 15.0
# `docker stop -t 5` / terminationGracePeriodSeconds: 5: the grace before SIGKILL.
SHORT_GRACE_S = 5.0
# A grace long enough for a warm shutdown of the workload's steps (each well under its 8 s timeout).
LONG_GRACE_S = 30.0
# A step's work that outlasts the short grace, within the workload's 8 s step timeout.
LONGER_THAN_THE_GRACE_S = 6.5


def _jobs_of(step_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    with transaction() as conn:
        return set(conn.execute(select(steps.c.job_id).where(steps.c.id.in_(list(step_ids)))).scalars())


def busy_worker(run: ChaosRun, job_ids: list[uuid.UUID] | None = None) -> WorkerProcess:
    """A live worker running a step of the run (of one of `job_ids`, if given); waits for one."""

    def find() -> WorkerProcess | None:
        for worker in run.live_workers():
            held = run.held_by(worker)
            if held and (job_ids is None or _jobs_of(set(held)) & set(job_ids)):
                return worker
        return None

    return wait_for(find, timeout_s=60, what="a worker running a step")


def stop_like_a_platform(
    run: ChaosRun, grace_s: float, *, group: bool, job_ids: list[uuid.UUID] | None = None
) -> tuple[bool, float]:
    """SIGTERM a busy worker (its whole group, or its main process alone), SIGKILL after `grace_s`
    if it still runs, start a replacement under a new name; (whether it exited within the grace,
    how long it took to go). The fault is noted when its steps are cut off: at the SIGTERM when it
    reaches the pool children (they die at once), else when the worker is gone (they ran on)."""
    victim = busy_worker(run, job_ids)
    held = run.held_by(victim)
    what = f"SIGTERM to {'the group' if group else 'PID 1'} of {victim.name} (SIGKILL after {grace_s:g} s)"
    if group:
        run.note_fault(what, held)
    started = time.monotonic()
    exited = victim.terminate(grace_s, group=group)
    gone_s = round(time.monotonic() - started, 2)
    if not group:
        run.note_fault(what, held)
    run.start_worker()  # a new pod: a new name
    return exited, gone_s


def gone(exited: bool, gone_s: float) -> str:
    """A note for the outcome row: how the stopped worker went."""
    return f"gone {'within the grace' if exited else 'by SIGKILL'} after {gone_s} s"


@pytest.mark.ci(stage="rabbitmq", replicas=1)  # the lone replica: the replacement cannot judge the old pod yet
@pytest.mark.parametrize("replicas", [1, 2])
def test_sigterm_to_the_group_then_sigkill_after_a_short_grace(stage: Stage, replicas: int, soak: bool):
    jobs, stops = (16, 4) if soak else (3, 1)
    scenario = f"SIGTERM to the group, SIGKILL after {SHORT_GRACE_S:g} s, new pod ({replicas} replica(s))"
    with chaos_run(stage, scenario, sweep_every_s=None) as run:
        run.start_workers(replicas)
        run.fire(jobs, work_s=2.0)
        notes = [gone(*stop_like_a_platform(run, SHORT_GRACE_S, group=True)) for _ in range(stops)]
        outcome = run.finish(timeout_s=180 if soak else 60)
    outcome.notes += notes
    record(outcome)
    assert outcome.faults == stops and outcome.recovery_s, outcome.summary()
    outcome.assert_clean(recovery_p95_s=RECOVERY_P95_S)


@pytest.mark.ci(stage="postgres")
def test_sigterm_to_pid_1_then_sigkill_after_a_short_grace(stage: Stage, soak: bool):
    """The children run on through the grace and are killed with the worker (the ~121 s case)."""
    jobs, stops = (4, 3) if soak else (1, 1)
    scenario = f"SIGTERM to PID 1, SIGKILL after {SHORT_GRACE_S:g} s, new pod (2 replicas)"
    with chaos_run(stage, scenario, sweep_every_s=None) as run:
        run.start_workers(2)
        notes = []
        for _ in range(stops):
            fired = run.fire(jobs, work_s=LONGER_THAN_THE_GRACE_S)  # stopped while their first steps run
            exited, gone_s = stop_like_a_platform(run, SHORT_GRACE_S, group=False, job_ids=fired)
            assert not exited, f"the worker left within the grace ({gone_s} s): nothing was cut off"
            notes.append(gone(exited, gone_s))
        outcome = run.finish(timeout_s=240 if soak else 60)
    outcome.notes += notes
    record(outcome)
    assert outcome.faults == stops and outcome.recovery_s, outcome.summary()
    outcome.assert_clean(recovery_p95_s=RECOVERY_P95_S)


@pytest.mark.ci(stage="rabbitmq", to="pid 1")  # the group's SIGTERM is the short-grace test's
@pytest.mark.parametrize("to", ["group", "pid 1"])
def test_sigterm_alone_loses_nothing(stage: Stage, to: str, soak: bool):
    jobs, stops = (16, 4) if soak else (3, 1)
    with chaos_run(stage, f"SIGTERM alone to {to} (warm shutdown), new pod", sweep_every_s=None) as run:
        run.start_workers(2)
        run.fire(jobs, work_s=2.0)
        notes = []
        for _ in range(stops):
            exited, gone_s = stop_like_a_platform(run, LONG_GRACE_S, group=to == "group")
            assert exited, f"the warm shutdown took longer than {LONG_GRACE_S} s"
            notes.append(gone(exited, gone_s))
        outcome = run.finish(timeout_s=180 if soak else 60)
    outcome.notes += notes
    record(outcome)
    assert outcome.faults == stops and outcome.recovery_s, outcome.summary()
    outcome.assert_clean(recovery_p95_s=RECOVERY_P95_S)
