"""Celery tasks of the engine. Thin on purpose: each one calls a plain function that owns the work.

- `proactive.run_step`: claim one step run, execute it, persist, enqueue what became ready.
- `proactive.resume_approval`: apply a recorded decision to its paused job.
- `proactive.deliver`: deliver one Slack outbox row (queue `edge`).
- `proactive.slack_replace`: show a click's decision on its message (queue `edge`).
- `proactive.slack_respond`: an ephemeral answer to a clicker (queue `edge`).
"""

from __future__ import annotations

import uuid

from worker import approvals, delivery, engine, slack_actions
from worker.celery_app import celery_app
from worker.errors import StepFailed


def _report(failures: list[str]) -> None:
    """Fail the task (state FAILURE in Flower, logged without a traceback) when a step it ran failed
    for good; the failure is already recorded and the message is acked (no redelivery)."""
    if failures:
        raise StepFailed("; ".join(failures))


# `throws`: an expected exception, logged in one line at INFO instead of a traceback at ERROR.
@celery_app.task(name="proactive.run_step", acks_late=True, ignore_result=True, throws=(StepFailed,))
def run_step(step_run_id: str, lease_s: float | None = None) -> None:
    """Claim one step run, execute its skill, persist the outcome, enqueue what became ready."""
    _report(engine.execute(uuid.UUID(step_run_id), lease_s))


@celery_app.task(name="proactive.resume_approval", acks_late=True, ignore_result=True, throws=(StepFailed,))
def resume_approval(approval_id: str) -> None:
    """Resume the job paused on this approval with its recorded decision (exactly once), and run the
    first step that became ready right here when this worker serves its queue."""
    _report(engine.run_first(approvals.resume(uuid.UUID(approval_id), publish=False)))


@celery_app.task(name="proactive.deliver", queue="edge", acks_late=True, ignore_result=True)
def deliver(outbox_id: str) -> None:
    """Deliver one Slack outbox row, or defer it (quiet hours, budget, channel pacing, 429)."""
    delivery.deliver(uuid.UUID(outbox_id))


@celery_app.task(name="proactive.slack_replace", queue="edge", acks_late=True, ignore_result=True)
def slack_replace(approval_id: str, response_url: str | None = None, clicked_at: float | None = None) -> None:
    """Replace the clicked approval message with its decision (response_url, else chat.update)."""
    slack_actions.replace_clicked_message(uuid.UUID(approval_id), response_url, clicked_at)


@celery_app.task(name="proactive.slack_respond", queue="edge", acks_late=True, ignore_result=True)
def slack_respond(
    response_url: str | None, text: str, channel: str | None = None, slack_user_id: str | None = None
) -> None:
    """Show an ephemeral answer to the person who clicked."""
    slack_actions.respond_ephemeral(response_url, text, channel, slack_user_id)
