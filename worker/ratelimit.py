"""Shared pacing in the database: one slot per key (e.g. a Slack channel) for every worker.

Celery's `rate_limit` is per worker, so the budget lives in `rate_slots`: each key holds
the earliest time the next call may go. `reserve` takes the next slot with ONE statement,
`INSERT ... ON CONFLICT (key) DO UPDATE SET next_at_s = max(next_at_s, now) + interval RETURNING`,
which PostgreSQL runs under the row lock and SQLite under its write lock (BEGIN IMMEDIATE), so
concurrent callers on any number of machines get distinct slots `interval_s` apart.
Times are epoch seconds (float) so the same arithmetic works on both databases.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Double, func, literal

from worker.models import RateSlot

rate_slots = RateSlot.__table__


def _upsert(conn: Connection) -> object:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(rate_slots)


def reserve(conn: Connection, key: str, interval_s: float, now: datetime, burst_s: float = 0.0) -> float:
    """Take the next slot of `key`; returns how long to wait before using it (0.0 = go now).

    With `burst_s` > 0 the key is a token bucket holding `burst_s` seconds of slots: an idle key may
    spend that much at once (e.g. Gmail's 250 quota units of one second), then calls are paced.
    The slot is held whatever the caller does next: a caller that waits must come back and use
    it (not reserve again), or the key's calls drift further apart.
    """
    now_s = literal(now.timestamp(), Double)
    earliest = now_s - burst_s if burst_s > 0 else now_s
    greatest = func.greatest if conn.dialect.name == "postgresql" else func.max  # SQLite: scalar max()
    stmt = (
        _upsert(conn)  # type: ignore[attr-defined]
        .values(key=key, next_at_s=earliest + interval_s)
        .on_conflict_do_update(
            index_elements=["key"],
            set_={"next_at_s": greatest(rate_slots.c.next_at_s, earliest) + interval_s},
        )
        .returning(rate_slots.c.next_at_s)
    )
    next_at_s = float(conn.execute(stmt).scalar_one())
    return max(0.0, next_at_s - interval_s - now.timestamp())
