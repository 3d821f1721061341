"""The email review (approval kind ``email_preview``) and the messages that replace it once sent.

A draft shows who it goes to, its subject and its whole body (split over a few sections), with
Send now / Edit / Send later / Cancel. After Send now the message says when it goes out and offers
Undo for the 30 s undo window; then it becomes "Sent" or "Undone". Every button's value is the
approval id and the actions block id is ``approval:{id}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from blocks import coerce, mrkdwn
from blocks.limits import (
    FALLBACK_TEXT_MAX,
    Block,
    actions,
    button,
    context,
    escape,
    header,
    section,
    sections,
    truncate,
)

EMAIL_DECISIONS: tuple[tuple[str, str, str | None], ...] = (
    ("Send now", "email_send_now", "primary"),
    ("Edit", "email_edit", None),
    ("Send later", "email_send_later", None),
    ("Cancel", "email_cancel", "danger"),
)
BODY_BLOCKS_MAX = 4  # section blocks for a draft's body (≤ 12,000 characters shown, then a notice)
UNDO_TIME_TOKEN = "{time_secs}"  # the undo window is seconds long: show when it goes out to the second
UNDO_TIME_FALLBACK = "%H:%M:%S UTC"


def recipients(value: Any) -> str:
    """The "to" of a draft (one address or a list of them), escaped and bounded."""
    addresses = coerce.strings(value)
    return mrkdwn.name(", ".join(addresses), default="(no recipient)", limit=mrkdwn.ITEM_MAX)


def email_buttons(approval_id: str) -> Block:
    """The actions block of an email review: Send now, Edit, Send later, Cancel."""
    elements = [button(label, action_id, approval_id, style) for label, action_id, style in EMAIL_DECISIONS]
    return actions(f"approval:{approval_id}", elements)


def draft_blocks(preview: Mapping[str, Any]) -> list[Block]:
    """To / subject fields and the draft's body, shared by every email review."""
    fields = [f"*To*\n{recipients(preview.get('to'))}", f"*Subject*\n{_subject(preview)}"]
    body = escape(coerce.text(preview.get("body"), "(empty body)"))
    return [section(None, fields), *sections(body, BODY_BLOCKS_MAX)]


def _subject(preview: Mapping[str, Any]) -> str:
    return mrkdwn.name(preview.get("subject"), default="(no subject)", limit=mrkdwn.ITEM_MAX)


def email_preview(approval_id: str, preview: Mapping[str, Any]) -> dict[str, Any]:
    """Review a drafted email: recipient, subject, body and the four ``email_`` buttons.

    Preview keys: to, subject, body, and optionally title, context (why this email, e.g. "Follow-up
    to Discovery call with Globex") and thread (true when it replies in the thread).
    """
    to = coerce.strings(preview.get("to"))
    title = coerce.text(preview.get("title")) or f"Email to {', '.join(to) or 'review'}"
    notes = [":email: Draft ready for your review"]
    if coerce.text(preview.get("context")):
        notes.append(mrkdwn.name(preview.get("context"), limit=mrkdwn.ITEM_MAX))
    if preview.get("thread") is True:
        notes.append(":thread: Replies in the thread")
    blocks = [header(title), context(notes), *draft_blocks(preview), email_buttons(approval_id)]
    text = f"Review email to {recipients(preview.get('to'))}: {_subject(preview)}"
    return {"text": truncate(text, FALLBACK_TEXT_MAX), "blocks": blocks}


def _sent_line(verb: str, to: Any, subject: Any) -> str:
    return f"{verb} *{mrkdwn.name(subject, default='(no subject)', limit=mrkdwn.ITEM_MAX)}* to {recipients(to)}"


def email_sent_with_undo(approval_id: str, to: Any, subject: Any, send_at: datetime) -> dict[str, Any]:
    """Shown after Send now: when the email goes out, and an Undo button (``email_undo``) until then."""
    at = mrkdwn.when(send_at, UNDO_TIME_TOKEN, UNDO_TIME_FALLBACK)
    blocks = [
        section(f":outbox_tray: {_sent_line('Sending', to, subject)} at {at}"),
        context(["Changed your mind? Undo until it goes out."]),
        actions(f"approval:{approval_id}", [button("Undo", "email_undo", approval_id)]),
    ]
    text = f"Sending email to {recipients(to)} (undo available)"
    return {"text": truncate(text, FALLBACK_TEXT_MAX), "blocks": blocks}


def email_sent(to: Any, subject: Any, at: datetime, by_name: Any = None, edited: bool = False) -> dict[str, Any]:
    """The replacement once the email went out: no buttons; who approved it (and edited it) if known."""
    note = f"Sent {mrkdwn.when(at)}"
    who = coerce.text(by_name)
    if who:
        who = mrkdwn.name(who if who.startswith("@") else f"@{who}")
        note += f" · {'edited and approved' if edited else 'approved'} by {who}"
    blocks = [section(f":white_check_mark: {_sent_line('Sent', to, subject)}"), context([note])]
    return {"text": truncate(f"Email sent to {recipients(to)}", FALLBACK_TEXT_MAX), "blocks": blocks}


def email_undone(to: Any, subject: Any, by_name: Any, at: datetime) -> dict[str, Any]:
    """The replacement when someone clicked Undo in time: the email was not sent, no buttons."""
    who = coerce.text(by_name, "someone")
    who = who if who.startswith("@") else f"@{who}"
    line = f"Undone by {mrkdwn.name(who)} {mrkdwn.when(at)}, nothing was sent"
    blocks = [section(f":leftwards_arrow_with_hook: {_sent_line('Not sent:', to, subject)}"), context([line])]
    return {"text": truncate(f"Email to {recipients(to)} not sent (undone)", FALLBACK_TEXT_MAX), "blocks": blocks}
