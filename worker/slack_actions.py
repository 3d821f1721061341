"""What a Slack click does (docs/sequences.md): decisions, campaign rows, answers to the clicker.

`webhooks/slack.py` verifies a request and parses it into a `Click` or a `Submission`; the functions
here do the fast database work (a decision is one conditional UPDATE through `approvals.decide`)
and queue every slower Slack call on the `edge` queue, so Slack gets its 200 well within 3 s.
The only Slack call made while a request is answered is `views.open` (`open_editor`), because a
trigger id dies after 3 s; the webhook runs it after the ack.

Action ids are `{prefix}_{verb}` (`VERBS`); the verb is the decision (`prop_approve_send` ->
"approve_send", `cal_more` -> "more"); `cal_send_invite` carries the radio's chosen slot as
`{"slot": ...}`; `*_edit` opens a modal whose submission becomes the decision "edit" with
`{"subject", "body"}`; `email_undo` calls `approvals.undo`; `camp_*` act on a campaign reply or a
campaign (value = its id). Every lookup is scoped by the clicker's org, found by (team id, Slack
user id). Refusals (unknown action, team or user, ids of another org, not yours) change nothing,
are kept in rejected_events and answered with an ephemeral message.

Who replaces the approval message
---------------------------------
The approval's outbox row (worker/delivery.py) is the one record of what its Slack message shows,
and its delivery lease lets one sender at a time touch it. Two senders exist:

1. the click's answer, `replace_clicked_message` (task `proactive.slack_replace`, queue `edge`),
   right after a winning click: unless the worker has already replaced the content, it writes the
   decided content (`approvals.decided_content`, exactly what the resume writes) into the row, takes
   the row's lease and sends it through the click's `response_url` (first 5 uses within 30 min,
   counted in `approvals.response_url_uses` / `response_url_at`), else `chat.update` with the
   stored channel + ts;
2. the delivery (`delivery.deliver`), after the worker's own replacement (`approvals._apply` /
   `undo` / expiry -> `replace_message`): `chat.update` with the stored channel + ts.

They cannot fight: a sender that finds the lease taken leaves the row to its holder; when the click
answer releases the lease it marks the row sent only if the revision it sent is still the newest,
else it re-publishes the delivery, so the newest content always lands last. Both write the same
decided content, so the message reads the same whichever comes first. Ephemeral answers (the loser
of a race, not yours, expired, unknown) go only to the clicker: their own `response_url`, else
`chat.postEphemeral` in the click's channel.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Row, case, select, update

import blocks
from blocks.calendar import SLOT_ACTION_ID
from blocks.modals import BODY_BLOCK, BODY_MAX, SUBJECT_BLOCK
from worker import approvals as approval_rules
from worker.audit import record
from worker.clients.slack import open_view, post_ephemeral, post_to_response_url, slack_client, update_message
from worker.config import get_settings
from worker.db import on_commit, transaction
from worker.delivery import LEASE_S, DeliveryStatus, outbox, publish_delivery
from worker.errors import (
    AlreadyDecided,
    ApprovalExpired,
    InvalidDecision,
    InvalidEvent,
    NotAuthorized,
    NotFound,
    ProactiveError,
    TooLate,
)
from worker.events import fire_event, record_rejected
from worker.jobstore import insert_ignoring_conflicts
from worker.memo import ShortMemory
from worker.models import (
    Campaign,
    CampaignReply,
    NurtureEntry,
    Org,
    SlackEventSeen,
    User,
    approvals,
    utcnow,
)

log = logging.getLogger(__name__)

users, orgs = User.__table__, Org.__table__
replies, campaigns, nurture = CampaignReply.__table__, Campaign.__table__, NurtureEntry.__table__
seen_events = SlackEventSeen.__table__

SOURCE = "slack:action"  # rejected_events.source and audit actor of everything clicked in Slack
REPLACE_TASK = "proactive.slack_replace"
RESPOND_TASK = "proactive.slack_respond"
RESPONSE_URL_MAX_USES = 5  # Slack accepts 5 posts to one response_url...
RESPONSE_URL_TTL = timedelta(minutes=30)  # ...within 30 minutes of the click
TRUSTED_RESPONSE_URL_HOST = "hooks.slack.com"  # where Slack's response_urls point (else the API host)
EPHEMERAL_TEXT_MAX = 3000  # characters of an ephemeral answer (a section's limit)
CLICK_CLOCK_SKEW = timedelta(hours=1)  # a click time further from ours than this is not trusted
EVENT_ID_MAX = 64  # characters of slack_events_seen.event_id

# The buttons we render, by prefix (docs/sequences.md). The verb is the decision (or the campaign action).
VERBS: Mapping[str, frozenset[str]] = {
    "orch": frozenset({"approve", "reject", "edit"}),
    "prop": frozenset({"approve_send", "edit", "share_link", "skip"}),
    "cal": frozenset({"select_slot", "send_invite", "send_times", "more", "handle"}),
    "email": frozenset({"send_now", "edit", "send_later", "cancel", "undo"}),
    "camp": frozenset(
        {"draft_response", "view_thread", "mark_closed", "add_nurture", "apply_suggestion", "keep_testing"}
    ),
}
# The approval kind a prefix's buttons belong to (`orch_` buttons fit any kind).
KIND_OF_PREFIX: Mapping[str, str] = {"prop": "proposal_review", "cal": "calendar_slots", "email": "email_preview"}
SLOT_VERBS = frozenset({"send_invite"})  # decisions that carry the radio's chosen slot
CAMPAIGN_VERBS = frozenset({"apply_suggestion", "keep_testing"})  # value = campaign id (else reply id)

# How a decision reads in "already <...> by X at T".
DONE_WORDS: Mapping[str, str] = {
    "approve": "approved",
    "approved": "approved",
    "approve_send": "approved and sent",
    "reject": "rejected",
    "rejected": "rejected",
    "edit": "edited and sent",
    "send_now": "sent",
    "send_later": "scheduled for later",
    "cancel": "cancelled",
    "cancelled": "closed",
    "skip": "skipped",
    "share_link": "answered with a link",
    "send_invite": "answered with an invite",
    "send_times": "answered with times by email",
    "more": "sent back for more options",
    "handle": "taken over",
    "expired": "expired",
}

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


class ClickOutcome(StrEnum):
    """What one click led to (logged, and asserted by tests)."""

    DECIDED = "decided"
    UNDONE = "undone"
    EDITOR = "editor"
    IGNORED = "ignored"
    ALREADY_DECIDED = "already_decided"
    EXPIRED = "expired"
    TOO_LATE = "too_late"
    NOT_YOURS = "not_yours"
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    UNKNOWN_ACTION = "unknown_action"
    UNKNOWN_USER = "unknown_user"
    FAILED = "failed"
    DONE = "done"  # a campaign action


Out = ClickOutcome


# --------------------------------------------------------------------------- parsing (pure)


@dataclass(frozen=True)
class ActionRef:
    """A known action id split into its prefix and verb."""

    prefix: str
    verb: str


def parse_action_id(action_id: str) -> ActionRef | None:
    """`prop_approve_send` -> ActionRef("prop", "approve_send"); None for anything we did not render."""
    prefix, sep, verb = action_id.partition("_")
    if sep and verb in VERBS.get(prefix, ()):
        return ActionRef(prefix, verb)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _team(payload: Mapping[str, Any]) -> str | None:
    """The workspace: `team.id`, or the user's `team_id` (org-wide apps send `team: null`)."""
    return _text(_dig(payload, "team", "id")) or _text(_dig(payload, "user", "team_id"))


