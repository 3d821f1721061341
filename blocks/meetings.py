"""The meeting debrief: the DM a rep gets after a meeting (meeting_ended's notify-slack-summary).

Summary, action items (who owns each and when it is due), what the prospect signalled, a coaching
tip, suggested next actions, and a last line naming the steps that failed so the rep knows what is
missing. Information only: no buttons (the follow-up email has its own review message).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from blocks import coerce, mrkdwn
from blocks.limits import (
    FALLBACK_TEXT_MAX,
    Block,
    cap_blocks,
    context,
    divider,
    escape,
    header,
    section,
    sections,
    truncate,
)

SUMMARY_BLOCKS_MAX = 2  # section blocks for the summary (≤ 6,000 characters, then a notice)
OWNER_LABEL = {"rep": "you", "prospect": "the prospect"}  # when the item names nobody
INTENT_HEADINGS = (
    ("buying_signals", ":moneybag: *Buying signals*"),
    ("commitments", ":handshake: *Commitments*"),
    ("follow_ups", ":arrows_counterclockwise: *Follow-ups*"),
)


def _due(value: Any) -> str:
    """An ISO due date as "Fri 11 Dec" (anything else shown as given)."""
    text = coerce.text(value)
    try:
        return date.fromisoformat(text).strftime("%a %-d %b")
    except ValueError:
        return mrkdwn.name(text, limit=60)


def _action_item(item: Mapping[str, Any]) -> str:
    """The task, its due date and who does it: "Send the proposal by Fri 11 Dec — owner: Alice" (the
    item's ready ``line`` when the skill gave one)."""
    if coerce.text(item.get("line")):
        return escape(coerce.text(item.get("line")))
    who = coerce.text(item.get("assignee")) or coerce.text(item.get("speaker"))
    owner = who.split()[0] if who and who != "Unknown" else ""
    if not owner:
        owner = OWNER_LABEL.get(coerce.text(item.get("owner")).lower(), "")
    line = escape(coerce.text(item.get("text"), "(no text)"))
    if coerce.text(item.get("due")):
        line += f" by {_due(item.get('due'))}"
    return f"{line} — owner: {mrkdwn.name(owner, limit=60)}" if owner else line


def _bullet_section(heading: str, items: list[str], empty: str | None = None) -> list[Block]:
    if not items and empty is None:
        return []
    return [section(f"{heading}\n{mrkdwn.bullets(items, empty=empty or '')}")]


def meeting_debrief(data: Mapping[str, Any]) -> dict[str, Any]:
    """Build the post-meeting debrief DM ``{"text", "blocks"}``.

    Keys: meeting_title, meeting_start (ISO), call_type, summary, action_items [{text, owner:
    rep|prospect, due, speaker, assignee, line}], intents {buying_signals, commitments, follow_ups:
    [str]}, coaching_tip, next_actions [str], failed_steps [str]. Missing keys leave their part out (or say "none").
    """
    title = coerce.text(data.get("meeting_title"), "your meeting")
    about = [f":spiral_calendar_pad: {mrkdwn.when(data.get('meeting_start')) or 'Time unknown'}"]
    if coerce.text(data.get("call_type")):
        about.append(f"Call type: {mrkdwn.name(coerce.text(data.get('call_type')).replace('_', ' '), limit=80)}")
    summary = escape(coerce.text(data.get("summary"), "No summary available."))
    items = [_action_item(i) for i in coerce.mappings(data.get("action_items"))]
    intents = coerce.mapping(data.get("intents"))
    blocks: list[Block | list[Block]] = [
        header(f"Debrief: {title}"),
        context(about),
        section("*Summary*"),
        *sections(summary, SUMMARY_BLOCKS_MAX),
        divider(),
        *_bullet_section(":white_check_mark: *Action items*", items, empty="No action items found."),
    ]
    for key, heading in INTENT_HEADINGS:
        blocks += _bullet_section(heading, [escape(s) for s in coerce.strings(intents.get(key))])
    tip = coerce.text(data.get("coaching_tip"))
    if tip:
        blocks.append(section(f":bulb: *Coaching tip*\n{truncate(escape(tip), mrkdwn.LIST_LIMIT)}"))
    blocks += _bullet_section(
        ":dart: *Suggested next actions*", [escape(s) for s in coerce.strings(data.get("next_actions"))]
    )
    failed = coerce.strings(data.get("failed_steps"))
    if failed:
        names = ", ".join(escape(f) for f in failed)
        blocks.append(context([f":warning: What failed (that part is missing above): {names}"]))
    text = f"Debrief: {mrkdwn.name(title)} · {mrkdwn.plural(len(items), 'action item')}"
    return {"text": truncate(text, FALLBACK_TEXT_MAX), "blocks": cap_blocks(blocks, noun="part")}
