"""Embedded SQLite broker: a small subclass of kombu's SQLAlchemy transport.

Why: the stock ``sqla+sqlite://`` transport is exactly-once but slow for the embedded default. Its
poll interval can't be set via transport options (they go to ``create_engine()``, which raises),
it polls once a second, never deletes delivered rows (every poll scans the history) and a worker
takes seconds to stop. Here: a 50 ms ``polling_interval`` class attribute; WAL, ``busy_timeout``,
``synchronous=NORMAL`` and ``BEGIN IMMEDIATE`` per transaction; the fetch deletes the row; queue
ids are cached; engines are per process (forked children build their own); ``drain_events``
returns as soon as the worker is shutting down or the connection is closed.

Select with ``broker_url="proactive+sqlite:////abs/path/broker.db"`` once this module is imported,
or ``broker_transport="worker.brokers.sqlite:Transport"`` with a plain ``sqlite:///`` broker URL.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from queue import Empty
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, sqlalchemy
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

ALIAS = "proactive"
BUSY_TIMEOUT_MS = 5000
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS proactive_queue ( id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS proactive_message ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, queue_id INTEGER NOT NULL,"
    " payload TEXT NOT NULL, sent_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_proactive_message_queue ON proactive_message (queue_id, id)",
)
_ADD_QUEUE = text("INSERT INTO proactive_queue (name) VALUES (:n) ON CONFLICT (name) DO NOTHING")
_QUEUE_ID = text("SELECT id FROM proactive_queue WHERE name = :n")
_PUT = text("INSERT INTO proactive_message (queue_id, payload, sent_at) VALUES (:q, :p, :t)")
_FETCH = text(  # fetch == delete: polls never scan delivered history
    "DELETE FROM proactive_message WHERE id = (SELECT id FROM proactive_message"
    " WHERE queue_id = :q ORDER BY id LIMIT 1) RETURNING payload"
)
_SIZE = text("SELECT count(*) FROM proactive_message WHERE queue_id = :q")
_PURGE = text("DELETE FROM proactive_message WHERE queue_id = :q")
_engines: dict[str, Engine] = {}
_engines_pid = os.getpid()
_lock = threading.Lock()


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
    for pragma in ("journal_mode=WAL", f"busy_timeout={BUSY_TIMEOUT_MS}", "synchronous=NORMAL"):
        dbapi_conn.execute(f"PRAGMA {pragma}")


def _on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock up front: no lock upgrades


def _forget_engines() -> None:
    """In a forked child: drop (never close) the parent's engines and reset the lock."""
    global _engines_pid, _lock
    _lock = threading.Lock()  # another thread may have held it at fork time
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()
    _engines_pid = os.getpid()


def get_engine(url: str) -> Engine:
    """Return this process's engine for the SQLite ``url``, creating DB dir and schema once."""
    if _engines_pid != os.getpid():  # forked without running the at-fork hook
        _forget_engines()
    with _lock:
        if url not in _engines:
            parsed = make_url(url)
            if parsed.get_backend_name() != "sqlite":
                raise ValueError(f"{ALIAS}+ broker needs a sqlite:// URL, got {parsed.drivername!r}")
            if parsed.database and parsed.database != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
            engine = create_engine(url)
            event.listen(engine, "connect", _on_connect)
            event.listen(engine, "begin", _on_begin)
            with engine.begin() as conn:
                for ddl in _SCHEMA:
                    conn.exec_driver_sql(ddl)
            _engines[url] = engine
        return _engines[url]


def _shutdown_requested() -> bool:
    state = sys.modules.get("celery.worker.state")  # flags are set by a worker's signal handlers
    # Same test as state.maybe_shutdown(): the flag holds an exit code, and EX_OK is 0.
    return state is not None and any(
        flag is not None and flag is not False for flag in (state.should_stop, state.should_terminate)
    )


class Channel(sqlalchemy.Channel):
    """Channel storing messages in SQLite; rows are deleted when fetched."""

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        self._queue_ids: dict[str, int] = {}
        super().__init__(connection, **kwargs)

    def _configure_entity_tablenames(self, opts: dict[str, Any]) -> None:
        """Skip the stock ORM models: this channel uses its own two tables."""

    @property
    def engine(self) -> Engine:
        """The current process's engine for this connection's URL."""
        return get_engine(self.connection.client.hostname)

    def _queue_id(self, queue: str) -> int:
        qid = self._queue_ids.get(queue)
        if qid is None:
            with self.engine.begin() as conn:
                conn.execute(_ADD_QUEUE, {"n": queue})
                qid = conn.execute(_QUEUE_ID, {"n": queue}).scalar_one()
            self._queue_ids[queue] = qid
        return qid

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        self._queue_id(queue)

    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:
        row = {"q": self._queue_id(queue), "p": json.dumps(payload), "t": time.time()}
        with self.engine.begin() as conn:
            conn.execute(_PUT, row)

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        qid = self._queue_id(queue)
        with self.engine.begin() as conn:
            payload = conn.execute(_FETCH, {"q": qid}).scalar_one_or_none()
        if payload is None:
            raise Empty()
        return json.loads(payload)

    def _size(self, queue: str) -> int:
        qid = self._queue_id(queue)  # first: it may open its own transaction
        with self.engine.begin() as conn:
            return conn.execute(_SIZE, {"q": qid}).scalar_one()

    def _purge(self, queue: str) -> int:
        qid = self._queue_id(queue)  # first: it may open its own transaction
        with self.engine.begin() as conn:
            return conn.execute(_PURGE, {"q": qid}).rowcount


class Transport(sqlalchemy.Transport):
    """kombu transport for ``proactive+sqlite:///path``: fast polls, prompt shutdown."""

    Channel = Channel
    polling_interval = 0.05

    def __init__(self, client: Any, **kwargs: Any) -> None:
        self._closing = threading.Event()
        super().__init__(client, **kwargs)

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:
        """Deliver one message; wait ``polling_interval`` between polls, give up on shutdown."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closing.is_set():
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                pass
            if _shutdown_requested():  # the worker's loop checks its flags once we return
                break
            wait = self.polling_interval
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise TimeoutError()
            self._closing.wait(wait)
        raise TimeoutError()

    def establish_connection(self) -> Any:
        """Open (or re-open after a close) the virtual connection."""
        self._closing.clear()
        return super().establish_connection()

    def close_connection(self, connection: Any) -> None:
        """Wake a waiting ``drain_events`` and close the channels."""
        self._closing.set()
        super().close_connection(connection)


def register() -> None:
    """Install the ``proactive`` transport alias in kombu (idempotent)."""
    TRANSPORT_ALIASES[ALIAS] = f"{__name__}:Transport"


register()
os.register_at_fork(after_in_child=_forget_engines)
