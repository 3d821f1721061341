"""The proposal review (approval kind ``proposal_review``): the populated proposal before it goes out.

The rep sees the deal, the contact it goes to, the template used, a link to the full proposal and
its sections, with Approve & send / Edit / Share link / Skip (``prop_`` actions, value = approval
id, actions block id ``approval:{id}``). A proposal with many long sections shows the ones that fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blocks import coerce, mrkdwn
from blocks.limits import (
    FALLBACK_TEXT_MAX,
    MAX_BLOCKS,
    Block,
    actions,
    button,
    cap_blocks,
    context,
    divider,
    escape,
    header,
    section,
    sections,
    truncate,
)

PROPOSAL_DECISIONS: tuple[tuple[str, str, str | None], ...] = (
    ("Approve & send", "prop_approve_send", "primary"),
    ("Edit", "prop_edit", None),
    ("Share link", "prop_share_link", None),
    ("Skip", "prop_skip", None),
)
SECTION_BLOCKS_MAX = 2  # blocks per proposal section (≤ 6,000 characters shown, then a notice)


def _section_blocks(part: Mapping[str, Any]) -> list[Block]:
    heading = mrkdwn.name(part.get("heading"), default="Section")
    body = escape(coerce.text(part.get("body")))
    return sections(f"*{heading}*\n{body}" if body else f"*{heading}*", SECTION_BLOCKS_MAX)


def proposal_review(approval_id: str, preview: Mapping[str, Any]) -> dict[str, Any]:
    """Review a proposal before it is sent.

    Preview keys: title, deal_name, company, value, currency, template, sections [{heading, body}],
    link (or None), contact_name, contact_email.
    """
    title = coerce.text(preview.get("title")) or f"Proposal for {coerce.text(preview.get('company'), 'review')}"
    fields = [
        f"*Deal*\n{mrkdwn.name(preview.get('deal_name'))}",
        f"*Company*\n{mrkdwn.name(preview.get('company'))}",
        f"*Value*\n{mrkdwn.money(preview.get('value'), preview.get('currency'))}",
        f"*Template*\n{mrkdwn.name(preview.get('template'))}",
        f"*Send to*\n{mrkdwn.person(preview.get('contact_name'), preview.get('contact_email'))}",
    ]
    link = mrkdwn.link(preview.get("link"), "Open the full proposal")
    head: list[Block] = [
        header(title),
        section(None, fields),
        context([f":page_facing_up: {link}" if link else ":page_facing_up: No link yet: it is created on send"]),
        divider(),
    ]
    buttons = [button(label, action_id, approval_id, style) for label, action_id, style in PROPOSAL_DECISIONS]
    tail = [divider(), actions(f"approval:{approval_id}", buttons)]
    parts = [_section_blocks(p) for p in coerce.mappings(preview.get("sections"))]
    body = (
        cap_blocks(parts, noun="section", limit=MAX_BLOCKS - len(head) - len(tail))
        if parts
        else [section("_No sections were generated._")]
    )
    text = f"Review proposal: {truncate(escape(title), mrkdwn.NAME_MAX)}"
    return {"text": truncate(text, FALLBACK_TEXT_MAX), "blocks": [*head, *body, *tail]}
