"""Sending email as the user through Gmail: an RFC 5322 message (threaded when it answers one) and
users.messages.send.

A reply sets In-Reply-To to the Message-ID it answers and References to that thread's chain, and is
sent with the Gmail threadId, so it lands in the same conversation for both sides.

A send made as a side effect carries a Message-ID derived from its effect key (`message_id_for`), so
a retry after a crash can ask the mailbox whether the first attempt's message went out
(`find_sent`, a `rfc822msgid:` search) instead of sending it again.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from worker.errors import PermanentError
from worker.google.client import call


def _references(in_reply_to: str | None, references: str | Sequence[str] | None) -> str | None:
    chain = references.split() if isinstance(references, str) else list(references or [])
    if in_reply_to and in_reply_to not in chain:
        chain.append(in_reply_to)
    return " ".join(chain) or None


SEND_METHOD = "gmail.users.messages.send"  # googleapiclient's methodId, for the quota


def _domain(from_addr: str) -> str | None:
    return parseaddr(from_addr)[1].rpartition("@")[2] or None


def message_id_for(key: str, from_addr: str) -> str:
    """The RFC 5322 Message-ID of the email sent as effect `key` (the same for every attempt):
    `<32 hex of sha256(key)@proactive.{the sender's domain}>`."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    domain = _domain(from_addr)
    return f"<{digest}@proactive.{domain}>" if domain else f"<{digest}@proactive>"


def build_mime(
    from_addr: str,
    to: list[str],
    subject: str,
    body_text: str,
    *,
    in_reply_to: str | None = None,
    references: str | Sequence[str] | None = None,
    cc: list[str] | None = None,
    message_id: str | None = None,
) -> str:
    """The message as Gmail's `raw`: RFC 5322 bytes (CRLF), base64url-encoded; `message_id` (else a
    random one) is its Message-ID."""
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
        msg["Message-ID"] = message_id or make_msgid(domain=_domain(from_addr))
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
        chain = _references(in_reply_to, references)
        if chain:
            msg["References"] = chain
    except ValueError as exc:  # e.g. a header value with a line break (header injection)
        raise PermanentError(f"cannot build the email: {exc}") from exc
    msg.set_content(body_text)
    return base64.urlsafe_b64encode(msg.as_bytes(policy=policy.SMTP)).decode("ascii")


def send(service: Any, raw: str, thread_id: str | None = None, *, quota_taken: bool = False) -> dict[str, str]:
    """Send a `build_mime` message as the authorised user: `{id, threadId}`. `quota_taken`: the
    caller already waited for the send's quota (`client.wait_for_quota(..., SEND_METHOD)`)."""
    body: dict[str, Any] = {"raw": raw}
    if thread_id:
        body["threadId"] = thread_id
    sent = call(service.users().messages().send(userId="me", body=body), quota_taken=quota_taken)
    return {"id": sent["id"], "threadId": sent.get("threadId", "")}


def find_sent(service: Any, message_id: str) -> dict[str, str] | None:
    """The message of the authorised user's mailbox whose Message-ID is `message_id` (trash and spam
    included), as `send` answers it (`{id, threadId}`), or None when the mailbox has none."""
    query = f"rfc822msgid:{message_id.strip().strip('<>')}"
    request = service.users().messages().list(userId="me", q=query, includeSpamTrash=True, maxResults=1)
    found = (call(request).get("messages") or [])[:1]
    return {"id": found[0]["id"], "threadId": found[0].get("threadId", "")} if found else None
