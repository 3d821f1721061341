"""Gmail history sync: a push says "something changed in this mailbox"; a task
asks Gmail what (`users.history.list` from the stored history id, paged, INBOX additions only),
reads each new message's metadata (`users.messages.get`, format=metadata), skips mail the user
sent, stores `emails` rows and fires one `email_received` per message (key `email:{gmail id}`),
and advances the stored history id in the same transaction as the events — never before them. A
404 (history no longer kept) resyncs the last 50 INBOX messages; the stored keys make that
harmless.

One sync at a time per mailbox: a push stamps `sync_wanted_at` and publishes the task
(`request_sync`); the task takes the integration's `sync_lease_until` (a conditional UPDATE) or
returns at once when another holds it. The holder, when done, gives the lease back only if no push
came in while it ran; otherwise it syncs again. A burst of pushes is one sync, maybe two.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import getaddresses, parseaddr
from types import ModuleType
from typing import Any

from sqlalchemy import Connection, Uuid, and_, bindparam, or_, select, update
from sqlalchemy.exc import OperationalError

from worker.celery_app import celery_app
from worker.config import get_settings
from worker.db import transaction
from worker.engine.events import Fired, fire_in
from worker.engine.jobstore import insert_ignoring_conflicts
from worker.engine.publish import Message, after_commit
from worker.errors import AuthRevoked, PermanentError, TransientError
from worker.integrations import mark_revoked
from worker.models import Email, Integration, utcnow

log = logging.getLogger(__name__)

SYNC_TASK = "proactive.gmail_sync"
LEASE = timedelta(minutes=5)  # a sync that died gives the mailbox back after this long
RESYNC_COUNT = 50  # messages read again when Gmail no longer has the history we asked for
MAX_PASSES = 10  # syncs in a row for pushes that kept arriving (the next push starts over)
GET_METHOD = "gmail.users.messages.get"
HEADERS = ["From", "To", "Cc", "Subject", "Date", "Message-ID", "References", "In-Reply-To"]
integrations, emails = Integration.__table__, Email.__table__


def _google() -> ModuleType:
    """worker.google.client, imported by the first sync rather than at worker start: google-auth,
    httplib2 and googleapiclient (about 16 MiB per process) stay out of a worker that syncs no mailbox."""
    from worker.google import client  # here, not at the top: see the docstring

    return client


# --------------------------------------------------------------------------- pure parts


@dataclass(frozen=True)
class MessageFacts:
    """What an `emails` row keeps of a Gmail message (metadata only)."""

    gmail_id: str
    thread_id: str | None
    from_addr: str
    from_name: str
    to_addrs: list[str]
    subject: str | None
    rfc822_id: str | None
    references: str | None
    snippet: str | None
    history_id: int | None
    received_at: datetime


def message_facts(message: Mapping[str, Any]) -> MessageFacts:
    """Read a `users.messages.get` (format=metadata) answer."""
    headers: dict[str, str] = {}
    for h in (message.get("payload") or {}).get("headers") or []:
        name = str(h.get("name") or "").lower()
        headers.setdefault(name, str(h.get("value") or ""))
    from_name, from_addr = parseaddr(headers.get("from", ""))
    to = [addr for _, addr in getaddresses([headers.get("to", ""), headers.get("cc", "")]) if addr]
    references = " ".join(x for x in (headers.get("references"), headers.get("in-reply-to")) if x) or None
    try:
        received = datetime.fromtimestamp(int(message.get("internalDate") or 0) / 1000, UTC)
    except (TypeError, ValueError):
        received = utcnow()
    history = str(message.get("historyId") or "")
    return MessageFacts(
        gmail_id=str(message["id"]),
        thread_id=str(message.get("threadId") or "") or None,
        from_addr=from_addr.lower(),
        from_name=from_name,
        to_addrs=to,
        subject=(headers.get("subject") or None),
        rfc822_id=headers.get("message-id") or None,
        references=references,
        snippet=str(message.get("snippet") or "") or None,
        history_id=int(history) if history.isdigit() else None,
        received_at=received,
    )


def added_ids(pages: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ids of the messages added to INBOX across history pages, first seen first, once each."""
    seen: dict[str, None] = {}
    for page in pages:
        for record in page.get("history") or []:
            for added in record.get("messagesAdded") or []:
                msg = added.get("message") or {}
                labels = msg.get("labelIds")
                if msg.get("id") and (labels is None or "INBOX" in labels):
                    seen.setdefault(str(msg["id"]), None)
    return list(seen)


