"""stale_deal_revival steps: look for a reason to reach out, score the stall, draft, send on approval."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from sequences.skills import common, outbound
from sequences.skills.deals.stall_rules import (
    REENGAGE_THRESHOLD,
    EmailDraft,
    StallAnalysis,
    StallFacts,
    draft_reengagement,
    stall_score,
)
from worker.engine.context import StepContext, StepResult
from worker.errors import SkipStep
from worker.models import Company, Contact, Deal, User

# How far back trigger events are looked for (days).
TRIGGER_LOOKBACK_D = 60
_SIGNAL_WORDS = (
    ("job_change", re.compile(r"\b(new role|joined|job change|promoted|left the company|moved to)\b", re.I)),
    ("champion_left", re.compile(r"\b(champion left|no longer with|has left)\b", re.I)),
    ("news", re.compile(r"\b(news|announced|funding|raised|acquired|launch(ed)?|press release)\b", re.I)),
    ("competitor_mentioned", re.compile(r"\b(competitor|evaluating|alternative)\b", re.I)),
    ("budget_frozen", re.compile(r"\b(budget freeze|frozen budget|hiring freeze)\b", re.I)),
)


class Triggers(BaseModel):
    trigger_events: list[str]
    signals: list[str]


class Stall(BaseModel):
    analysis: StallAnalysis
    days_silent: int
    deal_name: str
    company: str | None


class Reengagement(BaseModel):
    title: str
    to: str | None
    subject: str
    body: str
    deal_name: str
    company: str | None
    days_silent: int
    stall_score: int
    stall_reasons: list[str]
    trigger_events: list[str]
    deal_id: str
    timezone: str
    approver_user_ids: list[str]


class Sent(BaseModel):
    sent_to: str
    result: dict[str, Any]


def _deal(ctx: StepContext) -> Deal:
    return common.load(ctx, Deal, ctx.payload.get("deal_id"), "deal")


def research_trigger_events(ctx: StepContext, inputs: Mapping[str, Any]) -> Triggers:
    """New activity, job changes and news recorded for this deal's contact and company."""
    deal = _deal(ctx)
    since = ctx.now - timedelta(days=TRIGGER_LOOKBACK_D)
    contacts = [deal.primary_contact_id] if deal.primary_contact_id else []
    events: list[str] = []
    signals: list[str] = []
    if contacts or deal.company_id:
        rows = common.recent_activities(ctx, since=since, limit=50, contact_ids=contacts, company_id=deal.company_id)
        silent_since = deal.last_activity_at or deal.created_at
        for a in rows:
            text = f"{a.subject or ''} {a.body or ''}"
            if a.direction == "inbound" and a.occurred_at > silent_since:
                events.append(f'{a.occurred_at:%d %b}: they wrote "{a.subject}"')
                signals.append("new_activity")
            for signal, pattern in _SIGNAL_WORDS:
                if pattern.search(text):
                    signals.append(signal)
                    if a.kind == "note":
                        events.append(f"{a.occurred_at:%d %b}: {a.subject}")
    company = common.load_optional(ctx, Company, deal.company_id)
    for line in (company.notes or "").splitlines() if company else []:
        for signal, pattern in _SIGNAL_WORDS:
            if pattern.search(line):
                signals.append(signal)
                events.append(line.strip())
    return Triggers(trigger_events=common.unique(events)[:10], signals=common.unique(signals))


def analyse_stall_reason(ctx: StepContext, inputs: Mapping[str, Any]) -> Stall:
    """Score the stall 0-100 from silence, stage age, lost reason and signals."""
    deal = _deal(ctx)
    triggers = Triggers.model_validate(inputs.get("research-trigger-events") or {"trigger_events": [], "signals": []})
    silent_since = deal.last_activity_at or deal.created_at
    in_stage_since = deal.stage_changed_at or deal.created_at
    facts = StallFacts(
        days_silent=max(0, (ctx.now - silent_since).days),
        stage=deal.stage,
        days_in_stage=max(0, (ctx.now - in_stage_since).days),
        lost_reason=deal.lost_reason,
        signals=triggers.signals,
        value=deal.value,
    )
    company = common.load_optional(ctx, Company, deal.company_id)
    return Stall(
        analysis=stall_score(facts),
        days_silent=facts.days_silent,
        deal_name=deal.name,
        company=company.name if company else None,
    )