def _seconds(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _raw(payload: Any) -> str:
    try:
        return json.dumps(payload, default=str)
    except (TypeError, ValueError):
        return repr(payload)


@dataclass(frozen=True)
class Click:
    """One `block_actions` click, as the edge parsed it."""

    action_id: str
    value: str = ""
    block_id: str = ""
    team_id: str | None = None
    slack_user_id: str | None = None
    response_url: str | None = None
    trigger_id: str | None = None
    channel_id: str | None = None
    clicked_at: float | None = None  # action_ts, epoch seconds
    selected_slot: str | None = None
    raw: str = ""  # the payload, kept when the click is refused

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], action: Mapping[str, Any]) -> Click:
        """Build from a block_actions payload and one of its `actions` (tolerates missing fields)."""
        value = _text(action.get("value")) or ""
        block_id = _text(action.get("block_id")) or ""
        state_block = block_id or f"approval:{value}"
        slot = _dig(payload, "state", "values", state_block, SLOT_ACTION_ID, "selected_option", "value")
        return cls(
            action_id=_text(action.get("action_id")) or "",
            value=value,
            block_id=block_id,
            team_id=_team(payload),
            slack_user_id=_text(_dig(payload, "user", "id")),
            response_url=_text(payload.get("response_url")),
            trigger_id=_text(payload.get("trigger_id")),
            channel_id=_text(_dig(payload, "channel", "id")) or _text(_dig(payload, "container", "channel_id")),
            clicked_at=_seconds(action.get("action_ts")),
            selected_slot=_text(slot),
            raw=_raw(payload),
        )


