"""Slack delivery end to end on PostgreSQL + Redis: outbox rows delivered by real `celery worker`
processes (`proactive.deliver`, queue edge) to the fake Slack Web API, through the real slack_sdk.

Covers: DM opened with conversations.open then one post; 429 -> again after Retry-After; Slack
refusals -> failed with Slack's code; 5xx -> backoff then sent or failed; the shared 1 msg/s
channel budget across two worker processes; quiet hours; the hourly budget; chat.update of a
replaced approval message; deliver_due repairing a lost publish; console mode without a token.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import Backend, apply_env, backend_with_slack
from tests.fakes.slack import FakeSlack
from tests.support.engine import TestOrg, make_org
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from worker import logs, migrate
from worker.celery_app import reconfigure_broker
from worker.config import reset_settings
from worker.db import make_engine, reset_engine, session_factory, transaction
from worker.engine.events import fire_event
from worker.models import SlackOutbox, User, utcnow
from worker.ratelimit import reserve
from worker.slack.delivery import (
    SLACK_METADATA_EVENT,
    deliver,
    deliver_due,
    enqueue_message,
    publish_delivery,
    replace_message,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

outbox = SlackOutbox.__table__
# Slack's pace per channel in these tests (seconds) and how early a post may land (scheduling
# jitter of two busy worker processes; the mean gap must still be the full interval).
INTERVAL_S = 1.0
GAP_TOLERANCE_S = 0.15


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeSlack]:
    """The fake Slack Web API for this module."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def slack_pg(pg: Backend, fake_slack: FakeSlack) -> Iterator[Backend]:
    """PostgreSQL + Redis with SLACK_BOT_TOKEN / SLACK_API_URL pointing at the fake (this process too)."""
    with backend_with_slack(pg, fake_slack, INTERVAL_S) as backend:
        yield backend


@pytest.fixture(scope="module")
def edge_workers(slack_pg: Backend) -> Iterator[list[WorkerProcess]]:
    """Two `celery worker` processes (2 pool processes each) consuming the edge queue."""
    started: list[WorkerProcess] = []
    try:
        for i in range(2):
            w = WorkerProcess(
                slack_pg.env, slack_pg.log_dir, f"delivery-edge-{uuid.uuid4().hex[:6]}-{i}", queues="edge"
            )
            started.append(w.start())
        yield started
    finally:
        for w in started:
            w.stop()


@pytest.fixture
def org(slack_pg: Backend) -> TestOrg:
    """A fresh org on the Slack-enabled backend."""
    return make_org()


# --------------------------------------------------------------------------- helpers


def add_user(org: TestOrg, **fields: Any) -> tuple[uuid.UUID, str | None]:
    """A rep in `org` with a unique Slack user id (unless given); returns (user id, Slack id)."""
    uid = uuid.uuid4()
    values: dict[str, Any] = {
        "slack_user_id": f"U{uid.hex[:10].upper()}",
        "timezone": "UTC",
        "max_notifications_per_hour": 10,
        **fields,
    }
    with session_factory().begin() as s:
        s.add(
            User(
                id=uid,
                org_id=org.id,
                email=f"u-{uid.hex[:8]}@example.com",
                name="rep",
                opted_out_sequences=[],
                **values,
            )
        )
    return uid, values["slack_user_id"]


