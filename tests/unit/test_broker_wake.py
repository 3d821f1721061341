"""Wake-ups of the embedded SQLite broker (worker/brokers/sqlite.py): where the doorbells live, and
that a ring ends a doorbell's wait at once."""

from __future__ import annotations

import os
import time
from pathlib import Path

from worker.brokers import sqlite as broker_sqlite


def test_wake_dir_beside_the_file_when_a_socket_path_fits() -> None:
    assert broker_sqlite.wake_dir("/srv/proactive/broker.db") == Path("/srv/proactive/broker.db.wake")


def test_wake_dir_in_tmp_for_a_deep_path_the_same_for_every_process(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120) / "broker.db"
    found = broker_sqlite.wake_dir(str(deep))
    assert found is not None and len(str(found)) + 40 <= broker_sqlite.MAX_SOCKET_PATH
    assert found == broker_sqlite.wake_dir(str(deep))
    assert found != broker_sqlite.wake_dir(str(tmp_path / ("e" * 120) / "broker.db"))


def test_no_wake_dir_in_memory() -> None:
    assert broker_sqlite.wake_dir(":memory:") is None
    broker_sqlite.ring(None)  # nothing to wake, no error


def test_a_ring_ends_the_wait_and_is_swallowed(tmp_path: Path) -> None:
    wake = broker_sqlite.wake_dir(str(tmp_path / "broker.db"))  # beside it or in /tmp: a path that fits
    assert wake is not None
    bell = broker_sqlite.Doorbell(wake)
    try:
        assert bell.path is not None and os.path.dirname(bell.path) == str(wake)
        broker_sqlite.ring(wake)
        broker_sqlite.ring(wake)
        started = time.monotonic()
        bell.wait(10)
        assert time.monotonic() - started < 1  # rung: no 10 s wait
        started = time.monotonic()
        bell.wait(0.05)  # both rings were swallowed by the first wait
        assert time.monotonic() - started >= 0.04
    finally:
        bell.close()
    assert not os.listdir(wake)


def test_ring_without_any_consumer_is_a_no_op(tmp_path: Path) -> None:
    broker_sqlite.ring(tmp_path / "nobody-waited.wake")
    assert not (tmp_path / "nobody-waited.wake").exists()


def test_a_doorbell_that_cannot_bind_only_polls(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the directory would be: mkdir fails
    bell = broker_sqlite.Doorbell(blocker / "wake")
    assert bell.sock is None
    started = time.monotonic()
    bell.wait(0.02)
    bell.ring()  # no socket: nothing happens
    bell.close()
    assert time.monotonic() - started >= 0.015
