"""The fault suite's stage: PostgreSQL with Redis and with RabbitMQ (each test module runs on both
unless it parametrizes `stage` itself), the fake Slack and the fake Google answering with latency,
and an org whose rep has both connected."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import apply_env
from tests.fakes.google import FakeGoogle
from tests.fakes.slack import FakeSlack
from tests.support.chaos import (
    ENGINE_ENV,
    Stage,
    google_env,
    prepare_org,
    retire_pending_messages,
    slack_env,
    with_latency,
)

# How long the fakes hold every answer after acting (seconds): a crash then often falls between
# "the provider did it" and "we stored that it did".
LATENCY_S = 0.3


@pytest.fixture(scope="module", params=["postgres", "rabbitmq"])
def stage(request: pytest.FixtureRequest) -> Iterator[Stage]:
    """A stage on the `postgres` (Redis broker) or `rabbitmq` backend, applied to this process."""
    from worker.config import reset_settings
    from worker.crypto import generate_key
    from worker.db import reset_engine

    backend = request.getfixturevalue(f"{request.param}_backend")
    with FakeSlack() as slack, FakeGoogle() as google, pytest.MonkeyPatch.context() as mp:
        slack.latency_s = LATENCY_S
        with_latency(google, LATENCY_S)
        env = {**backend.env, **ENGINE_ENV, **slack_env(slack), **google_env(google, generate_key())}
        apply_env(mp, env)
        org, address = prepare_org(google)
        yield Stage(backend, slack, google, org, address, env)
        retire_pending_messages(org.id)
    reset_settings()
    reset_engine()
