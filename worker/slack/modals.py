"""The Edit modal: an `*_edit` click opens it prefilled with the draft (`open_editor`, run by the
webhook right after the ack: `views.open` is the one Slack call made while a request is answered,
because a trigger id dies after 3 s); its submission becomes the decision "edit" with
`{"subject", "body"}` (`submit_edit`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select

import blocks
from blocks.modals import BODY_MAX, SUBJECT_BLOCK
from worker.config import get_settings
from worker.db import transaction
from worker.engine import approvals as approval_rules
from worker.engine.events import record_rejected
from worker.errors import AlreadyDecided, ApprovalExpired, InvalidDecision, NotAuthorized, NotFound, ProactiveError
from worker.models import approvals, utcnow
from worker.slack.action_registry import parse_action_id
from worker.slack.answers import (
    NOT_FOUND,
    NOT_YOURS,
    SOURCE,
    STALE_EDITOR,
    UNKNOWN_USER,
    already_text,
    answer,
    expired_text,
    queue_replacement,
    refuse_unknown_user,
)
from worker.slack.clickers import Clicker, resolve, users
from worker.slack.clicks import (
    KIND_OF_PREFIX,
    ActionRef,
    Click,
    ClickOutcome,
    Out,
    Submission,
    as_seconds,
    as_uuid,
    nonempty_text,
)
from worker.slack.client import open_view, slack_client
from worker.slack.route import handle_click, kind_mismatch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EditorState:
    """What the Edit modal carries from the click to its submission (its private_metadata)."""

    approval_id: str
    action_id: str
    response_url: str | None = None
    clicked_at: float | None = None

    def dump(self) -> str:
        """The modal's private_metadata."""
        return json.dumps(
            {
                "approval_id": self.approval_id,
                "action_id": self.action_id,
                "response_url": self.response_url,
                "clicked_at": self.clicked_at,
            }
        )

    @classmethod
    def load(cls, text: str) -> EditorState | None:
        """The state, or None when the metadata is not ours."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if (
            not isinstance(data, Mapping)
            or not nonempty_text(data.get("approval_id"))
            or not nonempty_text(data.get("action_id"))
        ):
            return None
        return cls(
            data["approval_id"],
            data["action_id"],
            nonempty_text(data.get("response_url")),
            as_seconds(data.get("clicked_at")),
        )


def editable_draft(kind: str, preview: Mapping[str, Any], rep_name: str = "") -> tuple[str, str]:
    """(subject, body) the Edit modal starts from: the email under review, or for a proposal the
    cover email `send-proposal` would send with it."""
    if kind == "proposal_review":
        contact = str(preview.get("contact_name") or "").split()
        rep = rep_name.split()
        body = (
            f"Hi {contact[0] if contact else 'there'},\n\nAs promised, here is our proposal for "
            f"{preview.get('deal_name') or 'your project'}: {preview.get('link') or ''}\n\n"
            f"Happy to walk you through it.\n\n{rep[0] if rep else ''}"
        )
        return str(preview.get("title") or "Our proposal"), body.rstrip() + "\n"
    subject = preview.get("subject") or preview.get("title") or ""
    body = preview.get("body") or preview.get("summary") or ""
    return str(subject), str(body)


def open_editor(click: Click) -> ClickOutcome:
    """`*_edit`: open the Edit modal prefilled with the draft, for someone who may decide."""
    ref = parse_action_id(click.action_id)
    if ref is None or ref.verb != "edit":
        return handle_click(click)
    org_id, clicker = resolve(click.team_id, click.slack_user_id)
    if clicker is None:
        return refuse_unknown_user(click, org_id)
    approval_id = as_uuid(click.value)
    now = utcnow()
    with transaction() as conn:
        a = None
        if approval_id is not None:
            a = conn.execute(
                select(approvals).where(approvals.c.id == approval_id, approvals.c.org_id == clicker.org_id)
            ).first()
        refusal = _editor_refusal(conn, ref, a, clicker, now)
        if refusal is None:
            assert a is not None
            rep = approval_rules.display_name(conn, a.org_id, clicker.user_id)
            subject, body = editable_draft(a.kind, a.preview or {}, rep)
    if refusal is not None:
        outcome, text, error_type = refusal
        if error_type:
            record_rejected(SOURCE, text, error_type, body=click.raw, org_id=clicker.org_id)
        answer(click, text)
        return outcome
    note = (
        f"The draft is longer than Slack's editor allows: only its first {BODY_MAX:,} characters "
        "are shown and will be sent."
        if len(body) > BODY_MAX
        else ""
    )
    state = EditorState(str(approval_id), click.action_id, click.response_url, click.clicked_at)
    title = "Edit the proposal email" if a.kind == "proposal_review" else "Edit the email"
    view = blocks.edit_modal(state.dump(), title, subject, body, note)
    token = get_settings().slack_bot_token
    problem = None if click.trigger_id and token else "no trigger id, or no Slack bot token"
    if problem is None:
        try:
            open_view(slack_client(token), str(click.trigger_id), view)
        except ProactiveError as err:
            problem = str(err)
    if problem is not None:
        log.warning("could not open the editor for approval %s: %s", approval_id, problem)
        answer(click, ":warning: Slack did not open the editor (the click may be too old); click Edit again.")
        return Out.FAILED
    return Out.EDITOR


def _editor_refusal(
    conn: Connection, ref: ActionRef, a: Row | None, clicker: Clicker, now: datetime
) -> tuple[ClickOutcome, str, str | None] | None:
    """(outcome, answer, rejected_events error type or None) when the modal must not open."""
    if a is None:
        return Out.NOT_FOUND, NOT_FOUND, "NotFound"
    wanted = KIND_OF_PREFIX.get(ref.prefix)
    if wanted is not None and wanted != a.kind:
        return Out.INVALID, f":warning: {ref.prefix}_edit does not apply to a {a.kind} request.", "InvalidDecision"
    user = conn.execute(select(users).where(users.c.id == clicker.user_id, users.c.org_id == a.org_id)).first()
    if user is None or not approval_rules.may_decide(conn, a, user):
        return Out.NOT_YOURS, NOT_YOURS, "NotAuthorized"
    if a.status == "expired" or (a.status == "pending" and a.expires_at <= now):
        return Out.EXPIRED, expired_text(a.expires_at), None
    if a.status != "pending":
        by = approval_rules.display_name(conn, a.org_id, a.decided_by)
        decided = AlreadyDecided(a.decision or a.status, by, a.decided_at or now)
        return Out.ALREADY_DECIDED, already_text(decided), None
    return None


def submit_edit(submission: Submission) -> dict[str, str]:
    """The Edit modal's submission: errors by block id to show in the modal, or {} once the edit is
    recorded as the decision "edit" with `{"subject", "body"}`."""
    errors = blocks.validate_edit(submission.subject, submission.body)
    if errors:
        return errors
    subject_block = SUBJECT_BLOCK
    state = EditorState.load(submission.private_metadata)
    ref = parse_action_id(state.action_id) if state else None
    approval_id = as_uuid(state.approval_id) if state else None
    org_id, clicker = resolve(submission.team_id, submission.slack_user_id)
    if state is None or ref is None or ref.verb != "edit" or approval_id is None:
        record_rejected(
            SOURCE,
            "edit submission with metadata we did not write",
            "InvalidPayload",
            body=submission.raw,
            org_id=org_id,
        )
        return {subject_block: STALE_EDITOR}
    if clicker is None:
        record_rejected(
            SOURCE,
            f"unknown Slack user {submission.slack_user_id!r} in team {submission.team_id!r}",
            "UnknownSlackUser",
            body=submission.raw,
            org_id=org_id,
        )
        return {subject_block: UNKNOWN_USER}
    mismatch = kind_mismatch(ref, approval_id, clicker.org_id)
    if mismatch:
        record_rejected(SOURCE, mismatch, "InvalidDecision", body=submission.raw, org_id=clicker.org_id)
        return {subject_block: mismatch}
    data = {"subject": (submission.subject or "").strip(), "body": submission.body or ""}
    try:
        decided = approval_rules.decide(
            approval_id, "edit", user_id=clicker.user_id, data=data, org_id=clicker.org_id, actor=SOURCE
        )
    except AlreadyDecided as err:
        return {subject_block: already_text(err)}
    except ApprovalExpired as err:
        return {subject_block: expired_text(err.expired_at)}
    except NotAuthorized:
        return {subject_block: NOT_YOURS}
    except (NotFound, InvalidDecision) as err:
        return {subject_block: str(err)}
    queue_replacement(approval_id, state.response_url, state.clicked_at, clicker.org_id, decided)
    return {}
