"""Helpers for tests of the web edge: table counts (a refusal changes nothing but rejected_events),
a temporary change of the environment (database or broker down), a port nothing listens on."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import apply_env
from worker.db import transaction
from worker.models import ApiKey, Meeting, RejectedEvent, SlackOutbox, approvals, jobs, steps

COUNTED = {
    "jobs": jobs,
    "steps": steps,
    "approvals": approvals,
    "outbox": SlackOutbox.__table__,
    "meetings": Meeting.__table__,
    "api_keys": ApiKey.__table__,
    "rejected": RejectedEvent.__table__,
}


def db_counts() -> dict[str, int]:
    """Row counts of the tables an edge request could change."""
    with transaction() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one() for name, table in COUNTED.items()
        }


def refusal_delta(before: dict[str, int]) -> dict[str, int]:
    """What changed since `before`, as {table: difference} for tables that changed."""
    after = db_counts()
    return {name: after[name] - before[name] for name in after if after[name] != before[name]}


def latest_rejected() -> Any:
    """The newest rejected_events row."""
    table = RejectedEvent.__table__
    with transaction() as conn:
        return conn.execute(select(table).order_by(table.c.created_at.desc()).limit(1)).one()


def closed_port() -> int:
    """A local TCP port with no listener (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def env_changed(env: dict[str, str], **changes: str) -> Iterator[None]:
    """Point this process at `env` updated with `changes`; back at `env` afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        apply_env(mp, {**env, **changes})
        try:
            yield
        finally:
            mp.undo()
            apply_env(mp, env)
