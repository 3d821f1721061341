"""The approval message: what a paused job shows in Slack, and what replaces it once decided.

Every approval kind uses the same shape: a header, the summary with its fields, one line saying
what is asked, and the decision buttons. Each button carries the approval id in ``value`` and the
actions block carries it in ``block_id`` (``approval:{id}``), so a click names its approval twice
(docs/sequences.md). The replacement messages have no buttons, so nobody can click twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from blocks.limits import (
    FALLBACK_TEXT_MAX,
    FIELD_TEXT_MAX,
    actions,
    button,
    context,
    escape,
    header,
    section,
    truncate,
)

DEFAULT_DECISIONS: tuple[tuple[str, str], ...] = (("Approve", "orch_approve"), ("Reject", "orch_reject"))
FIELD_LABEL_MAX = 100  # characters kept of a field label, so a long label leaves room for its value
TITLE_IN_TEXT_MAX = 300  # characters of a title repeated in mrkdwn and fallback texts

_DECISION_WORDS = {
    "approve": "Approved",
    "approved": "Approved",
    "reject": "Rejected",
    "rejected": "Rejected",
}
_DECISION_EMOJI = {"Approved": ":white_check_mark:", "Rejected": ":x:"}


def format_utc(at: datetime) -> str:
    """Format a time as ``2026-11-25 17:03 UTC`` (naive times are taken to be UTC already)."""
    at_utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at_utc.strftime("%Y-%m-%d %H:%M UTC")


def _button_style(action_id: str) -> str | None:
    if action_id.endswith(("_approve", "_approve_send")):
        return "primary"
    if action_id.endswith("_reject"):
        return "danger"
    return None


def _field(label: str, value: str) -> str:
    label_text = truncate(escape(label.strip() or "—"), FIELD_LABEL_MAX)
    return truncate(f"*{label_text}*\n{escape(value.strip() or '—')}", FIELD_TEXT_MAX)


def approval_message(
    approval_id: str,
    kind: str,
    title: str,
    summary: str,
    fields: Mapping[str, str] | None,
    decisions: Sequence[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Build the approval request ``{"text", "blocks"}`` with one button per decision.

    ``decisions`` are ``(label, action_id)`` pairs, by default Approve (``orch_approve``) and Reject
    (``orch_reject``). Every button's value is ``approval_id``; the actions block id is
    ``approval:{approval_id}``. Title, summary and fields are user data: escaped and truncated.
    """
    chosen = DEFAULT_DECISIONS if decisions is None else tuple(decisions)
    buttons = [button(label, action_id, approval_id, _button_style(action_id)) for label, action_id in chosen]
    field_texts = [_field(str(label), str(value)) for label, value in (fields or {}).items()]
    kind_label = kind.replace("_", " ").strip() or "approval"
    blocks = [
        header(title),
        section(escape(summary), field_texts),
        context([f"Needs your decision · {escape(kind_label)}"]),
        actions(f"approval:{approval_id}", buttons),
    ]
    text = truncate(f"Approval needed: {escape(title)}", FALLBACK_TEXT_MAX)
    return {"text": text, "blocks": blocks}


def decided_message(original_title: str, decision: str, by_name: str, at: datetime) -> dict[str, Any]:
    """The replacement once decided: no buttons, "Approved by @x at 2026-11-25 17:03 UTC".

    ``decision`` is ``approve(d)`` / ``reject(ed)`` or any other verb (``skip`` → "Skip").
    """
    word = _DECISION_WORDS.get(decision.strip().lower()) or decision.replace("_", " ").strip().capitalize()
    who = by_name.strip() or "someone"
    who = who if who.startswith("@") else f"@{who}"
    line = f"{word or 'Decided'} by {who} at {format_utc(at)}"
    emoji = _DECISION_EMOJI.get(word, ":ballot_box_with_check:")
    title = truncate(original_title.strip() or "Approval", TITLE_IN_TEXT_MAX)
    blocks = [section(f"*{escape(title)}*"), context([f"{emoji} {escape(line)}"])]
    return {"text": truncate(escape(f"{title}: {line}"), FALLBACK_TEXT_MAX), "blocks": blocks}


def expired_message(original_title: str, expired_at: datetime) -> dict[str, Any]:
    """The replacement when nobody decided in time: no buttons, "Expired at 2026-11-25 17:03 UTC"."""
    line = f"Expired at {format_utc(expired_at)}, no decision was made"
    title = truncate(original_title.strip() or "Approval", TITLE_IN_TEXT_MAX)
    blocks = [section(f"*{escape(title)}*"), context([f":hourglass: {line}"])]
    return {"text": truncate(f"{escape(title)}: Expired", FALLBACK_TEXT_MAX), "blocks": blocks}
