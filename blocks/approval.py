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

# How each decision reads once made: "<line> by @who at <time>" ({who} and {at} filled in).
# One wording for every kind, so the same click reads the same in a proposal, an email or a slot picker.
_DECISION_LINES: dict[str, str] = {
    "approve": "Approved by {who} at {at}",
    "approved": "Approved by {who} at {at}",
    "reject": "Rejected by {who} at {at}",
    "rejected": "Rejected by {who} at {at}",
    "approve_send": "Approved and sent by {who} at {at}",
    "edit": "Edited and approved by {who} at {at}",
    "send_now": "Approved to send by {who} at {at}",
    "send_later": "Scheduled to send later by {who} at {at}",
    "cancel": "Cancelled by {who} at {at}",
    "cancelled": "Closed at {at}: the job ended, nothing is left to decide",
    "skip": "Skipped by {who} at {at}",
    "share_link": "Answered with a link by {who} at {at}",
    "send_invite": "Invite sent by {who} at {at}",
    "send_times": "Times emailed by {who} at {at}",
    "more": "Replaced by newer options ({who} asked for more at {at})",
    "superseded": "Replaced by newer options ({who} asked for more at {at})",
    "handle": "Taken over by {who} at {at}: no invite was sent",
}
# The button a decision comes from, as the rep saw it (for "Bruno Keller chose Cancel").
DECISION_LABELS: dict[str, str] = {
    "approve": "Approve",
    "reject": "Reject",
    "approve_send": "Approve & send",
    "edit": "Edit",
    "send_now": "Send now",
    "send_later": "Send later",
    "cancel": "Cancel",
    "undo": "Undo",
    "skip": "Skip",
    "share_link": "Share link",
    "send_invite": "Send invite",
    "send_times": "Send times by email",
    "more": "More options",
    "handle": "I'll handle it",
}
_APPROVING = frozenset({"approve", "approved", "approve_send", "edit", "send_now", "send_invite", "send_times"})
_STOPPING = frozenset({"reject", "rejected", "cancel", "cancelled", "skip"})


def decision_label(decision: str) -> str:
    """The button a decision comes from ("send_invite" -> "Send invite"); unknown ones humanised."""
    key = decision.strip().lower()
    return DECISION_LABELS.get(key) or key.replace("_", " ").capitalize() or "Decide"


def decision_line(decision: str, by_name: str, at: datetime) -> str:
    """What a decision did, by whom and when: "Cancelled by @Bruno Keller at 2026-11-25 17:03 UTC"."""
    key = decision.strip().lower()
    who = by_name.strip() or "someone"
    who = who if who.startswith("@") else f"@{who}"
    line = _DECISION_LINES.get(key) or f"{decision_label(key)} chosen by {{who}} at {{at}}"
    return line.format(who=who, at=format_utc(at))


def decision_emoji(decision: str) -> str:
    """The emoji of a decided line: a tick when it goes ahead, a cross when it stops, else a box."""
    key = decision.strip().lower()
    if key in _APPROVING:
        return ":white_check_mark:"
    if key in _STOPPING:
        return ":x:"
    if key in ("more", "superseded"):
        return ":repeat:"
    return ":ballot_box_with_check:"


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


def decided_message(original_title: str, decision: str, by_name: str, at: datetime, detail: str = "") -> dict[str, Any]:
    """The replacement once decided: no buttons, "Approved by @x at 2026-11-25 17:03 UTC".

    ``decision`` is the verb of the click (``approve``, ``cancel``, ``more``…) or a status
    (``approved``, ``rejected``); each reads as what it did (``decision_line``). ``detail`` (plain
    words, e.g. the chosen time of an invite) ends the line.
    """
    line = decision_line(decision, by_name, at) + (f" · {detail.strip()}" if detail.strip() else "")
    title = truncate(original_title.strip() or "Approval", TITLE_IN_TEXT_MAX)
    blocks = [section(f"*{escape(title)}*"), context([f"{decision_emoji(decision)} {escape(line)}"])]
    return {"text": truncate(escape(f"{title}: {line}"), FALLBACK_TEXT_MAX), "blocks": blocks}


def expired_message(original_title: str, expired_at: datetime) -> dict[str, Any]:
    """The replacement when nobody decided in time: no buttons, "Expired at 2026-11-25 17:03 UTC"."""
    line = f"Expired at {format_utc(expired_at)}, no decision was made"
    title = truncate(original_title.strip() or "Approval", TITLE_IN_TEXT_MAX)
    blocks = [section(f"*{escape(title)}*"), context([f":hourglass: {line}"])]
    return {"text": truncate(f"{escape(title)}: Expired", FALLBACK_TEXT_MAX), "blocks": blocks}
