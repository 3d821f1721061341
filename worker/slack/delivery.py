"""The Slack outbox: every message a job sends is a row first (dedupe key unique), then delivered.

Console mode (no Slack token: the embedded default, tests, dry runs): the row is marked `console`
in the enqueuing transaction and `proactive inbox` renders it. Nothing else happens.

Slack mode (SLACK_BOT_TOKEN set): the row is `pending` and the `proactive.deliver` task (queue
`edge`) delivers it. Callers enqueue inside their own transaction; `publish_delivery(ids)` sends the
messages once it commits (worker/engine/publish.py `after_commit`); `deliver_due(now)` (the sweeper)
re-publishes pending rows whose publish was lost (older than 30 s) or whose `not_before` has passed.
A delivery killed with its worker (or pool child) goes out again within seconds: the claim records its
claimant (`claimed_by`, worker/engine/claimant.py) and live workers give back the leases of silent
claimants and of their own gone children after each heartbeat (`release_orphaned`, called by
worker/engine/sweeper.py reclaim_orphaned), then publish the rows again.
One delivery (`deliver`):

1. claims the row (`pending`, lease free -> lease for LEASE_S, `claimed_by` = this process): a
   second copy of the task backs off;
2. unless the row is urgent, applies the recipient's quiet hours and hourly budget once (under a
   lock on the user row, so concurrent deliveries count each other): a held row gets `not_before`
   and a countdown (at most 10 min; longer holds are left to `deliver_due`);
3. resolves the channel (the row's, else a DM opened with conversations.open);
4. takes the channel's shared 1 msg/s slot (`worker.ratelimit`); a future slot is kept on the row
   (`slot_at`) and the task comes back for it with a countdown (never `time.sleep`);
5. posts (chat.postMessage), or for a replaced message that was already posted, edits it in place
   (chat.update with the stored channel + ts), and stores channel, ts, `sent`. Every message carries
   its outbox id (and revision) in its `metadata`; a row an earlier delivery may have posted
   (`may_have_posted`: that delivery died holding the lease, whether the lease ran out or was given
   back because its claimant stopped beating, or its last try ended in a timeout or 5xx) is looked
   up first in the channel's recent history (conversations.history): found -> its ts is stored and
   nothing is posted; not found -> posted. So a message is posted exactly once by
   reconciliation. When the history cannot be read: a transient error or 429 -> the row comes back
   later (still to reconcile); any other refusal (`missing_scope`, ...) or a window longer than
   HISTORY_MAX_PAGES -> posted anyway with a warning (a rare duplicate beats a lost message);
6. on failure: 429 -> again after Retry-After; 5xx/network -> backoff, then `failed` after
   PROACTIVE_DELIVERY_MAX_ATTEMPTS; auth or any other Slack refusal -> `failed`. Slack's error code
   is kept in `slack_outbox.error_code`, a readable message in `error`.

Urgent rows skip quiet hours and the hourly budget (never Slack's own pacing). A row is urgent when
its kind is in URGENT_KINDS or the caller passed `urgent=True` (a meeting brief for a meeting that
starts within 2 h). Urgent rows still count towards the recipient's hourly budget.
"""

from __future__ import annotations

import logging
import uuid
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import Connection, Row, and_, bindparam, case, func, or_, select, update

from worker import logs
from worker.config import get_settings
from worker.db import transaction
from worker.engine import claimant
from worker.engine.claimant import CHILD_SEP
from worker.engine.jobstore import insert_ignoring_conflicts
from worker.engine.publish import MAX_COUNTDOWN_S, Message, after_commit
from worker.engine.retry import decide_retry
from worker.engine.states import check_transition, predecessors
from worker.errors import AuthRevoked, PermanentError, RateLimited, TransientError
from worker.metrics import prom
from worker.models import Org, SlackOutbox, User, approvals, jobs, utcnow
from worker.orgs import org_dry_run
from worker.precompiled import Deferred, Precompiled
from worker.ratelimit import reserve
from worker.slack.client import (
    SlackCallFailed,
    find_message,
    open_dm,
    post_message,
    slack_client,
    update_message,
)
from worker.worktime import zone

log = logging.getLogger(__name__)

outbox = SlackOutbox.__table__
users = User.__table__
orgs = Org.__table__
# The `event_type` of the metadata on every message we post (its payload: outbox_id, revision,
# trace_id, job_id).
SLACK_METADATA_EVENT = "proactive_trace"
# error_code of a row whose last delivery died holding its lease (set by the next claim).
INTERRUPTED = "interrupted"
INTERRUPTED_ERROR = "an earlier delivery stopped before storing its outcome: the channel's history is checked first"
# Prefix of the error_code of a row whose history lookup failed transiently (it is looked up again).
HISTORY_CODE_PREFIX = "history_"
# error_codes of a pending row whose last try certainly posted nothing (Slack refused the rate).
NOTHING_POSTED_CODES = frozenset({"ratelimited", "rate_limited"})
# The history is read from this long before the row's first attempt (clock skew between us and Slack).
HISTORY_LOOKBACK = timedelta(minutes=2)
# Pages (of HISTORY_PAGE_SIZE messages, newest first) read before giving up on finding a message.
HISTORY_MAX_PAGES = 3
HISTORY_PAGE_SIZE = 200

