"""Integration fixtures: a backend (PostgreSQL + Redis, PostgreSQL + RabbitMQ, or the embedded SQLite
pair) applied to this process, real `celery worker` processes on it, and a fake Google the real
Google clients talk to."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import Backend, apply_env
from tests.fakes.google import CLIENT_ID, CLIENT_SECRET, FakeGoogle
from tests.support.engine import TestOrg, make_org
from tests.support.workers import WorkerProcess

# Engine knobs for tests: quick retries and short inline budgets keep the suite fast.
TEST_ENGINE_ENV = {
    "PROACTIVE_SEQUENCE_MODULES": "sequences,tests.support.sequences",
    "PROACTIVE_RETRY_BASE_S": "0.2",
    "PROACTIVE_LEASE_GRACE_S": "1",
    "PROACTIVE_INLINE_BUDGET_S": "0.5",
}


def _applied(chosen: Backend) -> Iterator[Backend]:
    """`chosen` with the test engine knobs, applied to this process until the generator closes."""
    env = {**chosen.env, **TEST_ENGINE_ENV}
    with pytest.MonkeyPatch.context() as mp:
        apply_env(mp, env)
        yield Backend(chosen.name, env, chosen.log_dir)
    from worker.config import reset_settings
    from worker.db import reset_engine

    reset_settings()
    reset_engine()


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each engine test module runs on both backends (embedded default included); a module may choose
    others by parametrizing `backend` (indirect) with backend fixture names (`rabbitmq`)."""
    yield from _applied(request.getfixturevalue(f"{request.param}_backend"))


@pytest.fixture(scope="module")
def pg(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """PostgreSQL + Redis (multi-process races and crash tests); PostgreSQL + RabbitMQ in a module
    that parametrizes `pg` (indirect) with "rabbitmq"."""
    name = getattr(request, "param", "postgres")
    yield from _applied(request.getfixturevalue(f"{name}_backend"))


WorkerFactory = Callable[..., WorkerProcess]


def _factory(b: Backend, request: pytest.FixtureRequest) -> Iterator[WorkerFactory]:
    started: list[WorkerProcess] = []
    counter = iter(range(1000))

    def make(**kwargs: object) -> WorkerProcess:
        name = f"{request.node.name[:40]}-{next(counter)}".replace("[", "-").replace("]", "")
        w = WorkerProcess(b.env, b.log_dir, name, **kwargs).start()  # type: ignore[arg-type]
        started.append(w)
        return w

    try:
        yield make
    finally:
        for w in started:
            w.stop()


@pytest.fixture(scope="module")
def shared_worker(backend: Backend, request: pytest.FixtureRequest) -> Iterator[WorkerProcess]:
    """One prefork worker (2 processes) for the module's tests on `backend`."""
    gen = _factory(backend, request)
    make = next(gen)
    yield make()
    gen.close()


@pytest.fixture
def workers(pg: Backend, request: pytest.FixtureRequest) -> Iterator[WorkerFactory]:
    """Start workers on the `pg` backend for one test; all stopped at its end."""
    yield from _factory(pg, request)


@pytest.fixture
def org(request: pytest.FixtureRequest) -> TestOrg:
    """A fresh org with a rep, another rep and an admin, on the active backend."""
    return make_org()


@pytest.fixture
def fake_google() -> Iterator[FakeGoogle]:
    """A running fake Google with GOOGLE_* and ENCRYPTION_KEYS pointing at it (unset again after)."""
    from worker.config import reset_settings
    from worker.crypto import generate_key

    with FakeGoogle() as fake, pytest.MonkeyPatch.context() as mp:
        mp.setenv("GOOGLE_TOKEN_URI", fake.token_uri)
        mp.setenv("GOOGLE_API_URL", fake.url)
        mp.setenv("GOOGLE_CLIENT_ID", CLIENT_ID)
        mp.setenv("GOOGLE_CLIENT_SECRET", CLIENT_SECRET)
        mp.setenv("ENCRYPTION_KEYS", generate_key())
        reset_settings()
        yield fake
    reset_settings()
