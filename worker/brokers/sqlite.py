"""Embedded SQLite broker: a small subclass of kombu's SQLAlchemy transport.

Why: the stock ``sqla+sqlite://`` transport is exactly-once but slow for the embedded default. Its
poll interval can't be set via transport options (they go to ``create_engine()``, which raises),
it polls once a second, never deletes delivered rows (every poll scans the history) and a worker
takes seconds to stop. Here:

* storage through plain ``sqlite3`` (one connection per thread and process, WAL, ``busy_timeout``,
  ``synchronous=NORMAL``), each operation one autocommit statement: a write statement takes the
  write lock before it reads, so there is no lock upgrade to fail; the fetch deletes the row
  (``DELETE ... RETURNING``), so polls never scan delivered history;
* a consumer polls all its queues with one read (no write lock while they are empty), oldest
  message first, and takes it with one ``DELETE``;
* wake-ups instead of sleeps: a waiting consumer blocks on a datagram socket in the broker file's
  wake directory, and every publish (from any process) and every ack or close in this process rings
  it; ``polling_interval`` (50 ms) is only the fallback;
* ``drain_events`` returns as soon as the worker is shutting down or the connection is closed, and
  a worker on this broker freezes the garbage collector at shutdown (the interpreter's final
  collection of a loaded worker takes 1-2 s).

Messages are at most in the table or in a consumer's unacknowledged set (kombu restores that set to
the table when a channel closes); a consumer killed with a message unacknowledged loses the message,
which the engine's sweeper re-publishes from the database.

Select with ``broker_url="proactive+sqlite:////abs/path/broker.db"`` once this module is imported,
or ``broker_transport="worker.brokers.sqlite:Transport"`` with a plain ``sqlite:///`` broker URL.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import secrets
import select
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from queue import Empty
from typing import Any

from celery.signals import worker_shutdown
from kombu.transport import TRANSPORT_ALIASES, sqlalchemy
from sqlalchemy.engine import make_url

ALIAS = "proactive"
BUSY_TIMEOUT_MS = 5000
# AF_UNIX socket paths longer than this do not fit sockaddr_un (108 bytes with the final NUL).
MAX_SOCKET_PATH = 100
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS proactive_queue ( id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS proactive_message ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, queue_id INTEGER NOT NULL,"
    " payload TEXT NOT NULL, sent_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_proactive_message_queue ON proactive_message (queue_id, id)",
)
_ADD_QUEUE = "INSERT INTO proactive_queue (name) VALUES (?) ON CONFLICT (name) DO NOTHING"
_QUEUE_ID = "SELECT id FROM proactive_queue WHERE name = ?"
_PUT = "INSERT INTO proactive_message (queue_id, payload, sent_at) VALUES (?, ?, ?)"
_FETCH = (  # fetch == delete: polls never scan delivered history
    "DELETE FROM proactive_message WHERE id = (SELECT id FROM proactive_message"
    " WHERE queue_id = ? ORDER BY id LIMIT 1) RETURNING payload"
)
_TAKE = "DELETE FROM proactive_message WHERE id = ? RETURNING payload"
_SIZE = "SELECT count(*) FROM proactive_message WHERE queue_id = ?"
_PURGE = "DELETE FROM proactive_message WHERE queue_id = ?"


class _ProcessState(threading.local):
    """This thread's connections, by database path."""

    def __init__(self) -> None:
        self.conns: dict[str, sqlite3.Connection] = {}


_local = _ProcessState()
_schema_done: set[str] = set()
_lock = threading.Lock()
_sender: socket.socket | None = None


def _forget_connections() -> None:
    """In a forked child: drop (never close) the parent's connections and sockets, reset the lock."""
    global _local, _lock, _sender
    _local = _ProcessState()  # another thread's connections stay unreachable, as they should
    _lock = threading.Lock()  # another thread may have held it at fork time
    _sender = None


