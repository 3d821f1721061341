"""A dry-run org reaches nobody: its jobs run to the end, but their Slack messages stay in the console
inbox and nothing reaches the fakes, even with a Slack token configured; turned live, it sends.
New demo orgs start in dry-run (an admin turns them live), and the mode a job started in is kept."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.integration.sequences.conftest import World, wait_delivered, wait_job
from tests.support.engine import step_rows
from worker.db import transaction
from worker.engine.events import fire_event
from worker.models import AuditLog, SlackOutbox, jobs, utcnow
from worker.ops.seed import seed_demo
from worker.orgs import org_mode, set_dry_run
from worker.slack.delivery import enqueue_message

pytestmark = pytest.mark.slow


@pytest.fixture
def dry(w: World) -> Iterator[World]:
    """The seeded org in dry-run for one test, live again afterwards (the other modules send for real)."""
    assert set_dry_run(w.org_id, True, actor="tests") is True
    try:
        yield w
    finally:
        set_dry_run(w.org_id, False, actor="tests")


def _outbox(job_id: uuid.UUID) -> list[str]:
    with transaction() as conn:
        return list(conn.execute(select(SlackOutbox.status).where(SlackOutbox.job_id == job_id)).scalars())


def _job_dry_run(job_id: uuid.UUID) -> bool:
    with transaction() as conn:
        return conn.execute(select(jobs.c.dry_run).where(jobs.c.id == job_id)).scalar_one()


def test_a_dry_run_org_runs_its_jobs_but_messages_nobody(dry: World):
    # coaching_weekly DMs every time (a risk scan would also mark its deals alerted for 7 days, which
    # another module's scan of the same seeded org must still find unalerted)
    job = fire_event(dry.event("coaching_weekly", {"week": "2026-W11"}, user="alice")).job_id
    assert wait_job(job) == "completed"
    assert _job_dry_run(job) is True
    assert step_rows(job)["deliver-coaching-slack"].status == "succeeded"
    statuses = _outbox(job)
    assert statuses and set(statuses) == {"console"}  # the digest is in the console inbox
    assert dry.slack.calls() == []  # and Slack received nothing, although a token is configured


def _queue_brief(w: World) -> uuid.UUID:
    """A morning brief for alice, queued the way the cron does it: without a job."""
    with transaction() as conn:
        queued = enqueue_message(
            conn,
            w.org_id,
            kind="morning_brief",
            message={"text": "brief", "blocks": []},
            dedupe_key=f"test:{uuid.uuid4().hex}",
            now=utcnow(),
            user_id=w.user("alice"),
        )
    assert queued is not None
    return queued


def test_messages_outside_jobs_follow_the_org_mode_too(dry: World):
    """Briefs, reminders and reconnect requests are queued without a job: the org's mode decides."""
    held = _queue_brief(dry)
    set_dry_run(dry.org_id, False, actor="tests")
    sent = _queue_brief(dry)
    with transaction() as conn:
        rows = dict(
            conn.execute(select(SlackOutbox.id, SlackOutbox.status).where(SlackOutbox.id.in_([held, sent]))).all()
        )
    assert rows[held] == "console" and rows[sent] in ("pending", "sent")


def test_turning_an_org_live_is_audited_and_a_reseed_keeps_the_admins_choice(w: World):
    assert org_mode(w.org_id).dry_run is False  # the world turned it live
    seed_demo()  # a reseed (every `proactive demo` does one) must not put a live org back in dry-run
    assert org_mode(w.org_id).dry_run is False
    assert set_dry_run(w.org_id, False, actor="tests") is False  # already live: nothing changes
    assert set_dry_run(w.org_id, True, actor="ops@example.com") is True
    assert set_dry_run(w.org_id, False, actor="ops@example.com") is True
    with transaction() as conn:
        actions = list(
            conn.execute(
                select(AuditLog.action)
                .where(AuditLog.org_id == w.org_id, AuditLog.actor == "ops@example.com")
                .order_by(AuditLog.created_at)
            ).scalars()
        )
    assert actions[-2:] == ["org.dry_run_on", "org.dry_run_off"]


def test_a_live_org_sends(w: World):
    job = fire_event(w.event("coaching_weekly", {"week": "2026-W10"}, user="alice")).job_id
    assert wait_job(job) == "completed"
    assert _job_dry_run(job) is False
    wait_delivered(job)
    assert set(_outbox(job)) == {"sent"}
    assert len(w.slack.calls("chat.postMessage", channel=w.dm("alice"))) == 1
