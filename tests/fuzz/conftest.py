"""Fuzzer fixtures: the budget mode (`--soak`), the real app on the session's PostgreSQL + Redis
backend with every webhook secret set and the demo org seeded, and API keys of that org."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask

from tests.conftest import Backend, apply_env
from tests.fuzz import budget
from tests.support.slack import SIGNING_SECRET

ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
RECORDING_SECRET = "rec-" + uuid.uuid4().hex


def pytest_configure(config: pytest.Config) -> None:
    """Set the fuzzers' budget before their modules are imported (their settings read it)."""
    budget.set_soak(bool(config.getoption("--soak")))


@pytest.fixture(scope="module")
def pg(postgres_backend: Backend) -> Iterator[Backend]:
    """PostgreSQL + Redis applied to this process for the module."""
    from worker.config import reset_settings
    from worker.db import reset_engine

    with pytest.MonkeyPatch.context() as mp:
        apply_env(mp, postgres_backend.env)
        yield postgres_backend
    reset_settings()
    reset_engine()


@pytest.fixture(scope="module")
def edge_app(pg: Backend) -> Iterator[Flask]:
    """The real app with every secret configured (Slack, recorder, admin token), the demo org
    seeded (its Slack team is known); the events limit off (a fuzzer is no abuse to limit)."""
    from webhooks import create_app
    from worker.config import reset_settings
    from worker.ops.seed import seed_demo

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        mp.setenv("RECORDING_WEBHOOK_SECRET", RECORDING_SECRET)
        mp.setenv("ADMIN_TOKEN", ADMIN_TOKEN)
        mp.setenv("PROACTIVE_ORG_EVENTS_PER_S", "0")
        reset_settings()
        seed_demo()
        yield create_app()
    reset_settings()


@pytest.fixture(scope="module")
def demo_org(edge_app: Flask) -> uuid.UUID:
    """The seeded demo org's id."""
    from worker.ops.seed import seed_demo

    return seed_demo().org_id


@pytest.fixture(scope="module")
def org_key(demo_org: uuid.UUID) -> str:
    """An API key of the demo org (events role)."""
    from worker.access.api_keys import create_key

    key, _info = create_key(demo_org, "fuzz")
    return key


@pytest.fixture(scope="module")
def org_admin_key(demo_org: uuid.UUID) -> str:
    """An API key of the demo org with the admin role (it may read the org's metrics too)."""
    from worker.access.api_keys import create_key

    key, _info = create_key(demo_org, "fuzz-admin", role="admin")
    return key
