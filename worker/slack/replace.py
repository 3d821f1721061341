"""Replacing the clicked message with its decision, and answering the clicker only: the work of
the `edge` tasks `proactive.slack_replace` (`replace_clicked_message`) and `proactive.slack_respond`
(`respond_ephemeral`) that a click queues (worker/slack/answers.py).

Who replaces the approval message
---------------------------------
The approval's outbox row (worker/slack/delivery.py) is the one record of what its Slack message shows,
and its delivery lease lets one sender at a time touch it. Two senders exist:

1. the click's answer, `replace_clicked_message` (task `proactive.slack_replace`, queue `edge`,
   carrying the approval id and the clicker's org, which scopes every statement it makes),
   right after a winning click: unless the worker has already replaced the content, it writes the
   decided content (`approvals.decided_content`, exactly what the resume writes) into the row, takes
   the row's lease and sends it through the click's `response_url` (first 5 uses within 30 min,
   counted in `approvals.response_url_uses` / `response_url_at`), else `chat.update` with the
   stored channel + ts;
2. the delivery (`delivery.deliver`), after the worker's own replacement (`approvals._apply` /
   `undo` / expiry -> `replace_message`): `chat.update` with the stored channel + ts.

They cannot fight: a sender that finds the lease taken leaves the row to its holder; when the click
answer releases the lease it marks the row sent only if the revision it sent is still the newest,
else it re-publishes the delivery, so the newest content always lands last. Both write the same
decided content, so the message reads the same whichever comes first. Ephemeral answers (the loser
of a race, not yours, expired, unknown) go only to the clicker: their own `response_url`, else
`chat.postEphemeral` in the click's channel.
"""

from __future__ import annotations

import logging
import uuid
from collections import namedtuple
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import bindparam, case, select, update

from worker.config import get_settings
from worker.db import transaction
from worker.engine import approvals as approval_rules
from worker.errors import ProactiveError
from worker.models import approvals, utcnow
from worker.precompiled import Precompiled, batch, on_its_own
from worker.slack.client import post_ephemeral, post_to_response_url, slack_client, update_message
from worker.slack.delivery import LEASE_S, DeliveryStatus, outbox, publish_delivery

log = logging.getLogger(__name__)

RESPONSE_URL_MAX_USES = 5  # Slack accepts 5 posts to one response_url...
RESPONSE_URL_TTL = timedelta(minutes=30)  # ...within 30 minutes of the click
TRUSTED_RESPONSE_URL_HOST = "hooks.slack.com"  # where Slack's response_urls point (else the API host)
CLICK_CLOCK_SKEW = timedelta(hours=1)  # a click time further from ours than this is not trusted


def response_url_usable(uses: int, issued_at: datetime | None, now: datetime) -> bool:
    """Whether a stored response_url may take one more post (5 uses within 30 min)."""
    return issued_at is not None and uses < RESPONSE_URL_MAX_USES and now - issued_at < RESPONSE_URL_TTL


