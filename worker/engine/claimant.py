"""Which worker process this is, for the claims it makes.

A worker process registers a heartbeat instance at start (worker/engine/heartbeat.py) and every step
it claims records that instance in `step_runs.claimed_by`; a prefork child forked from it records
`<instance>/<child pid>`, so the main process, which keeps beating for the instance, can tell the
steps of a child that died from those of its live children. A process that is not a worker (a test,
a CLI command) claims with no claimant: its steps keep the lease rule alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from worker.models import worker_heartbeats

# What separates the instance from a pool child's pid in a claimant.
CHILD_SEP = "/"

_current: str | None = None
_owner_pid: int | None = None  # the process that registered the instance (a worker's main process)


def current() -> str | None:
    """The claimant of this process: the heartbeat instance id in the process that registered it,
    `<instance>/<pid>` in a pool child forked from it, None outside a worker."""
    if _current is None or _owner_pid in (None, os.getpid()):
        return _current
    return child_claimant(_current, os.getpid())


def set_current(instance: str | None) -> None:
    """Name this process's heartbeat instance (None: claims carry no claimant any more)."""
    global _current, _owner_pid
    _current = instance
    _owner_pid = os.getpid() if instance is not None else None


def child_claimant(instance: str, pid: int) -> str:
    """The claimant a pool child with this pid, forked from the worker of `instance`, claims as."""
    return f"{instance}{CHILD_SEP}{pid}"


def child_pid(claimant: str, instance: str) -> int | None:
    """The pid of the pool child of `instance` that claims as `claimant`, or None when `claimant` is
    not one of that instance's children."""
    prefix = instance + CHILD_SEP
    if not claimant.startswith(prefix) or not claimant[len(prefix) :].isdigit():
        return None
    return int(claimant[len(prefix) :])


def claimed_by_any(column: ColumnElement[Any], claimants: Sequence[str]) -> ColumnElement[bool]:
    """`column` (a `claimed_by`) names one of `claimants` or a pool child of one of them."""
    given = list(claimants)
    return or_(column.in_(given), *(column.startswith(c + CHILD_SEP) for c in given))


def orphaned(column: ColumnElement[Any], alive_since: datetime | None, claimants: Sequence[str] | None) -> list[Any]:
    """WHERE conditions on `column` (a `claimed_by`: steps' or outbox rows'): claimed, by a claimant
    with no heartbeat at or after `alive_since` (a pool child's claim lives and dies with its
    worker's heartbeat), and by one of `claimants` (or their children) when given. One rule for
    every kind of lease the heartbeats give back."""
    held: list[Any] = [column.is_not(None)]
    if alive_since is not None:
        hb = worker_heartbeats.c
        held.append(
            ~select(hb.instance)
            .where(
                hb.beat_at >= alive_since,
                or_(column == hb.instance, column.like(hb.instance.concat(CHILD_SEP + "%"))),
            )
            .exists()
        )
    if claimants is not None:
        held.append(claimed_by_any(column, claimants))
    return held