# Kinds that skip quiet hours and the hourly budget:
# - approval: a job is paused on this person's decision and its expiry clock is running;
# - reconnect: everything that needs the revoked integration has stopped until the user acts
#   (sent once per revocation).
# Not urgent: approval_reminder (a nudge can wait for the morning) and every report/brief/alert.
# A caller marks a single row urgent with `urgent=True` (pre-meeting brief, meeting within 2 h).
URGENT_KINDS = frozenset({"approval", "reconnect"})

# The hourly budget's window.
BUDGET_WINDOW = timedelta(hours=1)
# How long a claimed row belongs to one delivery (seconds): two Slack calls of at most 10 s each.
LEASE_S = 60.0
# A task that wakes this much before its not_before/slot still goes (seconds; broker timer slack).
EARLY_TOLERANCE_S = 0.01
# 429s are Slack telling us when; give up only after this many tries of one row.
RATE_LIMITED_MAX_ATTEMPTS = 20
# Rows deliver_due re-publishes per pass; the next pass takes the rest.
BATCH = 500
# Longest error text stored on a row (characters).
MAX_ERROR_CHARS = 2000


class DeliveryStatus(StrEnum):
    """Values of slack_outbox.status."""

    PENDING = "pending"  # to deliver (a posted row is pending again when its message must be edited)
    SENT = "sent"
    CONSOLE = "console"  # no Slack token: shown by `proactive inbox`
    FAILED = "failed"


D = DeliveryStatus
# Rows are created pending or console. A delivery moves the row it leased (pending) to sent, failed or
# console (the token was removed meanwhile); a replaced message already posted is pending again. A
# lease given back with the status it had (worker/slack/replace.py's click answer) is not a move.
DELIVERY_TRANSITIONS: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    D.PENDING: frozenset({D.SENT, D.FAILED, D.CONSOLE}),
    D.SENT: frozenset({D.PENDING}),
}
_REPOSTABLE = [s.value for s in predecessors(DELIVERY_TRANSITIONS, D.PENDING)]  # a posted row, edited again
# The leaseholder's moves (`_mine`: the lease was taken on a pending row).
for _new in (D.SENT, D.FAILED, D.CONSOLE):
    check_transition(DELIVERY_TRANSITIONS, D.PENDING, _new)


# --------------------------------------------------------------------------- rules (pure)


def _hhmm(value: Any) -> time | None:
    try:
        hour, minute = str(value).split(":", 1)
        return time(int(hour), int(minute))
    except (TypeError, ValueError):
        return None


def in_quiet_hours(now: datetime, tz: tzinfo, quiet_hours: Mapping[str, Any] | None) -> datetime | None:
    """When delivery may resume (UTC) if `now` is inside the local quiet hours, else None.

    `quiet_hours` is {"start": "HH:MM", "end": "HH:MM"} in the recipient's zone; a window whose
    start is after its end wraps midnight ("20:00" -> "07:00"). start == end, a missing or
    malformed value means no quiet hours (a bad preference never blocks delivery).
    """
    if not quiet_hours:
        return None
    start, end = _hhmm(quiet_hours.get("start")), _hhmm(quiet_hours.get("end"))
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    if start < end:
        if not start <= t < end:
            return None
        end_day = local.date()
    else:
        if end <= t < start:
            return None
        end_day = local.date() + timedelta(days=1) if t >= start else local.date()
    for fold in (0, 1):  # fold=1: the end falls in the hour repeated when clocks go back
        resume = datetime.combine(end_day, end, tzinfo=tz).replace(fold=fold).astimezone(now.tzinfo)
        if resume > now:
            return resume
    return None


def hourly_budget_exceeded(sent_last_hour: int, max_per_hour: int) -> bool:
    """True when `sent_last_hour` messages already use up the budget (max_per_hour <= 0: no limit)."""
    return max_per_hour > 0 and sent_last_hour >= max_per_hour


def is_urgent(kind: str, urgent: bool = False) -> bool:
    """Whether a message skips quiet hours and the hourly budget."""
    return urgent or kind in URGENT_KINDS


@dataclass(frozen=True)
class Hold:
    """A message that must wait: until when, and why (quiet_hours | hourly_budget)."""

    until: datetime
    reason: str


def delivery_hold(
    now: datetime,
    *,
    urgent: bool,
    tz: tzinfo,
    quiet_hours: Mapping[str, Any] | None,
    sent_last_hour: int,
    max_per_hour: int,
    oldest_in_window: datetime | None,
) -> Hold | None:
    """The hold a non-urgent message to a person gets, or None to deliver it now.

    `sent_last_hour` counts the person's messages let through in the last hour, the oldest of
    them at `oldest_in_window`; the budget frees up one hour after that one.
    """
    if urgent:
        return None
    resume = in_quiet_hours(now, tz, quiet_hours)
    if resume is not None:
        return Hold(resume, "quiet_hours")
    if hourly_budget_exceeded(sent_last_hour, max_per_hour):
        frees = (oldest_in_window or now) + BUDGET_WINDOW + timedelta(milliseconds=1)
        return Hold(max(frees, now), "hourly_budget")
    return None


