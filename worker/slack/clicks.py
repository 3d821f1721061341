"""What Slack sent: a click (`Click`), an Edit modal's submission (`Submission`), and the vocabulary
of the buttons we render (docs/sequences.md). Pure parsing: no database, no Slack call.

Action ids are `{prefix}_{verb}`; for the approval buttons (`VERBS`) the verb is the decision
(`prop_approve_send` -> "approve_send", `cal_more` -> "more"). Sequences add their own prefixes
through `worker/slack/action_registry.py` (`camp_`: the campaign report's buttons).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from blocks.calendar import SLOT_ACTION_ID
from blocks.modals import BODY_BLOCK, SUBJECT_BLOCK

# The approval buttons we render, by prefix. The verb is the decision.
VERBS: Mapping[str, frozenset[str]] = {
    "orch": frozenset({"approve", "reject", "edit"}),
    "prop": frozenset({"approve_send", "edit", "share_link", "skip"}),
    "cal": frozenset({"select_slot", "send_invite", "send_times", "more", "handle"}),
    "email": frozenset({"send_now", "edit", "send_later", "cancel", "undo"}),
}
# The approval kind a prefix's buttons belong to (`orch_` buttons fit any kind).
KIND_OF_PREFIX: Mapping[str, str] = {"prop": "proposal_review", "cal": "calendar_slots", "email": "email_preview"}
SLOT_VERBS = frozenset({"send_invite"})  # decisions that carry the radio's chosen slot


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
    DONE = "done"  # an action of a registered prefix (a campaign button)


Out = ClickOutcome


@dataclass(frozen=True)
class ActionRef:
    """A known action id split into its prefix and verb."""

    prefix: str
    verb: str


def nonempty_text(value: Any) -> str | None:
    """`value` when it is a non-empty string, else None (payload fields may be anything)."""
    return value if isinstance(value, str) and value else None


def as_seconds(value: Any) -> float | None:
    """`value` as epoch seconds, or None when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_uuid(value: str) -> uuid.UUID | None:
    """A button value (or metadata field) as the id it names, or None when it is not one."""
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return None


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _team(payload: Mapping[str, Any]) -> str | None:
    """The workspace: `team.id`, or the user's `team_id` (org-wide apps send `team: null`)."""
    return nonempty_text(_dig(payload, "team", "id")) or nonempty_text(_dig(payload, "user", "team_id"))


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
    payload: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def raw(self) -> str:
        """The payload as JSON, kept when the click is refused (serialised only then)."""
        return _raw(self.payload) if self.payload is not None else ""

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], action: Mapping[str, Any]) -> Click:
        """Build from a block_actions payload and one of its `actions` (tolerates missing fields)."""
        value = nonempty_text(action.get("value")) or ""
        block_id = nonempty_text(action.get("block_id")) or ""
        state_block = block_id or f"approval:{value}"
        slot = _dig(payload, "state", "values", state_block, SLOT_ACTION_ID, "selected_option", "value")
        return cls(
            action_id=nonempty_text(action.get("action_id")) or "",
            value=value,
            block_id=block_id,
            team_id=_team(payload),
            slack_user_id=nonempty_text(_dig(payload, "user", "id")),
            response_url=nonempty_text(payload.get("response_url")),
            trigger_id=nonempty_text(payload.get("trigger_id")),
            channel_id=nonempty_text(_dig(payload, "channel", "id"))
            or nonempty_text(_dig(payload, "container", "channel_id")),
            clicked_at=as_seconds(action.get("action_ts")),
            selected_slot=nonempty_text(slot),
            payload=payload,
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

        def text_of(block: str) -> str | None:
            value = _dig(values, block, block, "value")
            return value if isinstance(value, str) else None

        return cls(
            callback_id=nonempty_text(_dig(payload, "view", "callback_id")) or "",
            private_metadata=nonempty_text(_dig(payload, "view", "private_metadata")) or "",
            subject=text_of(SUBJECT_BLOCK),
            body=text_of(BODY_BLOCK),
            team_id=_team(payload),
            slack_user_id=nonempty_text(_dig(payload, "user", "id")),
            raw=_raw(payload),
        )
