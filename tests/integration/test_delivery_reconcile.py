"""A Slack message is posted exactly once, even when its delivery dies after Slack posted it and
before the ts was stored: the next delivery looks for the message's outbox id in the channel's
history (message metadata) instead of posting again.

The crash is a real `celery worker` killed with SIGKILL while the fake Slack holds back its answer
to chat.postMessage (the message is already posted). Messages are counted at the fake Slack.
The other tests deliver in this process a row that an earlier delivery left behind (its lease ran
out unreleased), with Slack's history answering, failing or too long to read.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import select, update

from tests.conftest import Backend, backend_with_slack
from tests.fakes.slack import FakeSlack
from tests.support.engine import TestOrg, make_org
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from worker.db import transaction
from worker.models import SlackOutbox, utcnow
from worker.slack import delivery
from worker.slack.client import find_message
from worker.slack.delivery import deliver, enqueue_message, publish_delivery, slack_metadata

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

outbox = SlackOutbox.__table__
# How long the killed worker's lease would still run (seconds): the test moves it into the past,
# as if that much time had passed, instead of waiting for it.
LEASE_LEFT_S = delivery.LEASE_S


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeSlack]:
    """The fake Slack Web API for this module."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def slack_pg(pg: Backend, fake_slack: FakeSlack) -> Iterator[Backend]:
    """PostgreSQL + Redis with SLACK_BOT_TOKEN / SLACK_API_URL pointing at the fake (this process too)."""
    with backend_with_slack(pg, fake_slack, 0.01) as backend:
        yield backend


@pytest.fixture
def org(slack_pg: Backend) -> TestOrg:
    """A fresh org on the Slack-enabled backend."""
    return make_org()


def new_channel() -> str:
    return f"C{uuid.uuid4().hex[:10].upper()}"


def enqueue(org: TestOrg, channel: str, *, publish: bool) -> uuid.UUID:
    """One committed outbox row to `channel`; its delivery is published after the commit, or not at
    all (`publish=False`: due in a day, which is never published ahead; the test delivers it)."""
    now = utcnow()
    with transaction() as conn:
        outbox_id = enqueue_message(
            conn,
            org.id,
            kind="deal_risk_alerts",
            message={"text": "Deal at risk", "blocks": []},
            dedupe_key=f"test:{uuid.uuid4().hex}",
            now=now,
            channel=channel,
            not_before=None if publish else now + timedelta(days=1),
        )
    assert outbox_id is not None
    return outbox_id


def row(outbox_id: uuid.UUID) -> Any:
    with transaction() as conn:
        return conn.execute(select(outbox).where(outbox.c.id == outbox_id)).one()


def left_by_a_dead_delivery(outbox_id: uuid.UUID) -> None:
    """The row as a delivery that died holding it leaves it, once its lease has run out."""
    with transaction() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == outbox_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1), not_before=None)
        )


def lease_ran_out(outbox_id: uuid.UUID) -> None:
    """Move a held lease into the past, as if LEASE_LEFT_S had passed."""
    held_until = row(outbox_id).lease_expires_at
    assert held_until is not None, "the killed delivery held no lease"
    with transaction() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == outbox_id)
            .values(lease_expires_at=held_until - timedelta(seconds=LEASE_LEFT_S + 1))
        )


def posted_by_the_dead_delivery(fake: FakeSlack, channel: str, outbox_id: uuid.UUID) -> str:
    """Post the row's message as its earlier delivery did (same metadata); returns its ts."""
    client = WebClient(token=fake.token, base_url=fake.url)
    metadata = slack_metadata(None, None, outbox_id=outbox_id, revision=0)
    return str(client.chat_postMessage(channel=channel, text="Deal at risk", metadata=metadata)["ts"])


def copies(fake: FakeSlack, channel: str) -> list[tuple[str, str]]:
    """The messages posted to `channel` at the fake Slack (each test row has a channel of its own)."""
    return sorted(where for where in fake.messages if where[0] == channel)


# --------------------------------------------------------------------------- a real worker killed


def test_a_worker_killed_after_slack_posted_does_not_post_the_message_again(slack_pg, fake_slack, org):
    channel = new_channel()
    fake_slack.hold_next("chat.postMessage", channel=channel)
    first = WorkerProcess(slack_pg.env, slack_pg.log_dir, f"reconcile-{uuid.uuid4().hex[:6]}-a", queues="edge")
    first.start()
    try:
        outbox_id = enqueue(org, channel, publish=True)
        assert fake_slack.held.wait(20), "the delivery never reached chat.postMessage"
        first.kill()  # Slack posted; the worker dies before it learns the ts
    finally:
        fake_slack.release()
        first.kill()
    assert len(copies(fake_slack, channel)) == 1 and row(outbox_id).ts is None

    lease_ran_out(outbox_id)
    second = WorkerProcess(slack_pg.env, slack_pg.log_dir, f"reconcile-{uuid.uuid4().hex[:6]}-b", queues="edge")
    second.start()
    try:
        publish_delivery([outbox_id])  # as the sweeper's deliver_due does for a row nobody holds
        sent = wait_for(lambda: (r := row(outbox_id)).status in ("sent", "failed") and r, what="row settled")
    finally:
        second.stop()
    assert sent.status == "sent", (sent.error_code, sent.error)
    assert copies(fake_slack, channel) == [(channel, sent.ts)]
    assert fake_slack.messages_with_metadata("outbox_id", str(outbox_id)) == [(channel, sent.ts)]
    assert len(fake_slack.calls("chat.postMessage", channel=channel)) == 1
    history = fake_slack.calls("conversations.history", channel=channel)
    assert len(history) == 1 and history[0].params["include_all_metadata"] in ("1", True)


# --------------------------------------------------------------------------- a row left behind, delivered here


