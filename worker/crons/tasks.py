"""Bodies of the Beat tasks (README.md#crons): UTC ticks that fan out into small per-org and
per-rep tasks, so one slow org never delays the others.

Every unit of work claims a `cron_runs` row first (`claim_slot`: `slot_key` is unique), so a
second Beat, a retried tick or a redelivered task does nothing twice; the row keeps the counts
(users considered, events fired, what was skipped and why). A row left `running` by a crashed
process is taken over by the next attempt after `STALE_AFTER`, a `failed` one at once. Below the rows, every
effect has its own key too (the brief's outbox `dedupe_key`, each event's idempotency key), so
even a taken-over slot never sends a brief or fires an event twice.

- morning-brief (every 15 min): the tick re-checks the slots of the last 2 h (a missed tick is
  caught up; a brief more than 2 h late is skipped, not sent), finds the orgs with reps whose
  local briefing time falls in a slot -> `morning_brief_org` -> `morning_brief_user` per rep: the
  brief DM, `coaching_weekly` on the rep's local Monday, and once per org and local day
  `campaign_daily_check` when the org has an Instantly integration;
- meeting-prep (every 30 min): calendar events starting in 30-120 min with more than one
  attendee -> `pre_meeting_90min` per (event, rep), per org;
- stale-deals (hourly): each org whose local clock has reached its scan hour (setting
  `stale_deals_hour`, default 9) and has not been scanned that local day -> `stale_deal_revival`
  per open deal with an owner and no activity for `days_inactive` (default 7; weekly key) and one
  `deal_risk_scan`;
- gmail-watch-renewal (daily): every active Google integration whose watch expires within 24 h or
  has expired -> `users.watch` (worker/google/watch.py), one task per integration; a failed renewal
  is tried again that day with backoff, and its user is told after 2 failures.

`cron_now()` is the cron bodies' clock: the wall clock, or the instant written in the file named
by PROACTIVE_CRON_CLOCK_FILE (tests drive simulated days through real Beat and worker processes).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, tuple_, update

from worker.celery_app import celery_app
from worker.config import get_settings
from worker.crons import slots as cs
from worker.db import on_commit, transaction
from worker.engine import registry
from worker.engine.events import Fired, fire_in
from worker.engine.jobstore import insert_ignoring_conflicts
from worker.engine.publish import Message, after_commit
from worker.engine.states import check_transition
from worker.google import watch as gmail_watch
from worker.integrations import IntegrationStatus
from worker.metrics import prom
from worker.models import CalendarEvent, CronRun, Deal, Integration, Org, User, utcnow
from worker.slack.delivery import enqueue_message
from worker.worktime import zone

log = logging.getLogger(__name__)

cron_runs = CronRun.__table__
STALE_AFTER = timedelta(minutes=10)  # a `running` slot row this old belongs to a dead process
CLOSED_STAGES = ("closed_won", "closed_lost")
BRIEF_KIND = "morning_brief"
_warned: set[tuple[uuid.UUID, tuple[str, ...]]] = set()  # (user, problems) logged by this process


class RunStatus(StrEnum):
    """Values of cron_runs.status: a unit of cron work, claimed once."""

    RUNNING = "running"  # claimed by a process (taken over after STALE_AFTER)
    DONE = "done"
    FAILED = "failed"  # the next attempt takes it over at once


R = RunStatus
RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    R.RUNNING: frozenset({R.RUNNING, R.DONE, R.FAILED}),  # running -> running: a stale row taken over
    R.FAILED: frozenset({R.RUNNING}),
}
# claim_slot's takeover moves failed -> running and (stale) running -> running
check_transition(RUN_TRANSITIONS, R.FAILED, R.RUNNING)
check_transition(RUN_TRANSITIONS, R.RUNNING, R.RUNNING)


def cron_now() -> datetime:
    """Now, for the cron bodies: the wall clock, or the ISO instant in PROACTIVE_CRON_CLOCK_FILE."""
    path = get_settings().cron_clock_file
    if not path:
        return utcnow()
    text = Path(path).read_text(encoding="utf-8").strip()
    return cs.utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


# --------------------------------------------------------------------------- slot rows


def claim_slot(conn: Connection, task: str, key: str, now: datetime, org_id: uuid.UUID | None = None) -> bool:
    """Claim the cron_runs row `key` for this process (in the caller's transaction): True when this
    process should do the slot's work; False when it is done or another process is on it."""
    inserted = conn.execute(
        insert_ignoring_conflicts(conn, cron_runs, ["slot_key"])
        .values(
            id=uuid.uuid4(),
            org_id=org_id,
            task=task,
            slot_key=key,
            status=RunStatus.RUNNING.value,
            counts={},
            started_at=now,
            finished_at=None,
        )
        .returning(cron_runs.c.id)
    ).first()
    if inserted is not None:
        on_commit(lambda: prom.cron_slot_claimed(task))
        return True
    taken = conn.execute(
        update(cron_runs)
        .where(
            cron_runs.c.slot_key == key,
            or_(
                cron_runs.c.status == RunStatus.FAILED,
                and_(cron_runs.c.status == RunStatus.RUNNING, cron_runs.c.started_at < now - STALE_AFTER),
            ),
        )
        .values(status=RunStatus.RUNNING.value, started_at=now, finished_at=None)
        .returning(cron_runs.c.id)
    ).first()
    if taken is not None:
        on_commit(lambda: prom.cron_slot_claimed(task))
    return taken is not None


def finish_slot(
    conn: Connection, key: str, counts: Mapping[str, Any], now: datetime, status: RunStatus = RunStatus.DONE
) -> None:
    """Mark the slot row done (or failed) with its counts. The caller claimed it, so it finishes from
    running: IllegalTransition for a status that is not an end of a run. Not guarded by status in SQL:
    a unit whose work raised after its row was marked done is marked failed for the next attempt."""
    check_transition(RUN_TRANSITIONS, RunStatus.RUNNING, status)
    conn.execute(
        update(cron_runs)
        .where(cron_runs.c.slot_key == key)
        .values(status=RunStatus(status).value, counts=dict(counts), finished_at=now)
    )


def _settled_keys(conn: Connection, keys: list[str], now: datetime) -> set[str]:
    """Of `keys`, those whose work is done or under way (not failed, not stale)."""
    if not keys:
        return set()
    rows = conn.execute(
        select(cron_runs.c.slot_key).where(
            cron_runs.c.slot_key.in_(keys),
            or_(
                cron_runs.c.status == RunStatus.DONE,
                and_(cron_runs.c.status == RunStatus.RUNNING, cron_runs.c.started_at >= now - STALE_AFTER),
            ),
        )
    ).all()
    return {r[0] for r in rows}


def _fail_slot(key: str, err: BaseException) -> None:
    """Record a failed unit of work (its own transaction); the next attempt takes it over."""
    try:
        with transaction() as conn:
            finish_slot(conn, key, {"error": f"{type(err).__name__}: {err}"[:500]}, utcnow(), RunStatus.FAILED)
    except Exception:  # the database itself may be what failed
        log.exception("could not record the failure of cron slot %s", key)


# --------------------------------------------------------------------------- firing events


def _warn_once(user_id: uuid.UUID, problems: tuple[str, ...]) -> None:
    if problems and (user_id, problems) not in _warned:
        _warned.add((user_id, problems))
        log.warning("user %s: %s; using defaults", user_id, "; ".join(problems))


# --------------------------------------------------------------------------- morning brief


def _due_users_query(pairs: list[tuple[str, str, str]]) -> Any:
    """Users (with their org's zone) whose (zone, briefing time, org zone) is one of `pairs`."""
    u, o = User.__table__, Org.__table__
    return (
        select(u.c.id, u.c.org_id, u.c.name, u.c.timezone, u.c.briefing_time, o.c.timezone.label("org_tz"))
        .join(o, o.c.id == u.c.org_id)
        .where(
            o.c.enabled.is_(True),
            tuple_(
                func.coalesce(u.c.timezone, ""), func.coalesce(u.c.briefing_time, ""), func.coalesce(o.c.timezone, "")
            ).in_(pairs),
        )
    )


def _due_triples(conn: Connection, start: datetime, org_id: uuid.UUID | None = None) -> list[tuple[str, str, str]]:
    """The distinct (user zone, briefing time, org zone) settings whose briefing falls in the slot."""
    u, o = User.__table__, Org.__table__
    q = (
        select(func.coalesce(u.c.timezone, ""), func.coalesce(u.c.briefing_time, ""), func.coalesce(o.c.timezone, ""))
        .join(o, o.c.id == u.c.org_id)
        .where(o.c.enabled.is_(True))
        .distinct()
    )
    if org_id is not None:
        q = q.where(u.c.org_id == org_id)
    due = []
    for user_tz, hhmm, org_tz in conn.execute(q).all():
        sched = cs.user_schedule(user_tz or None, org_tz or None, hhmm or None)
        if cs.brief_day(sched.at, sched.tz, start, cs.MORNING_SLOT) is not None:
            due.append((user_tz, hhmm, org_tz))
    return due


def morning_brief_tick(now: datetime) -> dict[str, Any]:
    """Beat, every 15 min: for each slot of the last 2 h not yet handled, publish one task per org
    with reps due in it."""
    slots = cs.recent_slots(now, cs.MORNING_SLOT, cs.BRIEF_CATCH_UP)
    keys = {cs.slot_key("morning-brief", s): s for s in slots}
    published: dict[str, int] = {}
    with transaction() as conn:
        settled = _settled_keys(conn, list(keys), now)
    for key, start in keys.items():
        if key in settled:
            continue
        with transaction() as conn:
            if not claim_slot(conn, "morning-brief", key, now):
                continue
            triples = _due_triples(conn, start)
            orgs = sorted({r.org_id for r in conn.execute(_due_users_query(triples)).all()}) if triples else []
            finish_slot(conn, key, {"settings_due": len(triples), "orgs": len(orgs)}, now)
            slot_iso = start.isoformat()
            after_commit(_fan_out(morning_brief_org_task, orgs, slot_iso))
        published[key] = len(orgs)
    return {"slots": published}


def morning_brief_org(org_id: uuid.UUID, start: datetime, now: datetime) -> dict[str, Any]:
    """One org in one slot: a task per due rep, and the org's daily campaign check (Instantly)."""
    key = cs.slot_key("morning-brief", start, org_id)
    fired = Fired()
    with transaction() as conn:
        if not claim_slot(conn, "morning-brief", key, now, org_id):
            return {"skipped": "slot already handled"}
        triples = _due_triples(conn, start, org_id)
        users = conn.execute(_due_users_query(triples).where(User.org_id == org_id)).all() if triples else []
        org = conn.execute(select(Org.timezone).where(Org.id == org_id)).one()
        has_instantly = conn.execute(
            select(Integration.id)
            .where(
                Integration.org_id == org_id,
                Integration.provider == "instantly",
                Integration.status == IntegrationStatus.ACTIVE,
            )
            .limit(1)
        ).first()
        if users and has_instantly:
            day = cs.local_date(start, zone(org.timezone))
            fire_in(
                conn,
                [_event("campaign_daily_check", "cron:morning", org_id, None, {"date": day.isoformat()})],
                now,
                fired,
            )
        counts = {"users_due": len(users), "campaign_daily_check": fired.as_dict() if has_instantly and users else None}
        finish_slot(conn, key, counts, now)
        user_ids = [u.id for u in users]
        after_commit(_fan_out(morning_brief_user_task, user_ids, start.isoformat(), org_id=org_id))
    return counts


def morning_brief_user(org_id: uuid.UUID, user_id: uuid.UUID, start: datetime, now: datetime) -> dict[str, Any]:
    """One rep in one slot: the brief DM (once per local day; skipped when > 2 h late) and, on the
    rep's local Monday, `coaching_weekly` for the week that ended."""
    key = cs.slot_key("morning-brief", start, org_id, user_id)
    fired = Fired()
    with transaction() as conn:
        if not claim_slot(conn, "morning-brief", key, now, org_id):
            return {"skipped": "slot already handled"}
        user = conn.execute(
            select(User.id, User.name, User.timezone, User.briefing_time, Org.timezone.label("org_tz"))
            .join(Org, Org.id == User.org_id)
            .where(User.org_id == org_id, User.id == user_id)
        ).first()
        counts: dict[str, Any]
        if user is None:
            counts = {"brief": "skipped", "why": "user no longer exists"}
        else:
            counts = _brief_user(conn, org_id, user, start, now, fired)
        finish_slot(conn, key, counts, now)
    return counts


def _brief_user(
    conn: Connection, org_id: uuid.UUID, user: Any, start: datetime, now: datetime, fired: Fired
) -> dict[str, Any]:
    sched = cs.user_schedule(user.timezone, user.org_tz, user.briefing_time)
    _warn_once(user.id, sched.problems)
    counts: dict[str, Any] = {"warnings": list(sched.problems)} if sched.problems else {}
    day = cs.brief_day(sched.at, sched.tz, start, cs.MORNING_SLOT)
    if day is None:
        return {**counts, "brief": "skipped", "why": "briefing time changed: not due in this slot"}
    if cs.brief_late(cs.local_instant(day, sched.at, sched.tz), now):
        return {**counts, "brief": "skipped", "why": "more than 2 h late"}
    builder = registry.brief_builder()
    if builder is None:
        counts.update(brief="skipped", why="no morning-brief builder registered")
    else:
        message = builder(conn, org_id, user._mapping, now, sched.tz)
        queued = enqueue_message(
            conn,
            org_id,
            kind=BRIEF_KIND,
            message=message,
            dedupe_key=f"morning-brief:{user.id}:{day}",
            now=now,
            user_id=user.id,
        )
        counts.update(brief="queued" if queued else "duplicate", day=day.isoformat())
    if day.weekday() == cs.MONDAY:
        week = cs.iso_week(day - timedelta(days=7))
        fire_in(conn, [_event("coaching_weekly", "cron:weekly", org_id, user.id, {"week": week})], now, fired)
        counts["coaching_weekly"] = fired.as_dict()
    return counts


# --------------------------------------------------------------------------- meeting prep


def _prep_events_query(start: datetime) -> Any:
    lo, hi = cs.prep_window(start)
    return (
        select(CalendarEvent.id, CalendarEvent.org_id, CalendarEvent.user_id)
        .join(Org, Org.id == CalendarEvent.org_id)
        .where(
            CalendarEvent.start_at >= lo,
            CalendarEvent.start_at < hi,
            CalendarEvent.attendees_count > 1,
            Org.enabled.is_(True),
        )
    )


def meeting_prep_tick(now: datetime) -> dict[str, Any]:
    """Beat, every 30 min: one task per org with calendar events starting in 30-120 min."""
    start = cs.slot_start(now, cs.PREP_SLOT)
    key = cs.slot_key("meeting-prep", start)
    with transaction() as conn:
        if not claim_slot(conn, "meeting-prep", key, now):
            return {"skipped": "slot already handled"}
        sub = _prep_events_query(start).subquery()
        orgs = [r[0] for r in conn.execute(select(sub.c.org_id).distinct()).all()]
        finish_slot(conn, key, {"orgs": len(orgs)}, now)
        after_commit(_fan_out(meeting_prep_org_task, orgs, start.isoformat()))
    return {"orgs": len(orgs)}


def meeting_prep_org(org_id: uuid.UUID, start: datetime, now: datetime) -> dict[str, Any]:
    """One org: `pre_meeting_90min` per (calendar event, rep) in the window (key per pair)."""
    key = cs.slot_key("meeting-prep", start, org_id)
    fired = Fired()
    with transaction() as conn:
        if not claim_slot(conn, "meeting-prep", key, now, org_id):
            return {"skipped": "slot already handled"}
        rows = conn.execute(_prep_events_query(start).where(CalendarEvent.org_id == org_id)).all()
        events = [
            _event("pre_meeting_90min", "cron:meeting-prep", org_id, r.user_id, {"calendar_event_id": str(r.id)})
            for r in rows
        ]
        fire_in(conn, events, now, fired)
        counts = {"calendar_events": len(rows), **fired.as_dict()}
        finish_slot(conn, key, counts, now)
    return counts


# --------------------------------------------------------------------------- stale deals


def stale_deals_tick(now: datetime) -> dict[str, Any]:
    """Beat, hourly: one task per org whose local scan hour has come today and that has not been
    scanned this local day (a missed tick is caught up later the same day)."""
    due: dict[str, tuple[uuid.UUID, date]] = {}
    with transaction() as conn:
        for org in conn.execute(select(Org.id, Org.timezone, Org.settings).where(Org.enabled.is_(True))).all():
            hour, _problem = cs.scan_hour((org.settings or {}).get("stale_deals_hour"))  # kept by the org's scan
            day = cs.stale_scan_day(now, zone(org.timezone), hour)
            if day is not None:
                due[_stale_key(org.id, day)] = (org.id, day)
        settled = _settled_keys(conn, list(due), now)
    todo = [v for k, v in due.items() if k not in settled]
    after_commit(_message(stale_deals_org_task, (str(org_id), day.isoformat())) for org_id, day in todo)
    return {"orgs_due": len(due), "published": len(todo)}


def _stale_key(org_id: uuid.UUID, day: date) -> str:
    return f"stale-deals:{day.isoformat()}:{org_id}"


def stale_deals_org(org_id: uuid.UUID, day: date, now: datetime) -> dict[str, Any]:
    """One org, one local day: `stale_deal_revival` per stale deal and one `deal_risk_scan`."""
    key = _stale_key(org_id, day)
    fired = Fired()
    with transaction() as conn:
        if not claim_slot(conn, "stale-deals", key, now, org_id):
            return {"skipped": "slot already handled"}
        org = conn.execute(select(Org.settings, Org.timezone).where(Org.id == org_id)).one()
        settings = org.settings or {}
        days, problem = cs.days_inactive(settings.get("days_inactive"))
        problems = [p for p in (problem, cs.scan_hour(settings.get("stale_deals_hour"))[1]) if p]
        if org.timezone and cs.parse_zone(org.timezone) is None:
            problems.append(f"invalid org time zone {str(org.timezone)[:64]!r}: UTC used")
        cutoff = now - timedelta(days=days)
        deals = conn.execute(
            select(Deal.id, Deal.owner_id).where(
                Deal.org_id == org_id,
                Deal.stage.not_in(CLOSED_STAGES),
                Deal.owner_id.is_not(None),
                func.coalesce(Deal.last_activity_at, Deal.created_at) < cutoff,
            )
        ).all()
        events = [_event("stale_deal_revival", "cron:daily", org_id, d.owner_id, {"deal_id": str(d.id)}) for d in deals]
        events.append(_event("deal_risk_scan", "cron:daily", org_id, None, {"date": day.isoformat()}))
        fire_in(conn, events, now, fired)
        counts: dict[str, Any] = {"days_inactive": days, "stale_deals": len(deals), **fired.as_dict()}
        if problems:
            counts["warnings"] = problems
        finish_slot(conn, key, counts, now)
    return counts


# --------------------------------------------------------------------------- Gmail watch renewal


def gmail_watch_tick(now: datetime) -> dict[str, Any]:
    """Beat, daily: one task per active Google integration whose watch expires within 24 h (or has
    expired, or was never set up)."""
    key = f"gmail-watch:{now.date().isoformat()}"
    with transaction() as conn:
        if not claim_slot(conn, "gmail-watch", key, now):
            return {"skipped": "slot already handled"}
        rows = gmail_watch.due(conn, now)
        finish_slot(conn, key, {"due": len(rows)}, now)
        pairs = [(str(r.org_id), str(r.id)) for r in rows]
        after_commit(_message(gmail_watch_one_task, p) for p in pairs)
    return {"due": len(pairs)}


def gmail_watch_one(org_id: uuid.UUID, integration_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """Renew one integration's watch (once per UTC day when it works). A failure worth retrying leaves
    the day's slot `failed` with the count of failures and `retry_in_s`, the delay before the next
    try (the task schedules it; None after the last try of the day); the user is told once, after
    gmail_watch.TELL_AFTER failures."""
    key = f"gmail-watch:{now.date().isoformat()}:{integration_id}"
    with transaction() as conn:
        if not claim_slot(conn, "gmail-watch", key, now, org_id):
            return {"skipped": "slot already handled"}
        before = conn.execute(select(cron_runs.c.counts).where(cron_runs.c.slot_key == key)).scalar() or {}
    result = gmail_watch.renew_one(org_id, integration_id, now)
    counts: dict[str, Any] = {
        "ok": result.ok,
        "error": result.error,
        "expires": result.new_expiry.isoformat() if result.new_expiry else None,
    }
    with transaction() as conn:
        if result.ok or not result.retry:
            finish_slot(conn, key, counts, now)
            return counts
        failures = int(before.get("failures") or 0) + 1
        counts.update(failures=failures, retry_in_s=gmail_watch.retry_delay_s(failures))
        if failures == gmail_watch.TELL_AFTER:
            counts["told_user"] = gmail_watch.tell_user(conn, result, failures, now)
        finish_slot(conn, key, counts, now, status=RunStatus.FAILED)  # the retry takes the row over
    return counts


# --------------------------------------------------------------------------- tasks (thin)


def _event(
    type_: str, source: str, org_id: uuid.UUID, user_id: uuid.UUID | None, payload: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": type_,
        "source": source,
        "org_id": str(org_id),
        "user_id": str(user_id) if user_id else None,
        "payload": payload,
    }


def _message(task: Any, args: tuple[Any, ...], countdown_s: float | None = None) -> Message:
    """A cron task's message (routed by its name, celery_app's task_routes); a refused publish raises
    (`must_send`), so the tick that fans out fails and its retry publishes again."""
    return Message(task.name, args, countdown_s=countdown_s, must_send=True)


def _fan_out(task: Any, ids: Iterable[Any], slot_iso: str, *, org_id: uuid.UUID | None = None) -> list[Message]:
    """One message of `task` per org or rep id, for the slot starting at `slot_iso`."""
    return [
        _message(task, (str(org_id), str(item), slot_iso) if org_id is not None else (str(item), slot_iso))
        for item in ids
    ]


def _run(key_of: Any, body: Any) -> Any:
    """Run a fan-out body; on an error, mark its slot failed (taken over by the retry) and re-raise."""
    try:
        return body()
    except Exception as err:
        _fail_slot(key_of(), err)
        raise


RETRY = {"autoretry_for": (Exception,), "retry_backoff": 5, "retry_backoff_max": 300, "max_retries": 5}
TASK = {"acks_late": True, "ignore_result": True}


@celery_app.task(name="proactive.cron.morning_brief", **TASK)
def morning_brief_task() -> dict[str, Any]:
    """Beat entry (every 15 min)."""
    return morning_brief_tick(cron_now())


@celery_app.task(name="proactive.cron.morning_brief_org", **TASK, **RETRY)
def morning_brief_org_task(org_id: str, slot: str) -> dict[str, Any]:
    """One org in one morning-brief slot."""
    start, org = datetime.fromisoformat(slot), uuid.UUID(org_id)
    return _run(lambda: cs.slot_key("morning-brief", start, org), lambda: morning_brief_org(org, start, cron_now()))


@celery_app.task(name="proactive.cron.morning_brief_user", **TASK, **RETRY)
def morning_brief_user_task(org_id: str, user_id: str, slot: str) -> dict[str, Any]:
    """One rep in one morning-brief slot."""
    start, org, user = datetime.fromisoformat(slot), uuid.UUID(org_id), uuid.UUID(user_id)
    return _run(
        lambda: cs.slot_key("morning-brief", start, org, user), lambda: morning_brief_user(org, user, start, cron_now())
    )


@celery_app.task(name="proactive.cron.meeting_prep", **TASK)
def meeting_prep_task() -> dict[str, Any]:
    """Beat entry (every 30 min)."""
    return meeting_prep_tick(cron_now())


@celery_app.task(name="proactive.cron.meeting_prep_org", **TASK, **RETRY)
def meeting_prep_org_task(org_id: str, slot: str) -> dict[str, Any]:
    """One org in one meeting-prep slot."""
    start, org = datetime.fromisoformat(slot), uuid.UUID(org_id)
    return _run(lambda: cs.slot_key("meeting-prep", start, org), lambda: meeting_prep_org(org, start, cron_now()))


@celery_app.task(name="proactive.cron.stale_deals", **TASK)
def stale_deals_task() -> dict[str, Any]:
    """Beat entry (hourly)."""
    return stale_deals_tick(cron_now())


@celery_app.task(name="proactive.cron.stale_deals_org", **TASK, **RETRY)
def stale_deals_org_task(org_id: str, day: str) -> dict[str, Any]:
    """One org's stale-deal scan for one local day."""
    org, local_day = uuid.UUID(org_id), date.fromisoformat(day)
    return _run(lambda: _stale_key(org, local_day), lambda: stale_deals_org(org, local_day, cron_now()))


@celery_app.task(name="proactive.cron.gmail_watch", **TASK)
def gmail_watch_task() -> dict[str, Any]:
    """Beat entry (daily)."""
    return gmail_watch_tick(cron_now())


@celery_app.task(name="proactive.cron.gmail_watch_one", **TASK, **RETRY)
def gmail_watch_one_task(org_id: str, integration_id: str) -> dict[str, Any]:
    """One integration's watch renewal."""
    now = cron_now()
    org, integration = uuid.UUID(org_id), uuid.UUID(integration_id)
    counts = _run(
        lambda: f"gmail-watch:{now.date().isoformat()}:{integration}", lambda: gmail_watch_one(org, integration, now)
    )
    if counts.get("retry_in_s"):  # a failed renewal: try again later today (backoff)
        after_commit([_message(gmail_watch_one_task, (org_id, integration_id), countdown_s=counts["retry_in_s"])])
    return counts


def cron_warnings(
    conn: Connection, org_id: uuid.UUID | None = None, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Settings problems the crons met (unreadable zone, briefing time, scan hour...), newest first:
    what `proactive jobs --status skipped` shows under the jobs."""
    since = since or utcnow() - timedelta(days=7)
    q = select(cron_runs.c.org_id, cron_runs.c.slot_key, cron_runs.c.counts, cron_runs.c.finished_at).where(
        cron_runs.c.finished_at >= since
    )
    if org_id is not None:
        q = q.where(cron_runs.c.org_id == org_id)
    latest: dict[str, dict[str, Any]] = {}
    for row in conn.execute(q.order_by(cron_runs.c.finished_at.desc()).limit(5000)).all():
        warnings = (row.counts or {}).get("warnings")
        if not warnings:
            continue
        subject = row.slot_key.rsplit(":", 1)[-1]
        latest.setdefault(
            subject,
            {
                "subject": subject,
                "org_id": str(row.org_id),
                "warnings": warnings,
                "at": row.finished_at.replace(tzinfo=UTC).isoformat()
                if row.finished_at.tzinfo is None
                else row.finished_at.isoformat(),
            },
        )
    return list(latest.values())
