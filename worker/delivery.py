"""The Slack outbox: every message a job sends is a row first (dedupe key unique), then delivered.

Console mode (no Slack token: the embedded default, tests, dry runs): the row is marked `console`
in the enqueuing transaction and `proactive inbox` renders it. Nothing else happens.

Slack mode (SLACK_BOT_TOKEN set): the row is `pending` and the `proactive.deliver` task (queue
`edge`) delivers it. Callers enqueue inside their own transaction and, AFTER it commits, call
`publish_delivery(ids)`; `deliver_due(now)` (the sweeper) re-publishes pending rows whose publish
was lost (older than 30 s) or whose `not_before` has passed. One delivery (`deliver`):

1. claims the row (`pending`, lease free -> lease for LEASE_S): a second copy of the task backs off;
2. unless the row is urgent, applies the recipient's quiet hours and hourly budget once (under a
   lock on the user row, so concurrent deliveries count each other): a held row gets `not_before`
   and a countdown (at most 10 min; longer holds are left to `deliver_due`);
3. resolves the channel (the row's, else a DM opened with conversations.open);
4. takes the channel's shared 1 msg/s slot (`worker.ratelimit`); a future slot is kept on the row
   (`slot_at`) and the task comes back for it with a countdown (never `time.sleep`);
5. posts (chat.postMessage), or for a replaced message that was already posted, edits it in place
   (chat.update with the stored channel + ts), and stores channel, ts, `sent`;
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import Connection, Row, and_, case, func, or_, select, update

from worker import logs, prom
from worker.clients.slack import open_dm, post_message, slack_client, update_message
from worker.config import get_settings
from worker.db import on_commit, transaction
from worker.errors import AuthRevoked, PermanentError, RateLimited, TransientError
from worker.jobstore import insert_ignoring_conflicts
from worker.models import Org, SlackOutbox, User, approvals, jobs, utcnow
from worker.orgs import org_dry_run
from worker.publish import MAX_COUNTDOWN_S
from worker.ratelimit import reserve
from worker.retry import decide_retry
from worker.worktime import zone

log = logging.getLogger(__name__)

outbox = SlackOutbox.__table__
users = User.__table__
orgs = Org.__table__
# The `event_type` of the metadata on every message we post (its payload: trace_id, job_id).
SLACK_METADATA_EVENT = "proactive_trace"

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
# A pending row not handed to the broker for this long is re-published by deliver_due (seconds).
REPUBLISH_AFTER_S = 30.0
# A task that wakes this much before its not_before/slot still goes (seconds; broker timer slack).
EARLY_TOLERANCE_S = 0.01
# 429s are Slack telling us when; give up only after this many tries of one row.
RATE_LIMITED_MAX_ATTEMPTS = 20
# Rows deliver_due re-publishes per pass; the next pass takes the rest.
BATCH = 500
# Longest error text stored on a row (characters).
MAX_ERROR_CHARS = 2000


class DeliveryStatus:
    """Values of slack_outbox.status."""

    PENDING = "pending"  # to deliver (a posted row is pending again when its message must be edited)
    SENT = "sent"
    CONSOLE = "console"  # no Slack token: shown by `proactive inbox`
    FAILED = "failed"


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


def _org_in_dry_run(conn: Connection, org_id: uuid.UUID) -> bool:
    """A dry-run org's messages (briefs, reminders, reconnect requests too) stay in the console inbox."""
    return org_dry_run(conn.execute(select(Org.settings).where(Org.id == org_id)).scalar())


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
    row = conn.execute(
        insert_ignoring_conflicts(conn, outbox, ["dedupe_key"])
        .values(
            id=uuid.uuid4(),
            org_id=org_id,
            dedupe_key=dedupe_key,
            user_id=user_id,
            job_id=job_id,
            approval_id=approval_id,
            kind=kind,
            channel=channel,
            text=str(message.get("text") or "")[:40_000],
            blocks=list(message.get("blocks") or []),
            status=DeliveryStatus.CONSOLE if console else DeliveryStatus.PENDING,
            attempts=0,
            urgent=urgent,
            not_before=not_before if not console else None,
            revision=0,
            created_at=now,
            updated_at=now,
            sent_at=now if console else None,
        )
        .returning(outbox.c.id)
    ).first()
    if row is None:
        return None
    if not console:
        outbox_id = row[0]
        wait_s = max(0.0, (not_before - now).total_seconds()) if not_before else None
        on_commit(lambda: publish_delivery([outbox_id], countdown_s=wait_s or None))
    return row[0]


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
    new content (published once the caller's transaction commits). Returns those outbox ids.
    """
    rows = conn.execute(
        update(outbox)
        .where(outbox.c.org_id == org_id, outbox.c.approval_id == approval_id, outbox.c.kind == "approval")
        .values(
            text=str(message.get("text") or "")[:40_000],
            blocks=list(message.get("blocks") or []),
            revision=outbox.c.revision + 1,
            updated_at=now or utcnow(),
            status=case(
                (and_(outbox.c.status == DeliveryStatus.SENT, outbox.c.ts.is_not(None)), DeliveryStatus.PENDING),
                else_=outbox.c.status,
            ),
        )
        .returning(outbox.c.id, outbox.c.status)
    ).all()
    pending = [r.id for r in rows if r.status == DeliveryStatus.PENDING]
    if pending:
        on_commit(lambda: publish_delivery(pending))
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
    deliver_due re-publishes committed rows.
    """
    from worker.celery_app import celery_app

    if countdown_s is not None and countdown_s > MAX_COUNTDOWN_S:
        return 0
    sent = 0
    for outbox_id in outbox_ids:
        if outbox_id is None:
            continue
        try:
            celery_app.send_task(
                "proactive.deliver",
                args=(str(outbox_id),),
                queue="edge",
                routing_key="edge",
                countdown=countdown_s if countdown_s and countdown_s > 0 else None,
                ignore_result=True,
                argsrepr=str(outbox_id),
            )
            sent += 1
        except Exception as exc:  # broker down: deliver_due re-publishes committed rows
            log.warning("publish of outbox row %s failed (%s); deliver_due will retry", outbox_id, exc)
    return sent


def deliver_due(now: datetime | None = None, limit: int = BATCH) -> int:
    """Sweeper: re-publish pending rows that nobody is delivering and that are due; returns how many.

    Due = `not_before` has passed, or no `not_before` and untouched for REPUBLISH_AFTER_S (a lost
    publish). Re-published rows are stamped so the next pass leaves them alone for 30 s.
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=REPUBLISH_AFTER_S)
    with transaction() as conn:
        ids = list(
            conn.execute(
                select(outbox.c.id)
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
            ).scalars()
        )
        if ids:
            conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(updated_at=now, not_before=None))
    return publish_delivery(ids)


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


def _claim(conn: Connection, outbox_id: uuid.UUID, now: datetime) -> Row | None:
    return conn.execute(
        update(outbox)
        .where(
            outbox.c.id == outbox_id,
            outbox.c.status == DeliveryStatus.PENDING,
            or_(outbox.c.lease_expires_at.is_(None), outbox.c.lease_expires_at < now),
        )
        .values(lease_expires_at=now + timedelta(seconds=LEASE_S), updated_at=now)
        .returning(*outbox.c)
    ).first()


def _bind_log_context(conn: Connection, row: Row) -> None:
    """This delivery's log lines (and the message's metadata) carry its job's trace id."""
    trace_id = conn.execute(select(jobs.c.trace_id).where(jobs.c.id == row.job_id)).scalar() if row.job_id else None
    logs.bind(org_id=row.org_id, job_id=row.job_id, trace_id=logs.valid_trace_id(trace_id))


