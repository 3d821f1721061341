"""pre_meeting_90min steps: who is coming, what happened with them, what is new, then the briefing DM."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Uuid, bindparam, func, select

import blocks
from sequences.skills import common
from sequences.skills.briefing.rules import (
    AttendeeInfo,
    Briefing,
    CompanyInfo,
    DealInfo,
    HistoryItem,
    briefing,
    should_deliver_now,
)
from sequences.skills.email.addresses import domain_of, is_free_mail
from worker.engine.context import StepContext, StepResult
from worker.models import Activity, CalendarEvent, Company, Contact, Deal, DealRiskScore, Task

# How far back the CRM history and the "news" reach (days).
HISTORY_D = 180
NEWS_D = 30
# A briefing for a meeting starting within this long is delivered even in quiet hours.
ALWAYS_DELIVER_H = 2

# Statements built once (bind parameters b_*).
_ID, _ORG = bindparam("b_id", type_=Uuid()), bindparam("b_org", type_=Uuid())
_CONTACTS_BY_EMAIL = select(Contact.id, Contact.email, Contact.name, Contact.title, Contact.company_id).where(
    Contact.org_id == _ORG,
    func.lower(Contact.email, type_=Contact.email.type).in_(bindparam("b_emails", expanding=True)),
)
_COMPANY = select(Company.id, Company.name, Company.domain, Company.industry, Company.employees, Company.notes)
_COMPANY_BY_IDS = _COMPANY.where(Company.org_id == _ORG, Company.id.in_(bindparam("b_ids", expanding=True))).limit(1)
_COMPANY_BY_DOMAINS = _COMPANY.where(
    Company.org_id == _ORG, Company.domain.in_(bindparam("b_domains", expanding=True))
).limit(1)
_OPEN_DEAL_OF_COMPANY = (
    select(Deal)
    .where(Deal.org_id == _ORG, Deal.company_id == _ID, Deal.stage.not_in(["closed_won", "closed_lost"]))
    .order_by(Deal.value.desc())
    .limit(1)
)
_LATEST_RISK = (
    select(DealRiskScore.score, DealRiskScore.level, DealRiskScore.factors)
    .where(DealRiskScore.org_id == _ORG, DealRiskScore.deal_id == _ID)
    .order_by(DealRiskScore.scored_at.desc())
    .limit(1)
)
_OPEN_TASK_TITLES = select(Task.title).where(Task.org_id == _ORG, Task.status == "open", Task.deal_id == _ID)
_RECENT_NOTES = select(Activity.subject).where(
    Activity.org_id == _ORG,
    Activity.company_id == _ID,
    Activity.kind == "note",
    Activity.occurred_at >= bindparam("b_since", type_=Activity.occurred_at.type),
)


class Enriched(BaseModel):
    attendees: list[AttendeeInfo]
    contact_ids: list[str]
    company: CompanyInfo | None
    company_id: str | None


class CrmHistory(BaseModel):
    history: list[HistoryItem]
    deal: DealInfo | None
    deal_id: str | None
    open_tasks: list[str]


class News(BaseModel):
    news: list[str]


class BriefingDelivered(BaseModel):
    outbox_id: str | None
    urgent: bool


def _event(ctx: StepContext, *, with_org_users: bool = False) -> CalendarEvent:
    """The event's calendar event (with the org's users in the same read when the step needs them)."""
    return common.load(
        ctx, CalendarEvent, ctx.payload.get("calendar_event_id"), "calendar event", with_org_users=with_org_users
    )


def _enriched(inputs: Mapping[str, Any]) -> Enriched:
    """enrich-attendees' output, or nobody known when that best-effort step failed (its output is absent)."""
    return Enriched.model_validate(
        inputs.get("enrich-attendees") or {"attendees": [], "contact_ids": [], "company": None, "company_id": None}
    )


def enrich_attendees(ctx: StepContext, inputs: Mapping[str, Any]) -> Enriched:
    """Match the event's attendees to the org's contacts (by email) and their company (by domain)."""
    event = _event(ctx, with_org_users=True)
    people = [a for a in event.attendees or [] if isinstance(a, Mapping)]
    emails = [str(a.get("email", "")).lower() for a in people if a.get("email")]
    contacts = {c.email.lower(): c for c in common.rows(ctx, _CONTACTS_BY_EMAIL, b_org=ctx.org_id, b_emails=emails)}
    internal = common.internal_emails(ctx)
    company_ids = {c.company_id for c in contacts.values() if c.company_id}
    domains = {d for d in (domain_of(e) for e in emails if e not in internal) if d and not is_free_mail(d)}
    company = None
    if company_ids:
        company = common.first(ctx, _COMPANY_BY_IDS, b_org=ctx.org_id, b_ids=sorted(company_ids))
    elif domains:
        company = common.first(ctx, _COMPANY_BY_DOMAINS, b_org=ctx.org_id, b_domains=sorted(domains))
    names = {}
    if company is not None:
        names[company.id] = company.name
    attendees = []
    for a in people:
        email = str(a.get("email", "")).lower()
        c = contacts.get(email)
        attendees.append(
            AttendeeInfo(
                email=email or None,
                name=(c.name if c else a.get("name")),
                title=(c.title if c else a.get("title")),
                company=names.get(c.company_id) if c and c.company_id else None,
                internal=email in internal,
            )
        )
    return Enriched(
        attendees=attendees,
        contact_ids=[str(c.id) for c in contacts.values()],
        company=CompanyInfo(
            name=company.name,
            domain=company.domain,
            industry=company.industry,
            employees=company.employees,
            notes=company.notes,
        )
        if company
        else None,
        company_id=str(company.id) if company else None,
    )