# --------------------------------------------------------------------------- enqueue (callers' transaction)


# The org's settings, read when a message may have to stay in the console inbox (compiled once).
_ORG_SETTINGS = Precompiled(select(Org.settings).where(Org.id == bindparam("b_org", type_=Org.id.type)))
# The columns enqueue_message writes: every one with a Python-side default is given, so the INSERT
# runs compiled once per dialect on the cursor (worker/precompiled.py) instead of being built per call.
_ENQUEUED = (
    "id",
    "org_id",
    "dedupe_key",
    "user_id",
    "job_id",
    "approval_id",
    "kind",
    "channel",
    "text",
    "blocks",
    "status",
    "attempts",
    "urgent",
    "not_before",
    "revision",
    "created_at",
    "updated_at",
    "sent_at",
)
_ENQUEUE: dict[str, Precompiled] = {}


def _org_in_dry_run(conn: Connection, org_id: uuid.UUID) -> bool:
    """A dry-run org's messages (briefs, reminders, reconnect requests too) stay in the console inbox."""
    row = _ORG_SETTINGS.first(conn, {"b_org": org_id})
    return org_dry_run(row[0] if row is not None else None)


def _enqueue_statement(conn: Connection) -> Precompiled:
    """`INSERT INTO slack_outbox ... ON CONFLICT (dedupe_key) DO NOTHING RETURNING id` for the
    connection's dialect, built once."""
    name = conn.dialect.name
    pre = _ENQUEUE.get(name)
    if pre is None:
        values = {c: bindparam(c, type_=outbox.c[c].type) for c in _ENQUEUED}
        statement = insert_ignoring_conflicts(conn, outbox, ["dedupe_key"]).values(values).returning(outbox.c.id)
        pre = _ENQUEUE[name] = Precompiled(statement)
    return pre


def enqueue_message(
    conn: Connection,
    org_id: uuid.UUID,
    *,
    kind: str,
    message: Mapping[str, Any],
    dedupe_key: str,
    now: datetime,
    user_id: uuid.UUID | None = None,
    channel: str | None = None,
    job_id: uuid.UUID | None = None,
    approval_id: uuid.UUID | None = None,
    urgent: bool = False,
    console: bool = False,
    not_before: datetime | None = None,
) -> uuid.UUID | None:
    """Queue `message` ({"text", "blocks"}) for delivery once per `dedupe_key`.

    Returns the new outbox id, or None when a message with that key already exists. With a Slack
    token the row is `pending` and its delivery is published once the caller's transaction commits.
    `urgent` skips quiet hours and the hourly budget; `console` keeps the message in the console
    inbox even with a token (dry runs, smoke); `not_before` delays it to that instant.
    """
    console = console or not get_settings().slack_bot_token or _org_in_dry_run(conn, org_id)
    row = _enqueue_statement(conn).first(
        conn,
        {
            "id": uuid.uuid4(),
            "org_id": org_id,
            "dedupe_key": dedupe_key,
            "user_id": user_id,
            "job_id": job_id,
            "approval_id": approval_id,
            "kind": kind,
            "channel": channel,
            "text": str(message.get("text") or "")[:40_000],
            "blocks": list(message.get("blocks") or []),
            "status": (DeliveryStatus.CONSOLE if console else DeliveryStatus.PENDING).value,
            "attempts": 0,
            "urgent": urgent,
            "not_before": not_before if not console else None,
            "revision": 0,
            "created_at": now,
            "updated_at": now,
            "sent_at": now if console else None,
        },
    )
    if row is None:
        return None
    if not console:
        outbox_id = row[0]
        wait_s = max(0.0, (not_before - now).total_seconds()) if not_before else None
        publish_delivery([outbox_id], countdown_s=wait_s or None)  # after the caller's commit
    return row[0]  # type: ignore[no-any-return]


_NEW_TEXT = bindparam("new_text", type_=outbox.c.text.type)
_NEW_BLOCKS = bindparam("new_blocks", type_=outbox.c.blocks.type)
# The replacement of an approval's message (once per decision), compiled once (worker/precompiled.py).
_REPLACE = Precompiled(
    update(outbox)
    .where(
        outbox.c.org_id == bindparam("in_org"),
        outbox.c.approval_id == bindparam("in_approval"),
        outbox.c.kind == "approval",
        or_(outbox.c.text.is_distinct_from(_NEW_TEXT), outbox.c.blocks.is_distinct_from(_NEW_BLOCKS)),
    )
    .values(
        text=_NEW_TEXT,
        blocks=_NEW_BLOCKS,
        revision=outbox.c.revision + 1,
        updated_at=bindparam("now"),
        status=case(
            (
                and_(or_(*(outbox.c.status == s for s in _REPOSTABLE)), outbox.c.ts.is_not(None)),
                DeliveryStatus.PENDING.value,
            ),
            else_=outbox.c.status,
        ),
    )
    .returning(outbox.c.id, outbox.c.status)
)


