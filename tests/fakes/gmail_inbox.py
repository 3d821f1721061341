"""Gmail's read side for FakeGoogle: `users.history.list` (paged, 404 when the start is too old),
`users.messages.get` (format=metadata, metadataHeaders filter) and `users.messages.list` (by label,
or a `q=rfc822msgid:` search that also finds what the mailbox sent through messages.send).

Google publishes no concrete JSON for these (real-payloads/SOURCES.md); the shapes follow the
Gmail discovery document bundled with google-api-python-client (History, Message, MessagePart,
ListHistoryResponse, ListMessagesResponse): ids and history ids are strings, internalDate is epoch
milliseconds as a string. Which mailbox `users/me` means comes from the access token
(`FakeGoogle.mailboxes`).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes.server import Recorded, Reply

if TYPE_CHECKING:
    from tests.fakes.google import FakeGoogle

HISTORY_PAGE = 2  # history records per page: small, so a burst of mail takes several pages


@dataclass
class FakeMessage:
    """One message in a fake mailbox."""

    id: str
    thread_id: str
    labels: list[str]
    headers: dict[str, str]
    snippet: str
    history_id: int
    internal_ms: int

    def resource(self, wanted: list[str] | None) -> dict[str, Any]:
        """The Message resource as format=metadata answers it."""
        headers = [
            {"name": k, "value": v}
            for k, v in self.headers.items()
            if not wanted or k.lower() in {w.lower() for w in wanted}
        ]
        return {
            "id": self.id,
            "threadId": self.thread_id,
            "labelIds": list(self.labels),
            "snippet": self.snippet,
            "historyId": str(self.history_id),
            "internalDate": str(self.internal_ms),
            "sizeEstimate": 1024 + len(self.snippet),
            "payload": {"mimeType": "multipart/alternative", "headers": headers},
        }


@dataclass
class Mailbox:
    """A fake Gmail mailbox: its messages in delivery order and its history id."""

    history_id: int = 1_000
    oldest_history_id: int = 1  # history.list below this answers 404 (history no longer kept)
    messages: list[FakeMessage] = field(default_factory=list)


class GmailInbox:
    """Installs the read routes on a FakeGoogle and holds the mailboxes."""

    def __init__(self, fake: FakeGoogle) -> None:
        self.fake = fake
        self.boxes: dict[str, Mailbox] = {}
        self._seq = itertools.count(1)
        fake.route("GET", r"/gmail/v1/users/([^/]+)/history", self._history)
        fake.route("GET", r"/gmail/v1/users/([^/]+)/messages/([^/]+)", self._get)
        fake.route("GET", r"/gmail/v1/users/([^/]+)/messages", self._list)

    def box(self, address: str) -> Mailbox:
        """The mailbox of `address` (created empty)."""
        return self.boxes.setdefault(address.lower(), Mailbox())

    def deliver(
        self,
        address: str,
        *,
        sender: str,
        subject: str,
        to: str | None = None,
        labels: tuple[str, ...] = ("INBOX", "UNREAD"),
        snippet: str = "",
        rfc822_id: str | None = None,
        references: str | None = None,
        thread_id: str | None = None,
    ) -> FakeMessage:
        """A new message in `address`'s mailbox (its history id moves on)."""
        box = self.box(address)
        box.history_id += 1
        n = next(self._seq)
        gmail_id = f"19{n:014x}"
        headers = {
            "From": sender,
            "To": to or address,
            "Subject": subject,
            "Date": "Wed, 25 Nov 2026 10:00:00 +0000",
            "Message-ID": rfc822_id or f"<fake-{n}@mail.example>",
        }
        if references:
            headers["References"] = references
        msg = FakeMessage(
            gmail_id,
            thread_id or gmail_id,
            list(labels),
            headers,
            snippet or subject,
            box.history_id,
            1_795_000_000_000 + n * 1000,
        )
        box.messages.append(msg)
        return msg

    def forget_history(self, address: str) -> None:
        """Gmail no longer keeps history before now: a history.list from an older id answers 404."""
        box = self.box(address)
        box.oldest_history_id = box.history_id + 1

    # -------------------------------------------------------------- routes

    def _mailbox(self, request: Recorded, user: str) -> Mailbox | Reply:
        from tests.fakes.google import google_error

        if (denied := self.fake._authorized(request)) is not None:
            return denied
        address = self.fake.mailboxes.get(self.fake._bearer(request)) if user == "me" else user
        if not address:
            return google_error(400, "Precondition check failed.", "failedPrecondition", state="FAILED_PRECONDITION")
        return self.box(address)

    def _history(self, request: Recorded, match: re.Match[str]) -> Reply:
        from tests.fakes.google import google_error

        box = self._mailbox(request, match.group(1))
        if isinstance(box, Reply):
            return box
        start = request.arg("startHistoryId")
        if not start or not start.isdigit():
            return google_error(400, "Invalid startHistoryId", "invalidArgument", state="INVALID_ARGUMENT")
        if int(start) < box.oldest_history_id:
            return google_error(404, "Requested entity was not found.", "notFound", state="NOT_FOUND")
        label = request.arg("labelId")
        records = [
            {
                "id": str(m.history_id),
                "messages": [{"id": m.id, "threadId": m.thread_id}],
                "messagesAdded": [{"message": {"id": m.id, "threadId": m.thread_id, "labelIds": list(m.labels)}}],
            }
            for m in box.messages
            if m.history_id > int(start) and (not label or label in m.labels)
        ]
        offset = int(request.arg("pageToken") or 0)
        page = records[offset : offset + HISTORY_PAGE]
        answer: dict[str, Any] = {"historyId": str(box.history_id)}
        if page:
            answer["history"] = page
        if offset + HISTORY_PAGE < len(records):
            answer["nextPageToken"] = str(offset + HISTORY_PAGE)
        return Reply(200, answer)

    def _get(self, request: Recorded, match: re.Match[str]) -> Reply:
        from tests.fakes.google import google_error

        box = self._mailbox(request, match.group(1))
        if isinstance(box, Reply):
            return box
        msg = next((m for m in box.messages if m.id == match.group(2)), None)
        if msg is None:
            return google_error(404, "Requested entity was not found.", "notFound", state="NOT_FOUND")
        return Reply(200, msg.resource(request.query.get("metadataHeaders")))

    def _list(self, request: Recorded, match: re.Match[str]) -> Reply:
        box = self._mailbox(request, match.group(1))
        if isinstance(box, Reply):
            return box
        if request.arg("q") is not None:
            return self._search(request, box)
        labels = request.query.get("labelIds") or []
        limit = int(request.arg("maxResults") or 100)
        found = [m for m in reversed(box.messages) if all(lb in m.labels for lb in labels)][:limit]
        return Reply(
            200, {"messages": [{"id": m.id, "threadId": m.thread_id} for m in found], "resultSizeEstimate": len(found)}
        )

    def _search(self, request: Recorded, box: Mailbox) -> Reply:
        """messages.list with `q=rfc822msgid:<id>` (the only search operator the fake knows): the
        delivered messages and the ones this mailbox sent through messages.send whose Message-ID is
        that id, trash and spam only with includeSpamTrash=true. ListMessagesResponse: `messages`
        [{id, threadId}] (absent when none), `resultSizeEstimate`."""
        from tests.fakes.google import google_error

        wanted = RFC822MSGID.fullmatch((request.arg("q") or "").strip())
        if wanted is None:
            message = f"the fake Gmail search knows only rfc822msgid:, not {request.arg('q')!r}"
            return google_error(400, message, "invalidArgument", state="INVALID_ARGUMENT")
        msgid = _bare(wanted.group(1))
        hidden = set() if request.arg("includeSpamTrash") == "true" else {"TRASH", "SPAM"}
        address = next((a for a, b in self.boxes.items() if b is box), "")
        found = [
            {"id": m.id, "threadId": m.thread_id}
            for m in box.messages
            if _bare(m.headers.get("Message-ID", "")) == msgid and not hidden & set(m.labels)
        ]
        found += [
            {"id": m.id, "threadId": m.thread_id}
            for m in self.fake.sent
            if m.mailbox.lower() == address and _bare(m.mime.get("Message-ID", "")) == msgid
        ]
        limit = int(request.arg("maxResults") or 100)
        answer: dict[str, Any] = {"resultSizeEstimate": len(found)}
        if found:
            answer["messages"] = found[:limit]
        return Reply(200, answer)


RFC822MSGID = re.compile(r"rfc822msgid:(\S+)")


def _bare(message_id: str) -> str:
    """A Message-ID without its angle brackets and surrounding space (Gmail matches it either way)."""
    return message_id.strip().strip("<>").strip()