def enqueue(
    org: TestOrg,
    *,
    text: str = "hello",
    kind: str = "deal_risk_alerts",
    publish: bool = True,
    **kwargs: Any,
) -> uuid.UUID:
    """One outbox row, committed; its delivery is published after the commit, or lost on purpose
    (`publish=False`: the broker is unreachable at that moment, as in an outage)."""
    with contextlib.nullcontext() if publish else broker_unreachable(), transaction() as conn:
        outbox_id = enqueue_message(
            conn,
            org.id,
            kind=kind,
            message={"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]},
            dedupe_key=f"test:{uuid.uuid4().hex}",
            now=utcnow(),
            **kwargs,
        )
    assert outbox_id is not None
    return outbox_id


@contextlib.contextmanager
def broker_unreachable() -> Iterator[None]:
    """Point this process's Celery app at a port nothing listens on, then back."""
    from worker.celery_app import reconfigure_broker
    from worker.config import reset_settings

    good = os.environ["BROKER_URL"]
    os.environ["BROKER_URL"] = "redis://127.0.0.1:1/0"
    reset_settings()
    reconfigure_broker()
    try:
        yield
    finally:
        os.environ["BROKER_URL"] = good
        reset_settings()
        reconfigure_broker()


def row(outbox_id: uuid.UUID) -> Any:
    with transaction() as conn:
        return conn.execute(select(outbox).where(outbox.c.id == outbox_id)).one()


def status_is(outbox_id: uuid.UUID, *statuses: str) -> Any:
    """The row when its status is one of `statuses` (for wait_for)."""
    r = row(outbox_id)
    return r if r.status in statuses else None


def new_channel() -> str:
    return f"C{uuid.uuid4().hex[:10].upper()}"


# --------------------------------------------------------------------------- delivery


def test_a_message_to_a_user_is_posted_once_to_the_dm_opened_for_them(edge_workers, fake_slack, org):
    user_id, slack_id = add_user(org)
    outbox_id = enqueue(org, text="Deal risk report", user_id=user_id)

    sent = wait_for(lambda: status_is(outbox_id, "sent", "failed"), what="message sent")
    assert sent.status == "sent", (sent.error_code, sent.error)
    dm = fake_slack.dm_channel(slack_id)
    opens = fake_slack.calls("conversations.open", users=slack_id)
    posts = fake_slack.calls("chat.postMessage", channel=dm)
    assert len(opens) == 1 and len(posts) == 1 and posts[0].ok
    assert posts[0].params["text"] == "Deal risk report"
    assert posts[0].params["blocks"][0]["text"]["text"] == "Deal risk report"
    assert posts[0].headers["authorization"] == f"Bearer {fake_slack.token}"
    assert (sent.channel, sent.ts) == (dm, posts[0].response["ts"])
    assert sent.sent_at is not None and sent.error_code is None and sent.attempts == 1


def test_a_429_is_retried_after_retry_after_and_posts_exactly_once(edge_workers, fake_slack, org):
    channel = new_channel()
    fake_slack.ratelimit_next("chat.postMessage", retry_after_s=1, channel=channel)
    outbox_id = enqueue(org, channel=channel)

    sent = wait_for(lambda: status_is(outbox_id, "sent", "failed"), what="message sent")
    assert sent.status == "sent", (sent.error_code, sent.error)
    calls = fake_slack.calls("chat.postMessage", channel=channel)
    assert [c.status for c in calls] == [429, 200]
    assert calls[0].response == {"ok": False, "error": "ratelimited"}
    assert calls[1].monotonic - calls[0].monotonic >= 1.0
    assert sum(c.ok for c in calls) == 1
    assert sent.ts == calls[1].response["ts"] and sent.attempts == 2


@pytest.mark.parametrize("code", ["channel_not_found", "not_in_channel", "token_revoked"])
def test_a_slack_refusal_fails_the_row_with_slacks_error_code(edge_workers, fake_slack, org, code):
    channel = new_channel()
    fake_slack.fail_next("chat.postMessage", code, channel=channel)
    outbox_id = enqueue(org, channel=channel)

    failed = wait_for(lambda: status_is(outbox_id, "sent", "failed"), what="message settled")
    assert failed.status == "failed"
    assert failed.error_code == code
    assert code in failed.error
    assert len(fake_slack.calls("chat.postMessage", channel=channel)) == 1  # never retried
    assert failed.ts is None and failed.sent_at is None


def test_server_errors_are_retried_with_backoff_then_sent(edge_workers, fake_slack, org):
    channel = new_channel()
    fake_slack.server_error_next("chat.postMessage", 500, channel=channel)
    fake_slack.server_error_next("chat.postMessage", 503, channel=channel)
    outbox_id = enqueue(org, channel=channel)

    sent = wait_for(lambda: status_is(outbox_id, "sent", "failed"), what="message sent")
    assert sent.status == "sent", (sent.error_code, sent.error)
    assert [c.status for c in fake_slack.calls("chat.postMessage", channel=channel)] == [500, 503, 200]
    assert sent.attempts == 3 and sent.error_code is None


def test_server_errors_past_the_attempt_limit_fail_the_row(edge_workers, fake_slack, org):
    channel = new_channel()
    for _ in range(3):  # PROACTIVE_DELIVERY_MAX_ATTEMPTS=3 in this module
        fake_slack.server_error_next("chat.postMessage", 502, channel=channel)
    outbox_id = enqueue(org, channel=channel)

    failed = wait_for(lambda: status_is(outbox_id, "sent", "failed"), what="message settled")
    assert failed.status == "failed" and failed.error_code == "http_502"
    assert len(fake_slack.calls("chat.postMessage", channel=channel)) == 3


def test_a_user_without_a_slack_id_fails_with_a_clear_error(edge_workers, fake_slack, org):
    user_id, _ = add_user(org, slack_user_id=None)
    outbox_id = enqueue(org, user_id=user_id)

    failed = wait_for(lambda: status_is(outbox_id, "sent", "failed"), what="message settled")
    assert failed.status == "failed" and failed.error_code == "no_slack_user"
    assert "no Slack user id" in failed.error


def test_twenty_messages_to_one_channel_from_two_workers_are_spaced_by_the_shared_budget(edge_workers, fake_slack, org):
    channel = new_channel()
    ids = [enqueue(org, channel=channel, text=f"message {i}", publish=False) for i in range(20)]
    assert publish_delivery(ids) == 20

    wait_for(lambda: all(row(i).status == "sent" for i in ids), timeout_s=60, what="20 messages sent")
    posts = sorted(c.monotonic for c in fake_slack.calls("chat.postMessage", channel=channel) if c.ok)
    assert len(posts) == 20
    gaps = [b - a for a, b in itertools.pairwise(posts)]
    assert min(gaps) >= INTERVAL_S - GAP_TOLERANCE_S, gaps
    assert posts[-1] - posts[0] >= 19 * INTERVAL_S - GAP_TOLERANCE_S, gaps
    assert all("proactive.deliver" in w.log() for w in edge_workers)  # both processes took part


def test_quiet_hours_hold_a_non_urgent_message_while_an_urgent_one_goes_now(edge_workers, fake_slack, org):
    now = utcnow()
    window = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=2)).strftime("%H:%M"),
    }
    user_id, slack_id = add_user(org, quiet_hours=window)
    later = enqueue(org, user_id=user_id, text="weekly digest", kind="coaching_digest")
    brief = enqueue(org, user_id=user_id, text="meeting in 45 min", kind="pre_meeting_briefing", urgent=True)

    sent = wait_for(lambda: status_is(brief, "sent", "failed"), what="urgent brief sent")
    assert sent.status == "sent"
    held = wait_for(lambda: (r := row(later)).not_before is not None and r, what="digest held")
    assert held.status == "pending" and held.error == "held: quiet_hours"
    end = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    assert held.not_before == end
    posts = fake_slack.calls("chat.postMessage", channel=fake_slack.dm_channel(slack_id))
    assert [p.params["text"] for p in posts] == ["meeting in 45 min"]