def test_a_message_found_in_the_history_is_stored_and_not_posted_again(slack_pg, fake_slack, org):
    channel = new_channel()
    outbox_id = enqueue(org, channel, publish=False)
    ts = posted_by_the_dead_delivery(fake_slack, channel, outbox_id)
    left_by_a_dead_delivery(outbox_id)

    assert deliver(outbox_id) == "sent"
    r = row(outbox_id)
    assert (r.status, r.channel, r.ts, r.error_code) == ("sent", channel, ts, None)
    assert copies(fake_slack, channel) == [(channel, ts)]
    history = fake_slack.calls("conversations.history", channel=channel)
    assert len(history) == 1 and float(history[0].params["oldest"]) < r.created_at.timestamp()


def test_a_message_not_in_the_history_is_posted_once_with_its_outbox_id(slack_pg, fake_slack, org):
    channel = new_channel()
    outbox_id = enqueue(org, channel, publish=False)
    left_by_a_dead_delivery(outbox_id)  # it died before Slack posted anything

    assert deliver(outbox_id) == "sent"
    r = row(outbox_id)
    assert copies(fake_slack, channel) == [(channel, r.ts)]
    assert fake_slack.messages_with_metadata("outbox_id", str(outbox_id)) == [(channel, r.ts)]
    assert len(fake_slack.calls("conversations.history", channel=channel)) == 1


def test_a_row_no_earlier_delivery_touched_is_posted_without_reading_the_history(slack_pg, fake_slack, org):
    channel = new_channel()
    outbox_id = enqueue(org, channel, publish=False)
    with transaction() as conn:
        conn.execute(update(outbox).where(outbox.c.id == outbox_id).values(not_before=None))

    assert deliver(outbox_id) == "sent"
    assert len(copies(fake_slack, channel)) == 1
    assert fake_slack.calls("conversations.history", channel=channel) == []
    payload = fake_slack.calls("chat.postMessage", channel=channel)[0].params["metadata"]["event_payload"]
    assert payload["outbox_id"] == str(outbox_id) and payload["revision"] == 0


def test_a_history_without_the_scope_to_read_it_posts_anyway(slack_pg, fake_slack, org):
    channel = new_channel()
    outbox_id = enqueue(org, channel, publish=False)
    left_by_a_dead_delivery(outbox_id)
    fake_slack.fail_next("conversations.history", "missing_scope", channel=channel)

    assert deliver(outbox_id) == "sent"  # documented: a rare duplicate beats a lost message
    assert len(copies(fake_slack, channel)) == 1
    assert [c.response.get("error") for c in fake_slack.calls("conversations.history", channel=channel)] == [
        "missing_scope"
    ]


def test_a_rate_limited_history_comes_back_later_and_still_finds_the_message(slack_pg, fake_slack, org):
    channel = new_channel()
    outbox_id = enqueue(org, channel, publish=False)
    ts = posted_by_the_dead_delivery(fake_slack, channel, outbox_id)
    left_by_a_dead_delivery(outbox_id)
    fake_slack.ratelimit_next("conversations.history", retry_after_s=30, channel=channel)

    assert deliver(outbox_id) == "rate_limited"
    r = row(outbox_id)
    assert (r.status, r.error_code, r.ts) == ("pending", "history_ratelimited", None)
    assert r.not_before is not None and r.lease_expires_at is None
    with transaction() as conn:  # Retry-After has passed
        conn.execute(update(outbox).where(outbox.c.id == outbox_id).values(not_before=None))

    assert deliver(outbox_id) == "sent"
    assert row(outbox_id).ts == ts
    assert copies(fake_slack, channel) == [(channel, ts)]
    assert [c.status for c in fake_slack.calls("conversations.history", channel=channel)] == [429, 200]


def test_a_message_found_for_an_older_revision_is_edited_to_the_newest(slack_pg, fake_slack, org):
    channel = new_channel()
    outbox_id = enqueue(org, channel, publish=False)
    ts = posted_by_the_dead_delivery(fake_slack, channel, outbox_id)  # revision 0
    left_by_a_dead_delivery(outbox_id)
    with transaction() as conn:  # replaced while the dead delivery held it
        conn.execute(update(outbox).where(outbox.c.id == outbox_id).values(revision=1, text="Deal at risk (updated)"))

    assert deliver(outbox_id) == "replaced"  # stored, and pending again for chat.update
    r = row(outbox_id)
    assert (r.status, r.ts) == ("pending", ts)
    assert deliver(outbox_id) == "sent"
    assert fake_slack.messages[(channel, ts)]["text"] == "Deal at risk (updated)"
    assert len(copies(fake_slack, channel)) == 1


# --------------------------------------------------------------------------- the history lookup itself


def test_find_message_pages_through_the_history_and_says_when_it_could_not_read_it_all(fake_slack):
    channel = new_channel()
    client = WebClient(token=fake_slack.token, base_url=fake_slack.url)
    since = time.time() - 60
    target = uuid.uuid4()
    client.chat_postMessage(channel=channel, text="ours", metadata=slack_metadata(None, None, outbox_id=target))
    for i in range(4):
        client.chat_postMessage(channel=channel, text=f"later {i}")
    ours = delivery.posted_by(target)

    message, complete = find_message(client, channel, since, ours, max_pages=3, page_size=2)
    assert message is not None and message["text"] == "ours" and complete
    assert message["metadata"]["event_payload"] == {"outbox_id": str(target)}
    assert len(fake_slack.calls("conversations.history", channel=channel)) == 3  # newest first, 2 a page

    assert find_message(client, channel, since, ours, max_pages=2, page_size=2) == (None, False)
    assert find_message(client, channel, time.time() + 60, ours, max_pages=2, page_size=2) == (None, True)
