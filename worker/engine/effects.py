"""External side effects performed exactly once per job step, even when the step is retried or its
worker is killed mid-send.

A skill sends an email or creates a calendar event through `ctx.effect(name, prepare=...)`.
`prepare` is a context manager that does everything that needs no provider write (credentials, the
client, the per-user quota wait) and yields a `Prepared`: the provider `call` itself and, where the
provider can answer it, `find` (is the effect already there?). Only then is an `effects` row keyed
by (job, step, iteration, name) committed `started`; `call()` runs; the row becomes `done` with its
result. So `started` covers the provider call alone: a crash during preparation leaves no mark and
the retry simply acts. A retry that finds `done` gets the stored result back.

A row left `started` by an attempt that died mid-call is ambiguous, and is settled by asking the
provider (reconciliation): `find()` returns the earlier attempt's result (the row becomes `done`
with it, nothing is sent again) or None (it did not happen: the retry takes the row over and
acts). Gmail messages carry a Message-ID derived from the effect key and are searched for with
`rfc822msgid:`; Calendar events use an id derived from the key (`retry_safe`: Calendar answers 409
to a repeat and the insert returns the existing event). Only when the provider cannot answer (an
effect has no `find`, the search is refused (403, 400), or it failed transiently (429, 5xx, timeout)
on the step's last attempt) does the step fail with `EffectUncertain` ("may have happened", with
what to check), which the rep sees as "maybe sent: check your Sent folder". A transient search
failure before the last attempt leaves the row as it is and raises, so the step is retried with
backoff and the next attempt asks again.

A `call()` that raises marks the row `failed`, which a later attempt tries again; where the provider
can be asked (`find`), that attempt first looks for the effect, since a transport error (a timeout
after Gmail accepted the message) may hide a call that went through (a search that cannot answer is
handled as above). A `SoftTimeLimitExceeded`, `TimeoutError` or `AnswerLost` (`AMBIGUOUS`: the
request was sent and its answer lost) leaves the row `started` for reconciliation. The older form
`ctx.effect(name, perform)` still works: `perform` is the call, with no preparation and no `find`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select, update

from worker.engine.jobstore import insert_ignoring_conflicts
from worker.engine.retry import classify
from worker.engine.states import EFFECT_TRANSITIONS, EffectStatus, check_transition, predecessors
from worker.errors import AnswerLost, EffectUncertain
from worker.models import Effect, utcnow

if TYPE_CHECKING:
    from worker.engine.context import StepContext

effects = Effect.__table__
# Failures after which we cannot know whether the provider acted.
AMBIGUOUS: tuple[type[BaseException], ...] = (SoftTimeLimitExceeded, TimeoutError, AnswerLost)
# Search failures worth asking again on a later attempt (the engine retries them with backoff).
TRANSIENT_CLASSES = frozenset({"transient", "rate_limited"})

Result = Mapping[str, Any] | None


@dataclass(frozen=True)
class Prepared:
    """What an effect's preparation hands `run_once`: the provider call (the only part the `started`
    mark covers) and, when the provider can tell, how to find an earlier attempt's effect there."""

    call: Callable[[], Result]
    # The earlier attempt's result if the provider has the effect, None if it does not; raises when
    # the provider cannot tell.
    find: Callable[[], Result] | None = None
    # What a person should look at when nobody can tell (shown in EffectUncertain).
    check: str = "the provider"


Prepare = Callable[[], AbstractContextManager[Prepared]]


class _Claim(Enum):
    GO = "go"  # the row is `started` by this attempt: call the provider
    DONE = "done"  # an earlier attempt finished: its result is stored
    ORPHANED = "orphaned"  # `started` by an attempt that did not finish: ask the provider
    AFTER_FAILURE = "after_failure"  # `started` again after a failed call: ask the provider if it can


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


def _move(conn: Any, ctx: StepContext, key: str, new: EffectStatus, **values: Any) -> None:
    """Move the effect's row to `new` from a legal predecessor (the table in worker/engine/states.py)."""
    allowed = [s.value for s in predecessors(EFFECT_TRANSITIONS, new)]
    conn.execute(
        update(effects)
        .where(effects.c.key == key, effects.c.org_id == ctx.org_id, effects.c.status.in_(allowed))
        .values(status=new.value, **values)
    )