def trusted_response_url(url: str) -> bool:
    """Only Slack's hooks host (or the configured Slack API host: tests, proxies) gets our posts."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname == TRUSTED_RESPONSE_URL_HOST:
        return True
    api = urlsplit(get_settings().slack_api_url)
    return bool(parts.netloc) and (parts.scheme, parts.netloc) == (api.scheme, api.netloc)


@dataclass(frozen=True)
class _Route:
    """How the replacement reaches Slack: a response_url, or chat.update at (channel, ts)."""

    url: str | None = None
    channel: str | None = None
    ts: str | None = None


def _issued_at(clicked_at: float | None, now: datetime) -> datetime:
    if clicked_at is not None:
        try:
            at = datetime.fromtimestamp(clicked_at, UTC)
        except (OverflowError, OSError, ValueError):
            return now
        if abs(at - now) <= CLICK_CLOCK_SKEW:
            return at
    return now


# The outbox columns the click answer reads and fences with (its text and blocks only when it sends them).
_HELD = (outbox.c.id, outbox.c.org_id, outbox.c.status, outbox.c.ts, outbox.c.channel)
_HELD += (outbox.c.lease_expires_at, outbox.c.revision)

# The click answer's statements, compiled once (worker/precompiled.py): it runs once per decided click.
_LOCK_ROW = Precompiled(
    select(*_HELD, outbox.c.text, outbox.c.blocks)
    .where(
        outbox.c.approval_id == bindparam("in_approval"),
        outbox.c.org_id == bindparam("in_org"),
        outbox.c.kind == "approval",
    )
    .order_by(outbox.c.created_at)
    .limit(1)
    .with_for_update()
)
_APPROVAL = Precompiled(
    select(approvals).where(approvals.c.id == bindparam("in_approval"), approvals.c.org_id == bindparam("in_org"))
)
_ROW = (outbox.c.id == bindparam("row_id")) & (outbox.c.org_id == bindparam("in_org"))
_CONTENT = {
    "text": bindparam("new_text"),
    "blocks": bindparam("new_blocks", type_=outbox.c.blocks.type),
    "revision": outbox.c.revision + 1,
    "updated_at": bindparam("now"),
}
_LEASE = {"lease_expires_at": bindparam("lease_until")}
# (writes the content, takes the lease) -> the UPDATE of the row
_WRITE = {
    (True, True): Precompiled(update(outbox).where(_ROW).values(_CONTENT | _LEASE).returning(*_HELD)),
    (True, False): Precompiled(update(outbox).where(_ROW).values(_CONTENT).returning(*_HELD)),
    (False, True): Precompiled(update(outbox).where(_ROW).values(_LEASE).returning(*_HELD)),
}
# One use of the response_url, remembering a new one (a new URL starts a new count): a conditional
# UPDATE on what the click answer read, so a concurrent writer wins. Not a state move: written here.
_AS_READ = (
    (approvals.c.id == bindparam("in_approval"))
    & (approvals.c.org_id == bindparam("in_org"))
    & approvals.c.response_url.is_not_distinct_from(bindparam("read_url", type_=approvals.c.response_url.type))
    & approvals.c.response_url_uses.is_not_distinct_from(
        bindparam("read_uses", type_=approvals.c.response_url_uses.type)
    )
)
_USES = {"response_url_uses": bindparam("uses")}
_NEW_URL = {"response_url": bindparam("url"), "response_url_at": bindparam("issued_at")}
_TAKE_USE = {
    True: Precompiled(update(approvals).where(_AS_READ).values(_USES | _NEW_URL).returning(approvals.c.id)),
    False: Precompiled(update(approvals).where(_AS_READ).values(_USES).returning(approvals.c.id)),
}
_MINE = _ROW & (outbox.c.lease_expires_at == bindparam("held_until"))
_MARK_SENT = Precompiled(
    update(outbox)
    .where(_MINE, outbox.c.revision == bindparam("sent_revision"))
    .values(status=DeliveryStatus.SENT, lease_expires_at=None, updated_at=bindparam("now"), error=None)
    .returning(outbox.c.id)
)
_GIVE_BACK = Precompiled(
    update(outbox)
    .where(_MINE)
    .values(
        lease_expires_at=None,
        updated_at=bindparam("now"),
        status=case((outbox.c.ts.is_not(None), DeliveryStatus.PENDING), else_=outbox.c.status),
    )
)


@lru_cache(maxsize=8)
def _record_type(pre: Precompiled) -> Any:
    return namedtuple("Record", tuple(pre.statement.exported_columns.keys()))  # the statement's columns


def _record(pre: Precompiled, found: tuple[Any, ...] | None) -> Any:
    """A row of `pre` (a SELECT, or a write RETURNING) with its columns as attributes, or None."""
    return None if found is None else _record_type(pre)(*found)


@dataclass(frozen=True)
class _Taken:
    """What `_take_message` found: its outcome, and when "taken" the message to send, the outbox
    row whose lease it holds (None: no managed row) and the approval as read under the row's lock."""

    state: str
    message: Mapping[str, Any] | None = None
    row: Any = None
    approval: Any = None


