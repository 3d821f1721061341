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

from sqlalchemy import and_, insert, select, update

from worker.engine.context import StepContext
from worker.engine.effects import Prepared, effect_key, record
from worker.errors import GoogleNotConnected, PermanentError
from worker.models import Activity, CalendarEvent, Deal, Integration, User, utcnow


def google_integration(ctx: StepContext, user: User) -> Integration | None:
    """The rep's active Google integration in this org, if any."""
    with ctx.session() as session:
        return session.execute(
            select(Integration).where(
                Integration.org_id == ctx.org_id,
                Integration.user_id == user.id,
                Integration.provider == "google",
                Integration.status == "active",
            )
        ).scalar_one_or_none()


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
    with ctx.session() as session:
        rows = session.execute(
            select(CalendarEvent.start_at, CalendarEvent.end_at).where(
                CalendarEvent.org_id == ctx.org_id,
                CalendarEvent.user_id == user.id,
                and_(CalendarEvent.end_at > time_min, CalendarEvent.start_at < time_max),
            )
        ).all()
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
) -> None:
    """Log what was done on the deal (and touch its last activity) in one transaction, once per step."""
    activity_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{ctx.job_id}:{ctx.step}:{ctx.iteration}:{kind}")
    now = utcnow()
    deal_id, contact_id, company_id = (uuid.UUID(str(v)) if v else None for v in (deal_id, contact_id, company_id))
    with ctx.transaction() as conn:
        exists = conn.execute(
            select(Activity.id).where(Activity.id == activity_id, Activity.org_id == ctx.org_id)
        ).first()
        if exists:
            return
        conn.execute(
            insert(Activity.__table__).values(
                id=activity_id,
                org_id=ctx.org_id,
                deal_id=deal_id,
                contact_id=contact_id,
                company_id=company_id,
                user_id=ctx.user_id,
                kind=kind,
                direction=direction,
                subject=subject[:500],
                body=body,
                occurred_at=now,
                created_at=now,
            )
        )
        if deal_id:
            conn.execute(
                update(Deal.__table__).where(Deal.id == deal_id, Deal.org_id == ctx.org_id).values(last_activity_at=now)
            )
