"""Where a click is decided (docs/sequences.md): `handle_click` reads the action id, finds the
clicker, and either decides the approval the button names or hands the click to the handler its
prefix registered (worker/slack/action_registry.py: the campaign buttons).

A decision is one conditional UPDATE through `approvals.decide` (`cal_send_invite` carries the
radio's chosen slot as `{"slot": ...}`; `email_undo` calls `approvals.undo`); the replacement of the
clicked message and every other answer are queued (worker/slack/answers.py). An `*_edit` click opens
the Edit modal instead (worker/slack/modals.py). Every lookup is scoped by the clicker's org, found
by (team id, Slack user id). Refusals (unknown action, team or user, ids of another org, not yours)
change nothing, are kept in rejected_events and answered with an ephemeral message.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from worker.db import transaction
from worker.engine import approvals as approval_rules
from worker.engine.events import record_rejected
from worker.errors import AlreadyDecided, ApprovalExpired, InvalidDecision, NotAuthorized, NotFound, TooLate
from worker.models import approvals
from worker.slack.action_registry import handler_for, parse_action_id
from worker.slack.answers import (
    NOT_FOUND,
    NOT_YOURS,
    SOURCE,
    UNKNOWN_ACTION,
    already_text,
    answer,
    expired_text,
    queue_replacement,
    refuse,
    refuse_unknown_user,
)
from worker.slack.clickers import Clicker, resolve
from worker.slack.clicks import KIND_OF_PREFIX, SLOT_VERBS, ActionRef, Click, ClickOutcome, Out, as_uuid


def handle_click(click: Click) -> ClickOutcome:
    """Do what the click asks; every answer to the clicker is queued."""
    ref = parse_action_id(click.action_id)
    if ref is None:
        return refuse(
            click,
            Out.UNKNOWN_ACTION,
            f"unknown action {click.action_id[:255]!r}",
            "UnknownAction",
            UNKNOWN_ACTION.format(action=click.action_id[:255]),
        )
    if ref.verb == "select_slot":
        return Out.IGNORED  # picking a radio option decides nothing; the button click reads it
    if ref.verb == "edit":
        return Out.EDITOR  # `modals.open_editor` runs once the click is acknowledged
    org_id, clicker = resolve(click.team_id, click.slack_user_id)
    if clicker is None:
        return refuse_unknown_user(click, org_id)
    handler = handler_for(ref)
    if handler is not None:
        return handler(click, ref, clicker)
    approval_id = as_uuid(click.value)
    if approval_id is None:
        return refuse(
            click,
            Out.NOT_FOUND,
            f"{click.action_id}: {click.value[:100]!r} is not an approval id",
            "NotFound",
            NOT_FOUND,
            clicker.org_id,
        )
    if ref.verb == "undo":
        mismatch = kind_mismatch(ref, approval_id, clicker.org_id)
        if mismatch:
            return refuse(
                click,
                Out.INVALID,
                mismatch,
                "InvalidDecision",
                f":warning: {mismatch}. Nothing was changed.",
                clicker.org_id,
            )
        return _undo(click, clicker, approval_id)
    data = {"slot": click.selected_slot} if ref.verb in SLOT_VERBS and click.selected_slot else None
    try:
        decided = approval_rules.decide(
            approval_id,
            ref.verb,
            user_id=clicker.user_id,
            data=data,
            org_id=clicker.org_id,
            actor=SOURCE,
            kind=KIND_OF_PREFIX.get(ref.prefix),
            button=f"{ref.prefix}_{ref.verb}",
        )
    except (AlreadyDecided, ApprovalExpired, NotAuthorized, NotFound, InvalidDecision) as err:
        return _decision_error(click, err)
    queue_replacement(approval_id, click.response_url, click.clicked_at, clicker.org_id, decided)
    return Out.DECIDED


def kind_mismatch(ref: ActionRef, approval_id: uuid.UUID, org_id: uuid.UUID) -> str | None:
    """Why a prefix's button cannot decide this approval (e.g. `prop_` on an email), or None."""
    wanted = KIND_OF_PREFIX.get(ref.prefix)
    if wanted is None:
        return None
    with transaction() as conn:
        kind = conn.execute(
            select(approvals.c.kind).where(approvals.c.id == approval_id, approvals.c.org_id == org_id)
        ).first()
    if kind is None or kind.kind == wanted:
        return None  # a missing approval is refused by decide (NotFound)
    return f"{ref.prefix}_{ref.verb} does not apply to a {kind.kind} request"


def _undo(click: Click, clicker: Clicker, approval_id: uuid.UUID) -> ClickOutcome:
    try:
        approval_rules.undo(approval_id, user_id=clicker.user_id, org_id=clicker.org_id, actor=SOURCE)
    except TooLate as err:
        answer(click, f":hourglass: {str(err).capitalize()}.")
        return Out.TOO_LATE
    except (NotAuthorized, NotFound) as err:
        record_rejected(SOURCE, str(err), type(err).__name__, body=click.raw, org_id=clicker.org_id)
        return _decision_error(click, err)
    queue_replacement(approval_id, click.response_url, click.clicked_at, clicker.org_id)
    return Out.UNDONE


def _decision_error(click: Click, err: Exception) -> ClickOutcome:
    """Answer a refused decision (`approvals.decide` has already recorded the bad ones)."""
    if isinstance(err, AlreadyDecided):
        answer(click, already_text(err))
        return Out.ALREADY_DECIDED
    if isinstance(err, ApprovalExpired):
        answer(click, expired_text(err.expired_at))
        return Out.EXPIRED
    if isinstance(err, NotAuthorized):
        answer(click, NOT_YOURS)
        return Out.NOT_YOURS
    if isinstance(err, NotFound):
        answer(click, NOT_FOUND)
        return Out.NOT_FOUND
    answer(click, f":warning: {str(err).rstrip('.')}. Nothing was changed.")
    return Out.INVALID
