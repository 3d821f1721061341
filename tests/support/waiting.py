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