def _managed(row: Any) -> bool:
    """An outbox row whose message is in Slack (so leasing it and marking it sent mean something)."""
    return row is not None and row.ts is not None and row.status in (DeliveryStatus.SENT, DeliveryStatus.PENDING)


def _take_message(
    approval_id: uuid.UUID, org_id: uuid.UUID, now: datetime, by: approval_rules.DecidedBy | None = None
) -> _Taken:
    """Lock the approval's outbox row, write the decision into it unless the worker already did,
    and take its lease, in one UPDATE sent with the COMMIT (two round trips in all on PostgreSQL).
    Only the outbox row is locked here (never the approval with it), so this cannot deadlock with a
    resume, which locks the approval, then the row; the approval is read after the lock (the server
    runs the two reads in order, sent together), so a resume that held the row is seen. `by`: the
    decider and job as the decision read them (the content is then built without reading them)."""
    ids = {"in_approval": approval_id, "in_org": org_id}
    with transaction() as conn:
        with batch(conn) as sent:
            locked, read = sent.send(_LOCK_ROW, ids), sent.send(_APPROVAL, ids)
        row, a = _record(_LOCK_ROW, locked.first()), _record(_APPROVAL, read.first())
        if a is None:
            return _Taken("gone")
        if row is not None and row.lease_expires_at is not None and row.lease_expires_at > now:
            return _Taken("delivering", approval=a)  # the holder sends the newest content when it gets there
        if a.resumed_at is not None and row is not None and row.status == DeliveryStatus.SENT:
            return _Taken("delivered", approval=a)  # the worker's replacement is already what Slack shows
        values: dict[str, Any] = {"row_id": row.id if row is not None else None, "in_org": org_id, "now": now}
        content = a.resumed_at is None or row is None
        if content:  # ahead of the worker: write the decision ourselves
            message = approval_rules.decided_content(conn, a, by)
            if message is None:
                return _Taken("pending", approval=a)
            values |= {"new_text": str(message.get("text") or ""), "new_blocks": list(message.get("blocks") or [])}
        else:
            message = {"text": row.text, "blocks": row.blocks}
        lease = _managed(row)
        if lease:
            values["lease_until"] = now + timedelta(seconds=LEASE_S)
        if row is not None and (content or lease):
            write = _WRITE[(content, lease)]
            with batch(conn) as b:  # with the COMMIT where the driver pipelines
                written = b.send(write, values)
                if b.pipelined:
                    b.commit()
            row = _record(write, written.first())
        return _Taken("taken", message, row, a)


def _route(a: Any, url: str | None, issued_at: datetime, row: Any, now: datetime, *, send: bool) -> _Route:
    """Keep the click's response_url on the approval (a new URL starts a new count of uses) and,
    when `send`, take one use of the stored URL if it has uses left, else route to chat.update at
    the stored channel + ts. One conditional UPDATE on what `a` read (a concurrent writer wins)."""
    new_url = url is not None and url != a.response_url
    stored = url if new_url else a.response_url
    uses = 0 if new_url else a.response_url_uses or 0
    at = issued_at if new_url else a.response_url_at
    take = send and stored is not None and response_url_usable(uses, at, now)
    channel = a.slack_channel or (row.channel if row is not None else None)
    ts = a.slack_ts or (row.ts if row is not None else None)
    if not (new_url or take):
        return _Route(channel=channel, ts=ts)
    values = {
        "in_approval": a.id,
        "in_org": a.org_id,
        "read_url": a.response_url,
        "read_uses": a.response_url_uses,
        "uses": uses + (1 if take else 0),
        "url": url,
        "issued_at": issued_at,
    }
    with transaction() as conn, on_its_own(conn):  # one statement: autocommitted on PostgreSQL
        won = _TAKE_USE[new_url].first(conn, values)
    return _Route(url=stored if take and won is not None else None, channel=channel, ts=ts)


