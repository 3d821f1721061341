"""coaching_weekly steps: the rep's week in numbers, what won and lost deals looked like, the digest."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Row, Uuid, bindparam, or_, select

import blocks
from sequences.skills import common
from sequences.skills.coaching.rules import (
    CoachingDigest,
    DealOutcome,
    MeetingStats,
    WeeklyMetrics,
    WinLoss,
    aggregate_week,
    coaching_digest,
    correlate_win_loss,
    iso_week_bounds,
    previous_iso_week,
)
from sequences.skills.meetings.call_coaching import coaching_stats
from sequences.skills.meetings.call_types import classify_call_type
from sequences.skills.meetings.transcript import parse_transcript
from worker.engine.context import StepContext, StepResult
from worker.engine.jobstore import insert_ignoring_conflicts
from worker.models import CoachingReport, Deal, Meeting

# Closed deals looked at for the win/loss comparison (days).
WIN_LOSS_WINDOW_D = 90

# Statements built once (bind parameters b_*).
_ORG, _USER = bindparam("b_org", type_=Uuid()), bindparam("b_user", type_=Uuid())
_MEETING = select(
    Meeting.id,
    Meeting.title,
    Meeting.transcript,
    Meeting.call_type,
    Meeting.call_type_confidence,
    Meeting.start_at,
    Meeting.deal_id,
)
_MEETINGS_OF_WEEK = _MEETING.where(
    Meeting.org_id == _ORG,
    Meeting.user_id == _USER,
    Meeting.start_at >= bindparam("b_start", type_=Meeting.start_at.type),
    Meeting.start_at < bindparam("b_end", type_=Meeting.start_at.type),
)
_MEETINGS_OF_DEALS = _MEETING.where(Meeting.org_id == _ORG, Meeting.deal_id.in_(bindparam("b_deals", expanding=True)))
_CLOSED_DEALS = select(Deal.id, Deal.stage).where(
    Deal.org_id == _ORG,
    Deal.owner_id == _USER,
    or_(Deal.stage == "closed_won", Deal.stage == "closed_lost"),  # not IN, whose list is rendered at each run
    Deal.stage_changed_at >= bindparam("b_since", type_=Deal.stage_changed_at.type),
)
_REPORT = (CoachingReport.org_id == _ORG, CoachingReport.user_id == _USER, CoachingReport.week == bindparam("b_week"))
_REPORT_METRICS = select(CoachingReport.metrics).where(*_REPORT)
_REPORT_ID = select(CoachingReport.id).where(*_REPORT)


class Weekly(BaseModel):
    week: str
    timezone: str
    metrics: WeeklyMetrics
    previous: WeeklyMetrics | None


class Delivered(BaseModel):
    outbox_id: str | None
    report_id: str


def _stats(meetings: list[Row[Any]], reps: set[str]) -> list[MeetingStats]:
    out = []
    for m in meetings:
        transcript = parse_transcript(m.transcript)
        if transcript.is_empty:
            continue
        stats = coaching_stats(transcript, reps)
        call = classify_call_type(m.title, transcript, m.call_type, m.call_type_confidence)
        out.append(
            MeetingStats(
                meeting_id=str(m.id),
                start=m.start_at,
                talk_ratio=stats.talk_ratio,
                question_count=stats.question_count,
                longest_monologue_s=stats.longest_monologue_s,
                next_step_clarity=stats.next_step_clarity,
                is_sales=call.is_sales,
                deal_id=str(m.deal_id) if m.deal_id else None,
                call_minutes=stats.call_minutes,
            )
        )
    return out


def aggregate_weekly_metrics(ctx: StepContext, inputs: Mapping[str, Any]) -> Weekly:
    """Meetings, talk ratio, questions and next-step clarity of the rep's week (ISO week in their zone)."""
    user = common.rep(ctx)
    tz = common.rep_zone(ctx, user)
    week = ctx.payload.get("week") or previous_iso_week(ctx.now, tz)
    start, end = iso_week_bounds(week, tz)
    meetings = common.rows(ctx, _MEETINGS_OF_WEEK, b_org=ctx.org_id, b_user=user.id, b_start=start, b_end=end)
    previous_report = common.first(
        ctx, _REPORT_METRICS, b_org=ctx.org_id, b_user=user.id, b_week=previous_iso_week(start + timedelta(days=1), tz)
    )
    previous_report = previous_report.metrics if previous_report else None
    metrics = aggregate_week(_stats(meetings, common.internal_names(ctx)), week, tz)
    previous = WeeklyMetrics.model_validate(previous_report) if previous_report else None
    return Weekly(week=week, timezone=tz.key, metrics=metrics, previous=previous)


def correlate_win_loss_step(ctx: StepContext, inputs: Mapping[str, Any]) -> WinLoss:
    """Deals the rep won and lost in the last 90 days against the stats of their meetings."""
    user = common.rep(ctx)
    since = ctx.now - timedelta(days=WIN_LOSS_WINDOW_D)
    deals = common.rows(ctx, _CLOSED_DEALS, b_org=ctx.org_id, b_user=user.id, b_since=since)
    meetings = common.rows(ctx, _MEETINGS_OF_DEALS, b_org=ctx.org_id, b_deals=[d.id for d in deals]) if deals else []
    stats = _stats(meetings, common.internal_names(ctx))
    return correlate_win_loss(
        [
            DealOutcome(deal_id=str(d.id), outcome=d.stage, meetings=[s for s in stats if s.deal_id == str(d.id)])
            for d in deals
        ]
    )


def generate_digest(ctx: StepContext, inputs: Mapping[str, Any]) -> StepResult:
    """Highlights and suggestions with deltas vs last week (LLM when configured); stored per week."""
    weekly = Weekly.model_validate(inputs["aggregate-weekly-metrics"])
    win_loss = WinLoss.model_validate(inputs["correlate-win-loss"]) if inputs.get("correlate-win-loss") else None
    user = common.rep(ctx)
    answer = common.think(
        ctx,
        CoachingDigest,
        "You are a sales coach. Answer with JSON matching the CoachingDigest schema.",
        lambda: weekly.model_dump_json() + (win_loss.model_dump_json() if win_loss else ""),
        lambda: coaching_digest(user.name, weekly.metrics, weekly.previous, win_loss),
    )
    digest = CoachingDigest.model_validate(answer.output)
    with ctx.transaction() as conn:
        conn.execute(
            insert_ignoring_conflicts(conn, CoachingReport.__table__, ["org_id", "user_id", "week"]).values(
                id=uuid.uuid4(),
                org_id=ctx.org_id,
                user_id=user.id,
                week=weekly.week,
                metrics=weekly.metrics.model_dump(mode="json"),
                digest=digest.text,
                job_id=ctx.job_id,
                created_at=ctx.now,
            )
        )
    return answer


def deliver_coaching_slack(ctx: StepContext, inputs: Mapping[str, Any]) -> Delivered:
    """DM the digest to the rep."""
    digest = inputs["generate-coaching-digest"]
    weekly = Weekly.model_validate(inputs["aggregate-weekly-metrics"])
    report = common.first(ctx, _REPORT_ID, b_org=ctx.org_id, b_user=ctx.user_id, b_week=weekly.week)
    report_id = report.id if report else None
    outbox_id = common.notify(ctx, "coaching_digest", blocks.coaching_digest(digest), user_id=ctx.user_id)
    return Delivered(outbox_id=str(outbox_id) if outbox_id else None, report_id=str(report_id))
