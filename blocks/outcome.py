"""What an approved action became, shown on the approval's own message once it is known.

The message whose buttons were clicked already says "Approved by …". When the approved send then
waits (Google not connected), fails, may have half-happened, or finally goes out after a wait, the
same message says so in one line under the title: "Not sent: <why> — <what to do>", with a link
where the person has something to open (their Google connect link). No buttons. The line's block
id names its state (``outcome:waiting``), so "Sent" replaces a "waiting" message and nothing else.
"""

from __future__ import annotations

from typing import Any

from blocks import mrkdwn
from blocks.limits import CONTEXT_TEXT_MAX, FALLBACK_TEXT_MAX, context, escape, section, truncate

LINK_SLOT = "{link}"  # where the link goes in a `todo` text
TITLE_MAX = 300  # characters of the title shown above the line
# Characters of each escaped part of the line, so the whole line (≤ 3000) always keeps the link whole:
WHY_MAX = 800  # the reason (a long provider error must leave room for what to do)
TODO_PART_MAX = 500  # the words before and after the link

# The emoji before each state's line: the person sees at a glance whether to act.
STATE_EMOJI = {
    "waiting": ":hourglass_flowing_sand:",
    "not_sent": ":warning:",
    "maybe_sent": ":grey_question:",
    "sent": ":white_check_mark:",
}
# The first words of each state's line.
STATE_HEADLINE = {
    "waiting": "Approved — waiting for Google",
    "not_sent": "Not sent",
    "maybe_sent": "Maybe sent",
    "sent": "Sent",
}


def outcome_block_id(state: str) -> str:
    """The block id of the outcome line (``outcome:waiting``): how a later outcome knows what the
    message shows now without reading its words."""
    return f"outcome:{state}"


def offers_action(message_blocks: Any, action_id: str) -> bool:
    """True when a message still shows a button (or other element) with `action_id`."""
    return any(
        isinstance(e, dict) and e.get("action_id") == action_id
        for b in message_blocks or []
        if isinstance(b, dict) and b.get("type") == "actions"
        for e in b.get("elements") or []
    )


def shows_state(message_blocks: Any, state: str) -> bool:
    """True when a message's blocks carry the outcome line of `state`."""
    wanted = outcome_block_id(state)
    return any(isinstance(b, dict) and b.get("block_id") == wanted for b in message_blocks or [])


def _part(text: str) -> str:
    return truncate(escape(text), TODO_PART_MAX) if text else ""


def _line(headline: str, why: str, todo: str) -> str:
    line = headline
    if why:
        line += f": {why}"
        if todo:
            line += f" — {todo}"
    elif todo:
        line += f": {todo}"
    return line


def action_outcome(
    title: str,
    state: str,
    *,
    why: str = "",
    todo: str = "",
    link: str | None = None,
    link_label: str = "",
    no_link: str = "",
    at: str = "",
) -> dict[str, Any]:
    """The approval's message once its approved action has an outcome ``{"text", "blocks"}``.

    ``state`` is waiting, not_sent, maybe_sent or sent (its emoji and headline); ``why`` and ``todo``
    are plain words (escaped here). ``{link}`` in ``todo`` becomes ``<link|link_label>``, or
    ``no_link`` when there is no link. ``at`` (already formatted) ends the line.
    """
    headline = STATE_HEADLINE.get(state, state.replace("_", " ").capitalize())
    why = why.strip()
    slot_md = mrkdwn.link(link, link_label or "open") if link else _part(no_link)
    slot_text = f"{link_label or 'open'}: {link}" if link else no_link
    before, found, after = todo.partition(LINK_SLOT)
    todo_md = _part(before) + (slot_md + _part(after) if found else "")
    todo_text = before + (slot_text + after if found else "")
    line_md = _line(escape(headline), truncate(escape(why), WHY_MAX) if why else "", todo_md)
    line_text = _line(headline, why, todo_text)
    if at:
        line_md, line_text = f"{line_md} ({escape(at)})", f"{line_text} ({at})"
    shown_title = truncate(title.strip() or "Approval", TITLE_MAX)
    emoji = STATE_EMOJI.get(state, ":information_source:")
    line_block = {**context([truncate(f"{emoji} {line_md}", CONTEXT_TEXT_MAX)]), "block_id": outcome_block_id(state)}
    blocks = [section(f"*{escape(shown_title)}*"), line_block]
    return {"text": truncate(f"{shown_title}: {line_text}", FALLBACK_TEXT_MAX), "blocks": blocks}