@dataclass(frozen=True)
class Submission:
    """One `view_submission` of the Edit modal."""

    callback_id: str
    private_metadata: str
    subject: str | None
    body: str | None
    team_id: str | None = None
    slack_user_id: str | None = None
    raw: str = ""

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Submission:
        """Build from a view_submission payload (the inputs of `blocks.edit_modal`)."""
        values = _dig(payload, "view", "state", "values")

        def field(block: str) -> str | None:
            value = _dig(values, block, block, "value")
            return value if isinstance(value, str) else None

        return cls(
            callback_id=_text(_dig(payload, "view", "callback_id")) or "",
            private_metadata=_text(_dig(payload, "view", "private_metadata")) or "",
            subject=field(SUBJECT_BLOCK),
            body=field(BODY_BLOCK),
            team_id=_team(payload),
            slack_user_id=_text(_dig(payload, "user", "id")),
            raw=_raw(payload),
        )


@dataclass(frozen=True)
class EditorState:
    """What the Edit modal carries from the click to its submission (its private_metadata)."""

    approval_id: str
    action_id: str
    response_url: str | None = None
    clicked_at: float | None = None

    def dump(self) -> str:
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
        if not isinstance(data, Mapping) or not _text(data.get("approval_id")) or not _text(data.get("action_id")):
            return None
        return cls(
            data["approval_id"], data["action_id"], _text(data.get("response_url")), _seconds(data.get("clicked_at"))
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


def response_url_usable(uses: int, issued_at: datetime | None, now: datetime) -> bool:
    """Whether a stored response_url may take one more post (5 uses within 30 min)."""
    return issued_at is not None and uses < RESPONSE_URL_MAX_USES and now - issued_at < RESPONSE_URL_TTL


def trusted_response_url(url: str) -> bool:
    """Only Slack's hooks host (or the configured Slack API host: tests, proxies) gets our posts."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname == TRUSTED_RESPONSE_URL_HOST:
        return True
    api = urlsplit(get_settings().slack_api_url)
    return bool(parts.netloc) and (parts.scheme, parts.netloc) == (api.scheme, api.netloc)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return None


# --------------------------------------------------------------------------- who clicked


@dataclass(frozen=True)
class Clicker:
    """The Proactive user behind a Slack user in a workspace."""

    org_id: uuid.UUID
    user_id: uuid.UUID
    name: str
    role: str


# (team, Slack user) -> the clicker, remembered briefly: a burst of clicks costs one read. A role or
# membership change shows within CLICKER_MEMORY_S; every decision re-reads its user anyway.
CLICKER_MEMORY_S = 5.0
_clickers: ShortMemory[tuple[str, str], Clicker] = ShortMemory(CLICKER_MEMORY_S)


def resolve(team_id: str | None, slack_user_id: str | None) -> tuple[uuid.UUID | None, Clicker | None]:
    """(org id, user) for a Slack (team, user); the org alone when only the team is known."""
    if not team_id or not slack_user_id:
        return None, None
    known = _clickers.get((team_id, slack_user_id))
    if known is not None:
        return known.org_id, known
    row = _first(
        select(orgs.c.id.label("org_id"), users.c.id.label("user_id"), users.c.name, users.c.email, users.c.role)
        .select_from(
            orgs.outerjoin(users, (users.c.org_id == orgs.c.id) & (users.c.slack_user_id == slack_user_id[:32]))
        )
        .where(orgs.c.slack_team_id == team_id[:32])
    )
    if row is None:
        return None, None
    if row.user_id is None:
        return row.org_id, None
    clicker = Clicker(row.org_id, row.user_id, row.name or row.email, row.role)
    _clickers.put((team_id, slack_user_id), clicker)
    return row.org_id, clicker


def forget_clickers() -> None:
    """Drop this process's memory of Slack users (tests that change users between clicks)."""
    _clickers.forget()


def _first(statement: Any) -> Row | None:
    """The first row of one read in its own short transaction."""
    with transaction() as conn:
        return conn.execute(statement).first()


# --------------------------------------------------------------------------- answers (queued)


def _publish(task: str, *args: Any) -> None:
    from worker.celery_app import celery_app

    try:
        # argsrepr: Flower shows which approval or clicker, never the response_url (a credential)
        shown = str(args[0]) if task == REPLACE_TASK else f"ephemeral to {args[-1]}"
        celery_app.send_task(task, args=args, queue="edge", routing_key="edge", ignore_result=True, argsrepr=shown)
    except Exception as exc:  # broker down: the answer is lost, the decision (committed) is not
        log.warning("publish of %s failed (%s)", task, exc)


def answer(click: Click, text: str) -> None:
    """Queue an ephemeral answer to the clicker."""
    _publish(RESPOND_TASK, click.response_url, text[:EPHEMERAL_TEXT_MAX], click.channel_id, click.slack_user_id)


def _refuse(
    click: Click, outcome: ClickOutcome, reason: str, error_type: str, text: str, org_id: uuid.UUID | None = None
) -> ClickOutcome:
    record_rejected(SOURCE, reason, error_type, body=click.raw, org_id=org_id)
    answer(click, text)
    return outcome


def _unknown_user(click: Click, org_id: uuid.UUID | None) -> ClickOutcome:
    reason = (
        f"unknown Slack user {click.slack_user_id!r} in team {click.team_id!r}"
        if org_id is not None
        else f"unknown Slack team {click.team_id!r}"
    )
    return _refuse(click, Out.UNKNOWN_USER, reason, "UnknownSlackUser", UNKNOWN_USER, org_id)


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


# --------------------------------------------------------------------------- clicks


def handle_click(click: Click) -> ClickOutcome:
    """Do what the click asks; every answer to the clicker is queued."""
    ref = parse_action_id(click.action_id)
    if ref is None:
        return _refuse(
            click,
            Out.UNKNOWN_ACTION,
            f"unknown action {click.action_id[:255]!r}",
            "UnknownAction",
            UNKNOWN_ACTION.format(action=click.action_id[:255]),
        )
    if ref.verb == "select_slot":
        return Out.IGNORED  # picking a radio option decides nothing; the button click reads it
    if ref.verb == "edit":
        return Out.EDITOR  # `open_editor` runs once the click is acknowledged
    org_id, clicker = resolve(click.team_id, click.slack_user_id)
    if clicker is None:
        return _unknown_user(click, org_id)
    if ref.prefix == "camp":
        return campaign_click(click, ref, clicker)
    approval_id = _uuid(click.value)
    if approval_id is None:
        return _refuse(
            click,
            Out.NOT_FOUND,
            f"{click.action_id}: {click.value[:100]!r} is not an approval id",
            "NotFound",
            NOT_FOUND,
            clicker.org_id,
        )
    if ref.verb == "undo":
        mismatch = _kind_mismatch(ref, approval_id, clicker.org_id)
        if mismatch:
            return _refuse(
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
        approval_rules.decide(
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
    _publish(REPLACE_TASK, str(approval_id), click.response_url, click.clicked_at)
    return Out.DECIDED


def _kind_mismatch(ref: ActionRef, approval_id: uuid.UUID, org_id: uuid.UUID) -> str | None:
    """Why a prefix's button cannot decide this approval (e.g. `prop_` on an email), or None."""
    wanted = KIND_OF_PREFIX.get(ref.prefix)
    if wanted is None:
        return None
    kind = _first(select(approvals.c.kind).where(approvals.c.id == approval_id, approvals.c.org_id == org_id))
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
    _publish(REPLACE_TASK, str(approval_id), click.response_url, click.clicked_at)
    return Out.UNDONE


# --------------------------------------------------------------------------- the Edit modal


def open_editor(click: Click) -> ClickOutcome:
    """`*_edit`: open the Edit modal prefilled with the draft, for someone who may decide."""
    ref = parse_action_id(click.action_id)
    if ref is None or ref.verb != "edit":
        return handle_click(click)
    org_id, clicker = resolve(click.team_id, click.slack_user_id)
    if clicker is None:
        return _unknown_user(click, org_id)
    approval_id = _uuid(click.value)
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
    approval_id = _uuid(state.approval_id) if state else None
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
    mismatch = _kind_mismatch(ref, approval_id, clicker.org_id)
    if mismatch:
        record_rejected(SOURCE, mismatch, "InvalidDecision", body=submission.raw, org_id=clicker.org_id)
        return {subject_block: mismatch}
    data = {"subject": (submission.subject or "").strip(), "body": submission.body or ""}
    try:
        approval_rules.decide(
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
    _publish(REPLACE_TASK, str(approval_id), state.response_url, state.clicked_at)
    return {}


# --------------------------------------------------------------------------- campaign buttons


def _may_act(clicker: Clicker, owner_id: uuid.UUID | None) -> bool:
    """A campaign's owner or an org admin (reports of unowned campaigns go to admins)."""
    return clicker.role == "admin" or (owner_id is not None and owner_id == clicker.user_id)


def campaign_click(click: Click, ref: ActionRef, clicker: Clicker) -> ClickOutcome:
    """`camp_*`: act on the reply (or campaign) named by the button's value, in the clicker's org."""
    target = _uuid(click.value)
    if target is None:
        return _refuse(
            click,
            Out.NOT_FOUND,
            f"{click.action_id}: {click.value[:100]!r} is not an id",
            "NotFound",
            NOT_FOUND,
            clicker.org_id,
        )
    if ref.verb in CAMPAIGN_VERBS:
        return _campaign_choice(click, ref, clicker, target)
    with transaction() as conn:
        reply = conn.execute(
            select(replies, campaigns.c.owner_id)
            .join(campaigns, campaigns.c.id == replies.c.campaign_id)
            .where(replies.c.id == target, replies.c.org_id == clicker.org_id, campaigns.c.org_id == clicker.org_id)
        ).first()
        allowed = reply is not None and _may_act(clicker, reply.owner_id)
        text = _reply_action(conn, ref.verb, reply, clicker) if allowed else ""
    if reply is None:
        return _refuse(
            click, Out.NOT_FOUND, f"{click.action_id}: reply {target} not found", "NotFound", NOT_FOUND, clicker.org_id
        )
    if not allowed:
        return _refuse(
            click,
            Out.NOT_YOURS,
            f"{click.action_id}: not the owner of reply {target}'s campaign",
            "NotAuthorized",
            NOT_YOURS,
            clicker.org_id,
        )
    if ref.verb == "draft_response":
        text = _draft_response(reply, clicker)
    answer(click, text)
    return Out.DONE


def _reply_action(conn: Connection, verb: str, reply: Row, clicker: Clicker) -> str:
    """The database side of a reply button, in the caller's transaction; returns the answer."""
    who = reply.from_email
    if verb == "view_thread":
        subject = reply.subject or "(no subject)"
        body = (reply.body or "(no text)").strip()
        return f"*{blocks.escape(subject)}* from {blocks.escape(who)}\n>>> {blocks.escape(body)}"[:EPHEMERAL_TEXT_MAX]
    if verb == "mark_closed":
        _set_reply_status(conn, reply, "closed")
        record(
            conn,
            clicker.org_id,
            actor=SOURCE,
            actor_user_id=clicker.user_id,
            action="campaign_reply.close",
            target_type="campaign_reply",
            target_id=str(reply.id),
        )
        return f":white_check_mark: Marked the reply from {blocks.escape(who)} as closed."
    if verb == "add_nurture":
        added = _add_nurture(conn, reply, clicker)
        _set_reply_status(conn, reply, "nurture")
        record(
            conn,
            clicker.org_id,
            actor=SOURCE,
            actor_user_id=clicker.user_id,
            action="campaign_reply.nurture",
            target_type="campaign_reply",
            target_id=str(reply.id),
            data={"added": added},
        )
        return (
            f":seedling: Added {blocks.escape(who)} to the nurture queue."
            if added
            else f":seedling: {blocks.escape(who)} is already in the nurture queue."
        )
    return ""  # draft_response: fired after this transaction


def _set_reply_status(conn: Connection, reply: Row, status: str) -> None:
    conn.execute(
        update(replies).where(replies.c.id == reply.id, replies.c.org_id == reply.org_id).values(status=status)
    )


def _add_nurture(conn: Connection, reply: Row, clicker: Clicker) -> bool:
    """One nurture_queue row per contact (or address when the reply has no contact); True when added."""
    if reply.contact_id is None:
        exists = conn.execute(
            select(nurture.c.id).where(nurture.c.org_id == reply.org_id, nurture.c.email == reply.from_email)
        ).first()
        if exists is not None:
            return False
    row = conn.execute(
        insert_ignoring_conflicts(conn, nurture, ["org_id", "contact_id"])
        .values(
            id=uuid.uuid4(),
            org_id=reply.org_id,
            contact_id=reply.contact_id,
            email=reply.from_email,
            campaign_id=reply.campaign_id,
            reason=f"campaign reply ({reply.classification or 'unclassified'})"[:200],
            added_by=clicker.user_id,
            created_at=utcnow(),
        )
        .returning(nurture.c.id)
    ).first()
    return row is not None


def _draft_response(reply: Row, clicker: Clicker) -> str:
    """Fire `email_received` with the reply's content (the rep reviews the drafted answer)."""
    try:
        result = fire_event(
            {
                "type": "email_received",
                "source": SOURCE,
                "org_id": str(clicker.org_id),
                "user_id": str(clicker.user_id),
                "payload": {
                    "from_email": reply.from_email,
                    "subject": reply.subject or "",
                    "body": reply.body or reply.subject or "(no text)",
                    "campaign_reply_id": str(reply.id),
                },
            }
        )
    except InvalidEvent as err:  # recorded by fire_event
        return f":warning: Could not draft a response: {err}"
    if result.duplicate:
        return f":information_source: A response to {blocks.escape(reply.from_email)} is already being drafted."
    with transaction() as conn:
        conn.execute(
            update(replies)
            .where(replies.c.id == reply.id, replies.c.org_id == reply.org_id, replies.c.status == "open")
            .values(status="drafted")
        )
        record(
            conn,
            clicker.org_id,
            actor=SOURCE,
            actor_user_id=clicker.user_id,
            action="campaign_reply.draft",
            target_type="campaign_reply",
            target_id=str(reply.id),
            data={"job_id": str(result.job_id)},
        )
    return f":pencil: Drafting a response to {blocks.escape(reply.from_email)}; it will come here for your review."


def _campaign_choice(click: Click, ref: ActionRef, clicker: Clicker, campaign_id: uuid.UUID) -> ClickOutcome:
    """Apply suggestion / Keep testing: an audit row and the choice kept in the campaign's metrics."""
    now = utcnow()
    with transaction() as conn:
        campaign = conn.execute(
            select(campaigns)
            .where(campaigns.c.id == campaign_id, campaigns.c.org_id == clicker.org_id)
            .with_for_update()
        ).first()
        allowed = campaign is not None and _may_act(clicker, campaign.owner_id)
        if allowed:
            metrics = dict(campaign.metrics or {})
            metrics["suggestion_decision"] = {"choice": ref.verb, "by": str(clicker.user_id), "at": now.isoformat()}
            conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id, campaigns.c.org_id == clicker.org_id)
                .values(metrics=metrics)
            )
            record(
                conn,
                clicker.org_id,
                actor=SOURCE,
                actor_user_id=clicker.user_id,
                action=f"campaign.{ref.verb}",
                target_type="campaign",
                target_id=str(campaign_id),
            )
    if campaign is None:
        return _refuse(
            click,
            Out.NOT_FOUND,
            f"{click.action_id}: campaign {campaign_id} not found",
            "NotFound",
            NOT_FOUND,
            clicker.org_id,
        )
    if not allowed:
        return _refuse(
            click,
            Out.NOT_YOURS,
            f"{click.action_id}: not the owner of campaign {campaign_id}",
            "NotAuthorized",
            NOT_YOURS,
            clicker.org_id,
        )
    label = "apply the suggestion" if ref.verb == "apply_suggestion" else "keep testing"
    answer(click, f":ballot_box_with_check: Noted: {label} for *{blocks.escape(campaign.name)}*.")
    return Out.DONE


# --------------------------------------------------------------------------- the Events API


def first_delivery(event_id: str | None, team_id: str | None) -> bool:
    """Remember an Events API delivery; False when this event id was already handled (a retry)."""
    if not event_id:
        return True  # nothing to deduplicate on
    with transaction() as conn:
        row = conn.execute(
            insert_ignoring_conflicts(conn, seen_events, ["event_id"])
            .values(event_id=event_id[:EVENT_ID_MAX], team_id=(team_id or None) and team_id[:32], received_at=utcnow())
            .returning(seen_events.c.event_id)
        ).first()
    return row is not None


# --------------------------------------------------------------------------- edge tasks' work


@dataclass(frozen=True)
class _Route:
    """How the replacement reaches Slack: a response_url, or chat.update at (channel, ts)."""

    url: str | None = None
    channel: str | None = None
    ts: str | None = None


def _issued_at(clicked_at: float | None, now: datetime) -> datetime:
    if clicked_at is not None:
        try:
            at = datetime.fromtimestamp(clicked_at, UTC)
        except (OverflowError, OSError, ValueError):
            return now
        if abs(at - now) <= CLICK_CLOCK_SKEW:
            return at
    return now


def _remember(approval_id: uuid.UUID, url: str, issued_at: datetime) -> None:
    """Keep the click's response_url on the approval; a new URL starts a new count of uses."""
    with transaction() as conn:
        conn.execute(
            update(approvals)
            .where(approvals.c.id == approval_id, approvals.c.response_url.is_distinct_from(url))
            .values(response_url=url, response_url_uses=0, response_url_at=issued_at)
        )


def _route(approval_id: uuid.UUID, row: Row | None, now: datetime) -> _Route:
    """Take one use of the approval's stored response_url when it has uses left, else chat.update
    at the stored channel + ts."""
    with transaction() as conn:
        a = conn.execute(select(approvals).where(approvals.c.id == approval_id)).one()
        url = None
        if a.response_url and response_url_usable(a.response_url_uses or 0, a.response_url_at, now):
            won = conn.execute(
                update(approvals)
                .where(
                    approvals.c.id == a.id,
                    approvals.c.response_url == a.response_url,
                    approvals.c.response_url_uses == (a.response_url_uses or 0),
                )
                .values(response_url_uses=approvals.c.response_url_uses + 1)
                .returning(approvals.c.id)
            ).first()
            url = a.response_url if won is not None else None
    channel = a.slack_channel or (row.channel if row is not None else None)
    ts = a.slack_ts or (row.ts if row is not None else None)
    return _Route(url=url, channel=channel, ts=ts)


def _managed(row: Row | None) -> bool:
    """An outbox row whose message is in Slack (so leasing it and marking it sent mean something)."""
    return row is not None and row.ts is not None and row.status in (DeliveryStatus.SENT, DeliveryStatus.PENDING)


def _take_message(approval_id: uuid.UUID, now: datetime) -> tuple[str, Row | None, dict[str, Any] | None]:
    """Lock the approval's outbox row, write the decision into it unless the worker already did,
    and take its lease. Only the outbox row is locked here (never the approval with it), so this
    cannot deadlock with a resume, which locks the approval, then the row."""
    with transaction() as conn:
        row = conn.execute(
            select(outbox)
            .where(outbox.c.approval_id == approval_id, outbox.c.kind == "approval")
            .order_by(outbox.c.created_at)
            .limit(1)
            .with_for_update()
        ).first()
        a = conn.execute(select(approvals).where(approvals.c.id == approval_id)).first()
        if a is None:
            return "gone", None, None
        if row is not None and row.lease_expires_at is not None and row.lease_expires_at > now:
            return "delivering", None, None  # the holder sends the newest content when it gets there
        if a.resumed_at is not None and row is not None and row.status == DeliveryStatus.SENT:
            return "delivered", None, None  # the worker's replacement is already what Slack shows
        if a.resumed_at is None or row is None:  # ahead of the worker: write the decision ourselves
            message = approval_rules.decided_content(conn, a)
            if message is None:
                return "pending", None, None
            if row is not None:
                row = conn.execute(
                    update(outbox)
                    .where(outbox.c.id == row.id)
                    .values(
                        text=str(message.get("text") or ""),
                        blocks=list(message.get("blocks") or []),
                        revision=outbox.c.revision + 1,
                        updated_at=now,
                    )
                    .returning(*outbox.c)
                ).one()
        else:
            message = {"text": row.text, "blocks": row.blocks}
        if _managed(row):
            assert row is not None
            row = conn.execute(
                update(outbox)
                .where(outbox.c.id == row.id)
                .values(lease_expires_at=now + timedelta(seconds=LEASE_S))
                .returning(*outbox.c)
            ).one()
        return "taken", row, message


def replace_clicked_message(
    approval_id: uuid.UUID, response_url: str | None, clicked_at: float | None = None, now: datetime | None = None
) -> str:
    """Show the decision on the clicked message now (see the module docstring); returns the outcome:
    response_url, chat.update, failed (left to the delivery), delivering (the delivery holds the
    row), delivered (the worker's replacement is already shown), no_route, pending or gone.
    Four short transactions, none open while Slack answers."""
    now = now or utcnow()
    if response_url and trusted_response_url(response_url):
        _remember(approval_id, response_url, _issued_at(clicked_at, now))
    state, row, message = _take_message(approval_id, now)
    if state != "taken" or message is None:
        log.info("approval %s: click answer left to the delivery (%s)", approval_id, state)
        return state
    route = _route(approval_id, row, now)
    outcome = _send_replacement(route, message)
    if _managed(row):
        assert row is not None
        _release(row, sent=outcome in ("response_url", "chat.update"))
    log.info("approval %s: message replaced by the click answer (%s)", approval_id, outcome)
    return outcome


def _send_replacement(route: _Route, message: Mapping[str, Any]) -> str:
    text, blocks_ = str(message.get("text") or ""), list(message.get("blocks") or [])
    if route.url:
        try:
            post_to_response_url(route.url, {"replace_original": True, "text": text, "blocks": blocks_})
            return "response_url"
        except ProactiveError as err:
            log.info("response_url refused the replacement (%s); trying chat.update", err)
    token = get_settings().slack_bot_token
    if not (route.channel and route.ts and token):
        return "no_route"
    try:
        update_message(slack_client(token), route.channel, route.ts, text, blocks_)
        return "chat.update"
    except ProactiveError as err:
        log.warning("chat.update of %s/%s failed (%s); the delivery retries it", route.channel, route.ts, err)
        return "failed"


def _release(row: Row, *, sent: bool) -> None:
    """Give the row's lease back: sent when what we sent is still the newest content, else pending
    again with its delivery published (newer content arrived, or our call failed)."""
    now = utcnow()
    mine = (outbox.c.id == row.id) & (outbox.c.lease_expires_at == row.lease_expires_at)
    with transaction() as conn:
        if sent:
            done = conn.execute(
                update(outbox)
                .where(mine, outbox.c.revision == row.revision)
                .values(status=DeliveryStatus.SENT, lease_expires_at=None, updated_at=now, error=None)
                .returning(outbox.c.id)
            ).first()
            if done is not None:
                return
        conn.execute(
            update(outbox)
            .where(mine)
            .values(
                lease_expires_at=None,
                updated_at=now,
                status=case((outbox.c.ts.is_not(None), DeliveryStatus.PENDING), else_=outbox.c.status),
            )
        )
        on_commit(lambda: publish_delivery([row.id]))


def respond_ephemeral(response_url: str | None, text: str, channel: str | None, slack_user_id: str | None) -> str:
    """Show `text` to the clicker only: their response_url, else chat.postEphemeral; returns how."""
    if response_url and trusted_response_url(response_url):
        try:
            post_to_response_url(response_url, {"response_type": "ephemeral", "replace_original": False, "text": text})
            return "response_url"
        except ProactiveError as err:
            log.info("response_url refused an ephemeral answer (%s)", err)
    elif response_url:
        log.warning("not posting to an untrusted response_url host: %s", urlsplit(response_url).netloc)
    token = get_settings().slack_bot_token
    if channel and slack_user_id and token:
        try:
            post_ephemeral(slack_client(token), channel, slack_user_id, text)
            return "chat.postEphemeral"
        except ProactiveError as err:
            log.warning("chat.postEphemeral to %s in %s failed: %s", slack_user_id, channel, err)
    return "undelivered"
