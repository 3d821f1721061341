"""Block Kit limits and the primitives that keep every message within them.

Slack rejects a whole message (``invalid_blocks``) when one text is a character too long, so every
builder goes through these primitives. Text that may come from users or customers is truncated
with an ellipsis, never raised on; identifiers chosen by code (``action_id``, ``block_id``, button
``value``) that break a limit are programming errors and raise ``ValueError``.

Lengths are counted in characters (Python ``len``), as Slack documents them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

Block = dict[str, Any]

MAX_BLOCKS = 50  # blocks per message (chat.postMessage / chat.update)
HEADER_TEXT_MAX = 150  # characters, header block plain_text
SECTION_TEXT_MAX = 3000  # characters, section block text
SECTION_FIELDS_MAX = 10  # fields per section block
FIELD_TEXT_MAX = 2000  # characters, each section field
CONTEXT_ELEMENTS_MAX = 10  # elements per context block
CONTEXT_TEXT_MAX = 3000  # characters, each context text element (text object limit)
ACTIONS_ELEMENTS_MAX = 25  # interactive elements per actions block
BUTTON_TEXT_MAX = 75  # characters, button label
BUTTON_VALUE_MAX = 2000  # characters, button value (we put approval ids there)
ACTION_ID_MAX = 255  # characters, action_id of an interactive element
BLOCK_ID_MAX = 255  # characters, block_id of any block
OPTION_TEXT_MAX = 75  # characters, option label in selects / radio buttons
OPTION_VALUE_MAX = 150  # characters, option value in selects / radio buttons
RADIO_OPTIONS_MAX = 10  # options per radio-buttons element
PLACEHOLDER_TEXT_MAX = 150  # characters, select / input placeholder
FALLBACK_TEXT_MAX = 3000  # characters, top-level "text": only its start shows in notifications

ELLIPSIS = "…"  # one character, so a truncated text is exactly at its limit
EMPTY_TEXT = "—"  # Slack rejects empty texts; shown where user data is blank
BUTTON_STYLES = frozenset({"primary", "danger"})  # the only styles Slack accepts

# A cut that ends inside "&amp;" / "&lt;" / "&gt;" would show a broken entity: drop the fragment.
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def truncate(text: str, limit: int) -> str:
    """Return ``text`` unchanged if it fits in ``limit`` characters, else cut it and end it with "…".

    The result never exceeds ``limit``. A cut never leaves a dangling "&amp"-style entity fragment
    or trailing whitespace before the ellipsis.
    """
    if limit < 1:
        raise ValueError(f"truncate limit must be at least 1 character, got {limit}")
    if len(text) <= limit:
        return text
    kept = text[: limit - len(ELLIPSIS)]
    kept = _PARTIAL_ENTITY.sub("", kept).rstrip()
    return kept + ELLIPSIS


def escape(text: str) -> str:
    """Escape the three characters Slack mrkdwn treats as control characters (``& < >``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _text(text: str | None, limit: int) -> str:
    """Truncate ``text`` to ``limit``, substituting a dash for blank text (Slack rejects empty)."""
    if text is None or not text.strip():
        return EMPTY_TEXT
    return truncate(text, limit)


def _mrkdwn(text: str | None, limit: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _text(text, limit)}


def _plain(text: str | None, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _text(text, limit), "emoji": True}


def _check_id(name: str, value: str, limit: int) -> None:
    if not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters (maximum {limit}): {value[:40]!r}…")


def header(text: str) -> Block:
    """A header block (plain text, truncated to 150 characters)."""
    return {"type": "header", "text": _plain(text, HEADER_TEXT_MAX)}


def section(text: str | None, fields: Sequence[str] | None = None) -> Block:
    """A section block with mrkdwn ``text`` (≤ 3000) and optional mrkdwn ``fields``.

    At most 10 fields of ≤ 2000 characters each; when more are given, the tenth says how many were
    left out. A blank text is omitted when there are fields (Slack needs one or the other).
    """
    block: Block = {"type": "section"}
    field_texts = [f for f in (fields or ()) if f and f.strip()]
    if (text is not None and text.strip()) or not field_texts:
        block["text"] = _mrkdwn(text, SECTION_TEXT_MAX)
    if field_texts:
        if len(field_texts) > SECTION_FIELDS_MAX:
            left_out = len(field_texts) - (SECTION_FIELDS_MAX - 1)
            field_texts = [*field_texts[: SECTION_FIELDS_MAX - 1], f"…and {left_out} more"]
        block["fields"] = [_mrkdwn(f, FIELD_TEXT_MAX) for f in field_texts]
    return block


def context(texts: Iterable[str]) -> Block:
    """A context block of mrkdwn texts (≤ 10 elements of ≤ 3000 characters; extra ones are merged)."""
    items = [t for t in texts if t and t.strip()] or [EMPTY_TEXT]
    if len(items) > CONTEXT_ELEMENTS_MAX:
        items = [*items[: CONTEXT_ELEMENTS_MAX - 1], "  ".join(items[CONTEXT_ELEMENTS_MAX - 1 :])]
    return {"type": "context", "elements": [_mrkdwn(t, CONTEXT_TEXT_MAX) for t in items]}


def divider() -> Block:
    """A divider block."""
    return {"type": "divider"}


def button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    """A button element; the label is truncated to 75 characters.

    ``action_id`` (≤ 255), ``value`` (≤ 2000) and ``style`` (``primary`` / ``danger``) come from code:
    breaking their limits raises ``ValueError``.
    """
    _check_id("action_id", action_id, ACTION_ID_MAX)
    if len(value) > BUTTON_VALUE_MAX:
        raise ValueError(f"button value is {len(value)} characters (maximum {BUTTON_VALUE_MAX})")
    element: dict[str, Any] = {
        "type": "button",
        "text": _plain(text, BUTTON_TEXT_MAX),
        "action_id": action_id,
        "value": value,
    }
    if style is not None:
        if style not in BUTTON_STYLES:
            raise ValueError(f"button style must be one of {sorted(BUTTON_STYLES)}, got {style!r}")
        element["style"] = style
    return element


def actions(block_id: str, elements: Sequence[Mapping[str, Any]]) -> Block:
    """An actions block holding 1 to 25 interactive elements (more or none raises ``ValueError``)."""
    _check_id("block_id", block_id, BLOCK_ID_MAX)
    if not elements:
        raise ValueError("an actions block needs at least one element")
    if len(elements) > ACTIONS_ELEMENTS_MAX:
        raise ValueError(f"{len(elements)} elements in one actions block (maximum {ACTIONS_ELEMENTS_MAX})")
    action_ids = [e.get("action_id") for e in elements]
    if len(set(action_ids)) != len(action_ids):
        raise ValueError(f"duplicate action_id in actions block {block_id!r}: {action_ids}")
    return {"type": "actions", "block_id": block_id, "elements": [dict(e) for e in elements]}


def cap_blocks(
    blocks: Sequence[Mapping[str, Any] | Sequence[Mapping[str, Any]]],
    *,
    noun: str = "item",
    limit: int = MAX_BLOCKS,
    plural: str | None = None,
) -> list[Block]:
    """Flatten ``blocks`` into at most ``limit`` (default 50) blocks.

    An entry is a block, or a list of blocks that form one item (a deal: its section, context and
    divider) and are kept or dropped together. When entries must be cut, whole entries are dropped
    from the end and the last block is a context saying how many (``noun``, or ``plural`` when given,
    else ``noun`` + "s") were left out.
    """
    if limit < 1:
        raise ValueError(f"cap_blocks limit must be at least 1, got {limit}")
    groups = [[dict(entry)] if isinstance(entry, Mapping) else [dict(b) for b in entry] for entry in blocks]
    if sum(len(g) for g in groups) <= limit:
        return [b for g in groups for b in g]
    kept: list[Block] = []
    left_out = 0
    room = limit - 1  # one block is reserved for the "left out" notice
    for index, group in enumerate(groups):
        if len(kept) + len(group) > room:
            left_out = len(groups) - index
            break
        kept.extend(group)
    nouns = noun if left_out == 1 else plural or f"{noun}s"
    return [*kept, context([f"…and {left_out} more {nouns} not shown"])]


def option(text: str, value: str) -> dict[str, Any]:
    """An option for radio buttons or selects; the label is truncated to 75 characters.

    ``value`` (1-150 characters) is what the click reports: breaking its limit raises ``ValueError``.
    """
    _check_id("option value", value, OPTION_VALUE_MAX)
    return {"text": _plain(text, OPTION_TEXT_MAX), "value": value}


def radio_buttons(
    action_id: str, options: Sequence[Mapping[str, Any]], initial_value: str | None = None
) -> dict[str, Any]:
    """A radio-buttons element of 1 to 10 ``option()`` entries, ``initial_value`` selected if given.

    Too many or no options, duplicate values, or an ``initial_value`` that is not an option's value
    are programming errors and raise ``ValueError``.
    """
    _check_id("action_id", action_id, ACTION_ID_MAX)
    if not options:
        raise ValueError("radio buttons need at least one option")
    if len(options) > RADIO_OPTIONS_MAX:
        raise ValueError(f"{len(options)} radio options (maximum {RADIO_OPTIONS_MAX})")
    values = [o.get("value") for o in options]
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate option value in radio buttons {action_id!r}")
    element: dict[str, Any] = {"type": "radio_buttons", "action_id": action_id, "options": [dict(o) for o in options]}
    if initial_value is not None:
        if initial_value not in values:
            raise ValueError(f"initial value {initial_value[:40]!r} is not one of the options")
        element["initial_option"] = dict(options[values.index(initial_value)])
    return element


def _pieces(text: str, limit: int) -> Iterator[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters, preferring line then word breaks."""
    while len(text) > limit:
        cut = text.rfind("\n", limit // 2, limit + 1)
        if cut == -1:
            cut = text.rfind(" ", limit // 2, limit + 1)
        if cut == -1:
            cut = limit
            amp = text.rfind("&", max(0, cut - 4), cut)
            if amp > 0 and ";" not in text[amp:cut]:
                cut = amp  # never split an "&amp;" entity
        piece = text[:cut].rstrip()
        if piece:
            yield piece
        text = text[cut:].lstrip("\n ")
    if text.strip():
        yield text


def sections(text: str | None, max_blocks: int) -> list[Block]:
    """A long mrkdwn text as up to ``max_blocks`` section blocks of ≤ 3000 characters each.

    The text is split at line or word breaks. When it does not fit, the last block is a context
    saying how many characters were left out. A blank text gives one section showing a dash.
    """
    if max_blocks < 2:
        raise ValueError(f"sections needs room for at least 2 blocks, got {max_blocks}")
    pieces = list(_pieces(text or "", SECTION_TEXT_MAX))
    if not pieces:
        return [section(None)]
    if len(pieces) <= max_blocks:
        return [section(p) for p in pieces]
    kept = pieces[: max_blocks - 1]
    left_out = sum(len(p) for p in pieces[max_blocks - 1 :])
    return [*(section(p) for p in kept), context([f"…and {left_out:,} more characters not shown"])]
