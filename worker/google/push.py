"""A Gmail push: Pub/Sub's envelope, the notification inside it, and what accepting it does.

Envelope: `{"message": {"data": <base64 JSON>, "messageId", "publishTime", ...}, "subscription"}`;
`data` decodes to `{"emailAddress", "historyId"}` (Gmail says base64url, Pub/Sub's own examples use
standard base64: both are read). `parse_push()` turns a decoded body into a `PushNotice` or raises
`InvalidPush` saying what is wrong. `accept_push()` records the push once per messageId and asks
for a history sync of every active Google integration of that mailbox (one per org), all in one
transaction; the sync itself is `worker.google.sync`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, bindparam, select

from worker.db import transaction
from worker.engine.jobstore import insert_ignoring_conflicts
from worker.errors import UserError
from worker.google.sync import request_sync
from worker.models import GmailPush, Integration, utcnow

gmail_pushes = GmailPush.__table__
integrations = Integration.__table__

# Column sizes of gmail_pushes (longer values are refused, never truncated).
MAX_MESSAGE_ID = 200
MAX_SUBSCRIPTION = 300
MAX_EMAIL = 320
MAX_HISTORY_ID = 32
# Largest `data` accepted (characters of base64): a notification is two short fields.
MAX_DATA_CHARS = 4096

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_DIGITS = re.compile(r"[0-9]+")


class InvalidPush(UserError):
    """An authenticated push whose body is not a Gmail notification: recorded in rejected_events and
    answered 204 all the same, since Pub/Sub redelivers anything else for 7 days."""


class PushStatus(StrEnum):
    """What became of a recorded push (gmail_pushes.status)."""

    ACCEPTED = "accepted"  # a sync was requested for its mailbox(es)
    UNKNOWN_MAILBOX = "unknown_mailbox"  # no active Google integration has that address


@dataclass(frozen=True)
class PushNotice:
    """One Gmail notification as delivered by Pub/Sub."""

    message_id: str
    email_address: str
    history_id: str
    subscription: str | None = None
    published_at: datetime | None = None


# --------------------------------------------------------------------------- parsing (pure)


def parse_push(envelope: Any) -> PushNotice:
    """The notice in a decoded push body; InvalidPush naming the field otherwise."""
    if not isinstance(envelope, dict):
        raise InvalidPush("the push body is not a JSON object")
    message = envelope.get("message")
    if not isinstance(message, dict):
        raise InvalidPush("message is missing or not an object")
    message_id = _text(message.get("messageId", message.get("message_id")), "message.messageId", MAX_MESSAGE_ID)
    data = decode_data(message.get("data"))
    subscription = envelope.get("subscription")
    return PushNotice(
        message_id=message_id,
        email_address=_email(data.get("emailAddress")),
        history_id=_history_id(data.get("historyId")),
        subscription=subscription
        if isinstance(subscription, str) and 0 < len(subscription) <= MAX_SUBSCRIPTION
        else None,
        published_at=_timestamp(message.get("publishTime", message.get("publish_time"))),
    )


def decode_data(data: Any) -> dict[str, Any]:
    """`message.data` decoded: base64 (URL-safe or standard, padding optional) of a JSON object."""
    if not isinstance(data, str) or not data:
        raise InvalidPush("message.data is missing or not a string")
    if len(data) > MAX_DATA_CHARS:
        raise InvalidPush(f"message.data is longer than {MAX_DATA_CHARS} characters")
    standard = data.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPush("message.data is not base64") from None
    try:
        decoded = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidPush("message.data does not decode to JSON") from None
    if not isinstance(decoded, dict):
        raise InvalidPush("message.data does not decode to a JSON object")
    return decoded


def _text(value: Any, field: str, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidPush(f"{field} is missing or not a string")
    if len(value) > max_len or not value.isprintable():
        raise InvalidPush(f"{field} is longer than {max_len} characters or not printable")
    return value


def _email(value: Any) -> str:
    if value is None:
        raise InvalidPush("message.data has no emailAddress")
    text = _text(value, "emailAddress", MAX_EMAIL)
    if not _EMAIL.fullmatch(text):
        raise InvalidPush("emailAddress is not an email address")
    return text


def _history_id(value: Any) -> str:
    """Gmail documents a string; a JSON number is taken too (both are uint64)."""
    if value is None:
        raise InvalidPush("message.data has no historyId")
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _DIGITS.fullmatch(text) or len(text) > MAX_HISTORY_ID:
        raise InvalidPush("historyId is not a positive integer")
    return text


def _timestamp(value: Any) -> datetime | None:
    """publishTime (RFC 3339) in UTC; None when absent or unreadable (it is informative only)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