def replace_message(
    conn: Connection,
    org_id: uuid.UUID,
    approval_id: uuid.UUID,
    message: Mapping[str, Any],
    now: datetime | None = None,
) -> list[uuid.UUID]:
    """Replace the message of an approval (buttons gone, "decided by"/"expired").

    Console rows change in place. A message already posted to Slack becomes `pending` again so the
    delivery edits it with chat.update (stored channel + ts); one not posted yet is posted with the
    new content (published once the caller's transaction commits). Returns those outbox ids. A row
    that holds this content already (the click's answer, worker/slack/replace.py, wrote the same
    decision first) is left alone: its message is, or is being, replaced by it.
    """
    return _publish_pending(_REPLACE.rows(conn, _replace_values(org_id, approval_id, message, now)))


def replace_message_later(
    later: Deferred, org_id: uuid.UUID, approval_id: uuid.UUID, message: Mapping[str, Any], now: datetime
) -> Callable[[], list[uuid.UUID]]:
    """`replace_message` queued in `later` (sent with the caller's other writes, in one round trip):
    call the returned function once `later` is flushed, to publish the deliveries it made pending."""
    handle = later.read(_REPLACE, _replace_values(org_id, approval_id, message, now))
    return lambda: _publish_pending(handle.result.rows() if handle.result is not None else [])


def _replace_values(
    org_id: uuid.UUID, approval_id: uuid.UUID, message: Mapping[str, Any], now: datetime | None
) -> dict[str, Any]:
    return {
        "in_org": org_id,
        "in_approval": approval_id,
        "new_text": str(message.get("text") or "")[:40_000],
        "new_blocks": list(message.get("blocks") or []),
        "now": now or utcnow(),
    }


def _publish_pending(rows: Iterable[tuple[Any, ...]]) -> list[uuid.UUID]:
    """Publish the delivery of each replaced row that is pending again (after the caller's commit)."""
    pending = [outbox_id for outbox_id, status in rows if status == DeliveryStatus.PENDING]
    if pending:
        publish_delivery(pending)
    return pending


def inbox(conn: Connection, org_id: uuid.UUID | None = None, limit: int = 50) -> Sequence[Row]:
    """The newest outbox rows (all orgs when `org_id` is None), oldest first."""
    q = select(outbox).order_by(outbox.c.created_at.desc()).limit(limit)
    if org_id is not None:
        q = q.where(outbox.c.org_id == org_id)
    return list(reversed(list(conn.execute(q))))


# --------------------------------------------------------------------------- publishing


def publish_delivery(outbox_ids: Iterable[uuid.UUID | None], countdown_s: float | None = None) -> int:
    """Send a `proactive.deliver` message per id (after the enqueuing commit); returns how many went.

    None ids (duplicates from enqueue_message) are skipped; a countdown above 10 min is not sent
    (deliver_due publishes the row when its not_before passes). A broker error is logged only:
    deliver_due re-publishes committed rows. Sent through worker/engine/publish.py `after_commit`:
    inside a transaction they wait for its commit (0 is returned), outside one they go now.
    """
    if countdown_s is not None and countdown_s > MAX_COUNTDOWN_S:
        return 0
    return after_commit(
        Message(
            "proactive.deliver",
            (str(outbox_id),),
            queue="edge",
            routing_key="edge",
            countdown_s=countdown_s,
            argsrepr=str(outbox_id),
            about=f"outbox row {outbox_id}",
            retry="deliver_due will retry",
        )
        for outbox_id in outbox_ids
        if outbox_id is not None
    )


def deliver_due(now: datetime | None = None, limit: int = BATCH, *, age_s: float | None = None) -> int:
    """Sweeper: re-publish pending rows that nobody is delivering and that are due; returns how many.

    Due = `not_before` has passed, or no `not_before` and untouched for `age_s` (a lost publish;
    default PROACTIVE_REQUEUE_AFTER_S, as for queued steps; 0 in a worker's recovery pass after an
    outage, where every such row may have lost its publish). Re-published rows are stamped so the
    next pass leaves them alone for that long. The scan covers every org (documented exception to
    the tenant scope); each stamp names its rows' org.
    """
    now = now or utcnow()
    age = get_settings().requeue_after_s if age_s is None else age_s
    cutoff = now - timedelta(seconds=age)
    with transaction() as conn:
        due = list(
            conn.execute(
                select(outbox.c.id, outbox.c.org_id)
                .where(
                    outbox.c.status == DeliveryStatus.PENDING,
                    or_(outbox.c.lease_expires_at.is_(None), outbox.c.lease_expires_at < now),
                    or_(
                        outbox.c.not_before <= now,
                        and_(
                            outbox.c.not_before.is_(None),
                            func.coalesce(outbox.c.updated_at, outbox.c.created_at) <= cutoff,
                        ),
                    ),
                )
                .order_by(outbox.c.created_at)
                .limit(limit)
            )
        )
        by_org: dict[uuid.UUID, list[uuid.UUID]] = {}
        for row in due:
            by_org.setdefault(row.org_id, []).append(row.id)
        for org_id, org_ids in by_org.items():  # each stamp scoped by the org of its rows
            conn.execute(
                update(outbox)
                .where(outbox.c.org_id == org_id, outbox.c.id.in_(org_ids))
                .values(updated_at=now, not_before=None)
            )
    return publish_delivery(row.id for row in due)


