"""Run a step run to its end: the body of the `proactive.run_step` task (and of the first step an
approval's resume made ready), looping over the engine's transitions (worker/engine/executor.py).

Each transition returns what it leaves to do (`Advance`); this loop carries it out: the follow-ups of
a job it completed are fired in its transaction (worker/engine/events.py `carry_out`), the messages
are published once it commits, and a ready step claimed inline is run here next.

Fast path (docs/architecture.md): when a completion leaves a ready successor on a queue this worker
consumes, the same transaction inserts one of them already claimed and this task runs it inline,
with the ready siblings this worker measured fast enough to join it (`Advance.joined`, run one
after another here; the others are published), bounded by a step count and a time budget; a
joined step whose turn comes after the budget is given back (`release`). Every step is still
persisted; a crash resumes from the last commit because an inline step holds an ordinary lease that
the sweeper re-claims when it expires.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Iterable

from sqlalchemy import Connection

from worker import logs
from worker.celery_app import celery_app
from worker.config import get_settings
from worker.db import begin, get_engine
from worker.engine.events import carry_out
from worker.engine.executor import (
    Advance,
    Claimed,
    Outcome,
    Unguarded,
    claim,
    complete,
    guarded,
    limits,
    publish_for,
    run_skill,
)
from worker.engine.jobstore import finish_step
from worker.engine.publish import Publish, publish_steps
from worker.engine.states import StepStatus
from worker.models import utcnow
from worker.precompiled import LeaseLost

log = logging.getLogger(__name__)
S = StepStatus


def consumed_queues() -> frozenset[str]:
    """The queues this worker process consumes (its `-Q`): a ready step on one of them may run inline
    here; a step for a queue this worker does not serve (e.g. `slow` on a `steps`-only worker) is
    published for the workers that do."""
    return frozenset(celery_app.amqp.queues.consume_from or ())


def execute(step_run_id: uuid.UUID, lease_s: float | None = None) -> list[str]:
    """Claim and run one step run, then any steps that become ready inline (the task body).

    One pooled connection serves every transaction of the task (one checkout, one pre-ping);
    skills use their own. Returns the steps that failed for good here ("step: error"; already
    recorded), so the task can show Celery and Flower a failure instead of a success.
    """
    started = time.monotonic()
    with get_engine().connect() as conn:
        with begin(conn):
            now = utcnow()
            claimed, left = claim(conn, step_run_id, now, lease_s)
            pubs = carry_out(conn, left, now)
        publish_steps(pubs)
        return run_claimed(conn, claimed, started) if claimed is not None else []


def run_claimed(conn: Connection, claimed: Claimed, started: float, joined: Iterable[Claimed] = ()) -> list[str]:
    """Run `claimed` (its claim committed: this process holds its lease) on `conn`, then `joined`
    (claimed with it) and any steps that become ready inline, within the budget counted from
    `started` (time.monotonic()). Returns the steps that failed for good here, as `execute` does."""
    settings = get_settings()
    soft_limit = limits(claimed.step)[0]
    inline_runs = 0
    failures: list[str] = []
    held: deque[Claimed] = deque(joined)  # claimed here already, waiting their turn in this task
    current: Claimed | None = claimed
    try:
        while current is not None:
            logs.bind_job(current.job, current.step.name)  # this step's lines carry its job's trace id
            outcome = run_skill(current, conn)
            log.info(
                "step %s of %s: %s (attempt %d, %d ms)",
                current.step.name,
                current.job["event_type"],
                outcome.status.value,
                current.attempt,
                outcome.duration_ms,
            )
            if outcome.status == S.FAILED:
                failures.append(f"{current.step.name}: {outcome.error}")
            elapsed = time.monotonic() - started
            inline_ok = inline_runs + len(held) < settings.inline_max_steps and elapsed < settings.inline_budget_s
            queues = consumed_queues() if inline_ok else frozenset()
            try:
                adv, pubs = _store(conn, current, outcome, queues, soft_limit - elapsed)
            except LeaseLost as lost:  # another worker re-claimed it: this attempt's result is discarded
                log.warning("%s: the attempt lost its lease; its result is discarded", lost)
                adv, pubs = Advance(), []
            publish_steps(pubs)
            if adv.halt and held:  # the job ended or is asked to cancel: what waits here must not start
                log.info("job %s does not run on: %d step(s) claimed inline given back", current.job["id"], len(held))
                release(conn, held)
            held.extend(c for c in (adv.inline, *adv.joined) if c is not None)
            inline_runs += 1
            current = _next_held(conn, held, soft_limit - (time.monotonic() - started))
    except BaseException:
        if held:  # give back what this task claimed ahead and will not run (best effort: the lease expires too)
            _release_quietly(conn, held)
        raise
    return failures


def _next_held(conn: Connection, held: deque[Claimed], time_left_s: float) -> Claimed | None:
    """The next step this task claimed ahead, when it can still finish within the task's soft limit
    (`time_left_s`); else every held step is given back (queued again, published) and None."""
    if not held:
        return None
    if held[0].step.timeout_s <= time_left_s:
        return held.popleft()
    log.info("%d step(s) claimed inline given back: the task's time budget is spent", len(held))
    release(conn, held)
    return None


def release(conn: Connection, held: deque[Claimed]) -> None:
    """Give back steps this process claimed and has not started: queued again with their attempt
    uncounted (a step whose lease was taken over meanwhile is left alone), then published."""
    pubs: list[Publish] = []
    with begin(conn):
        now = utcnow()
        while held:
            c = held.popleft()
            fields = {"queued_at": now, "started_at": None, "claimed_by": None}
            back = finish_step(
                conn, c.step_run_id, c.attempt, S.QUEUED, now, uncount=True, org_id=c.job["org_id"], **fields
            )
            if back:
                pubs.append(publish_for(c.step, c.step_run_id))
    publish_steps(pubs)


def _release_quietly(conn: Connection, held: deque[Claimed]) -> None:
    """`release` on the way out of a failed task; a failure here is logged (the leases expire and the
    sweeper re-publishes those steps)."""
    try:
        if conn.in_transaction():
            conn.rollback()
        release(conn, held)
    except Exception:
        log.warning("could not give back %d step(s) claimed inline; their leases will expire", len(held), exc_info=True)


def _store(
    conn: Connection, claimed: Claimed, outcome: Outcome, queues: frozenset[str], budget_s: float
) -> tuple[Advance, list[Publish]]:
    """Store the outcome and what follows it in one transaction: guarded (one round trip, the
    COMMIT included) where the step allows it, under the job's lock otherwise, and again under the
    lock when the guard found the job moved. Returns the transition and what to publish now."""
    if guarded(conn, claimed, outcome):
        try:
            with begin(conn):
                now = utcnow()
                adv = complete(conn, claimed, outcome, now, inline_queues=queues, inline_budget_s=budget_s, guard=True)
                return adv, carry_out(conn, adv, now)
        except Unguarded as moved:  # rolled back: nothing of it stayed
            log.info("step run %s: %s; completing under the job's lock", claimed.step_run_id, moved)
    with begin(conn):
        now = utcnow()
        adv = complete(conn, claimed, outcome, now, inline_queues=queues, inline_budget_s=budget_s)
        return adv, carry_out(conn, adv, now)  # a completed job's follow-ups, in its transaction