def _claim(conn: Any, ctx: StepContext, key: str, *, take_orphan: bool) -> tuple[_Claim, Any]:
    """Mark the effect `started` by this attempt unless it is done or another attempt's `started`
    row stands (taken over at once when `take_orphan`): what to do next, with the stored result
    (DONE) or the earlier attempt's number (ORPHANED, AFTER_FAILURE)."""
    if _insert(conn, ctx, key, utcnow(), status=EffectStatus.STARTED.value) is not None:
        return _Claim.GO, None
    row = conn.execute(
        select(effects.c.status, effects.c.result, effects.c.attempt).where(
            effects.c.key == key, effects.c.org_id == ctx.org_id
        )
    ).one()
    if row.status == EffectStatus.DONE:
        return _Claim.DONE, row.result
    if row.status == EffectStatus.STARTED and row.attempt != ctx.attempt and not take_orphan:
        return _Claim.ORPHANED, row.attempt
    check_transition(EFFECT_TRANSITIONS, row.status, EffectStatus.STARTED)
    _move(conn, ctx, key, EffectStatus.STARTED, attempt=ctx.attempt)
    if row.status == EffectStatus.FAILED:
        return _Claim.AFTER_FAILURE, row.attempt
    return _Claim.GO, None


def _take_over(conn: Any, ctx: StepContext, key: str, orphan_attempt: int) -> bool:
    """Move the row `started` by `orphan_attempt` to this attempt; False if it changed meanwhile."""
    moved = conn.execute(
        update(effects)
        .where(
            effects.c.key == key,
            effects.c.org_id == ctx.org_id,
            effects.c.status == EffectStatus.STARTED.value,
            effects.c.attempt == orphan_attempt,
        )
        .values(attempt=ctx.attempt)
    )
    return moved.rowcount == 1


def _uncertain(name: str, attempt: int, why: str, check: str, *, ended: str = "did not finish") -> EffectUncertain:
    return EffectUncertain(
        f"side effect {name!r} was started by attempt {attempt}, which {ended}, and {why}; it may "
        f"have happened, so it is not repeated (check {check}, then re-fire with a new key)"
    )


def _last_attempt(ctx: StepContext) -> bool:
    """Whether the engine runs this step no more after this attempt (unknown outside the engine: yes)."""
    return ctx.max_attempts is None or ctx.attempt >= ctx.max_attempts


def _ask(ctx: StepContext, find: Callable[[], Result], unanswered: Callable[[Exception], EffectUncertain]) -> Result:
    """`find()`; when it fails transiently (429, 5xx, timeout) before the step's last attempt its
    error is raised as is (the engine retries the step, which asks again), otherwise the step ends
    with `unanswered(error)` (EffectUncertain)."""
    try:
        return find()
    except SoftTimeLimitExceeded:
        raise  # out of time: the row stays as it is and the next attempt asks again
    except Exception as exc:
        if classify(exc) in TRANSIENT_CLASSES and not _last_attempt(ctx):
            raise
        raise unanswered(exc) from exc


def _reconcile(ctx: StepContext, key: str, name: str, attempt: int, prepared: Prepared) -> dict[str, Any] | None:
    """Settle a row left `started` by `attempt`: the earlier result when the provider has the effect
    (stored `done`), None when it did not happen (the row is now this attempt's); a transient search
    failure is raised (the row stays, a later attempt asks again); EffectUncertain when the provider
    cannot tell."""
    find = prepared.find
    if find is None:
        raise _uncertain(name, attempt, "the provider cannot be asked", prepared.check)
    found = _ask(
        ctx, find, lambda exc: _uncertain(name, attempt, f"asking the provider failed ({exc})", prepared.check)
    )
    with ctx.committed_transaction() as conn:
        if found is not None:
            result = dict(found)
            _move(conn, ctx, key, EffectStatus.DONE, result=result, done_at=utcnow())
            return result
        if not _take_over(conn, ctx, key, attempt):
            raise _uncertain(name, attempt, "another attempt took it over meanwhile", prepared.check)
    return None