def slack_metadata(trace_id: str | None, job_id: uuid.UUID | None) -> dict[str, Any] | None:
    """chat.postMessage `metadata` naming the trace (and job) a message belongs to, so a message
    found in Slack leads to the log lines of its story; None when there is no trace."""
    if not trace_id:
        return None
    payload = {"trace_id": trace_id, **({"job_id": str(job_id)} if job_id else {})}
    return {"event_type": SLACK_METADATA_EVENT, "event_payload": payload}


def _mine(row: Row) -> Any:
    """WHERE clause of an update made by the holder of the row's lease (a fencing token)."""
    return and_(outbox.c.id == row.id, outbox.c.lease_expires_at == row.lease_expires_at)


def _release(conn: Connection, row: Row, now: datetime, *, attempted: bool = False, **values: Any) -> None:
    """Give the lease back, leaving the row pending with `values` (not_before, slot_at, error...)."""
    conn.execute(
        update(outbox)
        .where(_mine(row))
        .values(
            lease_expires_at=None,
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
            .values(status=DeliveryStatus.CONSOLE, sent_at=now, lease_expires_at=None, updated_at=now)
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


def _retry_or_fail(row: Row, err: Exception, channel: str | None) -> str | _Later:
    attempt = (row.attempts or 0) + 1
    max_attempts = RATE_LIMITED_MAX_ATTEMPTS if isinstance(err, RateLimited) else get_settings().delivery_max_attempts
    decision = decide_retry(err, attempt, max_attempts, base_delay_s=get_settings().retry_base_s)
    if not decision.retry:
        return _fail(row, _code(err), f"{err} ({decision.reason})", attempted=True, channel=channel)
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
            error_code=_code(err)[:64],
        )
    log.info("outbox %s: %s, again in %.1f s", row.id, _code(err), decision.delay_s)
    return _later("rate_limited" if isinstance(err, RateLimited) else "retry", until, now)


def _finish(row: Row, channel: str, ts: str) -> str:
    """Store the delivery; if the message was replaced meanwhile, stay pending for the edit."""
    now = utcnow()
    done = {"channel": channel, "ts": ts, "lease_expires_at": None, "updated_at": now, "slot_at": None}
    with transaction() as conn:
        sent = conn.execute(
            update(outbox)
            .where(_mine(row), outbox.c.revision == row.revision)
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
            metadata = slack_metadata(logs.current_trace_id(), row.job_id)
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