def test_the_hourly_budget_holds_messages_beyond_it_but_not_urgent_ones(edge_workers, fake_slack, org):
    user_id, slack_id = add_user(org, max_notifications_per_hour=2)
    ids = [enqueue(org, user_id=user_id, text=f"alert {i}") for i in range(4)]

    def settled() -> list[Any] | None:
        rows = [row(i) for i in ids]
        done = [r for r in rows if r.status == "sent" or r.error == "held: hourly_budget"]
        return rows if len(done) == 4 else None

    rows = wait_for(settled, what="2 sent, 2 held")
    sent = [r for r in rows if r.status == "sent"]
    held = [r for r in rows if r.status == "pending"]
    assert len(sent) == 2 and len(held) == 2
    first = min(r.admitted_at for r in sent)
    for r in held:
        assert r.error == "held: hourly_budget"
        assert first + timedelta(hours=1) <= r.not_before <= first + timedelta(hours=1, seconds=1)

    approval = enqueue(org, user_id=user_id, text="approve this", kind="approval", approval_id=uuid.uuid4())
    assert wait_for(lambda: status_is(approval, "sent", "failed"), what="approval sent").status == "sent"
    posts = fake_slack.calls("chat.postMessage", channel=fake_slack.dm_channel(slack_id))
    assert len(posts) == 3


