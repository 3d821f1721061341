"""External side effects performed at most once per job step, even when the step is retried.

Before a skill sends an email or creates a calendar event it calls `ctx.effect(name, perform)`:
an `effects` row keyed by (job, step, iteration, name) is inserted `started` and committed, then
`perform()` runs, then the row becomes `done` with its result. A retry of the step finds `done`
and gets the stored result back instead of sending again. A row left `started` by an attempt that
crashed mid-call is ambiguous (the provider may or may not have acted): unless the effect is
declared `retry_safe` (the provider deduplicates, e.g. our own event id), the step fails
permanently rather than risk a duplicate. A `perform()` that raises marks the row `failed`, which
a later attempt may try again: raise only when nothing was sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select, update

from worker.errors import EffectUncertain
from worker.jobstore import insert_ignoring_conflicts
from worker.models import Effect, utcnow

if TYPE_CHECKING:
    from worker.context import StepContext

effects = Effect.__table__
# Failures after which we cannot know whether the provider acted.
AMBIGUOUS: tuple[type[BaseException], ...] = (SoftTimeLimitExceeded, TimeoutError)


def effect_key(ctx: StepContext, name: str) -> str:
    """The unique key of effect `name` of this job step (iteration included: a re-run may act again)."""
    return f"{ctx.job_id}:{ctx.step}:{ctx.iteration}:{name}"


def _insert(conn: Any, ctx: StepContext, key: str, now: Any, **values: Any) -> Any:
    """Insert the effect's row unless its key exists; the new row's result, or None on a conflict."""
    return conn.execute(
        insert_ignoring_conflicts(conn, effects, ["key"])
        .values(
            id=uuid.uuid4(),
            org_id=ctx.org_id,
            job_id=ctx.job_id,
            step=ctx.step,
            key=key,
            attempt=ctx.attempt,
            created_at=now,
            **values,
        )
        .returning(effects.c.result)
    ).first()


def run_once(
    ctx: StepContext, name: str, perform: Callable[[], Mapping[str, Any] | None], *, retry_safe: bool = False
) -> dict[str, Any]:
    """Run `perform` unless this effect already happened; returns its (stored) result."""
    key = effect_key(ctx, name)
    now = utcnow()
    with ctx.committed_transaction() as conn:
        inserted = _insert(conn, ctx, key, now, status="started")
        if inserted is None:
            row = conn.execute(
                select(effects.c.status, effects.c.result, effects.c.attempt).where(
                    effects.c.key == key, effects.c.org_id == ctx.org_id
                )
            ).one()
            if row.status == "done":
                return dict(row.result or {})
            if row.status == "started" and row.attempt != ctx.attempt and not retry_safe:
                raise EffectUncertain(
                    f"side effect {name!r} was started by attempt {row.attempt}, which did not finish; it "
                    "may have happened, so it is not repeated (check the provider, then re-fire with a new key)"
                )
            conn.execute(update(effects).where(effects.c.key == key).values(status="started", attempt=ctx.attempt))
    try:
        result = dict(perform() or {})
    except AMBIGUOUS:
        raise  # the request may have reached the provider: the row stays `started`
    except Exception:
        with ctx.committed_transaction() as conn:
            conn.execute(update(effects).where(effects.c.key == key).values(status="failed"))
        raise
    with ctx.committed_transaction() as conn:
        conn.execute(update(effects).where(effects.c.key == key).values(status="done", result=result, done_at=utcnow()))
    return result


def record(ctx: StepContext, name: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """Store an effect that needs no outside call (a dry run's "would have sent") as done, once,
    in one statement; a retried step gets the first stored result back."""
    key = effect_key(ctx, name)
    now = utcnow()
    with ctx.committed_transaction() as conn:
        inserted = _insert(conn, ctx, key, now, status="done", result=dict(result), done_at=now)
        if inserted is not None:
            return dict(inserted.result or {})
        stored = conn.execute(
            select(effects.c.result).where(effects.c.key == key, effects.c.org_id == ctx.org_id)
        ).scalar()
    return dict(stored or {})