def db_path(url: str) -> str:
    """The database path of a ``sqlite://`` URL (``:memory:`` for an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise ValueError(f"{ALIAS}+ broker needs a sqlite:// URL, got {parsed.drivername!r}")
    return parsed.database or ":memory:"


def connection(path: str) -> sqlite3.Connection:
    """This thread's autocommit connection to the broker file ``path`` (schema made once per process)."""
    conn = _local.conns.get(path)
    if conn is None:
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        for pragma in ("journal_mode=WAL", f"busy_timeout={BUSY_TIMEOUT_MS}", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        with _lock:
            if path not in _schema_done or path == ":memory:":
                conn.execute("BEGIN IMMEDIATE")
                for ddl in _SCHEMA:
                    conn.execute(ddl)
                conn.execute("COMMIT")
                _schema_done.add(path)
        _local.conns[path] = conn
    return conn


# --------------------------------------------------------------------------- wake-ups


def wake_dir(path: str) -> Path | None:
    """The directory holding the wake sockets of the consumers of broker file ``path`` (None: in
    memory). Next to the file when a socket path fits there, else a per-file directory in /tmp."""
    if path == ":memory:":
        return None
    beside = Path(os.path.abspath(path) + ".wake")
    if len(str(beside)) + 40 <= MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"proactive-wake-{digest}"


def ring(directory: Path | None) -> None:
    """Wake every consumer waiting on the broker file whose wake directory is ``directory``."""
    global _sender
    if directory is None:
        return
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return  # no consumer has waited on this file yet
    if _sender is None:
        _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        _sender.setblocking(False)
    for name in names:
        target = os.path.join(directory, name)
        try:
            _sender.sendto(b"!", target)
        except BlockingIOError:
            pass  # its queue is full: it has wake-ups pending already
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(OSError):
                os.unlink(target)  # its process is gone
        except OSError:
            pass  # a wake-up is an optimisation: the consumer polls anyway


class Doorbell:
    """One waiting consumer's datagram socket in a broker file's wake directory."""

    def __init__(self, directory: Path | None) -> None:
        self.sock: socket.socket | None = None
        self.path: str | None = None
        if directory is None:
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = str(directory / f"{os.getpid()}-{secrets.token_hex(4)}")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind(path)
        except OSError:
            return  # no wake-ups (read-only or foreign directory): the consumer only polls
        self.sock, self.path = sock, path

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds or until rung; swallow the rings that are pending."""
        if self.sock is None:
            time.sleep(timeout)
            return
        readable, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if readable:
            with contextlib.suppress(OSError):
                while self.sock.recv(64):
                    pass

    def ring(self) -> None:
        """Wake this doorbell's waiter (an ack, a close)."""
        if self.sock is not None and self.path is not None:
            with contextlib.suppress(OSError):
                self.sock.sendto(b"!", self.path)

    def close(self) -> None:
        """Remove the socket (a publisher would also unlink it once its process is gone)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            with contextlib.suppress(OSError):
                os.unlink(self.path or "")


# --------------------------------------------------------------------------- kombu


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
        self._path = db_path(connection.client.hostname)
        self._wake_dir = wake_dir(self._path)
        super().__init__(connection, **kwargs)

    def _configure_entity_tablenames(self, opts: dict[str, Any]) -> None:
        """Skip the stock ORM models: this channel uses its own two tables."""

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection to the broker file."""
        return connection(self._path)

    def _queue_id(self, queue: str) -> int:
        qid = self._queue_ids.get(queue)
        if qid is None:
            self.db.execute(_ADD_QUEUE, (queue,))
            qid = self.db.execute(_QUEUE_ID, (queue,)).fetchone()[0]
            self._queue_ids[queue] = qid
        return qid

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        self._queue_id(queue)

    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:
        self.db.execute(_PUT, (self._queue_id(queue), json.dumps(payload), time.time()))
        ring(self._wake_dir)

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        rows = self.db.execute(_FETCH, (self._queue_id(queue),)).fetchall()
        if not rows:
            raise Empty()
        return json.loads(rows[0][0])

    def _get_many(self, queues: list[str], timeout: float | None = None) -> None:
        """Deliver the oldest message of any of ``queues``: one read, then one ``DELETE`` (raises
        Empty when there is none)."""
        by_id = {self._queue_id(q): q for q in queues}
        marks = ",".join("?" * len(by_id))
        find = f"SELECT id, queue_id FROM proactive_message WHERE queue_id IN ({marks}) ORDER BY id LIMIT 1"
        while True:
            row = self.db.execute(find, tuple(by_id)).fetchone()
            if row is None:
                raise Empty()
            taken = self.db.execute(_TAKE, (row[0],)).fetchall()
            if taken:  # else another consumer took it first: look again
                self.connection._deliver(json.loads(taken[0][0]), by_id[row[1]])
                return

    def _size(self, queue: str) -> int:
        return self.db.execute(_SIZE, (self._queue_id(queue),)).fetchone()[0]

    def _purge(self, queue: str) -> int:
        return self.db.execute(_PURGE, (self._queue_id(queue),)).rowcount

    def basic_ack(self, delivery_tag: Any, multiple: bool = False) -> None:
        """Acknowledge, and wake this connection's waiting drain (it may take one more message now)."""
        super().basic_ack(delivery_tag, multiple)
        self._ring()

    def basic_reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        """Reject (re-queued: published again), and wake this connection's waiting drain."""
        super().basic_reject(delivery_tag, requeue)
        self._ring()

    def _ring(self) -> None:
        # A late ack (the worker's pool finishing a task while the consumer stops) comes after
        # close() has let go of the connection: there is no drain left to wake.
        connection = self.connection
        if connection is not None:
            connection.doorbell_ring()


class Transport(sqlalchemy.Transport):
    """kombu transport for ``proactive+sqlite:///path``: woken polls, prompt shutdown."""

    Channel = Channel
    polling_interval = 0.05
    connection_errors = (*sqlalchemy.Transport.connection_errors, sqlite3.OperationalError)

    def __init__(self, client: Any, **kwargs: Any) -> None:
        self._closing = threading.Event()
        self._doorbell: Doorbell | None = None
        super().__init__(client, **kwargs)

    def doorbell(self) -> Doorbell:
        """This connection's doorbell (made on the first wait, before the first poll)."""
        if self._doorbell is None:
            self._doorbell = Doorbell(wake_dir(db_path(self.client.hostname)))
        return self._doorbell

    def doorbell_ring(self) -> None:
        """Wake this connection's waiting drain, if one waits."""
        if self._doorbell is not None:
            self._doorbell.ring()

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:
        """Deliver one message; between polls wait for a ring (``polling_interval`` at most), give
        up on shutdown."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bell = self.doorbell()
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
            bell.wait(wait)
        if self._closing.is_set():  # the waiter owns the doorbell: it removes it
            bell.close()
            self._doorbell = None
        raise TimeoutError()

    def establish_connection(self) -> Any:
        """Open (or re-open after a close) the virtual connection."""
        self._closing.clear()
        return super().establish_connection()

    def close_connection(self, connection: Any) -> None:
        """Wake a waiting ``drain_events`` (which then removes its doorbell) and close the channels."""
        self._closing.set()
        self.doorbell_ring()
        super().close_connection(connection)


@worker_shutdown.connect(weak=False)
def _freeze_gc_at_shutdown(sender: Any = None, **_kwargs: Any) -> None:
    """A worker on this broker is stopping: skip the interpreter's final collection (1-2 s for a
    loaded worker; nothing is left to collect that matters, the process ends)."""
    from celery.apps.worker import Worker  # the `celery worker` command (not an in-process WorkController)

    if isinstance(sender, Worker) and str(sender.app.conf.broker_url or "").startswith(f"{ALIAS}+"):
        gc.freeze()


def register() -> None:
    """Install the ``proactive`` transport alias in kombu (idempotent)."""
    TRANSPORT_ALIASES[ALIAS] = f"{__name__}:Transport"


register()
os.register_at_fork(after_in_child=_forget_connections)