def _held_by_orphans(alive_since: datetime | None, claimants: Sequence[str] | None) -> list[Any]:
    """WHERE conditions of pending rows' leases held by orphaned claimants (claimant.orphaned)."""
    return [
        outbox.c.status == DeliveryStatus.PENDING,
        outbox.c.lease_expires_at.is_not(None),
        *claimant.orphaned(outbox.c.claimed_by, alive_since, claimants),
    ]


def release_orphaned(
    conn: Connection, now: datetime, alive_since: datetime | None, *, claimants: Sequence[str] | None = None
) -> list[uuid.UUID]:
    """Give back the leases of pending rows whose claimant has no heartbeat at or after `alive_since`
    (only those held by `claimants` when given; None: `claimants` are known dead, such as a worker's
    gone pool child); their ids, to be published again (`publish_delivery`) once this commits.

    The dead delivery may have posted before it died, so a row without a ts is marked INTERRUPTED,
    as `_claim` marks a lease that ran out: the next delivery looks in the channel's history first.
    Conditional on the claimant (a row re-claimed by a live worker meanwhile stays where it is); the
    dead delivery's late writes are fenced off by `_mine` (its lease is gone). A scan of every org: a
    dead worker delivered rows of any org (each is then claimed under its own).
    """
    interrupted = outbox.c.ts.is_(None)
    res = conn.execute(
        update(outbox)
        .where(*_held_by_orphans(alive_since, claimants))
        .values(
            lease_expires_at=None,
            claimed_by=None,
            updated_at=now,
            error_code=case((interrupted, INTERRUPTED), else_=outbox.c.error_code),
            error=case((interrupted, INTERRUPTED_ERROR), else_=outbox.c.error),
        )
        .returning(outbox.c.id)
    )
    return [r.id for r in res]


def child_claimants(conn: Connection, instance: str) -> list[str]:
    """The distinct claimants of outbox leases held by pool children of `instance` (a scan of every
    org: the worker's main process checks which of its children are gone)."""
    res = conn.execute(
        select(outbox.c.claimed_by)
        .where(*_held_by_orphans(None, None), outbox.c.claimed_by.startswith(instance + CHILD_SEP))
        .distinct()
    )
    return [r.claimed_by for r in res]


# --------------------------------------------------------------------------- delivering one row


@dataclass(frozen=True)
class _Later:
    """Come back later: the outcome so far and the countdown (None: leave it to deliver_due)."""

    outcome: str
    countdown_s: float | None


@dataclass(frozen=True)
class _Send:
    """A claimed row that may go now."""

    row: Row
    slack_user_id: str | None


def _bot_token(org_id: uuid.UUID) -> str:
    """The bot token for this org's workspace (single workspace today: SLACK_BOT_TOKEN)."""
    return get_settings().slack_bot_token


def _seconds(delta: timedelta) -> float:
    return delta.total_seconds()


_INTERRUPTED = and_(outbox.c.lease_expires_at.is_not(None), outbox.c.ts.is_(None))
# The claim of every delivery, compiled once (worker/precompiled.py).
_CLAIM = Precompiled(
    update(outbox)
    .where(
        outbox.c.id == bindparam("outbox_id"),
        outbox.c.status == DeliveryStatus.PENDING,
        or_(outbox.c.lease_expires_at.is_(None), outbox.c.lease_expires_at < bindparam("now")),
    )
    .ordered_values(  # the lease first: the statement reads as the claim it is
        (outbox.c.lease_expires_at, bindparam("lease_until")),
        (outbox.c.claimed_by, bindparam("claimant")),
        (outbox.c.updated_at, bindparam("now")),
        # a lease never given back: its delivery died, perhaps after Slack posted the message
        (outbox.c.error_code, case((_INTERRUPTED, INTERRUPTED), else_=outbox.c.error_code)),
        (outbox.c.error, case((_INTERRUPTED, INTERRUPTED_ERROR), else_=outbox.c.error)),
    )
    .returning(*outbox.c)
)


# A claimed row: the outbox's columns as attributes.
_Claimed = namedtuple("_Claimed", tuple(_CLAIM.statement.exported_columns.keys()))


def _claim(conn: Connection, outbox_id: uuid.UUID, now: datetime) -> Any:
    """Take the lease of a pending row (None: delivered, failed or leased by another worker).

    The entry lookup of a `proactive.deliver` message, which carries only the outbox id, so it is
    the one statement not scoped by org: every later statement uses the returned row's org_id.
    A lease left by a delivery that died marks the row INTERRUPTED (see `may_have_posted`); so does
    `release_orphaned`, which gives such a lease back before it runs out.
    """
    found = _CLAIM.first(
        conn,
        {
            "outbox_id": outbox_id,
            "now": now,
            "lease_until": now + timedelta(seconds=LEASE_S),
            "claimant": claimant.current(),
        },
    )
    return None if found is None else _Claimed(*found)