# --------------------------------------------------------------------------- accepting


@dataclass(frozen=True)
class PushOutcome:
    """What accepting a push did."""

    duplicate: bool  # this messageId was recorded before: nothing else was done
    status: PushStatus | None = None  # None for a duplicate
    integration_ids: tuple[uuid.UUID, ...] = ()  # mailboxes a sync was requested for


_MAILBOXES = (
    select(integrations.c.id, integrations.c.org_id)
    .where(
        integrations.c.provider == "google",
        integrations.c.status == "active",
        integrations.c.account == bindparam("b_account"),
    )
    .order_by(integrations.c.created_at, integrations.c.id)
)
_RECORD: dict[str, Any] = {}  # dialect -> INSERT ... ON CONFLICT (message_id) DO NOTHING RETURNING id


def mailbox_integrations(conn: Connection, email_address: str) -> list[Any]:
    """Active Google integrations of `email_address` (a user in several orgs has one per org). Accounts
    are stored lowercased (worker.google.oauth), so the (provider, account) index serves the lookup."""
    return list(conn.execute(_MAILBOXES, {"b_account": email_address.strip().lower()}))


def _record(conn: Connection) -> Any:
    stmt = _RECORD.get(conn.dialect.name)
    if stmt is None:
        stmt = _RECORD[conn.dialect.name] = insert_ignoring_conflicts(conn, gmail_pushes, ["message_id"]).returning(
            gmail_pushes.c.id
        )
    return stmt


def accept_push(notice: PushNotice, *, now: datetime | None = None) -> PushOutcome:
    """In one transaction: record the push (a known messageId stops here) and request a sync of
    each mailbox it concerns (published after commit)."""
    now = now or utcnow()
    with transaction() as conn:
        return accept_push_in(conn, notice, now)


def accept_push_in(conn: Connection, notice: PushNotice, now: datetime, *, replay: bool = False) -> PushOutcome:
    """`accept_push` in the caller's transaction. A replay (`proactive replay`) also takes up a push
    recorded earlier as `unknown_mailbox` whose mailbox is connected now: its row becomes
    `accepted` and the syncs are requested, as if it had just arrived."""
    mailboxes = mailbox_integrations(conn, notice.email_address)
    status = PushStatus.ACCEPTED if mailboxes else PushStatus.UNKNOWN_MAILBOX
    inserted = conn.execute(
        _record(conn),
        {
            "id": uuid.uuid4(),
            "message_id": notice.message_id,
            "subscription": notice.subscription,
            "email_address": notice.email_address,
            "history_id": notice.history_id,
            "published_at": notice.published_at,
            "status": status.value,
            "integrations": len(mailboxes),
            "error": None if mailboxes else "no active Google integration has this address",
            "received_at": now,
        },
    ).first()
    if inserted is None:
        if not replay:
            return PushOutcome(duplicate=True)
        if not mailboxes:
            stored = conn.execute(
                select(gmail_pushes.c.status).where(gmail_pushes.c.message_id == notice.message_id)
            ).scalar()
            unknown = stored == PushStatus.UNKNOWN_MAILBOX.value
            return PushOutcome(duplicate=False, status=status) if unknown else PushOutcome(duplicate=True)
        taken_up = conn.execute(
            gmail_pushes.update()
            .where(
                gmail_pushes.c.message_id == notice.message_id,
                gmail_pushes.c.status == PushStatus.UNKNOWN_MAILBOX.value,
            )
            .values(status=status.value, integrations=len(mailboxes), error=None)
            .returning(gmail_pushes.c.id)
        ).first()
        if taken_up is None:
            return PushOutcome(duplicate=True)  # it was accepted at the time: its syncs were requested
    for mailbox in mailboxes:
        request_sync(conn, mailbox.org_id, mailbox.id, now)
    return PushOutcome(duplicate=False, status=status, integration_ids=tuple(m.id for m in mailboxes))
