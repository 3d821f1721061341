"""A process's short memory of facts that rarely change (API key -> org, Slack user -> Proactive
user): remembered for a few seconds so a burst of requests costs one database read, never trusted
longer. Thread-safe enough for gunicorn's threads: single dict operations only."""

from __future__ import annotations

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ShortMemory(Generic[K, V]):
    """Values remembered for `ttl_s` seconds, at most `max_entries` of them (all forgotten when full)."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._items: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> V | None:
        """The remembered value, or None when unknown or too old."""
        hit = self._items.get(key)
        if hit is None or hit[1] <= time.monotonic():
            return None
        return hit[0]

    def put(self, key: K, value: V) -> None:
        """Remember `value` for `ttl_s` seconds."""
        if len(self._items) >= self.max_entries:
            self._items.clear()
        self._items[key] = (value, time.monotonic() + self.ttl_s)

    def forget(self, key: K | None = None) -> None:
        """Forget `key`, or everything."""
        if key is None:
            self._items.clear()
        else:
            self._items.pop(key, None)