def newer(stored: str | None, candidate: int | str | None) -> str | None:
    """The history id to store: the larger of the two (history ids only grow)."""
    values = [int(v) for v in (stored, candidate) if v is not None and str(v).isdigit()]
    return str(max(values)) if values else stored


# --------------------------------------------------------------------------- requesting a sync


def request_sync(conn: Connection, org_id: uuid.UUID, integration_id: uuid.UUID, now: datetime) -> None:
    """Ask for a sync of one mailbox (in the caller's transaction): stamp `sync_wanted_at` and
    publish the sync task after commit. A sync already running sees the newer stamp and runs again."""
    conn.execute(_STAMP, {"b_id": integration_id, "b_org": org_id, "b_now": now})
    # must_send: a refused publish raises after the commit (the push handling it sees the error)
    after_commit([Message(SYNC_TASK, (str(org_id), str(integration_id)), queue="slow", must_send=True)])


# Built once: every push runs it (statement construction was a visible share of a push's CPU).
_STAMP = (
    update(integrations)
    .where(
        integrations.c.id == bindparam("b_id", type_=Uuid()), integrations.c.org_id == bindparam("b_org", type_=Uuid())
    )
    .values(sync_wanted_at=bindparam("b_now", type_=integrations.c.sync_wanted_at.type))
)


# --------------------------------------------------------------------------- the sync


@dataclass
class SyncReport:
    """What one sync did."""

    passes: int = 0
    seen: int = 0  # new INBOX messages Gmail listed
    stored: int = 0  # new emails rows
    own: int = 0  # sent by the mailbox's owner: not an inbound email
    resynced: bool = False
    history_id: str | None = None
    fired: dict[str, Any] | None = None


def sync_mailbox(org_id: uuid.UUID, integration_id: uuid.UUID, now: datetime | None = None) -> SyncReport | None:
    """Sync one mailbox unless another process is syncing it (None then: that one will catch up)."""
    row = _claim(org_id, integration_id, now or utcnow())
    if row is None:
        return None
    report = SyncReport(history_id=row.history_id)
    try:
        for _ in range(MAX_PASSES):
            started = utcnow()
            _one_pass(row, report)
            if _release(org_id, integration_id, started):
                return report
            row = _reload(org_id, integration_id)
        _release(org_id, integration_id, None)
        return report
    except AuthRevoked as err:
        _revoked(org_id, integration_id, err)
        _release(org_id, integration_id, None)
        return report
    except BaseException:
        _release(org_id, integration_id, None)
        raise


_COLUMNS = (
    integrations.c.id,
    integrations.c.org_id,
    integrations.c.user_id,
    integrations.c.account,
    integrations.c.credentials,
    integrations.c.scopes,
    integrations.c.history_id,
)


def _claim(org_id: uuid.UUID, integration_id: uuid.UUID, now: datetime) -> Any:
    with transaction() as conn:
        return conn.execute(
            update(integrations)
            .where(
                integrations.c.id == integration_id,
                integrations.c.org_id == org_id,
                integrations.c.provider == "google",
                integrations.c.status == "active",
                or_(integrations.c.sync_lease_until.is_(None), integrations.c.sync_lease_until < now),
            )
            .values(sync_lease_until=now + LEASE)
            .returning(*_COLUMNS)
        ).first()


def _reload(org_id: uuid.UUID, integration_id: uuid.UUID) -> Any:
    with transaction() as conn:
        return conn.execute(
            select(*_COLUMNS).where(integrations.c.id == integration_id, integrations.c.org_id == org_id)
        ).one()


def _release(org_id: uuid.UUID, integration_id: uuid.UUID, started: datetime | None) -> bool:
    """Give the lease back; with `started`, only when no push came in since (False: sync again)."""
    cond = [integrations.c.id == integration_id, integrations.c.org_id == org_id]
    if started is not None:
        cond.append(or_(integrations.c.sync_wanted_at.is_(None), integrations.c.sync_wanted_at <= started))
    with transaction() as conn:
        done = conn.execute(
            update(integrations).where(and_(*cond)).values(sync_lease_until=None).returning(integrations.c.id)
        ).first()
    return done is not None


def _revoked(org_id: uuid.UUID, integration_id: uuid.UUID, err: AuthRevoked) -> None:
    log.warning("Gmail sync of integration %s: access revoked (%s)", integration_id, err)
    with transaction() as conn:
        mark_revoked(conn, org_id, err, utcnow(), integration_id=integration_id)


