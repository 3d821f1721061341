"""Drafted emails for a person to review before sending, and the first reply to an inbound email.

Pure functions (no I/O).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from sequences.skills.email.intents import EmailIntent, EmailIntentKind
from sequences.skills.email.quoted_text import strip_quoted


class EmailDraft(BaseModel):
    """A drafted email: subject and plain-text body, for a person to review before sending."""

    model_config = ConfigDict(frozen=True)

    subject: str
    body: str


_REPLY_PREFIX_RE = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|antwort|ref|rif|r|odp|res|回复|回覆|答复)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*)+",
    re.IGNORECASE,
)
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s*|\n+")
MAX_QUOTED_QUESTIONS = 3  # questions echoed back in a reply draft
MAX_QUESTION_CHARS = 200  # chars of one echoed question


def reply_subject(subject: str | None) -> str:
    """``Re: <subject>`` with any existing reply prefixes (Re:, RE[2]:, AW:, SV:, …) folded into one."""
    core = _REPLY_PREFIX_RE.sub("", subject or "").strip()
    return f"Re: {core}" if core else "Re: your email"


def _first_name(name: str | None, fallback: str) -> str:
    if not name or "@" in name:
        return fallback
    clean = name.strip().strip('"').strip()
    if "," in clean:  # "Whitfield, Dana"
        clean = clean.split(",", 1)[1].strip() or clean.split(",", 1)[0].strip()
    parts = clean.split()
    return parts[0] if parts else fallback


def _questions(body: str) -> list[str]:
    found = []
    for sentence in _SENTENCE_SPLIT_RE.split(strip_quoted(body)):
        sentence = sentence.strip()
        if sentence and sentence[-1] in "?\uff1f" and sentence not in found:
            found.append(sentence[:MAX_QUESTION_CHARS])
    return found[:MAX_QUOTED_QUESTIONS]


def draft_reply(
    intent: EmailIntent | EmailIntentKind | str,
    subject: str | None,
    body: str | None,
    sender_name: str | None,
    rep_name: str | None,
) -> EmailDraft:
    """A short plain-text reply for a person to review: greeting, an answer shaped by the intent, sign-off.

    email_received only drafts for ``reply_required``; the other intents still get a sensible polite note so the
    function is total. Questions in the email (up to 3) are echoed so the rep sees what to answer.
    """
    kind = EmailIntentKind(intent.intent if isinstance(intent, EmailIntent) else intent)
    greeting = f"Hi {_first_name(sender_name, 'there')},"
    signer = _first_name(rep_name, "")
    if kind is EmailIntentKind.REPLY_REQUIRED:
        questions = _questions(body or "")
        if questions:
            listed = "\n".join(f"- {q}" for q in questions)
            noun = "question" if len(questions) == 1 else "questions"
            middle = (
                f"Thanks for your email. I'm looking into your {noun} and will get back to you shortly:\n\n{listed}"
                "\n\nIf it's easier, happy to walk through it on a quick call."
            )
        else:
            middle = "Thanks for your email. I'm on it and will get back to you shortly."
    elif kind is EmailIntentKind.BOOKING_REQUEST:
        middle = "Thanks for reaching out. Happy to find a time; I'll send over a few options shortly."
    elif kind is EmailIntentKind.OUT_OF_OFFICE:
        middle = "Thanks for letting me know. I'll follow up once you're back."
    elif kind is EmailIntentKind.UNSUBSCRIBE:
        middle = "Understood. I've removed you from our outreach and you won't hear from me again. Sorry for the noise."
    else:
        middle = "Thanks for the update."
    closing = f"Best,\n{signer}" if signer else "Best regards"
    return EmailDraft(subject=reply_subject(subject), body=f"{greeting}\n\n{middle}\n\n{closing}")
