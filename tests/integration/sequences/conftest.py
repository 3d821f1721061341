"""The world the product's sequences run in during their integration tests.

PostgreSQL + Redis, one real prefork `celery worker` (steps, slow and edge queues), and local fakes
of Slack, Google (token endpoint, Calendar, Gmail) and Instantly that the real client libraries talk
to. The demo org is seeded once per module; its two reps have Google connected (encrypted
credentials the fake accepts) and the org has an Instantly API key. Sends are real calls to the
fakes (no dry-run), so a test can assert the exact requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.conftest import Backend, apply_env, empty_redis_broker
from tests.fakes.google import FakeGoogle
from tests.fakes.instantly import API_KEY, FakeInstantly
from tests.fakes.slack import FakeSlack
from tests.support.engine import reached
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from worker.crypto import encrypt_json, generate_key
from worker.db import transaction
from worker.models import Approval, Integration, ScheduledEvent, SlackOutbox, StepRun, User, jobs, utcnow
from worker.ops.seed import SeedResult, demo_id, seed_demo
from worker.orgs import set_dry_run

ENCRYPTION_KEY = generate_key()
CLIENT_ID, CLIENT_SECRET = "client-id.apps.googleusercontent.com", "client-secret"
FINAL = ("completed", "failed", "cancelled", "expired", "timeout", "skipped")


@dataclass
class World:
    """Handles a sequence test needs: the fakes, the seeded org, the backend env."""

    backend: Backend
    slack: FakeSlack
    google: FakeGoogle
    instantly: FakeInstantly
    seed: SeedResult
    worker: WorkerProcess

    @property
    def org_id(self) -> uuid.UUID:
        return self.seed.org_id

    def user(self, key: str) -> uuid.UUID:
        """A seeded person's id ("alice", "bruno", "maya")."""
        return self.seed.users[key]

    def event(self, event_type: str, payload: dict[str, Any], user: str | None = "alice", **extra: Any) -> dict:
        """An envelope for the seeded org with a key unique to this call."""
        return {
            "type": event_type,
            "source": "api",
            "org_id": str(self.org_id),
            "user_id": str(self.user(user)) if user else None,
            "payload": payload,
            "idempotency_key": f"test:{event_type}:{uuid.uuid4().hex}",
            **extra,
        }

    def dm(self, key: str) -> str:
        """The fake Slack DM channel of a seeded person."""
        return self.slack.dm_channel(f"U0{key.upper()[:6]}")


def wait_job(job_id: uuid.UUID, *statuses: str, timeout_s: float = 30.0) -> str:
    """Wait until the job reaches one of `statuses` (default: any final state)."""
    return wait_for(
        lambda: reached(job_id, *(statuses or FINAL)), timeout_s=timeout_s, what=f"job {job_id} in {statuses or FINAL}"
    )


def wait_delivered(job_id: uuid.UUID, timeout_s: float = 30.0) -> list[Any]:
    """Wait until every Slack message of the job left the outbox (sent or failed); returns them."""

    def done() -> list[Any] | None:
        with transaction() as conn:
            rows = list(conn.execute(select(SlackOutbox.__table__).where(SlackOutbox.job_id == job_id)))
        return rows if rows and all(r.status in ("sent", "failed") for r in rows) else None

    return wait_for(done, timeout_s=timeout_s, what=f"Slack messages of job {job_id} delivered")


def children(job_id: uuid.UUID) -> list[Any]:
    """Follow-up jobs fired by `job_id`."""
    with transaction() as conn:
        return list(conn.execute(select(jobs).where(jobs.c.parent_job_id == job_id).order_by(jobs.c.created_at)))


