"""What the clicker is told, and when: every answer to a click is queued on the `edge` queue (so
Slack gets its 200 well within 3 s) as one of two tasks: an ephemeral answer to the clicker only
(`answer`, task `proactive.slack_respond`) or the replacement of the clicked message by its decision
(`queue_replacement`, task `proactive.slack_replace`; worker/slack/replace.py does it). A refused
click is also kept in rejected_events (`refuse`)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import blocks
from worker.engine.approvals import Decision
from worker.engine.events import record_rejected
from worker.engine.publish import Message, after_commit
from worker.errors import DONE_WORDS, AlreadyDecided
from worker.slack.clicks import Click, ClickOutcome, Out

log = logging.getLogger(__name__)

SOURCE = "slack:action"  # rejected_events.source and audit actor of everything clicked in Slack
REPLACE_TASK = "proactive.slack_replace"
RESPOND_TASK = "proactive.slack_respond"
EPHEMERAL_TEXT_MAX = 3000  # characters of an ephemeral answer (a section's limit)

NOT_YOURS = (
    ":no_entry: This one is not yours to decide: only its approvers, the deal owner or an org admin can. "
    "Nothing was changed."
)
NOT_FOUND = ":warning: This request no longer exists in your workspace. Nothing was changed."
UNKNOWN_USER = (
    ":warning: Your Slack account is not linked to a Proactive user in this workspace, so nothing was changed. "
    "Ask an admin to link it."
)
UNKNOWN_ACTION = ":warning: Sorry, Proactive does not know this button (`{action}`). Nothing was changed."
STALE_EDITOR = "This editor is out of date: close it and click Edit again."


def already_text(err: AlreadyDecided) -> str:
    """The loser's answer: "already <decision> by X at T"."""
    done = DONE_WORDS.get(err.decision, err.decision.replace("_", " "))
    return (
        f":information_source: This request was already {done} by {err.by} at {blocks.format_utc(err.at)}. "
        "Nothing was changed."
    )


def expired_text(expired_at: datetime) -> str:
    """The answer to a click on an expired request."""
    return f":hourglass: This request expired at {blocks.format_utc(expired_at)}. Nothing was changed."


def _publish(task: str, *args: Any) -> None:
    """Send an answer task (queue `edge`); a broker refusal loses the answer, never the decision (committed)."""
    # argsrepr: Flower shows which approval or clicker, never the response_url (a credential)
    shown = str(args[0]) if task == REPLACE_TASK else f"ephemeral to {args[-1]}"
    after_commit([Message(task, args, queue="edge", routing_key="edge", argsrepr=shown, about=task)])


def answer(click: Click, text: str) -> None:
    """Queue an ephemeral answer to the clicker."""
    _publish(RESPOND_TASK, click.response_url, text[:EPHEMERAL_TEXT_MAX], click.channel_id, click.slack_user_id)


def queue_replacement(
    approval_id: uuid.UUID,
    response_url: str | None,
    clicked_at: float | None,
    org_id: uuid.UUID,
    decided: Decision | None = None,
) -> None:
    """Queue the replacement of the clicked message by the decision just made (in the clicker's org;
    `decided`: that decision, whose decider and job the message then carries)."""
    args: tuple[Any, ...] = (str(approval_id), response_url, clicked_at, str(org_id))
    if decided is not None and decided.by is not None:
        args += (decided.by.as_args(),)
    _publish(REPLACE_TASK, *args)


def refuse(
    click: Click, outcome: ClickOutcome, reason: str, error_type: str, text: str, org_id: uuid.UUID | None = None
) -> ClickOutcome:
    """Keep a refused click in rejected_events, answer the clicker with `text`; returns `outcome`."""
    record_rejected(SOURCE, reason, error_type, body=click.raw, org_id=org_id)
    answer(click, text)
    return outcome


def refuse_unknown_user(click: Click, org_id: uuid.UUID | None) -> ClickOutcome:
    """Refuse a click by a Slack user (or team, when `org_id` is None) linked to no Proactive user."""
    reason = (
        f"unknown Slack user {click.slack_user_id!r} in team {click.team_id!r}"
        if org_id is not None
        else f"unknown Slack team {click.team_id!r}"
    )
    return refuse(click, Out.UNKNOWN_USER, reason, "UnknownSlackUser", UNKNOWN_USER, org_id)
