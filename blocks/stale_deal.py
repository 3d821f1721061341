"""The stale-deal re-engagement review (approval kind ``email_preview`` with a stall score).

Before the email itself, the rep sees why the deal looks stalled (days silent, stall score and its
reasons) and what changed since (trigger events), so they can judge the draft. Same ``email_``
buttons as any email review (docs/sequences.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blocks import coerce, mrkdwn
from blocks.email import draft_blocks, email_buttons, recipients
from blocks.limits import FALLBACK_TEXT_MAX, context, divider, escape, header, section, truncate

STALL_HIGH = 75  # stall score from which the deal is shown as badly stalled (red)


def stale_deal_reengagement(approval_id: str, preview: Mapping[str, Any]) -> dict[str, Any]:
    """Review a re-engagement email for a stalled deal, with the stall analysis above the draft.

    Preview keys: title (else "Re-engage <deal>"), deal_name, company, days_silent, stall_score
    (0-100), stall_reasons [str], trigger_events [str], to, subject, body.
    """
    deal = coerce.text(preview.get("deal_name"), "Unnamed deal")
    score = coerce.integer(preview.get("stall_score"))
    days = coerce.integer(preview.get("days_silent"))
    emoji = ":red_circle:" if score is not None and score >= STALL_HIGH else ":large_orange_circle:"
    fields = [
        f"*Deal*\n{mrkdwn.name(deal)}",
        f"*Company*\n{mrkdwn.name(preview.get('company'))}",
        f"*Silent for*\n{'—' if days is None else f'{days:,} days'}",
        f"*Stall score*\n{emoji} {'—' if score is None else f'{score}/100'}",
    ]
    reasons = mrkdwn.bullets((escape(r) for r in coerce.strings(preview.get("stall_reasons"))), empty="—")
    events = mrkdwn.bullets(
        (escape(e) for e in coerce.strings(preview.get("trigger_events"))), empty="No new activity found"
    )
    blocks = [
        header(coerce.text(preview.get("title")) or f"Re-engage {deal}"),
        section(None, fields),
        section(f"*Why it stalled*\n{reasons}"),
        section(f"*What changed since*\n{events}"),
        divider(),
        context([":email: Suggested re-engagement email"]),
        *draft_blocks(preview),
        email_buttons(approval_id),
    ]
    text = f"Re-engage {mrkdwn.name(deal)}: review email to {recipients(preview.get('to'))}"
    return {"text": truncate(text, FALLBACK_TEXT_MAX), "blocks": blocks}