def _connect_google(google: FakeGoogle, seed: SeedResult) -> None:
    """Both reps get a Google integration with a valid access token the fake accepts."""
    with transaction() as conn:
        for key in ("alice", "bruno", "maya"):
            token = google.issue_access_token()
            refresh = f"1//refresh-{key}"
            google.grant(refresh)
            creds = encrypt_json(
                {
                    "token": token,
                    "refresh_token": refresh,
                    "expiry": (utcnow() + timedelta(hours=1)).isoformat(),
                    "scopes": [
                        "https://www.googleapis.com/auth/gmail.send",
                        "https://www.googleapis.com/auth/calendar.events",
                    ],
                }
            )
            integration_id = demo_id("integration", "google", key)
            exists = conn.execute(select(Integration.id).where(Integration.id == integration_id)).first()
            if exists:
                conn.execute(
                    update(Integration.__table__)
                    .where(Integration.id == integration_id)
                    .values(credentials=creds, status="active")
                )
            else:
                conn.execute(
                    Integration.__table__.insert().values(
                        id=integration_id,
                        org_id=seed.org_id,
                        user_id=seed.users[key],
                        provider="google",
                        account=f"{key}@northwind.example",
                        credentials=creds,
                        scopes=[],
                        status="active",
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                )
        conn.execute(
            update(Integration.__table__)
            .where(Integration.id == demo_id("integration", "instantly"))
            .values(credentials=encrypt_json({"api_key": API_KEY}))
        )


def settle_earlier_modules() -> None:
    """End what earlier test modules of this session left open, in every org of its database:
    unfinished jobs and their steps, pending approvals, undelivered Slack messages and unfired delayed
    events. Without this, the next module's worker sweeps them up at start (the sweeper, the recovery
    pass and the heartbeat's hand-back of a stopped worker's deliveries scan every org) and delivers
    them into that module's fakes (an extra DM to Alice made a meeting_ended assertion flaky, and
    another module's messages, re-delivered after a history lookup, a calendar one, in full-suite
    runs)."""
    why = "left open by an earlier test module"
    with transaction() as conn:
        open_jobs = select(jobs.c.id).where(jobs.c.status.not_in(FINAL))
        conn.execute(
            update(StepRun.__table__)
            .where(StepRun.job_id.in_(open_jobs), StepRun.status.in_(("queued", "running", "awaiting_approval")))
            .values(status="cancelled")
        )
        conn.execute(update(Approval.__table__).where(Approval.status == "pending").values(status="cancelled"))
        conn.execute(
            update(jobs).where(jobs.c.id.in_(open_jobs)).values(status="cancelled", reason=why, finished_at=utcnow())
        )
        conn.execute(
            update(SlackOutbox.__table__).where(SlackOutbox.status == "pending").values(status="failed", error=why)
        )
        conn.execute(
            update(ScheduledEvent.__table__)
            .where(ScheduledEvent.fired_at.is_(None))
            .values(fired_at=utcnow(), error=why)
        )


@pytest.fixture(scope="module")
def extra_env() -> dict[str, str]:
    """More environment for the module's world (a module overrides this, e.g. to add an LLM)."""
    return {}


@pytest.fixture(scope="module")
def world(pg: Backend, extra_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[World]:
    """Fakes started, env applied to this process and to one worker, demo org seeded and connected."""
    with FakeSlack() as slack, FakeGoogle() as google, FakeInstantly() as instantly:
        env = {
            **pg.env,
            "PROACTIVE_SEQUENCE_MODULES": "sequences",
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_API_URL": slack.url,
            "PROACTIVE_SLACK_CHANNEL_INTERVAL_S": "0.05",
            "GOOGLE_TOKEN_URI": google.token_uri,
            "GOOGLE_API_URL": google.url,
            "GOOGLE_CLIENT_ID": CLIENT_ID,
            "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
            "ENCRYPTION_KEYS": ENCRYPTION_KEY,
            "INSTANTLY_API_URL": instantly.base_url,
            "PROACTIVE_UNDO_WINDOW_S": "0.5",
            "PROACTIVE_RETRY_BASE_S": "0.2",
            **extra_env,
        }
        with pytest.MonkeyPatch.context() as mp:
            apply_env(mp, env)
            seed = seed_demo()
            set_dry_run(seed.org_id, False, actor="tests")  # a new demo org is dry-run: these tests send for real
            settle_earlier_modules()
            empty_redis_broker(env)  # and the messages they left: this module's worker would run them
            _connect_google(google, seed)
            with transaction() as conn:  # reports are not urgent: no quiet hours/budget unless a test sets them
                conn.execute(
                    update(User.__table__)
                    .where(User.org_id == seed.org_id)
                    .values(quiet_hours=None, max_notifications_per_hour=0)
                )
            name = f"seq-{request.module.__name__.rsplit('.', 1)[-1][:30]}-{uuid.uuid4().hex[:4]}"
            worker = WorkerProcess(env, pg.log_dir, name, queues="steps,slow,edge").start()
            try:
                yield World(Backend("postgres", env, pg.log_dir), slack, google, instantly, seed, worker)
            finally:
                worker.stop()
    from worker.config import reset_settings

    reset_settings()


@pytest.fixture
def w(world: World) -> World:
    """The world with the fakes' recorded calls cleared for this test."""
    world.slack.reset()
    world.google.requests.clear()
    world.google.sent.clear()
    world.instantly.requests.clear()
    return world
