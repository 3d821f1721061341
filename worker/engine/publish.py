"""The one way to hand work to the broker: `after_commit(messages)`.

Every task message of the project (a step to run, a decision to resume, an outbox row to deliver, a
click's answer, a mailbox to sync, a cron fan-out) is a `Message`, and `after_commit` sends it once
the current transaction commits (through `worker.db.on_commit`, the one after-commit hook; the
Prometheus counters recorded after commit use the same hook), or at once when no transaction is
open (a Beat tick fanning out, the sweeper re-publishing committed rows). A message never reaches a
worker before the rows it names are visible, and a rolled-back transaction sends nothing.

A publish that fails (broker down, or silent for PROACTIVE_BROKER_TIMEOUT_S: see
`worker.celery_app.broker_conf`) is logged and forgotten on purpose, and the rest of its batch is not
tried (one timeout per batch, not one per message): the rows are committed, and the sweeper
re-publishes `queued` steps older than 30 s and decided approvals not yet resumed (deliver_due does
the same for outbox rows). The cron fan-outs and the Gmail sync request are the
exception (`must_send`): their error reaches the caller, whose task retries.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kombu.exceptions import OperationalError

from worker.celery_app import celery_app
from worker.db import in_transaction_scope, on_commit

log = logging.getLogger(__name__)

# Longest countdown handed to the broker (seconds): Redis re-delivers unacknowledged ETA tasks
# after its visibility timeout, so longer waits are rows the sweeper picks up.
MAX_COUNTDOWN_S = 600.0
SWEEPER_RETRIES = "the sweeper will retry"


@dataclass(frozen=True)
class Message:
    """One task message, as `send_task` gets it. Unset options (None) are left to the task's route
    (celery_app's task_routes) and Celery's defaults."""

    task: str
    args: tuple[Any, ...]
    queue: str | None = None
    routing_key: str | None = None
    countdown_s: float | None = None  # sent only when above 0
    soft_limit_s: float | None = None
    hard_limit_s: float | None = None
    argsrepr: str | None = None  # what Flower shows (never a credential); None: Celery's repr of args
    about: str = ""  # names the message in the log line when the broker refuses it
    retry: str = ""  # who sends it again when it is lost, said in that line
    must_send: bool = False  # a refusal raises (the caller's task retries) instead of being logged


def after_commit(messages: Iterable[Message]) -> int:
    """Send `messages` once the current transaction commits, or now when no transaction is open.

    Returns how many reached the broker when they were sent now; inside a transaction they wait for
    its commit and 0 is returned (nothing was sent yet)."""
    batch = list(messages)
    if not batch:
        return 0
    if in_transaction_scope():
        on_commit(lambda: _send(batch))
        return 0
    return _send(batch)


def _send(batch: list[Message]) -> int:
    sent = 0
    unreachable: OperationalError | None = None  # set once the broker did not answer: the rest wait
    for m in batch:
        if unreachable is not None:  # one timeout per batch, not one per message
            if m.must_send:
                raise unreachable
            log.warning("publish of %s skipped (broker unreachable)%s", m.about or m.task, _retry_note(m))
            continue
        options: dict[str, Any] = {"ignore_result": True}
        for key, value in (
            ("queue", m.queue),
            ("routing_key", m.routing_key),
            ("soft_time_limit", m.soft_limit_s),
            ("time_limit", m.hard_limit_s),
            ("argsrepr", m.argsrepr),
        ):
            if value is not None:
                options[key] = value
        if m.countdown_s and m.countdown_s > 0:
            options["countdown"] = m.countdown_s
        try:
            celery_app.send_task(m.task, args=m.args, **options)
            sent += 1
        except Exception as exc:  # broker down: logged; who re-publishes committed rows is in `retry`
            if m.must_send:
                raise
            log.warning("publish of %s failed (%s)%s", m.about or m.task, exc, _retry_note(m))
            if isinstance(exc, OperationalError):
                unreachable = exc
    return sent


def _retry_note(m: Message) -> str:
    return f"; {m.retry}" if m.retry else ""


# --------------------------------------------------------------------------- the engine's messages


@dataclass(frozen=True)
class Publish:
    """One `proactive.run_step` message to send (the engine's transitions return these as values)."""

    step_run_id: uuid.UUID
    queue: str
    lease_s: float
    soft_limit_s: float
    hard_limit_s: float
    countdown_s: float | None = None


def step_messages(items: Iterable[Publish]) -> list[Message]:
    """The run_step messages for `items`; a countdown above MAX_COUNTDOWN_S is left out (the sweeper
    publishes the step when its not_before has passed)."""
    return [
        Message(
            "proactive.run_step",
            (str(item.step_run_id), item.lease_s),
            queue=item.queue,
            routing_key=item.queue,
            countdown_s=item.countdown_s,
            soft_limit_s=item.soft_limit_s,
            hard_limit_s=item.hard_limit_s,
            argsrepr=str(item.step_run_id),  # what Flower shows; saves Celery a saferepr per message
            about=f"step run {item.step_run_id}",
            retry=SWEEPER_RETRIES,
        )
        for item in items
        if item.countdown_s is None or item.countdown_s <= MAX_COUNTDOWN_S
    ]


def publish_steps(items: Iterable[Publish]) -> int:
    """Publish a run_step message per item after the current transaction commits (now outside one);
    returns how many reached the broker when sent now."""
    return after_commit(step_messages(items))


def resume_message(approval_id: uuid.UUID, org_id: uuid.UUID | None = None, job_id: uuid.UUID | None = None) -> Message:
    """The message asking a worker to apply a recorded decision; with the approval's org and job
    (what its decision read), the resume reads the job in the round trip that locks it."""
    ids = (approval_id, org_id, job_id) if org_id is not None and job_id is not None else (approval_id,)
    return Message(
        "proactive.resume_approval",
        tuple(str(i) for i in ids),
        queue="steps",
        routing_key="steps",
        argsrepr=str(approval_id),
        about=f"resume {approval_id}",
        retry=SWEEPER_RETRIES,
    )


def publish_resume(approval_id: uuid.UUID, org_id: uuid.UUID | None = None, job_id: uuid.UUID | None = None) -> bool:
    """Ask a worker to apply a recorded decision after the current transaction commits (now outside
    one); False when the broker refused it now (the sweeper retries)."""
    return after_commit([resume_message(approval_id, org_id, job_id)]) == 1 or in_transaction_scope()