def _bind_log_context(conn: Connection, row: Row) -> None:
    """This delivery's log lines (and the message's metadata) carry its job's trace id."""
    trace_id = (
        conn.execute(select(jobs.c.trace_id).where(jobs.c.id == row.job_id, jobs.c.org_id == row.org_id)).scalar()
        if row.job_id
        else None
    )
    logs.bind(org_id=row.org_id, job_id=row.job_id, trace_id=logs.valid_trace_id(trace_id))


def slack_metadata(
    trace_id: str | None,
    job_id: uuid.UUID | None,
    outbox_id: uuid.UUID | None = None,
    revision: int | None = None,
) -> dict[str, Any] | None:
    """chat.postMessage `metadata`: the outbox row (and revision) a message delivers, so a retry
    finds it in the channel's history instead of posting it twice, and the trace (and job) it
    belongs to, so a message found in Slack leads to the log lines of its story. None when there is
    neither an outbox id nor a trace."""
    payload: dict[str, Any] = {}
    if outbox_id is not None:
        payload["outbox_id"] = str(outbox_id)
        if revision is not None:
            payload["revision"] = revision
    if trace_id:
        payload["trace_id"] = trace_id
        if job_id:
            payload["job_id"] = str(job_id)
    if not payload:
        return None
    return {"event_type": SLACK_METADATA_EVENT, "event_payload": payload}


def may_have_posted(row: Row) -> bool:
    """Whether an earlier delivery of this pending row may have posted its message without storing
    the ts: it died holding the lease (INTERRUPTED), its last try ended without an answer that rules
    a post out (timeout, network error, 5xx), or its history lookup could not finish. A 429 posts
    nothing; a row with a ts is edited, not posted."""
    return row.ts is None and bool(row.error_code) and row.error_code not in NOTHING_POSTED_CODES


def posted_by(outbox_id: uuid.UUID) -> Callable[[Mapping[str, Any]], bool]:
    """A matcher for history messages that carry this outbox id in our metadata (for find_message)."""
    wanted = str(outbox_id)

    def match(message: Mapping[str, Any]) -> bool:
        metadata = message.get("metadata")
        if not isinstance(metadata, Mapping) or metadata.get("event_type") != SLACK_METADATA_EVENT:
            return False
        payload = metadata.get("event_payload")
        return isinstance(payload, Mapping) and payload.get("outbox_id") == wanted

    return match


def _history_since(row: Row) -> float:
    """Epoch seconds from which the channel's history can hold this row's message."""
    first_try = row.admitted_at or row.created_at
    return (first_try - HISTORY_LOOKBACK).timestamp()


def _mine(row: Row) -> Any:
    """WHERE clause of an update made by the holder of the row's lease (a fencing token), scoped by
    the row's org (read by `_claim`, the delivery's entry lookup by outbox id)."""
    return and_(outbox.c.id == row.id, outbox.c.org_id == row.org_id, outbox.c.lease_expires_at == row.lease_expires_at)


def _release(conn: Connection, row: Row, now: datetime, *, attempted: bool = False, **values: Any) -> None:
    """Give the lease back, leaving the row pending with `values` (not_before, slot_at, error...)."""
    conn.execute(
        update(outbox)
        .where(_mine(row))
        .values(
            lease_expires_at=None,
            claimed_by=None,
            updated_at=now,
            attempts=outbox.c.attempts + (1 if attempted else 0),
            **values,
        )
    )


def _recipient(conn: Connection, row: Row, lock: bool) -> Row | None:
    if row.user_id is None:
        return None
    q = (
        select(
            users.c.slack_user_id,
            users.c.timezone,
            users.c.quiet_hours,
            users.c.max_notifications_per_hour,
            orgs.c.timezone.label("org_timezone"),
        )
        .join(orgs, orgs.c.id == users.c.org_id)
        .where(users.c.id == row.user_id, users.c.org_id == row.org_id)
    )
    if lock:  # concurrent deliveries to one person count each other (SQLite: BEGIN IMMEDIATE does it)
        q = q.with_for_update(of=users)
    return conn.execute(q).first()


def _hold(conn: Connection, row: Row, person: Row, now: datetime) -> Hold | None:
    used, oldest = conn.execute(
        select(func.count(), func.min(outbox.c.admitted_at)).where(
            outbox.c.user_id == row.user_id,
            outbox.c.org_id == row.org_id,
            outbox.c.id != row.id,
            outbox.c.admitted_at > now - BUDGET_WINDOW,
            outbox.c.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENT]),
        )
    ).one()
    return delivery_hold(
        now,
        urgent=False,
        tz=zone(person.timezone, person.org_timezone or "UTC"),
        quiet_hours=person.quiet_hours,
        sent_last_hour=int(used or 0),
        max_per_hour=int(person.max_notifications_per_hour or 0),
        oldest_in_window=oldest,
    )


def _later(outcome: str, until: datetime, now: datetime) -> _Later:
    wait = max(0.0, _seconds(until - now))
    return _Later(outcome, wait if wait <= MAX_COUNTDOWN_S else None)


