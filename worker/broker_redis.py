"""Redis broker: kombu's Redis transport with one client object per channel for publishing.

Why: kombu's Redis channel builds a new ``redis.Redis`` client for every message it publishes
(``Channel.conn_or_acquire``), and building one (its case-insensitive table of response callbacks)
cost about as much CPU as the rest of the publish on this project's hot paths (`POST /api/events`,
each step a worker hands on, every Slack click). The client is only a front for the channel's
connection pool, which it keeps using, so one per channel is safe across threads and after a fork
(redis-py's pool notices the new pid). Everything else is kombu's.

`redis://` and `rediss://` broker URLs select this transport once this module is imported
(`worker.celery_app` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """A Redis channel that reuses one publishing client."""

    _publish_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """The given client, else this channel's publishing client (built on first use)."""
        if client:
            yield client
            return
        if self._publish_client is None:
            self._publish_client = self._create_client()
        yield self._publish_client


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with `Channel` above."""

    Channel = Channel


def register() -> None:
    """Make `redis://` and `rediss://` URLs use this transport (idempotent)."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"


register()
