"""worker/db.py `once_more_on_disconnect`: a lost connection gets one more run, anything else none."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from worker.db import is_disconnect, once_more_on_disconnect


class Cut(Exception):
    """The driver's error for a terminated session."""


def lost() -> OperationalError:
    return OperationalError(
        "SELECT 1", {}, Cut("terminating connection due to administrator command"), connection_invalidated=True
    )


def refused() -> OperationalError:
    return OperationalError("SELECT 1", {}, Cut("deadlock detected"))


class Work:
    """Fails with the given errors in turn, then answers 'done'; counts its runs."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.runs = 0

    def __call__(self) -> str:
        self.runs += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_a_lost_connection_is_a_disconnect_other_errors_are_not():
    assert is_disconnect(lost()) and not is_disconnect(refused()) and not is_disconnect(ValueError())


def test_work_that_met_a_lost_connection_runs_once_more():
    work = Work(lost())
    assert once_more_on_disconnect(work, "test") == "done" and work.runs == 2


def test_only_once_more():
    work = Work(lost(), lost())
    with pytest.raises(OperationalError):
        once_more_on_disconnect(work, "test")
    assert work.runs == 2


def test_other_database_errors_are_not_repeated():
    work = Work(refused())
    with pytest.raises(OperationalError):
        once_more_on_disconnect(work, "test")
    assert work.runs == 1
