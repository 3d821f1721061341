"""One live job per (rep, deal) for each deal-bound sequence (docs/events.md, "One live job per deal").

`proposal_generation`, `stale_deal_revival` and `calendar_find_times` with a `deal_id` carry a
`live_key` (`<type>:<user_id>:<deal_id>`) on their job: one live proposal per rep and deal, one live
revival, one live scheduling. The types do not block each other (a proposal may be in review while
a meeting is being scheduled for the same deal). A partial unique index on
`sequence_jobs (org_id, live_key)`, over the jobs still live (queued, running or awaiting approval,
no cancel requested; `LIVE_WHERE` in worker/models.py), lets only one of them be live at a time,
whichever of concurrent fires inserts first: the database decides, so there is no window between
a check and an insert. `events.accept` inserts with `ON CONFLICT DO NOTHING`; a conflict that is not
a duplicate key means another job is live: the new event becomes a `skipped` job with reason
`already_live` and `live_job_id` naming the live one.

`replace: true` asks for the live job's cancel first, in the same transaction (`release`): its
cancel flag takes it out of the index at once (it ends now if no step is running, else at its next
step boundary), so the new job is accepted in that transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, false, select

from worker.audit import record
from worker.engine import jobstore as store
from worker.engine import registry
from worker.engine.executor import CANCEL_REASON, end_job, finish_cancel_if_idle
from worker.engine.payloads import EventType
from worker.engine.states import JobStatus
from worker.models import jobs

# The event types that act on one deal: at most one live job of each per rep and deal.
DEAL_BOUND = frozenset({EventType.PROPOSAL_GENERATION, EventType.STALE_DEAL_REVIVAL, EventType.CALENDAR_FIND_TIMES})
# A job in one of these, without a cancel request, holds its live key (the index's predicate).
LIVE_STATUSES = (JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.AWAITING_APPROVAL.value)
# The skipped job's reason when another job holds the key.
ALREADY_LIVE = "already_live"


def live_key_of(event_type: str, user_id: uuid.UUID | None, payload: Mapping[str, Any]) -> str | None:
    """The live key of an event, or None when it is not bound to a deal (another type, no rep,
    or a `calendar_find_times` without `deal_id`)."""
    if event_type not in DEAL_BOUND or user_id is None:
        return None
    deal = payload.get("deal_id")
    if not deal:
        return None
    try:
        deal_id = uuid.UUID(str(deal))
    except ValueError:
        return None
    return f"{event_type}:{user_id}:{deal_id}"


def _live(org_id: uuid.UUID, live_key: str) -> Any:
    return (
        jobs.c.org_id == org_id,
        jobs.c.live_key == live_key,
        jobs.c.status.in_(LIVE_STATUSES),
        jobs.c.cancel_requested == false(),
    )


def live_job(conn: Connection, org_id: uuid.UUID, live_key: str) -> uuid.UUID | None:
    """The job holding `live_key` in `org_id` now, or None."""
    return conn.execute(select(jobs.c.id).where(*_live(org_id, live_key)).limit(1)).scalar()


def release(
    conn: Connection, org_id: uuid.UUID, live_key: str, *, replaced_by: uuid.UUID, actor: str, now: datetime
) -> uuid.UUID | None:
    """Request the cancel of the job holding `live_key` (audited, naming the job that replaces it),
    which frees the key in this transaction; returns its id, or None when no job held it.

    The job ends now if no step is running, else at its next step boundary (worker/engine/executor.py)."""
    held = live_job(conn, org_id, live_key)
    if held is None:
        return None
    locked = store.lock_job(conn, held, org_id=org_id)
    # re-read under the lock: it may have ended, or been replaced, while we waited for the lock
    if locked is None or locked.status not in LIVE_STATUSES or locked.cancel_requested:
        return None
    # what it ends with at its step boundary
    store.request_job_cancel(conn, held, CANCEL_REASON, old=locked.status, org_id=org_id)
    record(
        conn,
        org_id,
        actor=actor,
        action="job.cancel",
        target_type="job",
        target_id=str(held),
        data={"replaced_by": str(replaced_by)},
    )
    job = dict(locked._mapping)
    try:
        sequence = registry.get(job["event_type"])
    except registry.UnknownSequence:
        end_job(conn, job, JobStatus.CANCELLED, now, reason=CANCEL_REASON)
    else:
        finish_cancel_if_idle(conn, job, sequence, now)
    return held
