"""Gmail push watches: which Google integrations need `users.watch`, and renewing them.

A watch makes Gmail publish INBOX changes to GMAIL_PUBSUB_TOPIC until its `expiration` (about 7
days). `due` picks the active Google integrations whose watch expires within a day, has already
expired or never existed; `renew_one` calls `users.watch` for one of them with no transaction open
and stores the outcome in a short one; `renew_due` does both for every due integration. The
`proactive gmail renew` command and the daily Beat task call these.

A renewal that fails (Google or the network) is tried again the same day with backoff
(`retry_delay_s`, the daily task in worker/crons/tasks.py), and after TELL_AFTER failures its user gets one
DM saying what to do (`tell_user`); a revoked integration is not retried (its user was asked to
reconnect when it was marked revoked).

The history id Gmail answers is stored only when the integration has none: history sync advances
the stored one, and overwriting it would skip mail not yet synced.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, func, or_, select, update

from worker.config import get_settings
from worker.db import transaction
from worker.errors import AuthRevoked, PermanentError, ProactiveError
from worker.google.links import reconnect_link
from worker.integrations import mark_revoked
from worker.models import Integration
from worker.slack.delivery import enqueue_message

log = logging.getLogger(__name__)

integrations = Integration.__table__

PROVIDER = "google"
# Renew watches expiring within this window (Gmail's last for 7 days; the Beat task runs daily).
DUE_WITHIN = timedelta(hours=24)
# Characters of an error kept in `integrations.last_error` and shown in the table.
MAX_ERROR_CHARS = 2000
TABLE_ERROR_CHARS = 120
# A failed renewal is tried again that day after these delays (s; each within the broker's countdown
# limit, worker/engine/publish.py MAX_COUNTDOWN_S), and its user is told after TELL_AFTER failures.
RETRY_DELAYS_S = (60.0, 300.0, 600.0)
TELL_AFTER = 2
NO_TOPIC = "GMAIL_PUBSUB_TOPIC is not set: set it to the Pub/Sub topic Gmail publishes to (projects/P/topics/T)"


@dataclass(frozen=True)
class RenewResult:
    """What renewing one integration's watch did (`ok`), or why it failed (`error`)."""

    integration_id: uuid.UUID
    org_id: uuid.UUID
    user_id: uuid.UUID | None
    account: str | None  # the Gmail address
    old_expiry: datetime | None
    new_expiry: datetime | None
    ok: bool
    error: str | None = None
    # A failure worth trying again later the same day (Google or the network; not a revoked or
    # inactive integration, nor a missing GMAIL_PUBSUB_TOPIC), and whether reconnecting Google fixes it.
    retry: bool = False
    reconnect: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (ids as strings, times ISO-8601)."""
        return {
            "integration_id": str(self.integration_id),
            "org_id": str(self.org_id),
            "user_id": str(self.user_id) if self.user_id else None,
            "account": self.account,
            "old_expiry": self.old_expiry.isoformat() if self.old_expiry else None,
            "new_expiry": self.new_expiry.isoformat() if self.new_expiry else None,
            "ok": self.ok,
            "error": self.error,
        }


def due(
    conn: Connection, now: datetime, *, within: timedelta | None = DUE_WITHIN, org_id: uuid.UUID | None = None
) -> list[Row[Any]]:
    """Active Google integrations whose watch expires before `now + within`, already expired or never
    set, soonest first (`within=None`: every active Google integration). All orgs unless `org_id`."""
    query = select(
        integrations.c.id,
        integrations.c.org_id,
        integrations.c.user_id,
        integrations.c.account,
        integrations.c.watch_expiration,
    ).where(integrations.c.provider == PROVIDER, integrations.c.status == "active")
    if within is not None:
        expiry = integrations.c.watch_expiration
        query = query.where(or_(expiry.is_(None), expiry < now + within))
    if org_id is not None:
        query = query.where(integrations.c.org_id == org_id)
    order = integrations.c.watch_expiration.asc().nulls_first()
    return list(conn.execute(query.order_by(order, integrations.c.id)))


def watch_body(topic: str) -> dict[str, Any]:
    """The `users.watch` request: new INBOX mail only, published to `topic`."""
    return {"topicName": topic, "labelIds": ["INBOX"], "labelFilterBehavior": "include"}


def parse_watch_response(answer: Any) -> tuple[datetime, str | None]:
    """Gmail's `{historyId, expiration}` (both strings; expiration in epoch milliseconds) as an aware
    expiry and the history id."""
    try:
        expiry = datetime.fromtimestamp(int(answer["expiration"]) / 1000, UTC)
    except (KeyError, TypeError, ValueError, OverflowError):
        raise PermanentError(f"Gmail answered users.watch without a valid expiration: {answer!r:.200}") from None
    history_id = answer.get("historyId")
    return expiry, str(history_id) if history_id not in (None, "") else None


def renew_one(org_id: uuid.UUID, integration_id: uuid.UUID, now: datetime) -> RenewResult:
    """Call `users.watch` for one integration of `org_id` and store the new expiry (and the first
    history id), or the error; an `AuthRevoked` marks the integration revoked."""
    with transaction() as conn:
        row = conn.execute(
            select(integrations).where(integrations.c.id == integration_id, integrations.c.org_id == org_id)
        ).first()
    if row is None:
        return RenewResult(integration_id, org_id, None, None, None, None, False, "no such integration in this org")

    def failed(error: str) -> RenewResult:
        return RenewResult(row.id, org_id, row.user_id, row.account, row.watch_expiration, None, False, error)

    if row.provider != PROVIDER or row.status != "active":
        return failed(f"{row.provider} integration is {row.status}, not an active Google one")
    topic = get_settings().gmail_pubsub_topic.strip()
    if not topic:
        return failed(NO_TOPIC)

    try:
        expiry, history_id = _watch(row, topic)
    except ProactiveError as err:
        error = str(err)[:MAX_ERROR_CHARS]
        revoked = isinstance(err, AuthRevoked)
        with transaction() as conn:
            if revoked:  # revoked, and its user asked once to reconnect
                mark_revoked(conn, org_id, err, now, integration_id=row.id)  # type: ignore[arg-type]
            else:
                conn.execute(_update(org_id, row.id).values(last_error=error, updated_at=now))
        log.warning("gmail watch of integration %s failed%s: %s", row.id, " (revoked)" if revoked else "", error)
        return replace(failed(error), retry=not revoked, reconnect=row.credentials is None)

    with transaction() as conn:
        conn.execute(
            _update(org_id, row.id).values(
                watch_expiration=expiry,
                # never overwrite a stored history id: history sync advances it
                history_id=func.coalesce(integrations.c.history_id, history_id),
                last_error=None,
                updated_at=now,
            )
        )
    log.info("gmail watch of integration %s renewed until %s", row.id, expiry.isoformat())
    return RenewResult(row.id, org_id, row.user_id, row.account, row.watch_expiration, expiry, True, None)


def retry_delay_s(failures: int) -> float | None:
    """How long to wait before trying a failed renewal again, after `failures` failures today (None:
    no more tries today; tomorrow's renewal tries again)."""
    return RETRY_DELAYS_S[failures - 1] if 1 <= failures <= len(RETRY_DELAYS_S) else None


def tell_user(conn: Connection, result: RenewResult, failures: int, now: datetime) -> bool:
    """Queue one DM (in the caller's transaction) telling the integration's user that renewing the
    watch failed `failures` times today and what to do: reconnect Google (signed link) when that is
    the fix, else nothing unless it goes on. At most one a day per integration; True when queued."""
    if result.user_id is None:
        return False
    link = reconnect_link(PROVIDER, result.org_id, result.user_id)
    who = f" for {result.account}" if result.account else ""
    why = " ".join((result.error or "unknown error").split())[:TABLE_ERROR_CHARS]
    if result.reconnect:
        todo = f"Reconnect Google to fix it: {link}"
    else:
        todo = f"Proactive keeps trying today; if this goes on, reconnecting Google may help: {link}"
    text = (
        f"Gmail did not renew its new-mail notifications{who} ({failures} failures today: {why}), so new "
        f"replies may not reach Proactive. {todo}"
    )
    queued = enqueue_message(
        conn,
        result.org_id,
        kind="reconnect",
        message={"text": text, "blocks": []},
        now=now,
        dedupe_key=f"gmail-watch-failed:{result.integration_id}:{now.date().isoformat()}",
        user_id=result.user_id,
    )
    return queued is not None


def _watch(row: Row[Any], topic: str) -> tuple[datetime, str | None]:
    """The HTTP part of a renewal (no transaction open): credentials, `users.watch`, its answer."""
    # googleapiclient (hundreds of ms to import) loads only in the processes that renew a watch
    from worker.google.client import call, credentials_for, gmail_service

    if row.credentials is None:
        raise PermanentError("no stored Google credentials: reconnect Google at /oauth/google/start")
    creds = credentials_for(row._mapping)
    with gmail_service(creds) as service:
        answer = call(service.users().watch(userId="me", body=watch_body(topic)), integration_id=row.id)
    return parse_watch_response(answer)


def _update(org_id: uuid.UUID, integration_id: uuid.UUID) -> Any:
    return update(integrations).where(integrations.c.id == integration_id, integrations.c.org_id == org_id)


def renew_due(
    now: datetime, *, org_id: uuid.UUID | None = None, within: timedelta | None = DUE_WITHIN
) -> list[RenewResult]:
    """Renew every due watch (`within=None`: every active Google integration), each on its own; one
    failure never stops the others."""
    with transaction() as conn:
        rows = due(conn, now, within=within, org_id=org_id)
    results = []
    for row in rows:
        try:
            results.append(renew_one(row.org_id, row.id, now))
        except Exception as exc:  # a bug or a lost database must not stop the other mailboxes
            log.exception("gmail watch of integration %s failed unexpectedly", row.id)
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
            results.append(
                RenewResult(row.id, row.org_id, row.user_id, row.account, row.watch_expiration, None, False, error)
            )
    return results


def _when(value: datetime | None, missing: str) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if value is not None else missing


def format_table(results: list[RenewResult]) -> str:
    """Aligned columns for people: user (account), old expiry, new expiry, result (ok or the error)."""
    if not results:
        return "no Gmail watch to renew"
    rows = [("USER", "OLD EXPIRY", "NEW EXPIRY", "RESULT")]
    for r in results:
        error = " ".join((r.error or "failed").split())
        if len(error) > TABLE_ERROR_CHARS:
            error = error[: TABLE_ERROR_CHARS - 1] + "…"
        user = r.account or str(r.user_id or r.integration_id)
        rows.append((user, _when(r.old_expiry, "never"), _when(r.new_expiry, "-"), "ok" if r.ok else error))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    )
