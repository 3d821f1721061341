"""Integration tests for the embedded SQLite broker transport (worker/brokers/sqlite.py)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kombu import Connection, Consumer, Queue

from worker.brokers import sqlite as broker_sqlite

REPO = Path(__file__).resolve().parents[2]
FORK = multiprocessing.get_context("fork")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)  # poll until the deadline


def broker_url(db: Path) -> str:
    return f"proactive+sqlite:///{db}"


def rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM proactive_message").fetchone()[0]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "not" / "yet" / "broker.db"  # the transport creates the directory


@pytest.fixture
def conn(db: Path) -> Iterator[Connection]:
    with Connection(broker_url(db)) as c:
        yield c


def test_url_selects_our_transport(db: Path, conn: Connection) -> None:
    broker_sqlite.register()  # idempotent
    assert isinstance(conn.transport, broker_sqlite.Transport)
    assert conn.hostname == f"sqlite:///{db}"
    assert conn.as_uri() == broker_url(db)
    alt = Connection(f"sqlite:///{db}", transport="worker.brokers.sqlite:Transport")
    assert isinstance(alt.transport, broker_sqlite.Transport)
    # the stock transport would hand this to create_engine() and crash
    with Connection(broker_url(db), transport_options={"polling_interval": 0.01}) as c:
        c.SimpleQueue("opts").put("ok")


def test_round_trip_deletes_row_on_fetch(db: Path, conn: Connection) -> None:
    q = conn.SimpleQueue("rt")
    q.put({"hello": "world"})
    assert db.exists()
    assert rows(db) == 1
    assert q.qsize() == 1
    msg = q.get(timeout=2)
    assert msg.payload == {"hello": "world"}
    assert rows(db) == 0  # gone at fetch time, before the ack
    msg.ack()
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    q.close()


def test_fifo_size_and_purge(conn: Connection) -> None:
    q = conn.SimpleQueue("fifo")
    for i in range(50):
        q.put(i)
    assert q.qsize() == 50
    got = []
    for _ in range(25):
        m = q.get(timeout=2)
        got.append(m.payload)
        m.ack()
    assert got == list(range(25))
    assert q.clear() == 25
    assert q.qsize() == 0
    q.close()


def test_size_and_purge_on_a_queue_this_process_never_declared(db: Path, conn: Connection) -> None:
    conn.SimpleQueue("other").put("x")
    with Connection(broker_url(db)) as fresh:  # empty queue-id cache: the id lookup must not nest
        started = time.monotonic()
        assert fresh.default_channel._size("other") == 1
        assert fresh.default_channel.queue_purge("other") == 1
        assert fresh.default_channel.queue_purge("brand-new") == 0
        assert time.monotonic() - started < 1.0  # no wait on our own write lock


def _produce(url: str, n: int, consumers: int) -> None:
    with Connection(url) as c:
        q = c.SimpleQueue("race")
        for i in range(n):
            q.put(i)
        for _ in range(consumers):
            q.put("stop")  # FIFO: every number is fetched before the sentinels


def _consume(url: str, out: str) -> None:
    try:
        _consume_into(url, out)
    except BaseException:  # the parent's assertion shows why this child failed
        Path(out + ".error").write_text(traceback.format_exc())
        raise


def _consume_into(url: str, out: str) -> None:
    got: list[int] = []
    deadline = time.monotonic() + 30
    with Connection(url) as c:
        q = c.SimpleQueue("race")
        while time.monotonic() < deadline:
            try:
                m = q.get(timeout=5)
            except q.Empty:  # the producer has not started yet (a loaded machine): keep waiting
                continue
            m.ack()
            if m.payload == "stop":
                break
            got.append(m.payload)
        q.close()
    Path(out).write_text(json.dumps(got))


def test_two_consumer_processes_get_each_message_once(db: Path, tmp_path: Path) -> None:
    url, n = broker_url(db), 1000
    outs = [tmp_path / f"consumer{i}.json" for i in range(2)]
    procs = [FORK.Process(target=_consume, args=(url, str(o))) for o in outs]
    procs.append(FORK.Process(target=_produce, args=(url, n, 2)))
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(45)
            errors = [e.read_text() for e in tmp_path.glob("*.error")]
            assert p.exitcode == 0, errors
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    counts = [json.loads(o.read_text()) for o in outs]
    everything = counts[0] + counts[1]
    assert sorted(everything) == list(range(n))  # no loss, no duplicate
    assert rows(db) == 0


def test_forked_child_gets_its_own_connection(db: Path, conn: Connection) -> None:
    q = conn.SimpleQueue("fork")
    q.put("from parent")
    parent_conn = broker_sqlite.connection(str(db))
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            child_conn = broker_sqlite.connection(str(db))
            with Connection(broker_url(db)) as c:
                c.SimpleQueue("fork").put("from child")
            code = 0 if child_conn is not parent_conn else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert broker_sqlite.connection(str(db)) is parent_conn
    got = []
    for _ in range(2):  # the parent's connection still works after the child exited
        m = q.get(timeout=2)
        got.append(m.payload)
        m.ack()
    assert got == ["from parent", "from child"]
    q.close()


def _drain_in_thread(conn: Connection, timeout: float) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def drain() -> None:
        try:
            conn.drain_events(timeout=timeout)
        except Exception as exc:
            errors.append(exc)

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    return t, errors


def _waiting(conn: Connection) -> bool:
    bell = conn.transport._doorbell
    return bell is not None and bell.path is not None and Path(bell.path).exists()


def test_close_wakes_a_blocked_drain(conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """What WorkController.stop() from another thread relies on: close() ends the wait at once."""
    monkeypatch.setattr(conn.transport, "polling_interval", 30.0)  # only a wake-up can end the wait early
    Consumer(conn, [Queue("idle")], callbacks=[lambda body, msg: None]).consume()
    t, errors = _drain_in_thread(conn, 60)
    wait_for(lambda: _waiting(conn), 2, "drain_events to wait on its doorbell")
    bell_path = conn.transport._doorbell.path
    started = time.monotonic()
    conn.transport.close_connection(conn.connection)
    t.join(2)
    assert not t.is_alive()
    assert time.monotonic() - started < 0.5
    assert [type(e) for e in errors] == [TimeoutError]
    assert not Path(bell_path).exists()  # the waiter removed its socket


def _publish_from_child(url: str) -> None:
    with Connection(url) as c:
        c.SimpleQueue("wake").put("from another process")


def test_a_publish_from_another_process_wakes_a_waiting_consumer(
    db: Path, conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conn.transport, "polling_interval", 30.0)  # only a wake-up delivers in time
    got: list[object] = []

    def on_message(body: object, msg: object) -> None:
        got.append(body)
        msg.ack()

    Consumer(conn, [Queue("wake")], callbacks=[on_message]).consume()
    t, errors = _drain_in_thread(conn, 20)
    wait_for(lambda: _waiting(conn), 2, "drain_events to wait on its doorbell")
    started = time.monotonic()
    child = FORK.Process(target=_publish_from_child, args=(broker_url(db),))
    child.start()
    child.join(20)
    t.join(5)
    assert not t.is_alive() and not errors
    assert got == ["from another process"]
    assert time.monotonic() - started < 5  # woken, not the 30 s poll


def test_an_ack_wakes_a_consumer_held_back_by_its_prefetch_limit(
    conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A threads-pool worker: the consumer waits while its prefetch window is full; the ack (from
    another thread) must let it fetch the next message at once, not after a poll interval."""
    monkeypatch.setattr(conn.transport, "polling_interval", 30.0)
    held: list[object] = []
    channel = conn.channel()
    channel.basic_qos(0, 1, False)
    Consumer(channel, [Queue("held")], callbacks=[lambda body, msg: held.append(msg)]).consume()
    producer = conn.SimpleQueue("held")
    producer.put(1)
    producer.put(2)
    conn.drain_events(timeout=5)  # the first message: the window (1) is full now
    assert len(held) == 1
    t, errors = _drain_in_thread(conn, 20)
    wait_for(lambda: _waiting(conn), 2, "drain_events to wait on its doorbell")
    started = time.monotonic()
    held[0].ack()
    t.join(5)
    assert not t.is_alive() and not errors
    assert len(held) == 2 and time.monotonic() - started < 5
    held[1].ack()
    producer.close()


