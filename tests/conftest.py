"""Test-wide set-up: a clean environment, and the services/backends fixtures the layers share.

The project's environment variables are removed at import so a developer's shell cannot leak into
a test; each fixture sets what its tests need. Engine test DAGs (tests.support.sequences) replace the real
sequences only where a test asks for them (the `test_sequences` fixture) and in the worker
processes such tests start.

The session's scratch directory (`tmp_home`: SQLite files, worker logs) is removed when the session
ends; set `PROACTIVE_KEEP_TEST_HOME=1` to keep it for a post-mortem (its path is printed then).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT_ENV_PREFIXES = (
    "DATABASE_URL",
    "BROKER_URL",
    "SLACK_",
    "GOOGLE_",
    "PUBSUB_",
    "GMAIL_",
    "RECORDING_",
    "ENCRYPTION_KEYS",
    "ADMIN_TOKEN",
    "ADMIN_SESSION_SECRET",
    "APP_URL",
    "LLM_",
    "PROACTIVE_",
    "INSTANTLY_",
    "OAUTH_",
    "PROMETHEUS_MULTIPROC_DIR",
    "LOG_FORMAT",
)
# Read before the project's variables are cleared below (it starts with PROACTIVE_).
KEEP_HOME = os.environ.get("PROACTIVE_KEEP_TEST_HOME") == "1"
for _name in list(os.environ):
    if _name.startswith(PROJECT_ENV_PREFIXES):
        del os.environ[_name]

_HOME = Path(tempfile.mkdtemp(prefix="proactive-tests-"))
os.environ["PROACTIVE_HOME"] = str(_HOME / "home")
os.environ["PROACTIVE_SEQUENCE_MODULES"] = "sequences"
os.environ["DATABASE_URL"] = f"sqlite:///{_HOME / 'default.db'}"
os.environ["BROKER_URL"] = f"proactive+sqlite:///{_HOME / 'default-broker.db'}"
# Hypothesis' example database and caches go to the scratch directory, not to .hypothesis/ in the checkout.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(_HOME / "hypothesis"))


def _product_sequences() -> dict[str, Any]:
    from worker.config import reset_settings
    from worker.engine import registry

    try:
        return registry.registered()
    finally:
        reset_settings()  # read with this file's environment; tests set their own


_PRODUCT_SEQUENCES = _product_sequences()  # before any test module is imported


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--soak`: the long versions of the fault suite (tests/chaos) and of the fuzzers, run by hand;
    their numbers go into docs/RELIABILITY.md. CI runs the short versions."""
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="run the long versions of tests/chaos and the fuzzers (minutes each; by hand, not in CI)",
    )


# A test's time limit under --soak (seconds): the long runs take minutes, not the default 120 s.
SOAK_TIMEOUT_S = 1800


def runs_without_soak(item: pytest.Item) -> bool:
    """Whether a test belongs to the default run: not marked `soak`, and, when marked
    `ci(name=value, ...)` (one mark per combination), its parameters match one of those marks."""
    if item.get_closest_marker("soak") is not None:
        return False
    combinations = [mark.kwargs for mark in item.iter_markers("ci")]
    if not combinations:
        return True
    callspec = getattr(item, "callspec", None)
    values = callspec.params if callspec is not None else {}
    return any(all(values.get(name) == value for name, value in c.items()) for c in combinations)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under --soak, every test runs, with SOAK_TIMEOUT_S instead of the default time limit; without
    it, the tests marked for --soak alone (`soak`, or `ci` combinations they do not match) are
    deselected: CI's ten minutes hold one combination of each fault scenario."""
    if config.getoption("--soak"):
        for item in items:
            item.add_marker(pytest.mark.timeout(SOAK_TIMEOUT_S))
        return
    kept = [item for item in items if runs_without_soak(item)]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


@pytest.fixture(scope="session")
def soak(request: pytest.FixtureRequest) -> bool:
    """True when the run asked for the long versions (`pytest --soak`)."""
    return bool(request.config.getoption("--soak"))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's scratch directory, last of all (session fixtures have stopped their
    workers by now; one still flushing a log must not fail the run, hence ignore_errors)."""
    if KEEP_HOME:
        print(f"\nPROACTIVE_KEEP_TEST_HOME=1: the test home stays at {_HOME}")
        return
    shutil.rmtree(_HOME, ignore_errors=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Put the product's sequences back in this process's registry after collection.

    Importing tests.support.sequences registers the engine test DAGs over product event types (the
    worker processes the tests start need exactly that); a test module importing it at collection
    must not swap them in for every later test of the session (a product `proposal_generation`
    fired in an e2e test once ran a test DAG here). Tests that want them use `test_sequences`.
    """
    from worker.engine import registry

    for sequence in _PRODUCT_SEQUENCES.values():
        registry.register(sequence, replace=True)


@dataclass
class Backend:
    """A database + broker pair the engine runs on, as environment variables."""

    name: str
    env: dict[str, str]
    log_dir: Path


