"""How long a step took the last times this worker ran it, and which ready steps may therefore run
one after another in the task that made them ready instead of in parallel.

A step of a few milliseconds gains nothing from running beside its siblings on another worker: the
broker hop and the separate claim cost more than the step. A step that waits on an outside call
(an LLM, an API) gains its whole duration. The engine tells them apart by what it measured: a
running average per (sequence, step). The averages live in an anonymous shared memory map made at
import, before a prefork worker forks its pool, so every pool process of a worker reads what any of
them measured (the process that completes a step is rarely the one that ran its sibling). A new
worker starts with none: a step is published until the worker has run it.
"""

from __future__ import annotations

import mmap
import zlib
from dataclasses import dataclass

# Weight of the newest measurement in the running average.
WEIGHT = 0.2
# Slots of the shared table (steps of all sequences; a full table forgets nothing, it measures no more).
SLOTS = 1024
# Slots looked at from a key's home slot (open addressing).
PROBES = 8


class Durations:
    """Running averages of step durations (milliseconds) by key, shared by the processes forked after
    it was made. Writes race without locks: a torn read is a slightly stale average, never an error
    (the averages only choose between running a step here or publishing it)."""

    def __init__(self, weight: float = WEIGHT, slots: int = SLOTS) -> None:
        self.weight = weight
        self._map = mmap.mmap(-1, 16 * slots)  # anonymous and shared: inherited by forked processes
        self._keys = memoryview(self._map)[: 8 * slots].cast("q")
        self._ms = memoryview(self._map)[8 * slots :].cast("d")
        self._home: dict[tuple[str, str], tuple[int, int]] = {}  # key -> (its tag, its home slot)

    def observe(self, key: tuple[str, str], ms: float) -> None:
        """Fold one run's duration into the average of `key` (the first run sets it)."""
        slot = self._slot(key, claim=True)
        if slot is None:
            return
        old = self._ms[slot]
        self._ms[slot] = ms if old < 0 else old + self.weight * (ms - old)

    def expected(self, key: tuple[str, str]) -> float | None:
        """The average duration of `key`, or None when no process of this worker has run it."""
        slot = self._slot(key, claim=False)
        if slot is None:
            return None
        ms = self._ms[slot]
        return None if ms < 0 else ms

    def _slot(self, key: tuple[str, str], *, claim: bool) -> int | None:
        if key not in self._home:
            tag = zlib.crc32(f"{key[0]}/{key[1]}".encode()) + 1  # never 0: 0 marks a free slot
            self._home[key] = (tag, tag % len(self._keys))
        tag, home = self._home[key]
        for i in range(PROBES):
            slot = (home + i) % len(self._keys)
            found = self._keys[slot]
            if found == tag:
                return slot
            if found == 0:
                if not claim:
                    return None
                self._ms[slot] = -1.0  # no measurement yet; then the tag makes the slot this key's
                self._keys[slot] = tag
                return slot
        return None


@dataclass
class JoinBudget:
    """Which ready steps join the one a task runs inline, one after another in that task: each measured
    here, together with the inline step and those joined before it expected to take at most `cap_ms`.
    A step of unknown duration is left out (published, to run in parallel), and so is every one when
    the inline step's duration is unknown or `cap_ms` is 0."""

    cap_ms: float
    total_ms: float | None = None  # what the steps held so far are expected to take; None: unknown

    def start(self, first_ms: float | None) -> None:
        """The inline step, expected to take `first_ms` (None: unknown)."""
        self.total_ms = first_ms

    def admits(self, ms: float | None) -> bool:
        """True, and counted, when a step expected to take `ms` joins."""
        if self.cap_ms <= 0 or self.total_ms is None or ms is None or self.total_ms + ms > self.cap_ms:
            return False
        self.total_ms += ms
        return True
