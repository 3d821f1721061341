"""The daily campaign report: each active campaign's health, and the replies that need the rep.

Campaigns are listed worst first with their rates and suggestions (Apply suggestion / Keep testing,
value = campaign id, block id ``campaign:{id}``); replies follow, those needing an answer first
(positive and other: Draft response / View thread / Mark closed / Add to nurture, value = reply id,
block id ``reply:{id}``). However many there are, the message fits in 50 blocks: the campaigns and
the replies each get a share and end with "…and N more" when cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from blocks import coerce, mrkdwn
from blocks.limits import (
    BLOCK_ID_MAX,
    BUTTON_VALUE_MAX,
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
    truncate,
)

CAMPAIGN_DECISIONS: tuple[tuple[str, str, str | None], ...] = (
    ("Apply suggestion", "camp_apply_suggestion", "primary"),
    ("Keep testing", "camp_keep_testing", None),
)
REPLY_DECISIONS: tuple[tuple[str, str, str | None], ...] = (
    ("Draft response", "camp_draft_response", "primary"),
    ("View thread", "camp_view_thread", None),
    ("Mark closed", "camp_mark_closed", None),
    ("Add to nurture", "camp_add_nurture", None),
)
ACTIONABLE_REPLIES = frozenset({"positive", "other"})  # classifications that get reply buttons
STATUS_EMOJI = {
    "underperforming": ":red_circle:",
    "warning": ":large_yellow_circle:",
    "healthy": ":large_green_circle:",
}
STATUS_ORDER = {"underperforming": 0, "warning": 1, "healthy": 2}  # worst first; unknown last
REPLY_ORDER = {"positive": 0, "other": 1, "negative": 2, "out_of_office": 3, "unsubscribe": 4}
CLASS_LABEL = {
    "positive": ":star: positive",
    "negative": "negative",
    "out_of_office": "out of office",
    "unsubscribe": "unsubscribe",
    "other": "other",
}
SNIPPET_MAX = 600  # characters of a reply quoted in the report
SUGGESTIONS_SHOWN = 3  # suggestions listed per campaign
_BLOCK_ID_PREFIX_MAX = len("campaign:")


def _usable_id(value: Any, seen: set[str]) -> str | None:
    """An id that can be a button value and a unique block id, else ``None`` (no buttons then)."""
    item_id = coerce.text(value)
    if not item_id or len(item_id) > min(BUTTON_VALUE_MAX, BLOCK_ID_MAX - _BLOCK_ID_PREFIX_MAX) or item_id in seen:
        return None
    seen.add(item_id)
    return item_id


def _campaign_blocks(campaign: Mapping[str, Any], seen: set[str]) -> list[Block]:
    status = coerce.text(campaign.get("status"), "unknown").lower()
    name = mrkdwn.name(campaign.get("name"), default="Unnamed campaign")
    fields = [
        f"*Sent*\n{mrkdwn.count(campaign.get('sent'))}",
        f"*Opened*\n{mrkdwn.percent(campaign.get('open_rate'))} ({mrkdwn.count(campaign.get('opened'))})",
        f"*Replied*\n{mrkdwn.percent(campaign.get('reply_rate'))} ({mrkdwn.count(campaign.get('replied'))})",
        f"*Bounced*\n{mrkdwn.percent(campaign.get('bounce_rate'))} ({mrkdwn.count(campaign.get('bounced'))})",
    ]
    label = mrkdwn.name(status.replace("_", " "), limit=40)
    blocks = [section(f"{STATUS_EMOJI.get(status, ':white_circle:')} *{name}* · {label}", fields)]
    suggestions = coerce.strings(campaign.get("suggestions"))
    if suggestions:
        lines = [escape(s) for s in suggestions[:SUGGESTIONS_SHOWN]]
        more = len(suggestions) - SUGGESTIONS_SHOWN
        tips = ":bulb: *What to try*\n" + mrkdwn.bullets(lines) + (f"\n…and {more} more" if more > 0 else "")
        blocks.append(context([tips]))
        campaign_id = _usable_id(campaign.get("campaign_id"), seen)
        if campaign_id is not None:
            buttons = [button(text, action_id, campaign_id, style) for text, action_id, style in CAMPAIGN_DECISIONS]
            blocks.append(actions(f"campaign:{campaign_id}", buttons))
    return blocks


def _reply_class(reply: Mapping[str, Any]) -> str:
    given = coerce.text(reply.get("classification"), "other").lower()
    return given if given in CLASS_LABEL else "other"  # an unknown class is still shown, to be answered


def _reply_blocks(reply: Mapping[str, Any], seen: set[str]) -> list[Block]:
    given = coerce.text(reply.get("classification"), "other").lower()
    kind = _reply_class(reply)
    who = mrkdwn.person(reply.get("from_name"), reply.get("from_email"))
    campaign = mrkdwn.name(reply.get("campaign_name"), default="unknown campaign")
    label = CLASS_LABEL.get(given) or mrkdwn.name(given, limit=40)
    snippet = truncate(escape(" ".join(coerce.text(reply.get("snippet"), "(no text)").split())), SNIPPET_MAX)
    blocks = [section(f"*{who}* · {campaign} · {label}\n_{snippet}_")]
    reply_id = _usable_id(reply.get("reply_id"), seen) if kind in ACTIONABLE_REPLIES else None
    if reply_id is not None:
        buttons = [button(text, action_id, reply_id, style) for text, action_id, style in REPLY_DECISIONS]
        blocks.append(actions(f"reply:{reply_id}", buttons))
    return blocks


def _budget(needs: Sequence[int], room: int) -> tuple[int, int]:
    """Split ``room`` blocks between campaigns and replies: each gets what it needs if both fit,
    else the one needing less keeps it and the other gets the rest (each at least half of ``room``)."""
    campaigns, replies = needs
    if campaigns + replies <= room:
        return campaigns, replies
    first = min(campaigns, max(room - replies, room // 2))
    return first, room - first


def campaign_report(data: Mapping[str, Any]) -> dict[str, Any]:
    """Build the daily campaign report ``{"text", "blocks"}`` for the org's campaign owner(s).

    Keys: date, campaigns [{campaign_id, name, sent, opened, replied, bounced, open_rate,
    reply_rate, bounce_rate (percentages), status, suggestions}], replies [{reply_id,
    campaign_name, from_email, from_name, snippet, classification}].
    """
    date = coerce.text(data.get("date"))
    campaigns = sorted(
        coerce.mappings(data.get("campaigns")),
        key=lambda c: STATUS_ORDER.get(coerce.text(c.get("status")).lower(), len(STATUS_ORDER)),
    )
    replies = sorted(
        coerce.mappings(data.get("replies")),
        key=lambda r: REPLY_ORDER[_reply_class(r)],
    )
    seen_campaigns: set[str] = set()
    seen_replies: set[str] = set()
    campaign_groups = [_campaign_blocks(c, seen_campaigns) for c in campaigns]
    reply_groups = [_reply_blocks(r, seen_replies) for r in replies]
    statuses = [coerce.text(c.get("status")).lower() for c in campaigns]
    tally = ", ".join(f"{statuses.count(s)} {s}" for s in STATUS_ORDER if statuses.count(s))
    to_answer = sum(1 for r in replies if _reply_class(r) in ACTIONABLE_REPLIES)

    title = f"Campaign report · {date}" if date else "Campaign report"
    summary = (
        f"{mrkdwn.plural(len(campaigns), 'active campaign')}{f' ({tally})' if tally else ''}"
        f" · {mrkdwn.plural(to_answer, 'reply', 'replies')} to answer"
    )
    head: list[Block] = [header(f":bar_chart: {title}"), context([mrkdwn.name(summary, limit=mrkdwn.ITEM_MAX)])]
    campaigns_title = section("*Campaigns*")
    replies_title = [divider(), section("*Replies*")]
    room = MAX_BLOCKS - len(head) - 1 - len(replies_title)
    need = (sum(map(len, campaign_groups)) or 1, sum(map(len, reply_groups)) or 1)
    campaign_room, reply_room = _budget(need, room)
    body: list[Block] = [campaigns_title]
    if campaign_groups:
        body += cap_blocks(campaign_groups, noun="campaign", limit=campaign_room)
    else:
        body.append(context(["No active campaigns"]))
    reply_room = room - (len(body) - 1)
    body += replies_title
    if reply_groups:
        body += cap_blocks(reply_groups, noun="reply", plural="replies", limit=reply_room)
    else:
        body.append(context(["No new replies"]))
    text = truncate(escape(f"{title}: {summary}"), FALLBACK_TEXT_MAX)
    return {"text": text, "blocks": [*head, *body]}