def apply_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Point this process (settings, engine, Celery app) at `env`."""
    from worker.celery_app import reconfigure_broker
    from worker.config import reset_settings
    from worker.db import reset_engine

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    reset_engine()
    reconfigure_broker()


@contextmanager
def backend_with_slack(pg: Backend, fake_slack: Any, interval_s: float) -> Iterator[Backend]:
    """`pg` with SLACK_BOT_TOKEN / SLACK_API_URL pointing at `fake_slack`, in this process too (and in
    the env of workers started from the returned Backend); settings re-read when it ends."""
    from worker.config import reset_settings

    env = {
        "SLACK_BOT_TOKEN": fake_slack.token,
        "SLACK_API_URL": fake_slack.url,
        "PROACTIVE_SLACK_CHANNEL_INTERVAL_S": str(interval_s),
        "PROACTIVE_DELIVERY_MAX_ATTEMPTS": "3",
    }
    with pytest.MonkeyPatch.context() as mp:
        apply_env(mp, env)
        yield Backend(pg.name, {**pg.env, **env}, pg.log_dir)
    reset_settings()


@pytest.fixture(scope="session")
def tmp_home() -> Path:
    """A scratch directory for the whole session (logs, SQLite files, marker files)."""
    return _HOME


@contextmanager
def _fresh_database() -> Iterator[str]:
    """A new PostgreSQL database migrated to head (its SQLAlchemy URL), dropped afterwards."""
    import psycopg

    from tests.support.services import ensure_postgres
    from worker import migrate

    ensure_postgres()
    name = f"proactive_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        migrate.upgrade(url)
        yield url
    finally:
        from worker.db import reset_engine

        reset_engine()
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_backend(tmp_home: Path) -> Iterator[Backend]:
    """A fresh PostgreSQL database (migrated to head) and a Redis DB of its own, for this session."""
    from tests.support.services import ensure_redis

    ensure_redis()
    with _fresh_database() as url:
        redis_db, lease = _claim_redis_db()  # emptied when claimed
        try:
            yield Backend(
                "postgres",
                {"DATABASE_URL": url, "BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}"},
                tmp_home / "logs-postgres",
            )
        finally:
            lease.release()


@pytest.fixture(scope="session")
def rabbitmq_backend(tmp_home: Path) -> Iterator[Backend]:
    """A fresh PostgreSQL database (migrated to head) and a RabbitMQ virtual host of its own, for this
    session (deleted at its end with every queue in it)."""
    from tests.support.services import add_rabbitmq_vhost, delete_rabbitmq_vhost, ensure_rabbitmq

    ensure_rabbitmq()
    with _fresh_database() as url:
        vhost = f"proactive_test_{uuid.uuid4().hex[:10]}"
        add_rabbitmq_vhost(vhost)
        try:
            yield Backend(
                "rabbitmq",
                {"DATABASE_URL": url, "BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}"},
                tmp_home / "logs-rabbitmq",
            )
        finally:
            delete_rabbitmq_vhost(vhost)


# How long a test session may hold its Redis database (seconds); renewed while the session runs.
REDIS_LEASE_S = 600
SESSION_KEY = "proactive:test-session"  # the claim of a Redis DB by a test session (`_claim_redis_db`)


class _RedisLease:
    """A Redis database this test session holds alone (a key set with NX in it, kept alive)."""

    def __init__(self, db: int, token: str) -> None:
        import redis

        self.client = redis.Redis(host="127.0.0.1", port=6379, db=db)
        self.token = token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True, name="redis-lease")
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(REDIS_LEASE_S / 3):
            self.client.expire(SESSION_KEY, REDIS_LEASE_S)

    def release(self) -> None:
        self._stop.set()
        if self.client.get(SESSION_KEY) == self.token.encode():
            self.client.delete(SESSION_KEY)


def _claim_redis_db() -> tuple[int, _RedisLease]:
    """The first Redis database (1-15) no other test session holds: several sessions (developers,
    CI, helpers) may run on one machine and must never consume each other's tasks."""
    import redis

    token = uuid.uuid4().hex
    for db in range(1, 16):
        client = redis.Redis(host="127.0.0.1", port=6379, db=db)
        if client.set(SESSION_KEY, token, nx=True, ex=REDIS_LEASE_S):
            with client.pipeline(transaction=True) as tx:  # empty it, keeping our claim, atomically
                tx.flushdb()
                tx.set(SESSION_KEY, token, ex=REDIS_LEASE_S)
                tx.execute()
            return db, _RedisLease(db, token)
    pytest.exit("every Redis database 1-15 is held by another test session; wait for one to finish", returncode=1)


def empty_redis_broker(env: dict[str, str]) -> int:
    """Drop every message earlier test modules left on this session's Redis DB (`env`'s BROKER_URL;
    any other broker is left alone): queued, or put back there by kombu when their worker stopped
    while holding it (an ETA task, a prefetched one). The next module's worker would otherwise run
    them against that module's fakes. Only between modules, when no worker of this session runs;
    the session's claim of the DB stays. Returns how many keys were deleted."""
    import redis

    url = env.get("BROKER_URL", "")
    if not url.startswith("redis://"):
        return 0
    client = redis.Redis.from_url(url)
    stale = [k for k in client.scan_iter(count=500) if k != SESSION_KEY.encode()]
    return int(client.delete(*stale)) if stale else 0


@pytest.fixture(scope="session")
def sqlite_backend(tmp_home: Path) -> Backend:
    """The embedded default: a SQLite database file and our SQLite broker file."""
    from worker import migrate

    d = tmp_home / "sqlite"
    d.mkdir(exist_ok=True)
    url = f"sqlite:///{d / 'proactive.db'}"
    migrate.upgrade(url)
    return Backend(
        "sqlite",
        {"DATABASE_URL": url, "BROKER_URL": f"proactive+sqlite:///{d / 'broker.db'}"},
        tmp_home / "logs-sqlite",
    )


@pytest.fixture(scope="module")
def test_sequences() -> Iterator[None]:
    """The engine test DAGs in place of the real sequences, in this process, for one module; the
    product's sequences are back afterwards (importing tests.support.sequences registers the test
    DAGs, so what `overridden` saves may already hold them)."""
    from tests.support import sequences as test_dags
    from worker.engine import registry

    try:
        with registry.overridden(test_dags.ALL):
            yield
    finally:
        for sequence in _PRODUCT_SEQUENCES.values():
            registry.register(sequence, replace=True)
