"""The morning brief's content (README.md#crons): the rep's day loaded from the database, then the pure rule
(`briefing_rules.morning_brief`) and the Block Kit builder (`blocks.morning_brief`).

Registered with `worker.engine.registry.register_brief`; the morning-brief cron (worker/crons/tasks.py) calls it
for each rep whose briefing time falls in the current slot and posts the message it returns.
Every query is scoped by the org and the rep.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, exists, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

import blocks
from sequences.skills.briefing.rules import BriefApproval, BriefMeeting, BriefRisk, BriefTask, morning_brief
from sequences.skills.deals.risk_rules import MEDIUM_THRESHOLD, OPEN_STAGES
from worker.engine.registry import register_brief
from worker.models import Approval, CalendarEvent, Deal, DealRiskScore, Task

RISK_FRESH = timedelta(days=7)  # a risk score older than this is not shown
PENDING_APPROVALS_MAX = 500  # the rep's pending approvals shown at most (oldest first)


def approver_is(conn: Connection, user_id: uuid.UUID) -> ColumnElement[bool]:
    """SQL: `user_id` is one of the approval's approvers (a JSON array of id strings): JSONB containment
    on PostgreSQL, json_each elsewhere (SQLite)."""
    uid = str(user_id)
    if conn.dialect.name == "postgresql":
        return type_coerce(Approval.approver_user_ids, JSONB).contains([uid])
    each = func.json_each(Approval.approver_user_ids).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == uid))


def _day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    day = now.astimezone(tz).date()
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start, end


def morning_brief_message(
    conn: Connection, org_id: uuid.UUID, user: Mapping[str, Any], now: datetime, tz: ZoneInfo
) -> dict[str, Any]:
    """The rep's morning DM: today's meetings, tasks due (overdue included), open deals at medium or
    high risk, approvals waiting for them."""
    user_id = user["id"]
    start, end = _day_bounds(now, tz)
    meetings = conn.execute(
        select(CalendarEvent.title, CalendarEvent.start_at, CalendarEvent.attendees_count).where(
            CalendarEvent.org_id == org_id,
            CalendarEvent.user_id == user_id,
            CalendarEvent.start_at >= start,
            CalendarEvent.start_at < end,
        )
    ).all()
    tasks = conn.execute(
        select(Task.title, Task.due_at).where(
            Task.org_id == org_id, Task.user_id == user_id, Task.status == "open", Task.due_at < end
        )
    ).all()
    scores = conn.execute(
        select(Deal.id, Deal.name, DealRiskScore.score, DealRiskScore.level, DealRiskScore.scored_at)
        .join(DealRiskScore, (DealRiskScore.deal_id == Deal.id) & (DealRiskScore.org_id == org_id))
        .where(
            Deal.org_id == org_id,
            Deal.owner_id == user_id,
            Deal.stage.in_(sorted(OPEN_STAGES)),
            DealRiskScore.scored_at >= now - RISK_FRESH,
        )
    ).all()
    newest: dict[uuid.UUID, Any] = {}
    for row in scores:
        if row.id not in newest or row.scored_at > newest[row.id].scored_at:
            newest[row.id] = row
    mine = conn.execute(  # the rep's own first, then the limit: a busy org must not hide them
        select(Approval.kind, Approval.preview, Approval.created_at)
        .where(Approval.org_id == org_id, Approval.status == "pending", approver_is(conn, user_id))
        .order_by(Approval.created_at)
        .limit(PENDING_APPROVALS_MAX)
    ).all()
    brief = morning_brief(
        str(user.get("name") or ""),
        now,
        tz,
        [BriefMeeting(title=m.title, start=m.start_at, attendees_count=m.attendees_count or 0) for m in meetings],
        [BriefTask(title=t.title, due=t.due_at) for t in tasks],
        [BriefRisk(name=r.name, score=r.score, level=r.level) for r in newest.values() if r.score >= MEDIUM_THRESHOLD],
        [
            BriefApproval(kind=a.kind, title=str((a.preview or {}).get("title") or "") or None, created_at=a.created_at)
            for a in mine
        ],
    )
    return blocks.morning_brief(brief.model_dump(mode="json"))


register_brief(morning_brief_message)