def test_a_late_ack_after_the_channel_closed_is_harmless(db: Path, conn: Connection) -> None:
    """A worker's pool can finish a task after the consumer closed its channel (an in-process
    worker stopping): the ack then has no drain to wake and must not raise; the message, restored
    at the close, is delivered again (acks_late: at least once)."""
    held: list[object] = []
    channel = conn.channel()
    Consumer(channel, [Queue("late")], callbacks=[lambda body, msg: held.append(msg)]).consume()
    conn.SimpleQueue("late").put(1)
    conn.drain_events(timeout=5)
    assert len(held) == 1
    channel.close()
    held[0].ack()  # raised AttributeError ('NoneType' ... 'doorbell_ring') before
    again = conn.SimpleQueue("late")
    assert again.get(timeout=5).payload == 1
    again.close()


def test_stale_doorbells_are_removed_by_a_publisher(db: Path, conn: Connection) -> None:
    wake = broker_sqlite.wake_dir(str(db))
    assert wake is not None
    conn.SimpleQueue("stale").put(0)  # makes the file (and its directory), no consumer yet
    wake.mkdir(parents=True, exist_ok=True)
    stale = wake / "999999999-dead"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(stale))
    sock.close()  # the file stays, nobody listens: what a killed consumer leaves
    conn.SimpleQueue("stale").put(1)
    assert not stale.exists()