def _recheck(ctx: StepContext, key: str, name: str, attempt: int, prepared: Prepared) -> dict[str, Any] | None:
    """After a failed call by `attempt` (a transport error may hide a request the provider did act
    on), ask the provider before calling again: its result (stored `done`), or None to call. A search
    that fails leaves the row `failed` and raises: its transient error (the step retries later) or,
    when refused or on the last attempt, EffectUncertain."""
    assert prepared.find is not None
    try:
        found = _ask(
            ctx,
            prepared.find,
            lambda exc: _uncertain(
                name, attempt, f"asking the provider failed ({exc})", prepared.check, ended="failed"
            ),
        )
    except AMBIGUOUS:
        raise  # the row stays `started` by this attempt: the next one reconciles
    except Exception:
        with ctx.committed_transaction() as conn:
            _move(conn, ctx, key, EffectStatus.FAILED)
        raise
    if found is None:
        return None
    result = dict(found)
    with ctx.committed_transaction() as conn:
        _move(conn, ctx, key, EffectStatus.DONE, result=result, done_at=utcnow())
    return result


def _call(ctx: StepContext, key: str, call: Callable[[], Result]) -> dict[str, Any]:
    """Run the provider call of a row `started` by this attempt and record how it ended."""
    try:
        result = dict(call() or {})
    except AMBIGUOUS:
        raise  # the request may have reached the provider: the row stays `started`
    except Exception:
        with ctx.committed_transaction() as conn:
            _move(conn, ctx, key, EffectStatus.FAILED)
        raise
    with ctx.committed_transaction() as conn:
        _move(conn, ctx, key, EffectStatus.DONE, result=result, done_at=utcnow())
    return result


@contextmanager
def _no_preparation(perform: Callable[[], Result]) -> Iterator[Prepared]:
    yield Prepared(call=perform)


def _stored(ctx: StepContext, key: str) -> dict[str, Any] | None:
    """The stored result when the effect is already done (a retry of a finished effect prepares nothing)."""
    with ctx.committed_transaction() as conn:
        row = conn.execute(
            select(effects.c.status, effects.c.result).where(effects.c.key == key, effects.c.org_id == ctx.org_id)
        ).first()
    return dict(row.result or {}) if row is not None and row.status == EffectStatus.DONE else None


def run_once(
    ctx: StepContext,
    name: str,
    perform: Callable[[], Result] | None = None,
    *,
    prepare: Prepare | None = None,
    retry_safe: bool = False,
) -> dict[str, Any]:
    """Perform effect `name` of this step exactly once; returns its (stored or found) result.

    Give either `perform` (the provider call alone) or `prepare` (a context manager doing the
    preparation and yielding a `Prepared`). `retry_safe`: the provider itself deduplicates a repeat
    (our own id), so a row left `started` is simply called again."""
    if (perform is None) == (prepare is None):
        raise TypeError("run_once takes either perform or prepare")
    key = effect_key(ctx, name)
    if prepare is not None and (stored := _stored(ctx, key)) is not None:
        return stored
    preparation = prepare() if prepare is not None else _no_preparation(perform)
    with preparation as prepared:
        with ctx.committed_transaction() as conn:
            claim, value = _claim(conn, ctx, key, take_orphan=retry_safe)
        if claim is _Claim.DONE:
            return dict(value or {})
        found = None
        if claim is _Claim.ORPHANED:
            found = _reconcile(ctx, key, name, value, prepared)
        elif claim is _Claim.AFTER_FAILURE and prepared.find is not None:
            found = _recheck(ctx, key, name, value, prepared)
        return found if found is not None else _call(ctx, key, prepared.call)


def record(ctx: StepContext, name: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """Store an effect that needs no outside call (a dry run's "would have sent") as done, once,
    in one statement; a retried step gets the first stored result back."""
    key = effect_key(ctx, name)
    now = utcnow()
    with ctx.committed_transaction() as conn:
        inserted = _insert(conn, ctx, key, now, status=EffectStatus.DONE.value, result=dict(result), done_at=now)
        if inserted is not None:
            return dict(inserted.result or {})
        stored = conn.execute(
            select(effects.c.result).where(effects.c.key == key, effects.c.org_id == ctx.org_id)
        ).scalar()
    return dict(stored or {})