def test_a_replaced_approval_message_is_edited_in_place_with_chat_update(edge_workers, fake_slack, org):
    user_id, slack_id = add_user(org)
    approval_id = uuid.uuid4()
    outbox_id = enqueue(org, user_id=user_id, kind="approval", approval_id=approval_id, text="Approve?")
    posted = wait_for(lambda: status_is(outbox_id, "sent", "failed"), what="approval posted")
    assert posted.status == "sent"

    with transaction() as conn:
        ids = replace_message(conn, org.id, approval_id, {"text": "Approved by rep", "blocks": []})
    assert ids == [outbox_id]
    publish_delivery(ids)

    def edited() -> Any:
        msg = fake_slack.messages.get((posted.channel, posted.ts))
        return msg if msg and msg["edits"] == 1 and row(outbox_id).status == "sent" else None

    msg = wait_for(edited, what="message edited")
    assert msg["text"] == "Approved by rep" and msg["blocks"] == []
    updates = fake_slack.calls("chat.update", channel=posted.channel)
    assert len(updates) == 1 and updates[0].params["ts"] == posted.ts
    assert len(fake_slack.calls("chat.postMessage", channel=fake_slack.dm_channel(slack_id))) == 1
    assert row(outbox_id).ts == posted.ts


def test_deliver_due_publishes_a_row_whose_publish_was_lost(edge_workers, fake_slack, org):
    channel = new_channel()
    outbox_id = enqueue(org, channel=channel, publish=False)
    before = row(outbox_id)
    deliver_due(utcnow())  # too young to be a lost publish: left alone (not stamped, not published)
    assert row(outbox_id).updated_at == before.updated_at and row(outbox_id).status == "pending"

    assert deliver_due(utcnow() + timedelta(seconds=31)) >= 1
    sent = wait_for(lambda: status_is(outbox_id, "sent", "failed"), what="message sent")
    assert sent.status == "sent"
    assert len(fake_slack.calls("chat.postMessage", channel=channel)) == 1


def test_a_message_names_its_trace_in_slack_metadata(edge_workers, fake_slack, org):
    trace = logs.new_trace_id()
    event = {"type": "deal_risk_scan", "source": "api", "org_id": str(org.id), "payload": {}}
    job = fire_event({**event, "idempotency_key": f"trace:{uuid.uuid4().hex}"}, trace_id=trace)
    logs.start_trace()  # this process is on another trace now: the job's own trace id wins
    of_job = enqueue(org, channel=new_channel(), job_id=job.job_id)
    loose_trace = logs.start_trace()  # a message of no job: the trace it was queued under
    loose = enqueue(org, channel=new_channel())

    for outbox_id, payload in (
        (of_job, {"trace_id": trace, "job_id": str(job.job_id)}),
        (loose, {"trace_id": loose_trace}),
    ):
        sent = wait_for(lambda oid=outbox_id: status_is(oid, "sent", "failed"), what="message sent")
        assert sent.status == "sent", (sent.error_code, sent.error)
        post = fake_slack.calls("chat.postMessage", channel=sent.channel)[0]
        payload = {"outbox_id": str(outbox_id), "revision": 0, **payload}  # the outbox row it delivers, too
        assert post.params["metadata"] == {"event_type": SLACK_METADATA_EVENT, "event_payload": payload}
        assert fake_slack.messages[(sent.channel, sent.ts)]["metadata"] == post.params["metadata"]


