"""Worker heartbeats with real `celery worker` processes: the step of a worker killed with SIGKILL
runs again on a live worker within seconds (not after its lease), and so does the step of a pool child
killed alone, on PostgreSQL with Redis and with RabbitMQ, and on the embedded SQLite pair. So does a
Slack delivery killed after Slack posted its message (counted at the fake Slack: posted once)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.conftest import Backend, backend_with_slack
from tests.fakes.slack import FakeSlack
from tests.support import heartbeat_sequences as dags
from tests.support.engine import event, reached, step_rows
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from worker.db import transaction
from worker.engine import claimant, executor, registry
from worker.engine import jobstore as store
from worker.engine.events import fire_event
from worker.engine.heartbeat import Heartbeat
from worker.engine.states import StepStatus
from worker.models import SlackOutbox, utcnow
from worker.slack import delivery
from worker.slack.delivery import enqueue_message

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("pg", ["postgres", "rabbitmq", "sqlite"], indirect=True, scope="module"),
]

# The target: a killed step has run again and finished this soon after the kill (seconds).
RERUN_WITHIN_S = 15.0
# The workers of these tests beat every second and judge a worker silent for 5 s dead (the defaults:
# 2 s and 10 s): the same mechanism, half the wait.
FAST_BEATS = {"PROACTIVE_WORKER_HEARTBEAT_S": "1", "PROACTIVE_WORKER_DEAD_AFTER_S": "5"}


def _runs(path: Path) -> list[tuple[int, int]]:
    """(pid, attempt) of every run of the step so far."""
    if not path.exists():
        return []
    return [(int(pid), int(attempt)) for pid, attempt in (line.split() for line in path.read_text().splitlines())]


def test_a_step_of_a_killed_worker_reruns_on_a_live_one_within_seconds(pg, org, tmp_path: Path):
    env = {**pg.env, "PROACTIVE_SEQUENCE_MODULES": "sequences,tests.support.heartbeat_sequences", **FAST_BEATS}
    runs, release = tmp_path / "runs.txt", tmp_path / "release"
    tag = uuid.uuid4().hex[:6]
    victim = WorkerProcess(env, pg.log_dir, f"hb-victim-{pg.name}-{tag}").start()
    survivor: WorkerProcess | None = None
    try:
        with registry.overridden(dags.SEQUENCES):
            job_id = fire_event(
                event(org, dags.EVENT_TYPE, {"runs_file": str(runs), "release_file": str(release)})
            ).job_id
        wait_for(lambda: _runs(runs), what="the step running on the first worker")
        survivor = WorkerProcess(env, pg.log_dir, f"hb-survivor-{pg.name}-{tag}").start()

        victim.kill()  # SIGKILL the main process and its pool children: no ack, no goodbye
        killed = time.monotonic()
        assert step_rows(job_id)["hold"].status == "running"
        assert (
            wait_for(lambda: reached(job_id, "completed", "failed"), timeout_s=RERUN_WITHIN_S, what="step re-run")
            == "completed"
        )
        took = time.monotonic() - killed
    finally:
        release.touch()
        victim.kill()
        if survivor is not None:
            survivor.stop()

    (first_pid, first_attempt), (second_pid, second_attempt) = _runs(runs)  # ran exactly twice
    assert (first_attempt, second_attempt) == (1, 2) and first_pid != second_pid
    hold = step_rows(job_id)["hold"]
    assert hold.status == "succeeded" and hold.attempt == 2 and hold.output["pid"] == second_pid
    assert took < RERUN_WITHIN_S


def test_a_step_of_a_killed_pool_child_reruns_within_seconds_while_its_worker_lives(pg, org, tmp_path: Path):
    """Only the pool child running the step is killed: its worker keeps beating, and re-queues the
    step of the child that is gone; another child of the same worker runs it again."""
    env = {**pg.env, "PROACTIVE_SEQUENCE_MODULES": "sequences,tests.support.heartbeat_sequences", **FAST_BEATS}
    runs, release = tmp_path / "runs.txt", tmp_path / "release"
    worker = WorkerProcess(env, pg.log_dir, f"hb-child-{pg.name}-{uuid.uuid4().hex[:6]}").start()
    try:
        with registry.overridden(dags.SEQUENCES):
            payload = {"runs_file": str(runs), "release_file": str(release)}
            job_id = fire_event(event(org, dags.EVENT_TYPE, payload)).job_id
        wait_for(lambda: _runs(runs), what="the step running in a pool child")
        ((child_pid, _attempt),) = _runs(runs)
        assert child_pid != worker.proc.pid  # a pool child, not the main process
        assert step_rows(job_id)["hold"].claimed_by.endswith(f"/{child_pid}")

        os.kill(child_pid, signal.SIGKILL)  # the child alone: its main process lives and beats
        killed = time.monotonic()
        assert (
            wait_for(lambda: reached(job_id, "completed", "failed"), timeout_s=RERUN_WITHIN_S, what="step re-run")
            == "completed"
        )
        took = time.monotonic() - killed
        assert worker.alive
    finally:
        release.touch()
        worker.stop()

    (first_pid, first_attempt), (second_pid, second_attempt) = _runs(runs)  # ran exactly twice
    assert (first_attempt, second_attempt) == (1, 2) and first_pid == child_pid != second_pid
    hold = step_rows(job_id)["hold"]
    assert hold.status == "succeeded" and hold.attempt == 2 and hold.output["pid"] == second_pid
    assert took < RERUN_WITHIN_S


def test_a_worker_restarted_under_the_same_name_reruns_its_own_step_at_start(pg, org, tmp_path: Path):
    env = {**pg.env, "PROACTIVE_SEQUENCE_MODULES": "sequences,tests.support.heartbeat_sequences", **FAST_BEATS}
    runs, release = tmp_path / "runs.txt", tmp_path / "release"
    name = f"hb-restarted-{pg.name}-{uuid.uuid4().hex[:6]}"
    first = WorkerProcess(env, pg.log_dir, name).start()
    again: WorkerProcess | None = None
    try:
        with registry.overridden(dags.SEQUENCES):
            payload = {"runs_file": str(runs), "release_file": str(release)}
            job_id = fire_event(event(org, dags.EVENT_TYPE, payload)).job_id
        wait_for(lambda: _runs(runs), what="the step running on the first worker")
        first.kill()
        again = WorkerProcess(env, pg.log_dir, name).start()  # the same node name, as a supervisor restarts it
        assert (
            wait_for(lambda: reached(job_id, "completed", "failed"), timeout_s=RERUN_WITHIN_S, what="step re-run")
            == "completed"
        )
        log = again.log()
    finally:
        release.touch()
        first.kill()
        if again is not None:
            again.stop()

    assert [attempt for _pid, attempt in _runs(runs)] == [1, 2]
    # re-queued by the restarted worker's start, not by a live worker's judgement of a silent one
    assert "worker start: re-queued 1 step(s) or delivery(ies) its previous run held" in log


def test_a_beating_worker_keeps_its_step_a_silent_one_loses_it_and_its_late_result(pg, org, tmp_path: Path):
    """The rule itself, on two heartbeats in this process: a judge that just started (or just came
    back from an outage) judges nobody; a claimant that keeps beating keeps its running step however
    long it runs; once it stops beating for the window its step is queued again, and the result it
    then reports is discarded."""
    window = 0.3  # seconds: PROACTIVE_WORKER_DEAD_AFTER_S for both, short for the test
    holder = Heartbeat(f"hb-holder-{uuid.uuid4().hex[:6]}", 1.0, window)
    judge = Heartbeat(f"hb-judge-{uuid.uuid4().hex[:6]}", 1.0, window)
    with registry.overridden(dags.SEQUENCES):
        job_id = fire_event(event(org, dags.EVENT_TYPE, {"runs_file": str(tmp_path / "r"), "release_file": "-"})).job_id
        try:
            holder.register()  # this process now claims as the holder
            step_run_id = step_rows(job_id)["hold"].id
            with transaction() as conn:
                claimed, _ = executor.claim(conn, step_run_id, utcnow())
            assert claimed is not None and step_rows(job_id)["hold"].claimed_by == holder.instance

            judge.tick()
            assert not judge.may_judge(time.monotonic())  # a fresh judge waits a whole window of its own beats

            def judged_while_holder_beats() -> bool:
                holder.beat()
                judge.tick()
                return judge.may_judge(time.monotonic())

            wait_for(judged_while_holder_beats, timeout_s=10, what="the judge's own beats for a whole window")
            holder.beat()
            judge.tick()
            assert step_rows(job_id)["hold"].status == "running"  # alive, however slow its step

            def requeued_once_the_holder_is_silent() -> bool:
                judge.tick()
                return step_rows(job_id)["hold"].status == "queued"

            wait_for(requeued_once_the_holder_is_silent, timeout_s=10, what="the silent holder's step queued again")
            with transaction() as conn:
                late = store.finish_step(
                    conn, claimed.step_run_id, claimed.attempt, StepStatus.SUCCEEDED, utcnow(), org_id=org.id
                )
            assert late is False  # the silent attempt's result is discarded
            hold = step_rows(job_id)["hold"]
            assert (hold.status, hold.attempt, hold.claimed_by) == ("queued", 1, None)
        finally:
            holder.stop()
            judge.stop()
            claimant.set_current(None)


def test_a_worker_requeues_the_step_of_a_gone_child_only(pg, org, tmp_path: Path):
    """The main process's check of its own children, in this process: a step claimed as one of its
    live children stays running; once that child is gone (killed and reaped) the step is queued again,
    and a claimant pid that is no child of this process counts as gone."""
    holder = Heartbeat(f"hb-parent-{uuid.uuid4().hex[:6]}", 1.0, 10.0)
    child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])  # a live child until killed
    with registry.overridden(dags.SEQUENCES):
        job_id = fire_event(event(org, dags.EVENT_TYPE, {"runs_file": str(tmp_path / "r"), "release_file": "-"})).job_id
        try:
            holder.register()
            step_run_id = step_rows(job_id)["hold"].id
            now = utcnow()
            with transaction() as conn:
                assert store.claim_step(
                    conn,
                    step_run_id,
                    now,
                    now + timedelta(minutes=5),
                    org_id=org.id,
                    claimant=claimant.child_claimant(holder.instance, child.pid),
                )
            assert holder.reclaim_dead_children() == 0  # a live child keeps its step
            assert step_rows(job_id)["hold"].status == "running"

            child.kill()
            child.wait(timeout=10)  # reaped: no /proc entry any more
            assert holder.reclaim_dead_children() == 1
            hold = step_rows(job_id)["hold"]
            assert (hold.status, hold.attempt, hold.claimed_by) == ("queued", 1, None)

            with transaction() as conn:  # pid 1 runs, but is no child of this process
                assert store.claim_step(
                    conn,
                    step_run_id,
                    now,
                    now + timedelta(minutes=5),
                    org_id=org.id,
                    claimant=claimant.child_claimant(holder.instance, 1),
                )
            assert holder.reclaim_dead_children() == 1
            assert step_rows(job_id)["hold"].status == "queued"
        finally:
            child.kill()
            child.wait(timeout=10)
            holder.stop()
            claimant.set_current(None)


# --------------------------------------------------------------------------- a Slack delivery of a killed worker


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A fake Slack Web API for one test."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def slack_env(pg, fake_slack: FakeSlack) -> Iterator[Backend]:
    """The backend with SLACK_BOT_TOKEN / SLACK_API_URL pointing at the fake (this process and its workers)."""
    with backend_with_slack(pg, fake_slack, 0.01) as backend:
        yield backend


def _enqueue_alert(org_id: uuid.UUID, channel: str, *, publish: bool = True) -> uuid.UUID:
    """One committed outbox row to `channel`, its delivery published after the commit (or, with
    `publish=False`, due in a day: never published ahead, the test moves it itself)."""
    now = utcnow()
    with transaction() as conn:
        outbox_id = enqueue_message(
            conn,
            org_id,
            kind="deal_risk_alerts",
            message={"text": "Deal at risk", "blocks": []},
            dedupe_key=f"test:{uuid.uuid4().hex}",
            now=now,
            channel=channel,
            not_before=None if publish else now + timedelta(days=1),
        )
    assert outbox_id is not None
    return outbox_id


def _outbox_row(outbox_id: uuid.UUID) -> Any:
    with transaction() as conn:
        return conn.execute(select(SlackOutbox.__table__).where(SlackOutbox.__table__.c.id == outbox_id)).one()


def _settled(outbox_id: uuid.UUID) -> Any:
    """The row once its delivery ended (sent or failed), else None."""
    row = _outbox_row(outbox_id)
    return row if row.status in ("sent", "failed") else None


def _assert_posted_once(fake: FakeSlack, channel: str, outbox_id: uuid.UUID, row: Any) -> None:
    """The message is in Slack exactly once (posted by the killed delivery, found again by the next
    one in the channel's history), and the row stores that message."""
    assert row.status == "sent", (row.error_code, row.error)
    assert fake.messages_with_metadata("outbox_id", str(outbox_id)) == [(channel, row.ts)]
    assert len(fake.calls("chat.postMessage", channel=channel)) == 1
    assert len(fake.calls("conversations.history", channel=channel)) >= 1  # reconciled, not posted again


def test_a_slack_message_whose_worker_was_killed_mid_post_is_sent_once_within_seconds(slack_env, fake_slack, org):
    """The worker dies after Slack posted the message and before it stored the ts: a live worker
    gives the row's lease back as soon as the dead one's heartbeat is silent (not after the lease and
    a sweep) and its delivery finds the message in the history instead of posting it again."""
    channel = f"C{uuid.uuid4().hex[:10].upper()}"
    tag = uuid.uuid4().hex[:6]
    fake_slack.hold_next("chat.postMessage", channel=channel)
    victim = WorkerProcess(
        {**slack_env.env, **FAST_BEATS}, slack_env.log_dir, f"hb-slack-victim-{slack_env.name}-{tag}"
    ).start()
    survivor: WorkerProcess | None = None
    try:
        outbox_id = _enqueue_alert(org.id, channel)
        assert fake_slack.held.wait(20), "the delivery never reached chat.postMessage"
        survivor = WorkerProcess(
            {**slack_env.env, **FAST_BEATS}, slack_env.log_dir, f"hb-slack-survivor-{slack_env.name}-{tag}"
        ).start()
        victim.kill()  # Slack posted; the worker (main process and children) dies before it learns the ts
        killed = time.monotonic()
        fake_slack.release()
        assert _outbox_row(outbox_id).lease_expires_at is not None  # the dead delivery's lease still runs
        sent = wait_for(lambda: _settled(outbox_id), timeout_s=RERUN_WITHIN_S, what="the row delivered again")
        took = time.monotonic() - killed
    finally:
        fake_slack.release()
        victim.kill()
        if survivor is not None:
            survivor.stop()
    _assert_posted_once(fake_slack, channel, outbox_id, sent)
    assert took < RERUN_WITHIN_S


def test_a_slack_message_whose_pool_child_was_killed_mid_post_is_sent_once_within_seconds(slack_env, fake_slack, org):
    """Only the pool child delivering the message is killed: its worker keeps beating, gives back the
    lease the gone child held at its next beat, and another child reconciles and stores the message."""
    channel = f"C{uuid.uuid4().hex[:10].upper()}"
    fake_slack.hold_next("chat.postMessage", channel=channel)
    worker = WorkerProcess(
        {**slack_env.env, **FAST_BEATS}, slack_env.log_dir, f"hb-slack-child-{slack_env.name}-{uuid.uuid4().hex[:6]}"
    )
    worker.start()
    try:
        outbox_id = _enqueue_alert(org.id, channel)
        assert fake_slack.held.wait(20), "the delivery never reached chat.postMessage"
        claimed_by = _outbox_row(outbox_id).claimed_by
        child_pid = int(claimed_by.rsplit("/", 1)[1])  # `<instance>/<pid>`: a pool child claimed it
        assert child_pid != worker.proc.pid

        os.kill(child_pid, signal.SIGKILL)  # the child alone: its main process lives and beats
        killed = time.monotonic()
        fake_slack.release()
        sent = wait_for(lambda: _settled(outbox_id), timeout_s=RERUN_WITHIN_S, what="the row delivered again")
        took = time.monotonic() - killed
        assert worker.alive
    finally:
        fake_slack.release()
        worker.stop()
    _assert_posted_once(fake_slack, channel, outbox_id, sent)
    assert took < RERUN_WITHIN_S


def test_a_delivery_lease_is_given_back_only_when_its_claimant_is_silent_and_its_row_then_reconciles(slack_env, org):
    """The rule itself, in this process: the leases of a silent claimant (and of its pool children) are
    given back, a row not yet posted is marked as one that may have been (its next delivery looks in
    the history first), an edit keeps its state; a beating claimant's lease, a lease taken outside a
    worker and a lease already given back are left alone."""
    live = Heartbeat(f"hb-outbox-live-{uuid.uuid4().hex[:6]}", 1.0, 10.0)
    silent = f"silent-{uuid.uuid4().hex}"
    now = utcnow()
    lease = now + timedelta(seconds=delivery.LEASE_S)
    held = {  # what each row's delivery holds: (claimed_by, lease, ts)
        "silent": (silent, lease, None),
        "silent child, an edit": (claimant.child_claimant(silent, 123), lease, "1700000000.000100"),
        "live child": (None, lease, None),  # the live heartbeat's child, named once registered
        "outside a worker": (None, lease, None),
        "given back": (silent, None, None),
    }
    try:
        live.register()
        held["live child"] = (claimant.child_claimant(live.instance, 456), lease, None)
        ids = {what: _enqueue_alert(org.id, f"C{uuid.uuid4().hex[:10].upper()}", publish=False) for what in held}
        with transaction() as conn:
            for what, (claimed_by, until, ts) in held.items():
                conn.execute(
                    update(SlackOutbox.__table__)
                    .where(SlackOutbox.__table__.c.id == ids[what])
                    .values(claimed_by=claimed_by, lease_expires_at=until, ts=ts, not_before=None)
                )
            assert delivery.child_claimants(conn, live.instance) == [held["live child"][0]]
            released = delivery.release_orphaned(conn, utcnow(), utcnow() - timedelta(seconds=10))
        assert sorted(released) == sorted([ids["silent"], ids["silent child, an edit"]])
        rows = {what: _outbox_row(ids[what]) for what in held}
        for what in ("silent", "silent child, an edit"):
            assert (rows[what].lease_expires_at, rows[what].claimed_by, rows[what].status) == (None, None, "pending")
        assert rows["silent"].error_code == delivery.INTERRUPTED and delivery.may_have_posted(rows["silent"])
        assert rows["silent child, an edit"].error_code is None  # edited in place: nothing to reconcile
        for what in ("live child", "outside a worker"):
            assert (rows[what].lease_expires_at, rows[what].claimed_by) == (lease, held[what][0])
        assert rows["given back"].lease_expires_at is None and rows["given back"].error_code is None
        with transaction() as conn:  # given as known dead: the live heartbeat's child goes too
            assert delivery.release_orphaned(conn, utcnow(), None, claimants=[held["live child"][0]]) == [
                ids["live child"]
            ]
    finally:
        live.stop()
        claimant.set_current(None)


def test_a_worker_restarted_under_the_same_name_gives_back_its_previous_runs_outbox_lease(slack_env, org):
    """In this process (one pid, so the earlier instance counts as gone): the registration of the new
    instance gives back the lease its previous run held and counts the delivery it published again."""
    name = f"hb-outbox-restarted-{uuid.uuid4().hex[:6]}"
    before, again = Heartbeat(name, 1.0, 10.0), Heartbeat(name, 1.0, 10.0)
    # due in a day: the delivery published again finds it early and leaves it (no worker posts it)
    outbox_id = _enqueue_alert(org.id, f"C{uuid.uuid4().hex[:10].upper()}", publish=False)
    try:
        before.register()
        with transaction() as conn:
            conn.execute(
                update(SlackOutbox.__table__)
                .where(SlackOutbox.__table__.c.id == outbox_id)
                .values(claimed_by=before.instance, lease_expires_at=utcnow() + timedelta(seconds=delivery.LEASE_S))
            )
        assert again.register() == 1
        row = _outbox_row(outbox_id)
        assert (row.lease_expires_at, row.claimed_by, row.error_code) == (None, None, delivery.INTERRUPTED)
    finally:
        again.stop()
        before.stop()
        claimant.set_current(None)
