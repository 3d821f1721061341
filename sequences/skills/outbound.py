"""Acting in the world for a rep: send an email, create a calendar event, read free/busy.

Every send goes through `ctx.effect` (exactly once per job step, even when retried after a crash:
the preparation runs before the effect is marked started, an email's deterministic Message-ID lets a
retry find the first attempt's message, an event's deterministic id makes Calendar refuse a repeat)
and, in dry-run (smoke, demo), records the request it would have made instead of calling Google.
Reading free/busy uses the rep's Google calendar when connected, else the calendar events stored for
the rep.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Uuid, bindparam, select, update
from sqlalchemy.exc import MultipleResultsFound

from sequences.skills import common
from worker.engine.context import StepContext
from worker.engine.effects import Prepared, effect_key, record
from worker.engine.jobstore import insert_ignoring_conflicts
from worker.errors import GoogleNotConnected, PermanentError
from worker.models import Activity, CalendarEvent, Deal, Integration, User, of_org, utcnow

_ORG, _USER = bindparam("b_org", type_=Uuid()), bindparam("b_user", type_=Uuid())
_GOOGLE = select(Integration.__table__).where(
    Integration.org_id == _ORG,
    Integration.user_id == _USER,
    Integration.provider == "google",
    Integration.status == "active",
)
_STORED_BUSY = select(CalendarEvent.start_at, CalendarEvent.end_at).where(
    CalendarEvent.org_id == _ORG,
    CalendarEvent.user_id == _USER,
    CalendarEvent.end_at > bindparam("b_min", type_=CalendarEvent.end_at.type),
    CalendarEvent.start_at < bindparam("b_max", type_=CalendarEvent.start_at.type),
)


def google_integration(ctx: StepContext, user: User) -> Integration | None:
    """The rep's active Google integration in this org, if any (a read-only row)."""
    found = common.rows(ctx, _GOOGLE, b_org=ctx.org_id, b_user=user.id)
    if len(found) > 1:  # as scalar_one_or_none would: one active Google connection per rep
        raise MultipleResultsFound("more than one active Google integration for this rep")
    return found[0] if found else None  # type: ignore[return-value]


def _require_google(ctx: StepContext, user: User) -> Integration:
    """The rep's Google integration; GoogleNotConnected (the step waits for a connect) without one."""
    integration = google_integration(ctx, user)
    if integration is None or integration.credentials is None:
        raise GoogleNotConnected(f"{user.name or user.email} has no Google connection", user_id=user.id)
    return integration


def send_email(
    ctx: StepContext,
    user: User,
    to: Sequence[str],
    subject: str,
    body: str,
    *,
    name: str = "send-email",
    thread_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
) -> dict[str, Any]:
    """Send `body` as `user` (threaded when in_reply_to is given), once; returns {id, threadId} or the
    dry-run record {dry_run, request}."""
    if not to:
        raise PermanentError("no recipient address for this email")
    request = {
        "from": user.email,
        "to": list(to),
        "subject": subject,
        "body": body,
        "thread_id": thread_id,
        "in_reply_to": in_reply_to,
        "references": references,
    }
    if ctx.dry_run:
        return record(ctx, name, {"dry_run": True, "request": request})
    integration = _require_google(ctx, user)

    @contextmanager
    def prepare() -> Iterator[Prepared]:
        # googleapiclient (about a second to import) loads only in the steps that call Google
        from worker.google.client import credentials_for, gmail_service, wait_for_quota
        from worker.google.gmail_send import SEND_METHOD, build_mime, find_sent, message_id_for, send

        message_id = message_id_for(effect_key(ctx, name), user.email)
        raw = build_mime(
            user.email, list(to), subject, body, in_reply_to=in_reply_to, references=references, message_id=message_id
        )
        with gmail_service(credentials_for(integration)) as service:
            wait_for_quota(integration.id, SEND_METHOD)  # before the `started` mark: a crash here sent nothing
            yield Prepared(
                call=lambda: send(service, raw, thread_id, quota_taken=True),
                find=lambda: find_sent(service, message_id),
                check=f"the Sent folder of {user.email} for Message-ID {message_id}",
            )

    return ctx.effect(name, prepare=prepare)