def _prepare(conn: Connection, outbox_id: uuid.UUID, now: datetime) -> str | _Later | _Send:
    """Claim the row and decide whether it may go now (one transaction)."""
    row = _claim(conn, outbox_id, now)
    if row is None:
        return "skipped"  # delivered, failed, or another worker holds it
    _bind_log_context(conn, row)
    if not _bot_token(row.org_id):  # the token was removed after enqueueing: console, as enqueue would
        conn.execute(
            update(outbox)
            .where(_mine(row))
            .values(status=DeliveryStatus.CONSOLE, sent_at=now, lease_expires_at=None, claimed_by=None, updated_at=now)
        )
        return DeliveryStatus.CONSOLE
    if row.not_before is not None and _seconds(row.not_before - now) > EARLY_TOLERANCE_S:
        _release(conn, row, now)  # woke early (a duplicate publish): keep waiting
        return _later("waiting", row.not_before, now)
    gate = row.admitted_at is None and row.ts is None and row.user_id is not None
    urgent = is_urgent(row.kind, row.urgent)
    person = _recipient(conn, row, lock=gate and not urgent)
    if gate:
        hold = None if urgent or person is None else _hold(conn, row, person, now)
        if hold is not None:
            _release(conn, row, now, not_before=hold.until, error=f"held: {hold.reason}")
            log.info("outbox %s held until %s (%s)", row.id, hold.until.isoformat(), hold.reason)
            return _later(f"held:{hold.reason}", hold.until, now)
        conn.execute(update(outbox).where(_mine(row)).values(admitted_at=now, not_before=None, error=None))
    return _Send(row, person.slack_user_id if person is not None else None)


def _fail(row: Row, code: str, message: str, *, attempted: bool, channel: str | None) -> str:
    now = utcnow()
    with transaction() as conn:
        conn.execute(
            update(outbox)
            .where(_mine(row))
            .values(
                status=DeliveryStatus.FAILED,
                error_code=code[:64],
                error=message[:MAX_ERROR_CHARS],
                channel=channel or row.channel,
                lease_expires_at=None,
                claimed_by=None,
                updated_at=now,
                attempts=outbox.c.attempts + (1 if attempted else 0),
            )
        )
    prom.outbox_failed(row.kind)
    log.warning("outbox %s failed: %s (%s)", row.id, code, message)
    return DeliveryStatus.FAILED


def _take_slot(row: Row, channel: str) -> _Later | None:
    """Use the slot the row holds, or reserve the channel's next one; a future slot -> come back."""
    now = utcnow()
    if row.slot_at is not None and row.channel == channel:
        wait = _seconds(row.slot_at - now)
        if wait <= EARLY_TOLERANCE_S:
            return None  # our slot has come (or passed: it is still ours)
        with transaction() as conn:
            _release(conn, row, now, not_before=row.slot_at)
        return _later("waiting", row.slot_at, now)
    with transaction() as conn:
        wait = reserve(conn, f"slack:{channel}", get_settings().slack_channel_interval_s, now)
        if wait <= EARLY_TOLERANCE_S:
            return None
        slot_at = now + timedelta(seconds=wait)
        _release(conn, row, now, channel=channel, slot_at=slot_at, not_before=slot_at)
    return _later("waiting", slot_at, now)


def _code(err: BaseException) -> str:
    return str(getattr(err, "code", "") or type(err).__name__)


def _retry_or_fail(row: Row, err: Exception, channel: str | None, code_prefix: str = "") -> str | _Later:
    """Come back after a transient error (backoff, or Slack's Retry-After), or fail the row once its
    attempts are used up. `code_prefix` names the call that failed when it is not the post."""
    attempt = (row.attempts or 0) + 1
    max_attempts = RATE_LIMITED_MAX_ATTEMPTS if isinstance(err, RateLimited) else get_settings().delivery_max_attempts
    decision = decide_retry(err, attempt, max_attempts, base_delay_s=get_settings().retry_base_s)
    code = code_prefix + _code(err)
    if not decision.retry:
        return _fail(row, code, f"{err} ({decision.reason})", attempted=True, channel=channel)
    now = utcnow()
    until = now + timedelta(seconds=decision.delay_s)
    with transaction() as conn:
        _release(
            conn,
            row,
            now,
            attempted=True,
            not_before=until,
            slot_at=None,
            channel=channel or row.channel,
            error=str(err)[:MAX_ERROR_CHARS],
            error_code=code[:64],
        )
    log.info("outbox %s: %s, again in %.1f s", row.id, code, decision.delay_s)
    return _later("rate_limited" if isinstance(err, RateLimited) else "retry", until, now)


