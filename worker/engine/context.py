"""What a skill receives and may return.

A skill is a plain function `skill(ctx: StepContext, inputs: Mapping[str, Any]) -> output`, where
`inputs` holds the outputs of every step upstream of it, direct dependencies or not (a skipped or
failed best-effort step is absent) and the output is a pydantic model, a dict, None, or a
`StepResult` when the skill also wants follow-up events or to report its cost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from worker.db import _after_commit, begin, session_factory, transaction
from worker.engine.effects import Prepare, run_once


@dataclass(frozen=True)
class FollowUp:
    """An event to fire when this job completes (source `chain`, depth + 1)."""

    type: str
    payload: Mapping[str, Any]
    user_id: uuid.UUID | None = None
    delay_minutes: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict stored on the step run until the job finishes."""
        return {
            "type": self.type,
            "payload": _jsonable(self.payload),
            "user_id": str(self.user_id) if self.user_id else None,
            "delay_minutes": self.delay_minutes,
        }


@dataclass
class StepResult:
    """A skill's output plus what the engine should do with it besides storing it."""

    output: Any = None
    follow_ups: list[FollowUp] = field(default_factory=list)
    cost_usd: float | None = None
    tokens: int | None = None


@dataclass
class StepContext:
    """Everything a skill may know about the job it runs in, and the engine services it may use."""

    org_id: uuid.UUID
    user_id: uuid.UUID | None
    job_id: uuid.UUID
    step_run_id: uuid.UUID
    event_type: str
    step: str
    attempt: int
    iteration: int
    payload: Mapping[str, Any]
    now: datetime
    source: str = ""
    depth: int = 0
    dry_run: bool = False  # record external sends instead of performing them (smoke, demo)
    max_attempts: int | None = None  # the step's attempt limit (None outside the engine; effects: the last decides)
    # The task's own connection, idle while the skill runs. With it, every `transaction()` and
    # `session()` of the skill shares one transaction, opened at the first use and committed when
    # the skill returns (rolled back when it raises) or at a `checkpoint()` before an outside call.
    # Without it (scripts, tests) each block is its own committed transaction.
    connection: Connection | None = field(default=None, repr=False)
    # Per-step memo for lookups several helpers repeat (the rep, the org's time zone...).
    memo: dict[str, Any] = field(default_factory=dict, repr=False)
    _scope: Any = field(default=None, repr=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session on the step's transaction. Filter every query by org_id."""
        if self.connection is None:
            with session_factory().begin() as session:
                yield session
            return
        with self.transaction() as conn, Session(bind=conn, expire_on_commit=False) as session:
            yield session  # it joins the open transaction: leaving it flushes, the scope commits
            session.flush()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A Core connection in the step's transaction. Filter every query by org_id."""
        if self.connection is None:
            with transaction() as conn:
                yield conn
            return
        if self._scope is None:
            self._scope = _Scope(self.connection)
        yield self.connection

    def checkpoint(self) -> None:
        """Commit what the skill wrote so far (and hand its queued messages over): called before an
        outside call (an email send, an LLM or API request), so no transaction stays open across it."""
        self.close_scope(commit=True)

    def close_scope(self, *, commit: bool) -> None:
        """End the step's shared transaction, if one is open (the engine calls this after the skill)."""
        scope, self._scope = self._scope, None
        if scope is not None:
            scope.close(commit)

    @contextmanager
    def committed_transaction(self) -> Iterator[Connection]:
        """A transaction of its own, committed when the block ends (effects need their rows durable
        before the outside call they guard)."""
        if self.connection is None:
            with transaction() as conn:
                yield conn
            return
        self.checkpoint()
        with begin(self.connection) as conn:
            yield conn

    def effect(
        self,
        name: str,
        perform: Callable[[], Mapping[str, Any] | None] | None = None,
        *,
        prepare: Prepare | None = None,
        retry_safe: bool = False,
    ) -> dict[str, Any]:
        """Perform an external side effect exactly once per job step: `perform` is the provider call,
        or `prepare` yields it after the preparation the `started` mark must not cover (see
        `worker.engine.effects`)."""
        return run_once(self, name, perform, prepare=prepare, retry_safe=retry_safe)


class _Scope:
    """A transaction on the task's connection spanning a skill's database work, with the after-commit
    hooks (message publishing) registered inside it."""

    def __init__(self, connection: Connection) -> None:
        self.hooks: list[Callable[[], None]] = []
        self.token = _after_commit.set(self.hooks)
        self.tx = connection.begin()

    def close(self, commit: bool) -> None:
        try:
            if commit:
                self.tx.commit()
            else:
                self.tx.rollback()
        finally:
            _after_commit.reset(self.token)
        if commit:
            for hook in self.hooks:
                hook()


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID | datetime):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def to_output(value: Any) -> dict[str, Any] | None:
    """Normalise a skill's return value to the JSON object stored on the step run."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    data = _jsonable(value)
    return data if isinstance(data, dict) else {"value": data}
