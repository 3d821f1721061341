"""The one database engine and session factory of a process (PostgreSQL or embedded SQLite).

Engines are created lazily per process and forgotten in a forked child, so a prefork worker never
shares a connection with its parent. SQLite runs in WAL mode with a busy timeout, and every
transaction starts with `BEGIN IMMEDIATE` because `FOR UPDATE` means nothing there and a deferred
transaction cannot upgrade its read lock once another writer has committed (docs/architecture.md).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from worker.config import get_settings, state_dir

# SQLite waits this long for another writer before "database is locked" (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000

T = TypeVar("T")
log = logging.getLogger(__name__)

_lock = threading.Lock()
_engine: Engine | None = None
_engine_pid: int | None = None
_sessionmaker: sessionmaker[Session] | None = None


def _configure_sqlite(engine: Engine) -> None:
    """WAL + busy timeout on every connection; BEGIN IMMEDIATE on every transaction."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for `url` (default: DATABASE_URL) with the project's dialect settings."""
    settings = get_settings()
    url = url or settings.database_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)) or state_dir(), exist_ok=True)
        engine = create_engine(
            url,
            echo=settings.sql_echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            poolclass=NullPool if path == ":memory:" else None,
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    # No ping on every checkout (a round trip each time): connections are recycled after an hour, and
    # a task that meets a dropped one runs once more on a new one (`once_more_on_disconnect`).
    kwargs.setdefault("pool_recycle", 3600)
    return create_engine(url, echo=settings.sql_echo, **kwargs)


def get_engine() -> Engine:
    """The engine of this process, created on first use (and again after a fork)."""
    global _engine, _engine_pid, _sessionmaker
    pid = os.getpid()
    if _engine is not None and _engine_pid == pid:
        return _engine
    with _lock:
        if _engine is None or _engine_pid != pid:
            _engine = make_engine()
            _engine_pid = pid
            _sessionmaker = sessionmaker(bind=_engine, expire_on_commit=False)
    return _engine


def session_factory() -> sessionmaker[Session]:
    """The ORM session factory bound to this process's engine (for admin/CLI paths)."""
    get_engine()
    assert _sessionmaker is not None
    return _sessionmaker


# Callbacks to run once the innermost open transaction scope has committed (see `on_commit`).
_after_commit: ContextVar[list[Callable[[], None]] | None] = ContextVar("proactive_after_commit", default=None)


@contextmanager
def commit_hooks() -> Iterator[None]:
    """Collect `on_commit` callbacks registered inside the block; run them when it exits normally
    (i.e. after the transaction it wraps has committed), drop them when it raises."""
    hooks: list[Callable[[], None]] = []
    token = _after_commit.set(hooks)
    try:
        yield
    finally:
        _after_commit.reset(token)
    for hook in hooks:
        hook()


def in_transaction_scope() -> bool:
    """True inside a `transaction()` or `begin()` block: `on_commit` callbacks wait for its commit."""
    return _after_commit.get() is not None


def on_commit(callback: Callable[[], None]) -> None:
    """Run `callback` after the current transaction commits (at once when none is open): how work
    is handed to the broker only once the rows it refers to are visible."""
    hooks = _after_commit.get()
    if hooks is None:
        callback()
    else:
        hooks.append(callback)


@contextmanager
def begin(conn: Connection) -> Iterator[Connection]:
    """A transaction on an open connection, with its own `on_commit` hooks."""
    with commit_hooks(), conn.begin():
        yield conn


@contextmanager
def transaction() -> Iterator[Connection]:
    """One short transaction on a Core connection: commit on success, roll back on error; callbacks
    registered with `on_commit` inside it run after the commit."""
    with commit_hooks(), get_engine().begin() as conn:
        yield conn


def is_disconnect(err: BaseException) -> bool:
    """True when `err` is a lost database connection (a PostgreSQL restart or failover, a session
    terminated by an admin, an idle timeout): SQLAlchemy has then invalidated the pooled connections
    opened before it, so the next checkout gets a new one."""
    return isinstance(err, DBAPIError) and bool(err.connection_invalidated)


def once_more_on_disconnect(work: Callable[[], T], what: str) -> T:
    """Run `work`, and once more when it fails on a lost connection (see `is_disconnect`).

    Why: the pool hands out its connections without a ping (a round trip per checkout), so after a
    database restart each process meets one dead connection; without this, the task that met it would
    fail and wait a minute for the sweeper. Only for work that starts with a conditional claim
    (a step run, a decision, an outbox row): a second run never repeats what the first one did.
    """
    try:
        return work()
    except DBAPIError as err:
        if not is_disconnect(err):
            raise
        log.warning("%s: database connection lost (%s); once more on a new connection", what, err.orig)
    return work()


def reset_engine() -> None:
    """Drop this process's engine (tests switch databases; forks must not reuse sockets)."""
    global _engine, _engine_pid, _sessionmaker
    with _lock:
        if _engine is not None and _engine_pid == os.getpid():
            _engine.dispose()
        _engine = None
        _engine_pid = None
        _sessionmaker = None


def _after_fork_in_child() -> None:
    global _engine, _engine_pid, _sessionmaker, _lock
    _lock = threading.Lock()  # the parent may have held it while forking
    if _engine is not None:
        _engine.dispose(close=False)  # leave the parent's sockets alone
    _engine = None
    _engine_pid = None
    _sessionmaker = None


os.register_at_fork(after_in_child=_after_fork_in_child)