def worth_reengaging(w: Any) -> bool:
    """`when` of draft-reengagement: only stalls scoring at least REENGAGE_THRESHOLD."""
    return (w.output("analyse-stall-reason", "analysis") or {}).get("score", 0) >= REENGAGE_THRESHOLD


def draft_reengagement_email(ctx: StepContext, inputs: Mapping[str, Any]) -> StepResult:
    """The re-engagement email to the deal's contact (LLM when configured, else the offline draft)."""
    stall = Stall.model_validate(inputs["analyse-stall-reason"])
    triggers = inputs.get("research-trigger-events") or {}
    deal = _deal(ctx)
    contact = common.load(
        ctx, Contact, common.require(deal.primary_contact_id, f"deal {deal.name!r} has no contact"), "contact"
    )
    if contact.status == "unsubscribed":
        raise SkipStep("contact_unsubscribed")  # never email someone who asked us to stop
    if contact.status == "out_of_office" and contact.status_until and contact.status_until > ctx.now:
        raise SkipStep("contact_out_of_office")
    owner = common.load_optional(ctx, User, deal.owner_id or ctx.user_id)
    events = triggers.get("trigger_events") or []
    return common.think(
        ctx,
        EmailDraft,
        "You write short, warm B2B re-engagement emails. Answer with JSON {subject, body}.",
        lambda: (
            f"Deal: {deal.name}. Contact: {contact.name}. Stall analysis: {stall.analysis.model_dump_json()}. "
            f"Trigger events: {events}"
        ),
        lambda: draft_reengagement(deal.name, contact.name, owner.name if owner else None, stall.analysis, events),
    )


def review_reengagement(ctx: StepContext, inputs: Mapping[str, Any]) -> Reengagement:
    """The approval preview (email_preview with the stall context)."""
    stall = Stall.model_validate(inputs["analyse-stall-reason"])
    draft = EmailDraft.model_validate(inputs["draft-reengagement"])
    deal = _deal(ctx)
    contact = common.load_optional(ctx, Contact, deal.primary_contact_id)
    owner = common.load_optional(ctx, User, deal.owner_id or ctx.user_id)
    approvers = common.unique(str(u) for u in (deal.owner_id, ctx.user_id) if u)  # the owner first: they get the DM
    return Reengagement(
        title=f"Re-engagement email for {stall.deal_name}",
        to=contact.email if contact else None,
        subject=draft.subject,
        body=draft.body,
        deal_name=stall.deal_name,
        company=stall.company,
        days_silent=stall.days_silent,
        stall_score=stall.analysis.score,
        stall_reasons=stall.analysis.reasons,
        trigger_events=(inputs.get("research-trigger-events") or {}).get("trigger_events", []),
        deal_id=str(deal.id),
        timezone=common.rep_zone(ctx, owner).key,
        approver_user_ids=approvers,
    )


def send_reengagement(ctx: StepContext, inputs: Mapping[str, Any]) -> Sent:
    """Send the approved (maybe edited) email as the deal owner and log it on the deal."""
    review = inputs["review-reengagement"]
    preview = review.get("preview") or {}
    to = common.require(preview.get("to"), "cannot send: the deal's contact has no email address")
    deal = _deal(ctx)
    owner = common.rep(ctx, deal.owner_id or ctx.user_id)
    subject = common.edited(review, "subject", preview.get("subject"))
    body = common.edited(review, "body", preview.get("body"))
    result = outbound.send_email(ctx, owner, [to], subject, body)
    outbound.record_activity(
        ctx, kind="email", subject=subject, body=body, deal_id=deal.id, contact_id=deal.primary_contact_id
    )
    return Sent(sent_to=to, result=result)