def pull_crm_history(ctx: StepContext, inputs: Mapping[str, Any]) -> CrmHistory:
    """Emails, meetings, calls and notes with these people or their company, the open deal and its risk."""
    enriched = _enriched(inputs)
    event = _event(ctx)
    contact_ids = [common.as_uuid(c, "contact") for c in enriched.contact_ids]
    company_id = common.as_uuid(enriched.company_id, "company") if enriched.company_id else None
    since = ctx.now - timedelta(days=HISTORY_D)
    rows = common.recent_activities(
        ctx, since=since, limit=20, contact_ids=contact_ids, company_id=company_id, deal_id=event.deal_id
    )
    deal = common.load_optional(ctx, Deal, event.deal_id)
    if deal is None and company_id:
        deal = common.first(ctx, _OPEN_DEAL_OF_COMPANY, b_org=ctx.org_id, b_id=company_id)
    risk = None
    tasks: list[str] = []
    if deal is not None:
        risk = common.first(ctx, _LATEST_RISK, b_org=ctx.org_id, b_id=deal.id)
        tasks = common.scalars(ctx, _OPEN_TASK_TITLES, b_org=ctx.org_id, b_id=deal.id)
    deal_info = None
    if deal is not None:
        deal_info = DealInfo(
            name=deal.name,
            stage=deal.stage,
            value=float(deal.value or 0),
            currency=deal.currency,
            risk_score=risk.score if risk else None,
            risk_level=risk.level if risk else None,
            close_date=deal.close_date,
            risk_factors=[f.get("detail", "") for f in (risk.factors if risk else [])][:3],
        )
    return CrmHistory(
        history=[HistoryItem(kind=a.kind, occurred_at=a.occurred_at, subject=a.subject) for a in rows],
        deal=deal_info,
        deal_id=str(deal.id) if deal_info else None,
        open_tasks=list(tasks),
    )


def research_company_news(ctx: StepContext, inputs: Mapping[str, Any]) -> News:
    """Offline "news": the company's recent notes and recorded activity of the last 30 days."""
    enriched = _enriched(inputs)
    news: list[str] = []
    if enriched.company and enriched.company.notes:
        news += [line.strip() for line in enriched.company.notes.splitlines() if line.strip()]
    if enriched.company_id:
        notes = common.scalars(
            ctx,
            _RECENT_NOTES,
            b_org=ctx.org_id,
            b_id=common.as_uuid(enriched.company_id, "company"),
            b_since=ctx.now - timedelta(days=NEWS_D),
        )
        news += [n for n in notes if n]
    return News(news=common.unique(news)[:5])


def generate_briefing(ctx: StepContext, inputs: Mapping[str, Any]) -> StepResult:
    """Who, history, open deal + risk, talking points and questions (LLM when configured)."""
    event = _event(ctx)
    enriched = _enriched(inputs)
    history = CrmHistory.model_validate(
        inputs.get("pull-crm-history") or {"history": [], "deal": None, "deal_id": None, "open_tasks": []}
    )
    news = News.model_validate(inputs.get("research-company-news") or {"news": []})
    user = common.rep(ctx)
    tz = common.rep_zone(ctx, user)

    def offline() -> Briefing:
        return briefing(
            event.title,
            event.start_at,
            tz,
            enriched.attendees,
            enriched.company,
            history.history,
            news.news,
            history.deal,
            history.open_tasks,
        )

    return common.think(
        ctx,
        Briefing,
        "You prepare a salesperson for a meeting. Answer with JSON matching the Briefing schema.",
        lambda: offline().model_dump_json(),
        offline,
    )


def deliver_slack_briefing(ctx: StepContext, inputs: Mapping[str, Any]) -> BriefingDelivered:
    """DM the briefing; quiet hours apply unless the meeting starts within 2 h (always wanted then)."""
    event = _event(ctx)
    brief = inputs["generate-briefing"]
    user = common.rep(ctx)
    urgent = event.start_at - ctx.now <= timedelta(hours=ALWAYS_DELIVER_H)
    not_before = None
    if not urgent:
        # Quiet hours hold it, but never past 2 h before the meeting: then it goes anyway.
        now_ok, not_before = should_deliver_now(ctx.now, common.rep_zone(ctx, user), user.quiet_hours, event.start_at)
        urgent = not now_ok
    outbox_id = common.notify(
        ctx,
        "pre_meeting_briefing",
        blocks.pre_meeting_briefing(brief),
        user_id=ctx.user_id,
        urgent=urgent,
        not_before=not_before,
    )
    return BriefingDelivered(outbox_id=str(outbox_id) if outbox_id else None, urgent=urgent)