def replace_clicked_message(
    approval_id: uuid.UUID,
    response_url: str | None,
    clicked_at: float | None = None,
    now: datetime | None = None,
    *,
    org_id: uuid.UUID,
    by: approval_rules.DecidedBy | None = None,
) -> str:
    """Show the decision on the clicked message now (see the module docstring); returns the outcome:
    response_url, chat.update, failed (left to the delivery), delivering (the delivery holds the
    row), delivered (the worker's replacement is already shown), no_route, pending or gone (no such
    approval in `org_id`, the clicker's org). Three short transactions, none open while Slack
    answers: take the row (its lease; two round trips on PostgreSQL, the reads with the BEGIN and the
    write with the COMMIT), take a use of the response_url, give the lease back (one autocommitted
    statement each). `by`: the decider and job as the decision read them (see `decided_content`)."""
    now = now or utcnow()
    url = response_url if response_url and trusted_response_url(response_url) else None
    taken = _take_message(approval_id, org_id, now, by)
    sending = taken.state == "taken" and taken.message is not None
    route = None
    if taken.approval is not None:
        route = _route(taken.approval, url, _issued_at(clicked_at, now), taken.row, now, send=sending)
    if not sending or route is None or taken.message is None:
        log.info("approval %s: click answer left to the delivery (%s)", approval_id, taken.state)
        return taken.state
    outcome = _send_replacement(route, taken.message)
    if _managed(taken.row):
        assert taken.row is not None
        _release(taken.row, sent=outcome in ("response_url", "chat.update"))
    log.info("approval %s: message replaced by the click answer (%s)", approval_id, outcome)
    return outcome


def org_of_approval(approval_id: uuid.UUID) -> uuid.UUID | None:
    """The org of an approval found by its id alone: the entry lookup for a slack_replace message
    published before messages carried the clicker's org (a deploy mid-click); None when it is gone."""
    with transaction() as conn:
        row = conn.execute(select(approvals.c.org_id).where(approvals.c.id == approval_id)).first()
    return row.org_id if row is not None else None


def _send_replacement(route: _Route, message: Mapping[str, Any]) -> str:
    text, blocks_ = str(message.get("text") or ""), list(message.get("blocks") or [])
    if route.url:
        try:
            post_to_response_url(route.url, {"replace_original": True, "text": text, "blocks": blocks_})
            return "response_url"
        except ProactiveError as err:
            log.info("response_url refused the replacement (%s); trying chat.update", err)
    token = get_settings().slack_bot_token
    if not (route.channel and route.ts and token):
        return "no_route"
    try:
        update_message(slack_client(token), route.channel, route.ts, text, blocks_)
        return "chat.update"
    except ProactiveError as err:
        log.warning("chat.update of %s/%s failed (%s); the delivery retries it", route.channel, route.ts, err)
        return "failed"


def _release(row: Any, *, sent: bool) -> None:
    """Give the row's lease back: sent when what we sent is still the newest content, else pending
    again with its delivery published (newer content arrived, or our call failed)."""
    values = {
        "row_id": row.id,
        "in_org": row.org_id,
        "held_until": row.lease_expires_at,
        "sent_revision": row.revision,
        "now": utcnow(),
    }
    if sent:
        with transaction() as conn, on_its_own(conn):  # one statement: autocommitted on PostgreSQL
            if _MARK_SENT.first(conn, values) is not None:
                return
    with transaction() as conn:
        _GIVE_BACK.count(conn, values)
        publish_delivery([row.id])  # after this transaction commits


def respond_ephemeral(response_url: str | None, text: str, channel: str | None, slack_user_id: str | None) -> str:
    """Show `text` to the clicker only: their response_url, else chat.postEphemeral; returns how."""
    if response_url and trusted_response_url(response_url):
        try:
            post_to_response_url(response_url, {"response_type": "ephemeral", "replace_original": False, "text": text})
            return "response_url"
        except ProactiveError as err:
            log.info("response_url refused an ephemeral answer (%s)", err)
    elif response_url:
        log.warning("not posting to an untrusted response_url host: %s", urlsplit(response_url).netloc)
    token = get_settings().slack_bot_token
    if channel and slack_user_id and token:
        try:
            post_ephemeral(slack_client(token), channel, slack_user_id, text)
            return "chat.postEphemeral"
        except ProactiveError as err:
            log.warning("chat.postEphemeral to %s in %s failed: %s", slack_user_id, channel, err)
    return "undelivered"
