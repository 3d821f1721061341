"""Wait on a condition with a deadline, never on a clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Pause between two checks of a condition (seconds): short, the checks are cheap queries.
POLL_S = 0.05


class WaitTimeout(AssertionError):
    """The condition did not hold before the deadline; the message says what was seen last."""


def wait_for(check: Callable[[], T], *, timeout_s: float = 20.0, what: str = "condition") -> T:
    """Call `check` until it returns a truthy value; return it, or raise with the last value seen."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"{what} not reached within {timeout_s} s; last value: {last!r}")
        time.sleep(POLL_S)


def holds_for(check: Callable[[], object], *, duration_s: float, what: str = "condition") -> None:
    """Check that `check` stays truthy for a whole window of `duration_s` (what must NOT happen while
    time passes, e.g. an idle consumer must outlive several socket timeouts); raise at the first
    falsy value. An observation window, not a way to synchronise with something."""
    until = time.monotonic() + duration_s
    while time.monotonic() < until:
        if not check():
            raise AssertionError(f"{what} stopped holding within {duration_s} s")
        time.sleep(POLL_S)
