"""Shared pacing in the database: one slot per key (e.g. a Slack channel) for every worker.

Celery's `rate_limit` is per worker, so the budget lives in `rate_slots`: each key holds
the earliest time the next call may go. `reserve` takes the next slot with ONE statement,
`INSERT ... ON CONFLICT (key) DO UPDATE SET next_at_s = max(next_at_s, now) + interval RETURNING`,
which PostgreSQL runs under the row lock and SQLite under its write lock (BEGIN IMMEDIATE), so
concurrent callers on any number of machines get distinct slots `interval_s` apart.
Times are epoch seconds (float) so the same arithmetic works on both databases.

`take` is the refusing variant: it takes a token only when the bucket holds one (within a wait the
caller accepts) and otherwise says how long until it does, taking nothing: the per-org events limit
at the edge (wait 0) and `pace`, the Instantly and LLM clients' pacing (wait <= PACE_WAIT_MAX_S).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import Connection, Double, func, literal, select, update

from worker.db import transaction
from worker.errors import RateLimited
from worker.models import RateSlot

rate_slots = RateSlot.__table__
# Longest a client call waits for its slot in the worker (seconds); beyond it the step is retried later.
PACE_WAIT_MAX_S = 2.0


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


def bucket(rate_per_s: float, burst: float) -> tuple[float, float]:
    """(interval_s, burst_s) of a token bucket of `burst` tokens refilled at `rate_per_s` (pure):
    the arguments `reserve` and `take` take. A burst below one token is one token."""
    interval_s = 1.0 / rate_per_s
    return interval_s, max(1.0, burst) * interval_s


class Take(NamedTuple):
    """What `take` did: whether a token was taken, and the seconds until it may be used (taken) or
    until one is there (not taken)."""

    taken: bool
    wait_s: float


def take(conn: Connection, key: str, interval_s: float, now: datetime, burst_s: float, max_wait_s: float = 0.0) -> Take:
    """Take one token of `key`'s bucket if it is there within `max_wait_s` seconds (0: now), else take
    nothing, so a refused caller never pushes the bucket further (unlike `reserve`).

    The bucket holds `burst_s / interval_s` tokens and gains one every `interval_s` (`bucket()`
    converts a rate and a burst). `next_at_s` is when the tokens taken so far are paid off; the next
    token is there at `max(next_at_s, now - burst_s) + interval_s`. ONE statement when taken (an
    upsert whose update has that condition as WHERE: a refused update returns no row); a refusal
    reads the row once more for its wait. Concurrent callers in any process take distinct tokens
    (the row lock on PostgreSQL, the write lock on SQLite), so every worker shares the bucket.
    """
    now_f = now.timestamp()
    burst_s = max(burst_s, interval_s)
    now_s = literal(now_f, Double)
    greatest = func.greatest if conn.dialect.name == "postgresql" else func.max  # SQLite: scalar max()
    ready_at = greatest(rate_slots.c.next_at_s, now_s - burst_s) + interval_s
    stmt = (
        _upsert(conn)  # type: ignore[attr-defined]
        .values(key=key, next_at_s=now_s - burst_s + interval_s)
        .on_conflict_do_update(
            index_elements=["key"], set_={"next_at_s": ready_at}, where=ready_at <= now_s + max_wait_s
        )
        .returning(rate_slots.c.next_at_s)
    )
    taken = conn.execute(stmt).scalar()
    if taken is not None:
        return Take(True, max(0.0, float(taken) - now_f))
    next_at_s = conn.execute(select(rate_slots.c.next_at_s).where(rate_slots.c.key == key)).scalar()
    ready = (float(next_at_s) if next_at_s is not None else now_f) + interval_s
    return Take(False, max(ready - now_f, 1e-3))


def give_back(conn: Connection, key: str, interval_s: float) -> None:
    """Return one token taken with `take` whose use was refused after all (one statement; a bucket
    that refilled meanwhile stays full: `take` never counts more than `burst_s`)."""
    conn.execute(
        update(rate_slots).where(rate_slots.c.key == key).values(next_at_s=rate_slots.c.next_at_s - interval_s)
    )


def pace(key: str, rate_per_s: float, burst: float, what: str, *, max_wait_s: float = PACE_WAIT_MAX_S) -> None:
    """Wait for a token of `key` (a client's calls to a provider, shared by every worker), at most
    `max_wait_s` seconds; RateLimited with the wait when it is further off, so the step is retried
    then instead of holding a worker. `rate_per_s` <= 0 does nothing (pacing off)."""
    if rate_per_s <= 0:
        return
    interval_s, burst_s = bucket(rate_per_s, burst)
    with transaction() as conn:
        got = take(conn, key, interval_s, datetime.now(UTC), burst_s, max_wait_s)
    if not got.taken:
        raise RateLimited(f"{what}: our pacing allows the next call in {got.wait_s:.1f} s", retry_after_s=got.wait_s)
    if got.wait_s > 0:
        time.sleep(got.wait_s)
