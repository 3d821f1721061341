"""Plain-text rendering of a Slack message, for the console inbox of the embedded default.

The console inbox shows what Slack would have shown: a header underlined, sections, fields as
``label: value`` lines, context lines, buttons as ``[Approve] [Reject]``, radio buttons as
``(•) chosen  ( ) other`` and dividers as dashes.
Slack's mrkdwn is reduced to plain text (entities decoded, bold markers and link brackets removed).
A decided approval shows the request as the rep saw it, without its buttons, then what replaced it
(``render_decided``): in Slack the replacement overwrites the request, here both stay readable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

DIVIDER_WIDTH = 40  # characters of the dashed line standing for a divider block

_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ANGLE = re.compile(r"<([^<>]+)>")  # Slack syntax: user text has its "<" escaped as "&lt;"


def _angle(match: re.Match[str]) -> str:
    """``<@U1|ann>`` -> ``@ann``, ``<#C1|sales>`` -> ``#sales``, ``<!here>`` -> ``@here``, links."""
    target, _, label = match.group(1).partition("|")
    if target.startswith("@"):
        return "@" + (label or target[1:]).lstrip("@")
    if target.startswith("#"):
        return "#" + (label or target[1:]).lstrip("#")
    if target.startswith("!"):
        return label or "@" + target[1:].split("^")[0]
    return f"{label} ({target})" if label else target


def _plain(text: str) -> str:
    """Reduce Slack mrkdwn to readable text."""
    text = _ANGLE.sub(_angle, text)
    text = _BOLD.sub(r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text_of(obj: Any) -> str:
    if isinstance(obj, Mapping):
        text = obj.get("text")
        if isinstance(text, Mapping):
            return _text_of(text)
        if text is None:
            return ""
        return str(text) if obj.get("type") == "plain_text" else _plain(str(text))
    return _plain(str(obj)) if obj is not None else ""


def _field_line(field: Any) -> str:
    text = _text_of(field).strip()
    label, sep, value = text.partition("\n")
    if not sep:
        return text
    return f"{label.strip()}: {' '.join(value.split())}"


def _element(element: Mapping[str, Any]) -> str:
    kind = element.get("type")
    if kind == "button":
        return f"[{_text_of(element.get('text'))}]"
    if kind in ("radio_buttons", "checkboxes"):
        chosen = element.get("initial_option") or {}
        chosen_values = {o.get("value") for o in element.get("initial_options") or ()} | {chosen.get("value")}
        marks = ("(•)", "( )") if kind == "radio_buttons" else ("[x]", "[ ]")
        return "  ".join(
            f"{marks[0] if o.get('value') in chosen_values else marks[1]} {_text_of(o.get('text'))}"
            for o in element.get("options") or ()
        )
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if "placeholder" in element:
        return f"[{_text_of(element.get('placeholder'))} ▾]"
    return f"[{kind}]"


def _block_lines(block: Mapping[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        title = _text_of(block.get("text"))
        return [title, "=" * len(title)]
    if kind == "section":
        lines = _text_of(block.get("text")).splitlines() if block.get("text") else []
        lines.extend(_field_line(f) for f in block.get("fields") or ())
        accessory = block.get("accessory")
        if isinstance(accessory, Mapping):
            lines.append(_element(accessory))
        return lines
    if kind == "context":
        elements = block.get("elements") or ()
        parts = [_element(e) if e.get("type") == "image" else _text_of(e) for e in elements]
        return ["  ".join(p for p in parts if p)]
    if kind == "divider":
        return ["-" * DIVIDER_WIDTH]
    if kind == "actions":
        return [" ".join(_element(e) for e in block.get("elements") or ())]
    if kind == "image":
        return [_element(block)]
    if kind == "input":
        return [f"{_text_of(block.get('label'))}: {_element(block.get('element') or {})}"]
    return [f"[{kind}]"]


def render_text(message: Mapping[str, Any]) -> str:
    """Render a message's blocks as plain text; fall back to ``message["text"]`` without blocks."""
    blocks = message.get("blocks") or []
    if not blocks:
        return _plain(str(message.get("text") or ""))
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Mapping):
            lines.extend(_block_lines(block))
    return "\n".join(lines)


_EMOJI_PREFIX = re.compile(r"^(?::[a-z0-9_+-]+:\s*)+")


def _bare(line: str) -> str:
    """A line without its leading emoji codes and outer spaces (to compare titles)."""
    return _EMOJI_PREFIX.sub("", line.strip()).strip()


def _request_lines(block: Mapping[str, Any]) -> list[str]:
    """A request block as text once decided: buttons left out, a choice's options one per line."""
    if block.get("type") != "actions":
        return _block_lines(block)
    lines: list[str] = []
    for element in block.get("elements") or ():
        if element.get("type") in ("radio_buttons", "checkboxes", "static_select"):
            lines.extend(f"  • {_text_of(o.get('text'))}" for o in element.get("options") or ())
    return lines


def render_decided(request: Mapping[str, Any], outcome: Mapping[str, Any]) -> str:
    """A decided approval: the request's blocks without buttons, then the outcome message.

    The outcome's lines that repeat the request's title (the replacement restates it for Slack,
    where it overwrote the request) are left out.
    """
    lines: list[str] = []
    titles: set[str] = set()
    for block in request.get("blocks") or []:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "header":
            titles.add(_bare(_text_of(block.get("text"))))
        lines.extend(_request_lines(block))
    outcome_text = render_text(outcome)
    lines.extend(line for line in outcome_text.splitlines() if _bare(line) not in titles)
    return "\n".join(lines)
