"""The weekly coaching digest: a rep's conversation metrics, their change since last week, and advice.

Metrics are meetings, talk ratio, questions per meeting, longest monologue and next-step clarity,
each with its change against the previous week when known; then the week's wins and losses,
highlights and suggestions. Information only: no buttons.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from blocks import coerce, mrkdwn
from blocks.limits import FALLBACK_TEXT_MAX, Block, context, escape, header, section, truncate


def _share(value: float) -> str:
    return f"{value * 100:.0f} %"


def _points(change: float) -> str:
    return f"{change * 100:.0f} pts"


def _one_decimal(value: float) -> str:
    return f"{value:.1f}"


def _whole(value: float) -> str:
    return f"{value:,.0f}"


# (key, label, format of a value, format of the size of its change since last week)
METRICS: tuple[tuple[str, str, Callable[[float], str], Callable[[float], str]], ...] = (
    ("meetings", "Meetings", _whole, _whole),
    ("talk_ratio", "Talk ratio", _share, _points),
    ("questions_per_meeting", "Questions per meeting", _one_decimal, _one_decimal),
    ("longest_monologue_s", "Longest monologue", mrkdwn.duration, mrkdwn.duration),
    ("next_step_clarity", "Next-step clarity", _share, _points),
)


def _metric(
    label: str,
    value: float | None,
    before: float | None,
    show: Callable[[float], str],
    show_change: Callable[[float], str],
) -> str:
    if value is None:
        return f"*{label}*\n—"
    line = f"*{label}*\n{show(value)}"
    if before is None:
        return line
    change = value - before
    if not change:
        return f"{line} (= last week)"
    return f"{line} ({'↑' if change > 0 else '↓'} {show_change(abs(change))})"


def _list_section(heading: str, items: list[str]) -> list[Block]:
    if not items:
        return []
    return [section(f"{heading}\n{mrkdwn.bullets(escape(i) for i in items)}")]


def coaching_digest(data: Mapping[str, Any]) -> dict[str, Any]:
    """Build the weekly coaching digest ``{"text", "blocks"}``.

    Keys: rep_name, week ("2026-W48"), meetings, talk_ratio (0..1), questions_per_meeting,
    question_target (the questions calls of that length need, shown as "aim for N+"),
    longest_monologue_s, next_step_clarity (0..1), previous (the same metrics a week earlier, or
    None), win_loss {won, lost, notes [str]}, highlights [str], suggestions [str].
    """
    rep = coerce.text(data.get("rep_name"), "you")
    week = coerce.text(data.get("week"))
    previous = coerce.mapping(data.get("previous"))
    fields = [
        _metric(label, coerce.number(data.get(key)), coerce.number(previous.get(key)), show, change)
        for key, label, show, change in METRICS
    ]
    target = coerce.number(data.get("question_target"))
    if target is not None and coerce.number(data.get("questions_per_meeting")) is not None:
        index = [key for key, *_ in METRICS].index("questions_per_meeting")
        label, _, rest = fields[index].partition("\n")
        value, sep, change = rest.partition(" (")
        fields[index] = f"{label}\n{value} (aim for {target:.0f}+)" + (f" ({change}" if sep else "")
    win_loss = coerce.mapping(data.get("win_loss"))
    won, lost = coerce.integer(win_loss.get("won")), coerce.integer(win_loss.get("lost"))
    record = f"Won *{mrkdwn.count(won)}* · Lost *{mrkdwn.count(lost)}*"
    notes = coerce.strings(win_loss.get("notes"))
    record_text = f":trophy: *Wins and losses*\n{record}"
    if notes:
        record_text += "\n" + mrkdwn.bullets(escape(n) for n in notes)
    title = f"Coaching digest · {week}" if week else "Coaching digest"
    blocks = [
        header(f":mortar_board: {title}"),
        context(
            [
                f"For {mrkdwn.name(rep)} · changes compared with the week before"
                if previous
                else f"For {mrkdwn.name(rep)}"
            ]
        ),
        section(None, fields),
        section(record_text),
        *_list_section(":sparkles: *Highlights*", coerce.strings(data.get("highlights"))),
        *_list_section(":bulb: *Try this week*", coerce.strings(data.get("suggestions"))),
    ]
    return {"text": truncate(escape(f"{title} for {rep}"), FALLBACK_TEXT_MAX), "blocks": blocks}
