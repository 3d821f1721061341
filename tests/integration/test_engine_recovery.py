"""Behaviour across processes on PostgreSQL with Redis and with RabbitMQ: worker restarts, kill -9,
racing decisions, lost publishes, retries, failures, cancellation and follow-ups, with real
`celery worker`s."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from sqlalchemy import select, update

from tests.support.engine import (
    all_step_rows,
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
from tests.support.workers import WorkerProcess
from worker import logs
from worker.db import transaction
from worker.engine.approvals import decide
from worker.engine.events import fire_event
from worker.engine.executor import request_cancel
from worker.engine.sweeper import sweep
from worker.errors import AlreadyDecided
from worker.models import ScheduledEvent, jobs, steps, utcnow
from worker.worktime import working_hours_after, zone

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("test_sequences"),
    pytest.mark.parametrize("pg", ["postgres", "rabbitmq"], indirect=True, scope="module"),
]


def unreachable(broker_url: str) -> str:
    """The same kind of broker URL on a port nothing listens on (a broker that is down)."""
    parts = urlsplit(broker_url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}127.0.0.1:1"))


def done(job_id: uuid.UUID) -> str | None:
    return reached(job_id, "completed", "failed", "cancelled", "expired", "timeout")


def test_paused_job_survives_a_worker_restart(workers, org):
    first = workers()
    result = fire_event(event(org, "calendar_find_times"))
    assert wait_for(lambda: settled(result.job_id)) == "awaiting_approval"
    first.stop()  # nothing holds the job while it waits

    approval = pending_approval(result.job_id)
    decide(approval.id, "approve", user_id=org.rep, data={"note": "go"})
    assert job_status(result.job_id) == "awaiting_approval"  # no worker: the resume waits in the broker

    workers()
    assert wait_for(lambda: done(result.job_id), what="job resumed by the new worker") == "completed"
    act = step_rows(result.job_id)["act"]
    assert act.output["saw_decision"] == "approve" and act.output["saw_data"] == {"note": "go"}
    assert executions(result.job_id, "act") == 1


def steps_queue_length(broker_url: str) -> int:
    """Messages waiting on the `steps` queue (not those a worker fetched and holds): the lists of
    kombu's Redis queue (one per priority), or RabbitMQ's count of ready messages."""
    if broker_url.startswith("redis://"):
        client = redis.Redis.from_url(broker_url)
        return sum(client.llen(k) for k in client.scan_iter(match="steps*") if client.type(k) == b"list")
    from worker.celery_app import celery_app

    with celery_app.connection_for_read() as conn:
        return conn.default_channel.queue_declare("steps", passive=True).message_count


def test_a_step_message_held_by_a_stopped_worker_goes_back_to_its_queue(pg, org):
    """A retry's countdown message waits in the worker that fetched it. A warm shutdown puts it back
    on its queue (on Redis with ack emulation off too, the default: kombu's in-memory QoS restores
    what was not acked), and the next worker runs the step when it is due, with no sweeper."""
    name, broker = f"held-{uuid.uuid4().hex[:6]}", pg.env["BROKER_URL"]
    first = WorkerProcess({**pg.env, "PROACTIVE_RETRY_BASE_S": "6"}, pg.log_dir, name, start_recovery=False).start()
    try:
        result = fire_event(event(org, "coaching_weekly", {"fail_times": 1}))

        def held() -> bool:  # the retry's message received (Celery logs each) and not on the queue
            received = first.log().count("] received") >= 2
            flaky = step_rows(result.job_id).get("flaky")
            waiting = flaky is not None and flaky.status == "queued" and flaky.attempt == 1
            return received and waiting and steps_queue_length(broker) == 0

        wait_for(held, what="the retry's message fetched and held by the worker")
    finally:
        first.stop()
    assert steps_queue_length(broker) == 1  # put back by the warm shutdown
    second = WorkerProcess(pg.env, pg.log_dir, f"{name}-next", start_recovery=False).start()
    try:
        assert wait_for(lambda: done(result.job_id), what="step run by the next worker") == "completed"
    finally:
        second.stop()
    assert executions(result.job_id, "flaky") == 2


def test_twenty_concurrent_decisions_resume_the_job_once(workers, org):
    workers()
    result = fire_event(event(org, "calendar_find_times"))
    assert wait_for(lambda: settled(result.job_id)) == "awaiting_approval"
    approval = pending_approval(result.job_id)
    deciders = [org.rep, org.admin] * 10

    def click(user: uuid.UUID) -> str:
        try:
            decide(approval.id, "approve", user_id=user)
            return "won"
        except AlreadyDecided as err:
            return f"lost: {err}"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(click, deciders))
    assert outcomes.count("won") == 1
    assert all(o.startswith("lost: already approved by") for o in outcomes if o != "won")
    assert wait_for(lambda: done(result.job_id)) == "completed"
    assert executions(result.job_id, "act") == 1
    assert approvals_of(result.job_id)[0].resumed_at is not None


def test_reject_cancels_the_job_and_skips_the_rest(workers, org):
    workers()
    result = fire_event(event(org, "calendar_find_times"))
    assert wait_for(lambda: settled(result.job_id)) == "awaiting_approval"
    decide(pending_approval(result.job_id).id, "reject", user_id=org.rep)
    assert wait_for(lambda: done(result.job_id)) == "cancelled"
    rows = step_rows(result.job_id)
    assert rows["review"].status == "cancelled"
    assert rows["act"].status == "skipped" and rows["act"].reason == "job_cancelled"
    assert executions(result.job_id, "act") == 0
    assert "rep chose Reject" in job_row(result.job_id).reason


def test_kill_9_mid_step_reruns_it_once_and_the_effect_happens_once(workers, org, tmp_path: Path):
    effect_file, block_file, release_file = tmp_path / "effects.txt", tmp_path / "inside", tmp_path / "release"
    victim = workers()
    result = fire_event(
        event(
            org,
            "pre_meeting_90min",
            {
                "effect_file": str(effect_file),
                "block_file": str(block_file),
                "release_file": str(release_file),
            },
        )
    )
    wait_for(block_file.exists, what="step inside its side effect window")
    victim.kill()  # SIGKILL the main process and its pool children: no ack, no cleanup
    assert step_rows(result.job_id)["send"].status == "running"

    workers()
    # The lease (timeout + grace) expires; the sweeper re-publishes the step and a new claim takes it.
    assert (
        wait_for(
            lambda: sweep().reclaimed >= 0 and done(result.job_id),
            timeout_s=60,
            what="step re-claimed after lease expiry",
        )
        == "completed"
    )
    send = step_rows(result.job_id)["send"]
    assert send.status == "succeeded" and send.attempt == 2
    assert send.output["effect"] == {"sent_by_attempt": 1}  # the stored result, not a second send
    assert effect_file.read_text().splitlines() == ["sent by attempt 1"]
    assert executions(result.job_id, "send") == 2 and executions(result.job_id, "after") == 1


def test_lost_publish_is_repaired_by_the_sweeper(workers, org, monkeypatch):
    from tests.conftest import apply_env
    from worker.config import get_settings

    good = get_settings().broker_url
    apply_env(monkeypatch, {"BROKER_URL": unreachable(good)})
    result = fire_event(event(org, "proposal_generation"))  # committed; its publish fails
    assert job_status(result.job_id) == "queued"
    apply_env(monkeypatch, {"BROKER_URL": good})
    workers(start_recovery=False)
    assert job_status(result.job_id) == "queued"  # the running worker never heard of it
    report = sweep(requeue_after_s=0)
    assert report.republished >= 1
    assert wait_for(lambda: done(result.job_id)) == "completed"
    assert all(executions(result.job_id, s) == 1 for s in ("start", "left", "right", "join", "finish"))


def test_decision_recorded_while_the_broker_is_down_is_resumed_by_the_sweeper(workers, org, monkeypatch):
    from tests.conftest import apply_env
    from worker.config import get_settings

    workers()
    result = fire_event(event(org, "calendar_find_times"))
    assert wait_for(lambda: settled(result.job_id)) == "awaiting_approval"
    good = get_settings().broker_url
    apply_env(monkeypatch, {"BROKER_URL": unreachable(good)})
    decide(pending_approval(result.job_id).id, "approve", user_id=org.rep)  # recorded, resume not published
    apply_env(monkeypatch, {"BROKER_URL": good})
    assert job_status(result.job_id) == "awaiting_approval"
    assert sweep(now=utcnow() + timedelta(minutes=1)).resumed == 1
    assert wait_for(lambda: done(result.job_id)) == "completed"


def test_transient_failures_are_retried_with_backoff(workers, org):
    workers()
    result = fire_event(event(org, "coaching_weekly", {"fail_times": 2}))
    assert wait_for(lambda: done(result.job_id)) == "completed"
    flaky = step_rows(result.job_id)["flaky"]
    assert flaky.attempt == 3 and flaky.status == "succeeded"
    assert executions(result.job_id, "flaky") == 3
    gave_up = fire_event(event(org, "coaching_weekly", {"fail_times": 5}))
    assert wait_for(lambda: done(gave_up.job_id)) == "failed"
    row = job_row(gave_up.job_id)
    assert row.error_step == "flaky" and "simulated outage on attempt 3" in row.error
    assert step_rows(gave_up.job_id)["after"].status == "skipped"


def test_best_effort_failure_continues_critical_failure_fails_the_job(workers, org):
    workers()
    soft = fire_event(event(org, "meeting_ended", {"fail_steps": ["optional"]}))
    hard = fire_event(event(org, "meeting_ended", {"fail_steps": ["optional", "vital"]}))
    assert wait_for(lambda: done(soft.job_id)) == "completed"
    assert wait_for(lambda: done(hard.job_id)) == "failed"
    soft_rows = step_rows(soft.job_id)
    assert soft_rows["optional"].status == "failed" and soft_rows["optional"].error_class == "permanent"
    assert soft_rows["optional"].attempt == 1  # permanent: no retry
    assert soft_rows["needs-optional"].status == "succeeded" and soft_rows["never"].status == "succeeded"
    hard_row = job_row(hard.job_id)
    assert hard_row.error_step == "vital" and "vital refuses bad data" in hard_row.error
    assert step_rows(hard.job_id)["never"].status == "skipped"
    assert executions(hard.job_id, "never") == 0


def test_poison_step_fails_after_max_attempts(pg, org):
    """A step whose worker died on every attempt is given up when claimed past max_attempts."""
    from worker.engine.driver import execute

    result = fire_event(event(org, "coaching_weekly"))  # no worker: runs in this process below
    sid = step_rows(result.job_id)["flaky"].id
    with transaction() as conn:
        conn.execute(
            update(steps)
            .where(steps.c.id == sid)
            .values(status="running", attempt=3, lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    execute(sid)
    row = step_rows(result.job_id)["flaky"]
    assert (row.status, row.error_class, row.attempt) == ("failed", "poison", 4)
    assert job_status(result.job_id) == "failed"
    assert executions(result.job_id, "flaky") == 0


def test_cancel_is_honoured_at_the_next_step_boundary(workers, org, tmp_path: Path):
    workers()
    started, release = tmp_path / "started", tmp_path / "release"
    result = fire_event(
        event(org, "campaign_daily_check", {"started_file": str(started), "release_file": str(release)}, user_id=None)
    )
    wait_for(started.exists, what="s3 running")
    cancelled = request_cancel(result.job_id, reason="smoke")
    assert not cancelled.immediate and cancelled.status == "running"
    release.touch()
    assert wait_for(lambda: done(result.job_id)) == "cancelled"
    assert job_row(result.job_id).reason == "smoke"  # the reason given with the request, at the boundary
    rows = step_rows(result.job_id)
    assert rows["s3"].status == "succeeded"  # the running step finished
    assert rows["s4"].status == "skipped" and rows["s5"].status == "skipped"
    assert executions(result.job_id, "s4") == 0


def test_cancel_of_a_paused_job_is_immediate(workers, org):
    workers()
    result = fire_event(event(org, "calendar_find_times"))
    assert wait_for(lambda: settled(result.job_id)) == "awaiting_approval"
    assert request_cancel(result.job_id).immediate
    assert job_status(result.job_id) == "cancelled"
    assert approvals_of(result.job_id)[0].status == "cancelled"
    with pytest.raises(AlreadyDecided):
        decide(approvals_of(result.job_id)[0].id, "approve", user_id=org.rep)


def test_more_options_supersedes_and_reruns(workers, org):
    workers()
    result = fire_event(event(org, "calendar_find_times"))
    assert wait_for(lambda: settled(result.job_id)) == "awaiting_approval"
    first = pending_approval(result.job_id)
    decide(first.id, "more", user_id=org.rep)
    second = wait_for(lambda: pending_approval(result.job_id), what="a new approval")
    assert second.id != first.id
    assert approvals_of(result.job_id)[0].status == "superseded"
    decide(second.id, "send_times", user_id=org.rep)
    assert wait_for(lambda: done(result.job_id)) == "completed"
    runs = [(r.step, r.iteration, r.superseded) for r in all_step_rows(result.job_id)]
    assert ("prepare", 0, True) in runs and ("prepare", 1, False) in runs
    assert step_rows(result.job_id)["review"].output["preview"]["round"] == 1
    assert step_rows(result.job_id)["act"].output["saw_decision"] == "send_times"


def test_expiry_best_effort_continues_critical_expires(pg, org):
    from worker.engine.approvals import expire_due

    optional = fire_event(event(org, "stale_deal_revival"))
    critical = fire_event(event(org, "calendar_find_times"))
    from worker.engine.driver import execute

    for job_id in (optional.job_id, critical.job_id):  # run the steps before the approval in-process
        while queued := [r for r in step_rows(job_id).values() if r.status == "queued"]:
            for r in queued:
                execute(r.id)
    later = utcnow() + timedelta(days=10)
    assert expire_due(later) >= 2  # (other tests' pending approvals in this database expire too)
    assert job_status(critical.job_id) == "expired"
    rows = step_rows(optional.job_id)
    assert rows["review"].status == "skipped" and rows["review"].reason == "approval_expired"
    assert rows["send"].status == "skipped"
    assert job_status(optional.job_id) == "completed"


def test_follow_ups_fire_as_chained_jobs_now_or_later(workers, org):
    workers()
    now_trace, later_trace = logs.new_trace_id(), logs.new_trace_id()
    now_parent = fire_event(
        event(org, "proposal_generation", {"follow_up": {"type": "campaign_daily_check"}}), trace_id=now_trace
    )
    assert wait_for(lambda: done(now_parent.job_id)) == "completed"
    with transaction() as conn:
        child = conn.execute(select(jobs).where(jobs.c.parent_job_id == now_parent.job_id)).one()
    assert (child.source, child.depth, child.event_type) == ("chain", 1, "campaign_daily_check")
    assert child.idempotency_key == f"campaign_daily_check:{now_parent.job_id}:0"
    assert child.trace_id == now_trace  # a follow-up is part of its parent's story
    assert wait_for(lambda: done(child.id)) == "completed"

    later_parent = fire_event(
        event(org, "proposal_generation", {"follow_up": {"type": "campaign_daily_check", "delay_minutes": 30}}),
        trace_id=later_trace,
    )
    assert wait_for(lambda: done(later_parent.job_id)) == "completed"
    with transaction() as conn:
        scheduled = conn.execute(
            select(ScheduledEvent.__table__).where(ScheduledEvent.parent_job_id == later_parent.job_id)
        ).one()
    assert scheduled.fired_at is None
    assert sweep().followups_fired == 0  # not due yet
    logs.start_trace()  # the sweep runs under a trace of its own
    assert sweep(now=utcnow() + timedelta(minutes=31)).followups_fired == 1
    with transaction() as conn:
        fired = conn.execute(select(jobs).where(jobs.c.parent_job_id == later_parent.job_id)).one()
    assert fired.trace_id == later_trace
    assert wait_for(lambda: done(fired.id)) == "completed"


def test_job_past_its_deadline_times_out(workers, org, tmp_path: Path):
    workers()
    started, release = tmp_path / "started", tmp_path / "release"
    result = fire_event(
        event(org, "campaign_daily_check", {"started_file": str(started), "release_file": str(release)}, user_id=None)
    )
    wait_for(started.exists, what="s3 running")
    assert sweep().timed_out == 0  # within its deadline
    deadline = job_row(result.job_id).deadline_at
    assert sweep(now=deadline + timedelta(seconds=1)).timed_out == 1
    assert job_status(result.job_id) == "timeout"
    release.touch()
    wait_for(lambda: step_rows(result.job_id)["s3"].status == "succeeded", what="running step finished")
    rows = step_rows(result.job_id)
    assert job_status(result.job_id) == "timeout"  # a late result does not revive the job
    assert rows["s4"].status == "skipped" and rows["s4"].reason == "job_timeout"
    assert executions(result.job_id, "s4") == 0


def test_approvers_are_reminded_once(workers, org):
    from worker.models import SlackOutbox

    workers()
    result = fire_event(event(org, "calendar_find_times"))
    assert wait_for(lambda: settled(result.job_id)) == "awaiting_approval"
    approval = pending_approval(result.job_id)
    later = working_hours_after(approval.created_at, zone("UTC"), 5)  # the rep's zone; weekends do not count
    sweep(now=approval.created_at + timedelta(hours=1))
    assert approvals_of(result.job_id)[0].nudged_at is None  # too early
    sweep(now=later)
    first = approvals_of(result.job_id)[0].nudged_at
    assert first == later
    sweep(now=later + timedelta(minutes=5))
    assert approvals_of(result.job_id)[0].nudged_at == first  # reminded once
    with transaction() as conn:
        kinds = [r.kind for r in conn.execute(select(SlackOutbox.__table__).where(SlackOutbox.job_id == result.job_id))]
    assert sorted(kinds) == ["approval", "approval_reminder"]


def test_revoked_google_credentials_park_the_job_until_the_user_reconnects(workers, org):
    from worker.db import session_factory
    from worker.engine.executor import REVOKED_RETRY_S, WAITING_FOR_RECONNECT, wake_parked
    from worker.models import Integration, SlackOutbox

    integration_id = uuid.uuid4()
    with session_factory().begin() as s:
        s.add(Integration(id=integration_id, org_id=org.id, user_id=org.rep, provider="google", status="active"))
    workers()
    payload = {"revoke_steps": ["vital"], "integration_id": str(integration_id), "revoke_until_reconnect": True}
    first = fire_event(event(org, "meeting_ended", payload))
    second = fire_event(event(org, "meeting_ended", payload))

    def parked(job_id):
        vital = step_rows(job_id).get("vital")
        row = job_row(job_id)
        return vital if vital is not None and vital.error_class == "auth_revoked" and row.reason else None

    for job_id in (first.job_id, second.job_id):
        vital = wait_for(lambda job_id=job_id: parked(job_id), what="the step parked")
        assert vital.status == "queued" and vital.attempt == 0  # waiting does not use up attempts
        assert vital.not_before >= utcnow() + timedelta(seconds=REVOKED_RETRY_S - 60)
        row = job_row(job_id)
        assert row.status == "running" and row.reason == WAITING_FOR_RECONNECT
    with transaction() as conn:
        status = conn.execute(select(Integration.status).where(Integration.id == integration_id)).scalar_one()
        dms = list(
            conn.execute(
                select(SlackOutbox.__table__).where(SlackOutbox.kind == "reconnect", SlackOutbox.org_id == org.id)
            )
        )
    assert status == "revoked"
    assert len(dms) == 1 and dms[0].user_id == org.rep and "/oauth/google/start" in dms[0].text  # one DM

    # The user reconnects (what worker.google.oauth.complete stores), the parked steps are due at once.
    with transaction() as conn:
        conn.execute(
            update(Integration.__table__)
            .where(Integration.id == integration_id)
            .values(status="active", credentials=b"reconnected")
        )
        assert wake_parked(conn, org.id, org.rep, utcnow()) == 2
    with transaction() as conn:  # the sweeper publishes due steps older than its requeue age
        conn.execute(
            update(steps)
            .where(steps.c.job_id.in_([first.job_id, second.job_id]), steps.c.step == "vital")
            .values(queued_at=utcnow() - timedelta(minutes=5))
        )
    sweep()
    assert wait_for(lambda: done(first.job_id)) == "completed"
    assert wait_for(lambda: done(second.job_id)) == "completed"
    assert job_row(first.job_id).reason is None


def test_undo_inside_the_window_cancels_the_delayed_send(workers, org):
    from worker.engine.approvals import undo
    from worker.errors import TooLate

    workers()
    held = fire_event(event(org, "stale_deal_revival", {"undo_s": 30}))
    assert wait_for(lambda: settled(held.job_id)) == "awaiting_approval"
    decide(pending_approval(held.job_id).id, "send_now", user_id=org.rep)
    send = wait_for(lambda: step_rows(held.job_id).get("send"), what="send step queued")
    assert send.status == "queued" and send.not_before is not None
    assert undo(approvals_of(held.job_id)[0].id, user_id=org.rep) == "rep"
    assert job_status(held.job_id) == "cancelled" and "undone by rep" in job_row(held.job_id).reason
    assert step_rows(held.job_id)["send"].status == "skipped"
    assert executions(held.job_id, "send") == 0

    quick = fire_event(event(org, "stale_deal_revival", {"undo_s": 1}))
    assert wait_for(lambda: settled(quick.job_id)) == "awaiting_approval"
    decide(pending_approval(quick.job_id).id, "send_now", user_id=org.rep)
    assert wait_for(lambda: done(quick.job_id)) == "completed"
    send = step_rows(quick.job_id)["send"]
    assert send.started_at >= approvals_of(quick.job_id)[0].decided_at + timedelta(seconds=1)  # waited
    with pytest.raises(TooLate, match="too late to undo: send already ran"):
        undo(approvals_of(quick.job_id)[0].id, user_id=org.rep)