def _one_pass(row: Any, report: SyncReport) -> None:
    """Ask Gmail what is new since the stored history id and take it in (one transaction)."""
    report.passes += 1
    google = _google()
    service = google.gmail_service(google.credentials_for(row), timeout_s=get_settings().google_timeout_s)
    try:
        # googleapiclient builds a resource's every method on each `users()` / `messages()`: once per pass
        users = service.users()
        messages = users.messages()
        ids, latest = _history(users.history(), row)
        if ids is None:
            report.resynced = True
            ids, latest = _recent(messages, row), None
        google.wait_for_quota(row.id, GET_METHOD, len(ids))  # the whole batch of reads at once
        facts = [_metadata(messages, row, gmail_id) for gmail_id in ids]
    finally:
        service.close()
    report.seen += len(ids)
    if latest is None:  # a resync: the newest history id among what was read
        latest = max((f.history_id for f in facts if f.history_id is not None), default=None)
    with transaction() as conn:
        stored, own, fired = _take_in(conn, row, facts, utcnow())
        new_history = newer(row.history_id, latest)
        conn.execute(
            update(integrations)
            .where(integrations.c.id == row.id, integrations.c.org_id == row.org_id)
            .values(history_id=new_history, last_error=None)
        )
    report.stored += stored
    report.own += own
    report.history_id = new_history
    report.fired = fired.as_dict()


def _history(history: Any, row: Any) -> tuple[list[str] | None, str | None]:
    """(added message ids, the mailbox's history id now); (None, None) when a resync is needed."""
    if not row.history_id:
        return None, None
    from googleapiclient.errors import HttpError  # loaded with the client by _one_pass

    google = _google()
    pages, token = [], None
    while True:
        request = history.list(
            userId="me", startHistoryId=row.history_id, historyTypes=["messageAdded"], labelId="INBOX", pageToken=token
        )
        try:
            page = google.call(request, integration_id=row.id)
        except PermanentError as err:
            if isinstance(err.__cause__, HttpError) and int(err.__cause__.resp.status) == 404:
                log.info("Gmail history of integration %s starts after %s: resync", row.id, row.history_id)
                return None, None
            raise
        pages.append(page)
        token = page.get("nextPageToken")
        if not token:
            return added_ids(pages), str(page.get("historyId") or "") or None


def _recent(messages: Any, row: Any) -> list[str]:
    request = messages.list(userId="me", labelIds=["INBOX"], maxResults=RESYNC_COUNT)
    answer = _google().call(request, integration_id=row.id)
    return [str(m["id"]) for m in reversed(answer.get("messages") or [])]  # oldest first


def _metadata(messages: Any, row: Any, gmail_id: str) -> MessageFacts:
    request = messages.get(userId="me", id=gmail_id, format="metadata", metadataHeaders=HEADERS)
    return message_facts(_google().call(request, integration_id=row.id, quota_taken=True))


def _take_in(conn: Connection, row: Any, facts: list[MessageFacts], now: datetime) -> tuple[int, int, Fired]:
    """Store the messages that are not the owner's and fire `email_received` for each new one."""
    owner = (row.account or "").lower()
    fired, stored, own, events = Fired(), 0, 0, []
    for f in facts:
        if owner and f.from_addr == owner:
            own += 1
            continue
        email_id = uuid.uuid4()
        inserted = conn.execute(
            insert_ignoring_conflicts(conn, emails, ["org_id", "message_id"])
            .values(
                id=email_id,
                org_id=row.org_id,
                user_id=row.user_id,
                message_id=f.gmail_id,
                thread_id=f.thread_id,
                rfc822_message_id=(f.rfc822_id or "")[:500] or None,
                references=f.references,
                from_addr=f.from_addr or "unknown",
                to_addrs=f.to_addrs,
                subject=(f.subject or "")[:500] or None,
                snippet=f.snippet,
                body=None,
                received_at=f.received_at,
                created_at=now,
            )
            .returning(emails.c.id)
        ).first()
        if inserted is None:
            continue  # stored by an earlier sync (a resync, a redelivered push): its event exists too
        stored += 1
        events.append(
            {
                "type": "email_received",
                "source": "webhook:gmail",
                "org_id": str(row.org_id),
                "user_id": str(row.user_id) if row.user_id else None,
                "payload": {"email_id": str(email_id), "message_id": f.gmail_id},
            }
        )
    fire_in(conn, events, now, fired)
    return stored, own, fired


# --------------------------------------------------------------------------- the task (thin)


@celery_app.task(
    name=SYNC_TASK,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(TransientError, OperationalError),  # Google 5xx / 429 / timeouts, the database
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=5,
)
def gmail_sync_task(org_id: str, integration_id: str) -> dict[str, Any] | None:
    """Sync one mailbox after a push (queue `slow`)."""
    report = sync_mailbox(uuid.UUID(org_id), uuid.UUID(integration_id))
    return None if report is None else report.__dict__