def create_event(
    ctx: StepContext,
    user: User,
    summary: str,
    start: datetime,
    end: datetime,
    attendees: Sequence[str],
    description: str,
    *,
    name: str = "create-event",
) -> dict[str, Any]:
    """Create a calendar event on the rep's primary calendar with invitations, once."""
    request = {
        "calendar": user.email,
        "summary": summary,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "attendees": list(attendees),
        "description": description,
    }
    if ctx.dry_run:
        return record(ctx, name, {"dry_run": True, "request": request})
    integration = _require_google(ctx, user)

    @contextmanager
    def prepare() -> Iterator[Prepared]:
        # googleapiclient (about a second to import) loads only in the steps that call Google
        from worker.google.calendar import insert_event
        from worker.google.client import calendar_service, credentials_for

        with calendar_service(credentials_for(integration)) as service:
            yield Prepared(
                call=lambda: insert_event(
                    service,
                    "primary",
                    summary,
                    start,
                    end,
                    list(attendees),
                    description,
                    request_id=effect_key(ctx, name),
                ),
                check=f"the calendar of {user.email}",
            )

    # Calendar deduplicates on our deterministic event id, so repeating a half-done insert is safe.
    return ctx.effect(name, prepare=prepare, retry_safe=True)


def busy_intervals(ctx: StepContext, user: User, time_min: datetime, time_max: datetime) -> tuple[list, str]:
    """The rep's busy intervals in [time_min, time_max) and where they came from (google|stored)."""
    integration = google_integration(ctx, user)
    if integration is not None and integration.credentials is not None:
        # googleapiclient (about a second to import) loads only in the steps that call Google
        from worker.google.calendar import free_busy
        from worker.google.client import calendar_service, credentials_for

        ctx.checkpoint()  # no transaction stays open across Google's answer
        with calendar_service(credentials_for(integration)) as service:
            return free_busy(service, "primary", time_min, time_max), "google"
    rows = common.rows(ctx, _STORED_BUSY, b_org=ctx.org_id, b_user=user.id, b_min=time_min, b_max=time_max)
    return [(start, end) for start, end in rows], "stored"


def record_activity(
    ctx: StepContext,
    *,
    kind: str,
    subject: str,
    body: str | None = None,
    deal_id: Any = None,
    contact_id: Any = None,
    company_id: Any = None,
    direction: str | None = "outbound",
    touch_deal: bool = True,
) -> datetime | None:
    """Log what was done on the deal (and touch its last activity, unless `touch_deal` is False because
    the caller writes the deal itself) in one transaction, once per step. Returns when it was logged,
    None when this step had already logged it (a retry)."""
    activity_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{ctx.job_id}:{ctx.step}:{ctx.iteration}:{kind}")
    now = utcnow()
    deal_id, contact_id, company_id = (uuid.UUID(str(v)) if v else None for v in (deal_id, contact_id, company_id))
    with ctx.transaction() as conn:
        values = {
            "id": activity_id,
            "org_id": ctx.org_id,
            "deal_id": deal_id,
            "contact_id": contact_id,
            "company_id": company_id,
            "user_id": ctx.user_id,
            "kind": kind,
            "direction": direction,
            "subject": subject[:500],
            "body": body,
            "occurred_at": now,
            "created_at": now,
        }
        if not common.execute_on(conn, _activity_insert(conn), **values):
            return None  # the id is this step's own: it was logged by an earlier attempt
        if deal_id and touch_deal:
            common.execute_on(conn, _TOUCH_DEAL, b_at=now, b_id=deal_id, b_org=ctx.org_id)
    return now


_ACTIVITY_INSERTS: dict[str, Any] = {}
_TOUCH_DEAL = (
    update(Deal.__table__)
    .where(Deal.id == bindparam("b_id", type_=Uuid()), of_org(Deal.org_id, bindparam("b_org", type_=Uuid())))
    .values(last_activity_at=bindparam("b_at"))
)


def _activity_insert(conn: Connection) -> Any:
    """`INSERT INTO activities ... ON CONFLICT (id) DO NOTHING` for the connection's dialect, built once
    (so common.execute_on runs it compiled once, on the cursor)."""
    name = conn.dialect.name
    if name not in _ACTIVITY_INSERTS:
        table = Activity.__table__
        _ACTIVITY_INSERTS[name] = insert_ignoring_conflicts(conn, table, ["id"]).values(
            {c: bindparam(c, type_=table.c[c].type) for c in _ACTIVITY_COLUMNS}
        )
    return _ACTIVITY_INSERTS[name]


_ACTIVITY_COLUMNS = (
    "id",
    "org_id",
    "deal_id",
    "contact_id",
    "company_id",
    "user_id",
    "kind",
    "direction",
    "subject",
    "body",
    "occurred_at",
    "created_at",
)
