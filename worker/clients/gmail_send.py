"""Sending email as the user through Gmail: an RFC 5322 message (threaded when it answers one) and
users.messages.send.

A reply sets In-Reply-To to the Message-ID it answers and References to that thread's chain, and is
sent with the Gmail threadId, so it lands in the same conversation for both sides.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from worker.clients.google import call
from worker.errors import PermanentError


def _references(in_reply_to: str | None, references: str | Sequence[str] | None) -> str | None:
    chain = references.split() if isinstance(references, str) else list(references or [])
    if in_reply_to and in_reply_to not in chain:
        chain.append(in_reply_to)
    return " ".join(chain) or None


def build_mime(
    from_addr: str,
    to: list[str],
    subject: str,
    body_text: str,
    *,
    in_reply_to: str | None = None,
    references: str | Sequence[str] | None = None,
    cc: list[str] | None = None,
) -> str:
    """The message as Gmail's `raw`: RFC 5322 bytes (CRLF), base64url-encoded."""
    if not to:
        raise PermanentError("an email needs at least one recipient")
    msg = EmailMessage()
    try:
        msg["From"] = from_addr
        msg["To"] = ", ".join(to)
        if cc:
            msg["Cc"] = ", ".join(cc)
        msg["Subject"] = subject
        msg["Date"] = formatdate(usegmt=True)
        domain = parseaddr(from_addr)[1].rpartition("@")[2] or None
        msg["Message-ID"] = make_msgid(domain=domain)
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
        chain = _references(in_reply_to, references)
        if chain:
            msg["References"] = chain
    except ValueError as exc:  # e.g. a header value with a line break (header injection)
        raise PermanentError(f"cannot build the email: {exc}") from exc
    msg.set_content(body_text)
    return base64.urlsafe_b64encode(msg.as_bytes(policy=policy.SMTP)).decode("ascii")


def send(service: Any, raw: str, thread_id: str | None = None) -> dict[str, str]:
    """Send a `build_mime` message as the authorised user: `{id, threadId}`."""
    body: dict[str, Any] = {"raw": raw}
    if thread_id:
        body["threadId"] = thread_id
    sent = call(service.users().messages().send(userId="me", body=body))
    return {"id": sent["id"], "threadId": sent.get("threadId", "")}
