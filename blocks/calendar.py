"""The meeting-time picker (approval kind ``calendar_slots``): free slots found in the rep's calendar.

A radio group (``cal_select_slot``, option value = the slot's start as an ISO string, first slot
selected) sits in the same actions block as Send invite / Send times by email / More options /
I'll handle it, so the click's ``state.values["approval:{id}"]["cal_select_slot"]`` holds the
chosen time. With no free slot, only More options and I'll handle it are offered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blocks import coerce, mrkdwn
from blocks.limits import (
    FALLBACK_TEXT_MAX,
    OPTION_VALUE_MAX,
    RADIO_OPTIONS_MAX,
    actions,
    button,
    context,
    header,
    option,
    radio_buttons,
    section,
    truncate,
)

SLOT_ACTION_ID = "cal_select_slot"
SLOT_DECISIONS: tuple[tuple[str, str, str | None], ...] = (
    ("Send invite", "cal_send_invite", "primary"),
    ("Send times by email", "cal_send_times", None),
    ("More options", "cal_more", None),
    ("I'll handle it", "cal_handle", None),
)
NO_SLOT_DECISIONS = SLOT_DECISIONS[2:]  # nothing to invite to or send: look further, or hand over


def _slot_options(slots: list[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Options for the slots whose start can be a value (unique, ≤ 150 chars), and how many were cut."""
    options: list[dict[str, Any]] = []
    seen: set[str] = set()
    usable = 0
    for slot in slots:
        start = coerce.text(slot.get("start"))
        if not start or len(start) > OPTION_VALUE_MAX or start in seen:
            continue
        seen.add(start)
        usable += 1
        if len(options) < RADIO_OPTIONS_MAX:
            options.append(option(coerce.text(slot.get("label"), start), start))
    return options, usable - len(options)


def calendar_slots(approval_id: str, preview: Mapping[str, Any]) -> dict[str, Any]:
    """Offer the free slots as a radio choice with the four ``cal_`` buttons.

    Preview keys: title, contact_name, contact_email, duration_minutes, timezone (the rep's IANA
    name), slots [{start (aware ISO), end, label (already localized), score}], window_text.
    """
    who = mrkdwn.person(preview.get("contact_name"), preview.get("contact_email"))
    contact = coerce.text(preview.get("contact_name")) or coerce.text(preview.get("contact_email"), "your contact")
    title = coerce.text(preview.get("title")) or f"Meeting with {contact}"
    minutes = coerce.integer(preview.get("duration_minutes"))
    length = f"*{minutes} min*" if minutes is not None and minutes > 0 else "*Meeting*"
    zone = mrkdwn.name(preview.get("timezone"), default="your time zone")
    window = mrkdwn.name(preview.get("window_text"), default="in the requested window", limit=mrkdwn.ITEM_MAX)
    options, cut = _slot_options(coerce.mappings(preview.get("slots")))
    blocks = [header(f":calendar: {title}"), section(f"{length} with {who}")]
    if options:
        notes = [f"Free in your calendar {window} · times in {zone}"]
        if cut:
            notes.append(f"…and {cut} more times not shown")
        blocks.append(context(notes))
        elements = [radio_buttons(SLOT_ACTION_ID, options, options[0]["value"])]
        elements += [button(label, action_id, approval_id, style) for label, action_id, style in SLOT_DECISIONS]
        text = f"Pick a time for {truncate(mrkdwn.name(title), mrkdwn.NAME_MAX)}: {len(options)} free slots"
    else:
        blocks.append(section(f":warning: No free slot was found {window}."))
        elements = [button(label, action_id, approval_id, style) for label, action_id, style in NO_SLOT_DECISIONS]
        text = f"No free slot found for {mrkdwn.name(title)}"
    blocks.append(actions(f"approval:{approval_id}", elements))
    return {"text": truncate(text, FALLBACK_TEXT_MAX), "blocks": blocks}
