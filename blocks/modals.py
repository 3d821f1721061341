"""The Edit modal: a draft's subject and body in two inputs, opened by an ``*_edit`` button.

The view names its purpose in ``callback_id`` (``approval_edit``) and carries what the submission
needs in ``private_metadata`` (opaque text chosen by the caller). The inputs' block ids are
``subject`` and ``body`` (action ids the same), so a ``view_submission`` reads them at
``view.state.values[block_id][block_id].value`` and a validation error names the block it belongs to.
"""

from __future__ import annotations

from typing import Any

from blocks.limits import context, escape, truncate

EDIT_CALLBACK_ID = "approval_edit"
SUBJECT_BLOCK = "subject"
BODY_BLOCK = "body"
MODAL_TITLE_MAX = 24  # characters, a modal's title / submit / close texts
SUBJECT_MAX = 250  # characters we accept in an edited subject (mail clients show far less)
BODY_MAX = 3000  # characters, Slack's largest plain_text_input (max_length cannot go higher)
PRIVATE_METADATA_MAX = 3000  # characters, Slack's limit for a view's private_metadata


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text.strip() or "Edit", limit), "emoji": True}


def _input(block_id: str, label: str, value: str, max_length: int, *, multiline: bool) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": block_id, "max_length": max_length}
    if multiline:
        element["multiline"] = True
    if value:
        element["initial_value"] = value[:max_length]  # Slack refuses an initial value above max_length
    return {"type": "input", "block_id": block_id, "label": _plain(label, 2000), "element": element}


def edit_modal(metadata: str, title: str, subject: str, body: str, note: str = "") -> dict[str, Any]:
    """The ``views.open`` view that edits a draft: ``subject`` and ``body`` inputs prefilled.

    ``metadata`` is stored as the view's private_metadata (at most 3,000 characters, else
    ValueError: it is chosen by code). A body longer than Slack's input allows is cut to 3,000
    characters, and ``note`` (a context line) can say so.
    """
    if len(metadata) > PRIVATE_METADATA_MAX:
        raise ValueError(f"private_metadata is {len(metadata)} characters (max {PRIVATE_METADATA_MAX})")
    blocks: list[dict[str, Any]] = []
    if note.strip():
        blocks.append(context([escape(note)]))
    blocks += [
        _input(SUBJECT_BLOCK, "Subject", subject, SUBJECT_MAX, multiline=False),
        _input(BODY_BLOCK, "Message", body, BODY_MAX, multiline=True),
    ]
    return {
        "type": "modal",
        "callback_id": EDIT_CALLBACK_ID,
        "private_metadata": metadata,
        "title": _plain(title, MODAL_TITLE_MAX),
        "submit": _plain("Save and send", MODAL_TITLE_MAX),
        "close": _plain("Cancel", MODAL_TITLE_MAX),
        "blocks": blocks,
    }


def validate_edit(subject: str | None, body: str | None) -> dict[str, str]:
    """Errors to show in the modal, by block id (empty when the edit is acceptable)."""
    errors: dict[str, str] = {}
    subject_text = (subject or "").strip()
    body_text = (body or "").strip()
    if not subject_text:
        errors[SUBJECT_BLOCK] = "The subject cannot be empty."
    elif len(subject_text) > SUBJECT_MAX or "\n" in subject_text or "\r" in subject_text:
        errors[SUBJECT_BLOCK] = f"Keep the subject to one line of at most {SUBJECT_MAX} characters."
    if not body_text:
        errors[BODY_BLOCK] = "The message cannot be empty."
    elif len(body or "") > BODY_MAX:
        errors[BODY_BLOCK] = f"Keep the message to at most {BODY_MAX} characters."
    return errors
