"""kill -9 at random moments over a run with approvals and sends: whole workers (restarted under
the same name, as a supervisor does, or as a new worker, as a new container) and single pool
children. Every accepted job ends completed; every approval DM, email, invite and confirmation DM
reaches the fakes exactly once; a killed step runs again within 15 s (p95)."""

from __future__ import annotations

import pytest

from tests.support.chaos import Stage, chaos_run, record

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.chaos]

# The target of issue "recovered in seconds": a killed step starts again within this (p95).
RECOVERY_P95_S = 15.0


def test_kill_9_at_random_loses_nothing_and_doubles_nothing(stage: Stage, soak: bool):
    jobs, kills = (80, 20) if soak else (12, 4)
    with chaos_run(stage, "kill -9 at random (workers and pool children)", sweep_every_s=None) as run:
        run.start_workers(2)
        run.fire(jobs, work_s=0.3)
        for i in range(kills):
            run.wait_progress(int(jobs * i / (kills + 1)), timeout_s=90)
            kind = ("worker-same", "child", "worker-new", "child")[i % 4]
            if kind == "child":
                run.kill_child()
            else:
                run.kill_worker(restart=kind.removeprefix("worker-"))
        outcome = run.finish(timeout_s=180 if soak else 90)
    record(outcome)
    assert outcome.faults == kills
    outcome.assert_clean(recovery_p95_s=RECOVERY_P95_S)