def _record_count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
@pytest.mark.parametrize(("pool", "max_exit_s"), [("solo", 2.0), ("prefork", 5.0)])
def test_celery_worker_runs_each_task_once_and_stops(db: Path, tmp_path: Path, pool: str, max_exit_s: float) -> None:
    from tests.support.broker_app import app, record

    url, record_file, log = broker_url(db), tmp_path / "records.txt", tmp_path / "worker.log"
    env = {**os.environ, "BROKER_URL": url, "RECORD_FILE": str(record_file)}
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.support.broker_app",
        "worker",
        "--pool",
        pool,
        "-c",
        "2",
        "-l",
        "warning",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]
    with log.open("w") as out:
        worker = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        with app.connection_for_write(url) as c:
            for i in range(200):
                record.apply_async((i, time.time()), connection=c)
        wait_for(lambda: _record_count(record_file) >= 200, 30, "200 tasks")
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        worker.wait(15)
        exit_s = time.monotonic() - started
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, log.read_text()
    assert exit_s < max_exit_s, f"worker took {exit_s:.2f}s to stop"
    done = [int(line.split()[0]) for line in record_file.read_text().splitlines()]
    assert sorted(done) == list(range(200))  # exactly once
    assert rows(db) == 0


@pytest.mark.slow
def test_in_process_work_controller_stops_promptly(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's mode: WorkController(pool="solo") in a daemon thread, ended with .stop()."""
    from tests.support.broker_app import app, record

    record_file = tmp_path / "records.txt"
    monkeypatch.setenv("RECORD_FILE", str(record_file))
    monkeypatch.setattr(app.conf, "broker_url", broker_url(db))
    wc = app.WorkController(
        pool="solo",
        concurrency=1,
        without_mingle=True,
        without_gossip=True,
        without_heartbeat=True,
        loglevel="WARNING",
    )

    def run() -> None:
        app.set_current()  # the solo pool finds its tasks in its thread's current app
        wc.start()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        with app.connection_for_write(broker_url(db)) as c:
            for i in range(20):
                record.apply_async((i,), connection=c)
        wait_for(lambda: _record_count(record_file) >= 20, 15, "20 tasks")
        assert thread.is_alive()
        started = time.monotonic()
        wc.stop()
        thread.join(5)
        assert not thread.is_alive()
        assert time.monotonic() - started < 1.0
    finally:
        if thread.is_alive():
            wc.terminate()
    assert sorted(int(x.split()[0]) for x in record_file.read_text().splitlines()) == list(range(20))