def test_console_mode_without_a_token_is_unchanged(slack_pg, fake_slack, org, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    reset_settings()
    try:
        channel = new_channel()
        now = utcnow()
        approval_id = uuid.uuid4()
        with transaction() as conn:
            outbox_id = enqueue_message(
                conn,
                org.id,
                kind="approval",
                message={"text": "Approve?", "blocks": []},
                dedupe_key=f"test:{uuid.uuid4().hex}",
                now=now,
                channel=channel,
                approval_id=approval_id,
            )
        r = row(outbox_id)
        assert (r.status, r.sent_at, r.ts) == ("console", now, None)
        with transaction() as conn:
            assert replace_message(conn, org.id, approval_id, {"text": "Approved", "blocks": []}) == []
        r = row(outbox_id)
        assert (r.status, r.text) == ("console", "Approved")
        assert fake_slack.calls(channel=channel) == []
    finally:
        monkeypatch.undo()
        reset_settings()


@pytest.fixture
def sqlite_slack(sqlite_backend: Backend, fake_slack: FakeSlack, slack_pg: Backend) -> Iterator[Backend]:
    """This process on the embedded SQLite pair with the fake's token, for one test; PostgreSQL after."""
    env = {**sqlite_backend.env, **{k: v for k, v in slack_pg.env.items() if not k.endswith("_URL")}}
    env["SLACK_API_URL"] = fake_slack.url
    with pytest.MonkeyPatch.context() as mp:
        apply_env(mp, env)
        yield Backend("sqlite", env, sqlite_backend.log_dir)
    reset_settings()  # settings, engine and broker back to the module's PostgreSQL
    reset_engine()
    reconfigure_broker()


def test_deliver_in_process_on_the_embedded_database(sqlite_slack, fake_slack):
    org = make_org()
    user_id, _ = add_user(org, quiet_hours={"start": "00:00", "end": "00:00"})  # gated, never quiet
    channel = new_channel()
    first, second = (enqueue(org, channel=channel, user_id=user_id, text=t, publish=False) for t in ("one", "two"))

    assert deliver(first) == "sent"
    assert deliver(first) == "skipped"  # a second copy of the task does nothing
    assert deliver(second) == "waiting"  # the channel's next slot is about a second away
    held = row(second)
    assert held.status == "pending" and held.slot_at is not None and held.channel == channel
    assert wait_for(lambda: deliver(second) == "sent", timeout_s=5, what="second message sent")

    posts = fake_slack.calls("chat.postMessage", channel=channel)
    assert [p.params["text"] for p in posts] == ["one", "two"]
    assert posts[1].monotonic - posts[0].monotonic >= INTERVAL_S - 0.05
    assert row(first).ts == posts[0].response["ts"] and row(second).ts == posts[1].response["ts"]


def test_a_dry_run_message_stays_in_the_console_inbox_even_with_a_token(slack_pg, fake_slack, org):
    channel = new_channel()
    now = utcnow()
    with transaction() as conn:
        outbox_id = enqueue_message(
            conn,
            org.id,
            kind="deal_risk_alerts",
            message={"text": "dry run", "blocks": []},
            dedupe_key=f"test:{uuid.uuid4().hex}",
            now=now,
            channel=channel,
            console=True,
        )
    assert (row(outbox_id).status, row(outbox_id).sent_at) == ("console", now)
    assert deliver(outbox_id) == "skipped"  # a stray publish does nothing
    assert fake_slack.calls(channel=channel) == []


# --------------------------------------------------------------------------- the shared slot


def _reserve_concurrently(engine: Any, key: str, n: int) -> list[float]:
    now = datetime.now(UTC)

    def one(_: int) -> float:
        with engine.begin() as conn:
            return reserve(conn, key, INTERVAL_S, now)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return sorted(pool.map(one, range(n)))


def test_reserve_hands_out_distinct_slots_under_concurrency_on_postgres(slack_pg):
    engine = make_engine(slack_pg.env["DATABASE_URL"])
    try:
        waits = _reserve_concurrently(engine, f"test:{uuid.uuid4().hex}", 30)
    finally:
        engine.dispose()
    assert waits == pytest.approx([i * INTERVAL_S for i in range(30)], abs=1e-6)


def test_reserve_hands_out_distinct_slots_under_concurrency_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'slots.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        key = f"test:{uuid.uuid4().hex}"
        waits = _reserve_concurrently(engine, key, 30)
        with engine.begin() as conn:  # an idle key starts again from now
            later = datetime.now(UTC) + timedelta(seconds=60)
            assert reserve(conn, key, INTERVAL_S, later) == 0.0
    finally:
        engine.dispose()
    assert waits == pytest.approx([i * INTERVAL_S for i in range(30)], abs=1e-6)
