"""Redis broker: kombu's Redis transport with one client object per channel for publishing, and
(with ack emulation, off by default: worker/celery_app.py) an acknowledgement that frees its
prefetch slot even when Redis does not answer.

Why: kombu's Redis channel builds a new ``redis.Redis`` client for every message it publishes
(``Channel.conn_or_acquire``), and building one (its case-insensitive table of response callbacks)
cost about as much CPU as the rest of the publish on this project's hot paths (`POST /api/events`,
each step a worker hands on, every Slack click). The client is only a front for the channel's
connection pool, which it keeps using, so one per channel is safe across threads and after a fork
(redis-py's pool notices the new pid). Everything else is kombu's.

Why the ack (PROACTIVE_REDIS_ACK_EMULATION=1 only: without emulation kombu uses its in-memory
QoS, whose ack sends nothing to Redis): kombu's Redis QoS removes the message from its unacked
index in Redis first and frees the consumer's prefetch slot after; when that removal fails (Redis
hung or restarting: "Couldn't ack ..., reason:network"), Celery logs it and goes on, but the slot
stays taken for the life of the connection. A worker whose every slot met a failed ack never asks
Redis for a message again, without any error: after a Redis hang of a few seconds during busy acks,
the whole worker went deaf until restarted. The slot is now freed whatever Redis answered; the
message's copy left in the unacked index is re-delivered after the visibility timeout, and its
step's claim drops it.

`redis://` and `rediss://` broker URLs select this transport once this module is imported
(`worker.celery_app` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, virtual
from kombu.transport import redis as kombu_redis


class QoS(kombu_redis.QoS):
    """kombu's Redis QoS whose ack and reject free the prefetch slot even if Redis fails them."""

    def ack(self, delivery_tag: Any) -> None:
        """Remove the message from Redis's unacked index; free its slot however that went."""
        try:
            self._remove_from_indices(delivery_tag).execute()
        finally:
            virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        """Requeue or drop the message in Redis; free its slot however that went."""
        try:
            if requeue:
                self.restore_by_tag(delivery_tag, leftmost=True)
            else:
                self._remove_from_indices(delivery_tag).execute()
        finally:
            virtual.QoS.ack(self, delivery_tag)


class Channel(kombu_redis.Channel):
    """A Redis channel that reuses one publishing client and frees prefetch slots on failed acks."""

    QoS = QoS
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
