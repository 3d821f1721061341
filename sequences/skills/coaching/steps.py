"""coaching_weekly steps: the rep's week in numbers, what won and lost deals looked like, the digest."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

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


class Weekly(BaseModel):
    week: str
    timezone: str
    metrics: WeeklyMetrics
    previous: WeeklyMetrics | None


class Delivered(BaseModel):
    outbox_id: str | None
    report_id: str


def _stats(meetings: list[Meeting], reps: set[str]) -> list[MeetingStats]:
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
    with ctx.session() as session:
        meetings = list(
            session.execute(
                select(Meeting).where(
                    Meeting.org_id == ctx.org_id,
                    Meeting.user_id == user.id,
                    Meeting.start_at >= start,
                    Meeting.start_at < end,
                )
            ).scalars()
        )
        previous_report = session.execute(
            select(CoachingReport.metrics).where(
                CoachingReport.org_id == ctx.org_id,
                CoachingReport.user_id == user.id,
                CoachingReport.week == previous_iso_week(start + timedelta(days=1), tz),
            )
        ).scalar()
    metrics = aggregate_week(_stats(meetings, common.internal_names(ctx)), week, tz)
    previous = WeeklyMetrics.model_validate(previous_report) if previous_report else None
    return Weekly(week=week, timezone=tz.key, metrics=metrics, previous=previous)


def correlate_win_loss_step(ctx: StepContext, inputs: Mapping[str, Any]) -> WinLoss:
    """Deals the rep won and lost in the last 90 days against the stats of their meetings."""
    user = common.rep(ctx)
    since = ctx.now - timedelta(days=WIN_LOSS_WINDOW_D)
    with ctx.session() as session:
        deals = list(
            session.execute(
                select(Deal).where(
                    Deal.org_id == ctx.org_id,
                    Deal.owner_id == user.id,
                    Deal.stage.in_(["closed_won", "closed_lost"]),
                    Deal.stage_changed_at >= since,
                )
            ).scalars()
        )
        meetings = (
            list(
                session.execute(
                    select(Meeting).where(Meeting.org_id == ctx.org_id, Meeting.deal_id.in_([d.id for d in deals]))
                ).scalars()
            )
            if deals
            else []
        )
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
        weekly.model_dump_json() + (win_loss.model_dump_json() if win_loss else ""),
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
    with ctx.session() as session:
        report_id = session.execute(
            select(CoachingReport.id).where(
                CoachingReport.org_id == ctx.org_id,
                CoachingReport.user_id == ctx.user_id,
                CoachingReport.week == weekly.week,
            )
        ).scalar()
    outbox_id = common.notify(ctx, "coaching_digest", blocks.coaching_digest(digest), user_id=ctx.user_id)
    return Delivered(outbox_id=str(outbox_id) if outbox_id else None, report_id=str(report_id))
