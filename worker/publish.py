"""Hand committed work to the broker, always after the transaction that created it commits.

A publish that fails (broker down) is logged and forgotten on purpose: the rows are committed, and
the sweeper re-publishes `queued` steps older than 30 s and decided approvals not yet resumed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Longest countdown handed to the broker (seconds): Redis re-delivers unacknowledged ETA tasks
# after its visibility timeout, so longer waits are rows the sweeper picks up.
MAX_COUNTDOWN_S = 600.0


@dataclass(frozen=True)
class Publish:
    """One `proactive.run_step` message to send."""

    step_run_id: uuid.UUID
    queue: str
    lease_s: float
    soft_limit_s: float
    hard_limit_s: float
    countdown_s: float | None = None


def publish_steps(items: Iterable[Publish]) -> int:
    """Send a run_step message per item; returns how many reached the broker."""
    from worker.celery_app import celery_app

    sent = 0
    for item in items:
        countdown = item.countdown_s
        if countdown is not None and countdown > MAX_COUNTDOWN_S:
            continue  # the sweeper publishes it when its not_before has passed
        try:
            celery_app.send_task(
                "proactive.run_step",
                args=(str(item.step_run_id), item.lease_s),
                queue=item.queue,
                routing_key=item.queue,
                soft_time_limit=item.soft_limit_s,
                time_limit=item.hard_limit_s,
                countdown=countdown if countdown and countdown > 0 else None,
                ignore_result=True,
                argsrepr=str(item.step_run_id),  # what Flower shows; saves Celery a saferepr per message
            )
            sent += 1
        except Exception as exc:  # broker down: the sweeper re-publishes committed rows
            log.warning("publish of step run %s failed (%s); the sweeper will retry", item.step_run_id, exc)
    return sent


def publish_resume(approval_id: uuid.UUID) -> bool:
    """Ask a worker to apply a recorded decision; False when the broker refused (sweeper retries)."""
    from worker.celery_app import celery_app

    try:
        celery_app.send_task(
            "proactive.resume_approval",
            args=(str(approval_id),),
            queue="steps",
            routing_key="steps",
            ignore_result=True,
            argsrepr=str(approval_id),
        )
        return True
    except Exception as exc:
        log.warning("publish of resume %s failed (%s); the sweeper will retry", approval_id, exc)
        return False
