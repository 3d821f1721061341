"""Celery tasks of the engine. Thin on purpose: each one calls a plain function that owns the work.

- `proactive.run_step`: claim one step run, execute it, persist, enqueue what became ready.
- `proactive.resume_approval`: apply a recorded decision to its paused job.
- `proactive.deliver`: deliver one Slack outbox row (queue `edge`).
- `proactive.slack_replace`: show a click's decision on its message (queue `edge`).
- `proactive.slack_respond`: an ephemeral answer to a clicker (queue `edge`).
"""

from __future__ import annotations

import time
import uuid

from worker.celery_app import celery_app
from worker.db import begin, get_engine, once_more_on_disconnect
from worker.engine import approvals, driver
from worker.engine.publish import publish_steps
from worker.errors import StepFailed
from worker.models import utcnow
from worker.slack import delivery
from worker.slack.replace import org_of_approval, replace_clicked_message, respond_ephemeral


def _report(failures: list[str]) -> None:
    """Fail the task (state FAILURE in Flower, logged without a traceback) when a step it ran failed
    for good; the failure is already recorded and the message is acked (no redelivery)."""
    if failures:
        raise StepFailed("; ".join(failures))


# `throws`: an expected exception, logged in one line at INFO instead of a traceback at ERROR.
@celery_app.task(name="proactive.run_step", acks_late=True, ignore_result=True, throws=(StepFailed,))
def run_step(step_run_id: str, lease_s: float | None = None) -> None:
    """Claim one step run, execute its skill, persist the outcome, enqueue what became ready."""
    _report(once_more_on_disconnect(lambda: driver.execute(uuid.UUID(step_run_id), lease_s), f"step run {step_run_id}"))


@celery_app.task(name="proactive.resume_approval", acks_late=True, ignore_result=True, throws=(StepFailed,))
def resume_approval(approval_id: str, org_id: str | None = None, job_id: str | None = None) -> None:
    """Resume the job paused on this approval with its recorded decision (exactly once), and run the
    first step that became ready right here when this worker serves its queue. `org_id` and `job_id`
    (the approval's, as its decision read them; absent from older messages) save the resume reads."""
    aid = uuid.UUID(approval_id)
    org, job = (uuid.UUID(org_id), uuid.UUID(job_id)) if org_id and job_id else (None, None)
    _report(once_more_on_disconnect(lambda: _resume_and_run(aid, org, job), f"resume {aid}"))


def _resume_and_run(
    approval_id: uuid.UUID, org_id: uuid.UUID | None = None, job_id: uuid.UUID | None = None
) -> list[str]:
    """One transaction applies the decision and claims the first step it made ready on a queue this
    worker consumes (committed as running before its skill runs); that step then runs here on the
    same connection, the others are published. Returns the steps that failed for good here."""
    started = time.monotonic()
    with get_engine().connect() as conn:
        with begin(conn):
            adv = approvals.apply_decision(
                conn, approval_id, utcnow(), org_id=org_id, job_id=job_id, inline_queues=driver.consumed_queues()
            )
        publish_steps(adv.publish)
        return driver.run_claimed(conn, adv.inline, started, adv.joined) if adv.inline is not None else []


@celery_app.task(name="proactive.deliver", queue="edge", acks_late=True, ignore_result=True)
def deliver(outbox_id: str) -> None:
    """Deliver one Slack outbox row, or defer it (quiet hours, budget, channel pacing, 429)."""
    once_more_on_disconnect(lambda: delivery.deliver(uuid.UUID(outbox_id)), f"delivery {outbox_id}")


@celery_app.task(name="proactive.slack_replace", queue="edge", acks_late=True, ignore_result=True)
def slack_replace(
    approval_id: str,
    response_url: str | None = None,
    clicked_at: float | None = None,
    org_id: str | None = None,
    decided: list[str | None] | None = None,
) -> None:
    """Replace the clicked approval message with its decision (response_url, else chat.update), in
    the clicker's org (a message published before it carried the org: the approval's). `decided`:
    the decider and job as the decision read them (`approvals.DecidedBy`; older messages lack it)."""
    aid = uuid.UUID(approval_id)
    org = uuid.UUID(org_id) if org_id else org_of_approval(aid)
    if org is not None:
        replace_clicked_message(aid, response_url, clicked_at, org_id=org, by=approvals.DecidedBy.from_args(decided))


@celery_app.task(name="proactive.slack_respond", queue="edge", acks_late=True, ignore_result=True)
def slack_respond(
    response_url: str | None, text: str, channel: str | None = None, slack_user_id: str | None = None
) -> None:
    """Show an ephemeral answer to the person who clicked."""
    respond_ephemeral(response_url, text, channel, slack_user_id)