def _finish(row: Row, channel: str, ts: str, shown_revision: int | None = None) -> str:
    """Store the delivery; if the message was replaced meanwhile, stay pending for the edit.

    `shown_revision` is the revision the message in Slack shows (default: the claimed row's, which
    was just posted or edited); a message found in the history shows the one its metadata names.
    """
    now = utcnow()
    shown = row.revision if shown_revision is None else shown_revision
    done = {"channel": channel, "ts": ts, "updated_at": now, "slot_at": None}
    done |= {"lease_expires_at": None, "claimed_by": None}
    with transaction() as conn:
        sent = conn.execute(
            update(outbox)
            .where(_mine(row), outbox.c.revision == shown)
            .values(
                status=DeliveryStatus.SENT,
                sent_at=func.coalesce(outbox.c.sent_at, now),
                not_before=None,
                error=None,
                error_code=None,
                attempts=outbox.c.attempts + 1,
                **done,
            )
            .returning(outbox.c.id)
        ).first()
        if sent is None:  # replaced while we posted: keep channel + ts, edit with the new content
            conn.execute(update(outbox).where(_mine(row)).values(attempts=outbox.c.attempts + 1, **done))
        if row.kind == "approval" and row.approval_id is not None:
            # not a state move (where its message is; the approval's status stays): written here
            conn.execute(
                update(approvals)
                .where(approvals.c.id == row.approval_id, approvals.c.org_id == row.org_id)
                .values(slack_channel=channel, slack_ts=ts)
            )
    first_post = row.ts is None
    lag_s = prom.seconds_between(row.created_at, now) if first_post else None
    prom.outbox_delivered(row.kind, "post" if first_post else "update", lag_s)
    if sent is None:
        publish_delivery([row.id])
        return "replaced"
    return DeliveryStatus.SENT


@dataclass(frozen=True)
class _Found:
    """The row's message, already in Slack: its ts and the revision its metadata names (-1: none)."""

    ts: str
    revision: int


def _reconcile(client: WebClient, row: Row, channel: str) -> _Found | str | _Later | None:
    """Look for the row's message (its outbox id in the metadata) in the channel's recent history.

    Returns _Found, or None to post (not there, or the history cannot tell: `missing_scope` and
    other refusals, or a window longer than HISTORY_MAX_PAGES; logged, a duplicate is possible),
    or the outcome of a transient failure (the row comes back later, still to reconcile). A revoked
    token propagates (the post would be refused too).
    """
    match = posted_by(row.id)
    try:
        message, complete = find_message(
            client,
            channel,
            _history_since(row),
            match,
            max_pages=HISTORY_MAX_PAGES,
            page_size=HISTORY_PAGE_SIZE,
        )
    except TransientError as err:  # RateLimited included
        return _retry_or_fail(row, err, channel, code_prefix=HISTORY_CODE_PREFIX)
    except SlackCallFailed as err:
        log.warning(
            "outbox %s: cannot read the history of %s (%s): posting, a duplicate is possible", row.id, channel, err.code
        )
        return None
    if message is not None:
        ts = str(message["ts"])
        log.info("outbox %s: already posted in %s as %s (found in its history): not posted again", row.id, channel, ts)
        revision = ((message.get("metadata") or {}).get("event_payload") or {}).get("revision")
        return _Found(ts, revision if isinstance(revision, int) else -1)
    if not complete:
        log.warning(
            "outbox %s: the history of %s is longer than %d pages: posting, a duplicate is possible",
            row.id,
            channel,
            HISTORY_MAX_PAGES,
        )
    return None


def _send(item: _Send) -> str | _Later:
    """The Slack calls of one claimed row (no transaction open while Slack answers)."""
    row = item.row
    client = slack_client(_bot_token(row.org_id))
    channel = row.channel
    try:
        if channel is None:
            if row.user_id is None:
                return _fail(
                    row, "no_recipient", "message has neither a channel nor a user", attempted=False, channel=None
                )
            if not item.slack_user_id:
                return _fail(
                    row,
                    "no_slack_user",
                    f"user {row.user_id} has no Slack user id: link their Slack account, then send again",
                    attempted=False,
                    channel=None,
                )
            channel = open_dm(client, item.slack_user_id)
        if row.ts is not None:  # replaced after it was posted: edit it in place
            ts = update_message(client, channel, row.ts, row.text, row.blocks)
        else:
            later = _take_slot(row, channel)
            if later is not None:
                return later
            if may_have_posted(row):
                found = _reconcile(client, row, channel)
                if isinstance(found, _Found):
                    return _finish(row, channel, found.ts, shown_revision=found.revision)
                if found is not None:
                    return found
            metadata = slack_metadata(logs.current_trace_id(), row.job_id, outbox_id=row.id, revision=row.revision)
            channel, ts = post_message(client, channel, row.text, row.blocks, metadata=metadata)
    except (AuthRevoked, PermanentError) as err:
        return _fail(row, _code(err), str(err), attempted=True, channel=channel)
    except TransientError as err:  # RateLimited included
        return _retry_or_fail(row, err, channel)
    return _finish(row, channel, ts)


def deliver(outbox_id: uuid.UUID) -> str:
    """Deliver one outbox row to Slack, or defer it; returns the outcome (for logs and tests).

    Outcomes: sent, replaced, console, failed, skipped (not pending or held by another worker),
    waiting (channel slot or not_before ahead), held:quiet_hours, held:hourly_budget,
    rate_limited, retry.
    """
    with transaction() as conn:
        prepared = _prepare(conn, outbox_id, utcnow())
    result = _send(prepared) if isinstance(prepared, _Send) else prepared
    if isinstance(result, _Later):
        if result.countdown_s is not None:
            publish_delivery([outbox_id], countdown_s=result.countdown_s)
        return result.outcome
    return result
