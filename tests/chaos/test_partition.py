"""A network partition: one worker runs in a network namespace of its own (`ip netns` + a veth pair,
tests/support/netns.py) and reaches PostgreSQL, the broker and the fakes through the link; mid-run,
with steps in its hands, the link goes down (its packets vanish: sockets hang, nothing is refused),
then comes back. A second worker in the host's namespace keeps running: its heartbeat takes over the cut
worker's steps once that worker is silent, the cut worker's late results are refused when its
sockets carry on, and every effect reaches the fakes exactly once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import Backend
from tests.support import netns
from tests.support.chaos import ChaosRun, Stage, chaos_run, record
from tests.support.waiting import WaitTimeout, holds_for, wait_for
from tests.support.workers import WorkerProcess
from worker.db import transaction
from worker.models import steps

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.chaos,
]

# How long the link stays down (seconds): the CI size and the --soak size. Longer than a heartbeat
# window (PROACTIVE_WORKER_DEAD_AFTER_S, 10 s), so the other worker takes the steps over.
PARTITION_S, SOAK_PARTITION_S = 15.0, 40.0
# The most a stranded step may wait to run again (p95, seconds): the heartbeat window (10 s) and a
# beat (2 s), as after a kill -9.
RECOVERY_P95_S = 15.0
# How long the second worker must keep running next to the old connection (seconds): the
# mailbox is declared within a second of connecting.
PIDBOX_WATCH_S = 3.0
# How long to wait for the cut worker to hold a running step before cutting (seconds).
HOLDING_WAIT_S = 20.0


@pytest.fixture
def namespace() -> Iterator[netns.Namespace]:
    """A namespace with a veth pair, removed however the test ends (skipped where not permitted)."""
    if reason := netns.unavailable():
        pytest.skip(reason)
    with netns.veth_namespace() as ns:
        yield ns


def start_cut_off_worker(run: ChaosRun, ns: netns.Namespace, env: dict[str, str]) -> WorkerProcess:
    """A worker inside `ns` (its env already pointing through the link), stopped with the run's."""
    name = f"chaos-partition-{run.run_id}-netns"
    worker = WorkerProcess(env, run.stage.backend.log_dir, name, prefix=ns.prefix).start()
    run.workers.append(worker)
    return worker


def attempts(step_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The current attempt of each step run."""
    with transaction() as conn:
        rows = conn.execute(select(steps.c.id, steps.c.attempt).where(steps.c.id.in_(list(step_ids)))).all()
    return {r.id: r.attempt for r in rows}


@pytest.mark.ci(stage="rabbitmq")  # where a cut once killed the worker (pidbox)
def test_a_partitioned_worker_loses_nothing_and_doubles_nothing(stage: Stage, namespace: netns.Namespace, soak: bool):
    stranded: dict[uuid.UUID, int] = {}  # step run id -> its attempt when the link went down
    jobs, cuts, cut_s = (40, 2, SOAK_PARTITION_S) if soak else (12, 1, PARTITION_S)
    scenario = f"network partition {cut_s:.0f} s (a worker in its own netns)"
    with netns.reachable_from(namespace, stage.env) as ns_env, chaos_run(stage, scenario, sweep_every_s=None) as run:
        host_worker = run.start_worker()
        cut_off = start_cut_off_worker(run, namespace, ns_env)
        run.fire(jobs, work_s=0.3)
        for i in range(cuts):
            run.wait_progress(int(jobs * i / (cuts + 1)), timeout_s=90)
            wait_for(lambda: run.held_by(cut_off), timeout_s=HOLDING_WAIT_S, what="the cut worker holds a step")
            namespace.cut()
            held = run.held_by(cut_off)  # after the cut: steps it can no longer finish
            run.note_fault(f"link of {cut_off.name} down {cut_s:.0f} s", held)
            stranded |= held
            try:
                holds_for(
                    lambda: host_worker.alive and cut_off.alive,
                    duration_s=cut_s,
                    what="both workers alive while the link is down",
                )
            finally:
                namespace.restore()
            restored_at = time.monotonic()
        with contextlib.suppress(WaitTimeout):  # a miss is counted as stuck by finish()
            wait_for(lambda: run.final_count() == len(run.accepted), timeout_s=90, what="every job final")
        back_to_final = round(time.monotonic() - restored_at, 1)
        survived = host_worker.alive and cut_off.alive
        attempts_now = attempts(stranded)
        outcome = run.finish(timeout_s=60)
    outcome.notes.append(f"every job final {back_to_final} s after the link came back")
    if not survived:
        locked = "RESOURCE_LOCKED" in cut_off.log()
        outcome.notes.append(f"a worker exited{' on RESOURCE_LOCKED (pidbox)' if locked else ''}")
    record(outcome)
    assert outcome.faults == cuts
    outcome.assert_clean(recovery_p95_s=RECOVERY_P95_S)
    # taken over (run again by the other worker), not finished late by the cut one
    assert all(attempts_now[sid] > attempt for sid, attempt in stranded.items()), (stranded, attempts_now)
    assert survived, "a worker died"


def test_a_worker_meeting_its_old_rabbitmq_connection_keeps_running(rabbitmq_backend: Backend, tmp_path: Path):
    """What the partition does to a worker on RabbitMQ, in small: the worker's side of its broker
    connection is gone (a write timed out across the cut) while RabbitMQ still holds the other side
    (no FIN crossed the cut; its heartbeat check takes 2 x 60 s). A worker of the same name that
    connects meanwhile (the cut worker reconnecting, or its restart) declares its remote-control
    mailbox `<name>.celery.pidbox` again, which the old connection still consumes: as an exclusive
    queue (Celery's default) that was RESOURCE_LOCKED and the worker exited; worker/celery_app.py
    makes it shared on RabbitMQ. Here the old connection is held open by the first worker,
    SIGSTOPped (a hung host)."""
    name = f"chaos-pidbox-{uuid.uuid4().hex[:6]}"
    log_dir = rabbitmq_backend.log_dir
    first = WorkerProcess(rabbitmq_backend.env, log_dir, name).start()
    assert first.proc is not None
    second = WorkerProcess(rabbitmq_backend.env, tmp_path, name)  # a log of its own: start() reads it
    os.killpg(first.proc.pid, signal.SIGSTOP)
    try:
        second.start()
        holds_for(lambda: second.alive, duration_s=PIDBOX_WATCH_S, what=f"{name} (second) running")
    finally:
        os.killpg(first.proc.pid, signal.SIGCONT)
        first.kill()
        second.kill()
