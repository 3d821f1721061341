"""Which interactive message an approval kind gets (docs/sequences.md).

``email_preview`` → the email review (the stale-deal review when the preview has a stall score),
``proposal_review`` → the proposal review, ``calendar_slots`` → the time picker; any other kind
gets the generic approval message with ``orch_`` Approve / Reject buttons.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from blocks import coerce
from blocks.approval import approval_message
from blocks.calendar import calendar_slots
from blocks.email import email_preview
from blocks.proposals import proposal_review
from blocks.stale_deal import stale_deal_reengagement

Builder = Callable[[str, Mapping[str, Any]], dict[str, Any]]

BUILDERS: dict[str, Builder] = {
    "email_preview": email_preview,
    "proposal_review": proposal_review,
    "calendar_slots": calendar_slots,
}
GENERIC_HIDDEN_KEYS = frozenset({"title", "summary", "fields", "approver_user_ids"})  # not listed in a summary


def _generic_summary(preview: Mapping[str, Any]) -> str:
    summary = coerce.text(preview.get("summary"))
    if summary:
        return summary
    shown = [f"*{key}*: {coerce.text(value, '—')}" for key, value in preview.items() if key not in GENERIC_HIDDEN_KEYS]
    return "\n".join(shown) or "Please review."


def approval_blocks(kind: str, approval_id: str, preview: Mapping[str, Any]) -> dict[str, Any]:
    """The approval request ``{"text", "blocks"}`` for ``kind``, built from the step's ``preview``.

    Unknown kinds fall back to ``approval_message`` with the preview's title, summary (or its other
    keys listed) and ``fields`` mapping.
    """
    if kind == "email_preview" and "stall_score" in preview:
        return stale_deal_reengagement(approval_id, preview)
    builder = BUILDERS.get(kind)
    if builder is not None:
        return builder(approval_id, preview)
    fields = preview.get("fields")
    title = coerce.text(preview.get("title")) or kind.replace("_", " ").strip().capitalize() or "Approval"
    return approval_message(
        approval_id,
        kind,
        title,
        _generic_summary(preview),
        {str(k): coerce.text(v, "—") for k, v in fields.items()} if isinstance(fields, Mapping) else None,
    )
