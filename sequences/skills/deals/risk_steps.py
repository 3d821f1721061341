"""Deal skills: scan the org's open deals, score their risk, pick alerts, deliver them per owner.

The rules themselves are pure (`risk_rules`); these functions load the org's rows, call them and
store the results. Every query is scoped by `ctx.org_id`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, case, delete, func, insert, select, update

import blocks
from sequences.skills.deals.risk_rules import OPEN_STAGES, DealFacts, risk_score, should_alert
from worker.engine.context import StepContext
from worker.errors import SkipStep
from worker.models import Activity, Company, Deal, DealRiskScore, Meeting, User, of_org
from worker.slack.delivery import enqueue_message

# How far back engagement is counted (days).
ENGAGEMENT_WINDOW_D = 30
# Deals scanned per run: the most valuable open ones (the top 50 by value).
TOP_DEALS = 50


class ScannedDeal(BaseModel):
    deal_id: str
    name: str
    company: str | None
    owner_id: str | None
    stage: str
    value: float
    currency: str
    close_date: str | None
    last_activity_at: str | None
    created_at: str
    emails_30d: int
    primary_contact_emails_30d: int | None
    meetings_30d: int
    contacts_engaged_30d: int


class ScanOutput(BaseModel):
    deals: list[ScannedDeal]


class ScoredDeal(BaseModel):
    deal_id: str
    name: str
    company: str | None
    owner_id: str | None
    stage: str
    value: float
    currency: str
    score: int
    level: str
    previous_score: int | None
    last_alerted_at: str | None
    factors: list[dict[str, Any]]


class ScoreOutput(BaseModel):
    scored: list[ScoredDeal]


class AlertsOutput(BaseModel):
    by_owner: dict[str, list[ScoredDeal]]
    alerted: int


class DeliverOutput(BaseModel):
    messages: int
    owners: list[str]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def scan_active_deals(ctx: StepContext, inputs: Mapping[str, Any]) -> ScanOutput:
    """Open deals of the org (top 50 by value, or the payload's deal_ids) with 30-day engagement."""
    since = ctx.now - timedelta(days=ENGAGEMENT_WINDOW_D)
    d, a, c = Deal.__table__, Activity.__table__, Company.__table__
    q = (
        select(
            d.c.id,
            d.c.name,
            c.c.name.label("company"),
            d.c.owner_id,
            d.c.stage,
            d.c.value,
            d.c.currency,
            d.c.close_date,
            d.c.last_activity_at,
            d.c.created_at,
            d.c.primary_contact_id,
        )
        .select_from(d.outerjoin(c, and_(c.c.id == d.c.company_id, of_org(c.c.org_id, d.c.org_id))))
        .where(d.c.org_id == ctx.org_id, d.c.stage.in_(sorted(OPEN_STAGES)))
        .order_by(d.c.value.desc(), d.c.id)
        .limit(TOP_DEALS)
    )
    wanted = ctx.payload.get("deal_ids")
    if wanted:
        q = q.where(d.c.id.in_([uuid.UUID(str(x)) for x in wanted]))
    with ctx.transaction() as conn:
        deals = list(conn.execute(q))
        ids = [row.id for row in deals]
        stats: dict[uuid.UUID, Any] = {}
        meetings: dict[uuid.UUID, int] = {}
        emails_by_contact: dict[uuid.UUID, int] = {}
        if ids:
            is_email = case((a.c.kind == "email", 1), else_=0)
            is_meeting = case((a.c.kind == "meeting", 1), else_=0)
            for row in conn.execute(
                select(
                    a.c.deal_id,
                    func.sum(is_email).label("emails"),
                    func.sum(is_meeting).label("meetings"),
                    func.count(func.distinct(a.c.contact_id)).label("contacts"),
                )
                .where(a.c.org_id == ctx.org_id, a.c.deal_id.in_(ids), a.c.occurred_at >= since)
                .group_by(a.c.deal_id)
            ):
                stats[row.deal_id] = row
            meetings = dict(
                conn.execute(
                    select(Meeting.deal_id, func.count())
                    .where(Meeting.org_id == ctx.org_id, Meeting.deal_id.in_(ids), Meeting.start_at >= since)
                    .group_by(Meeting.deal_id)
                ).all()
            )
            contacts = {row.primary_contact_id for row in deals if row.primary_contact_id}
            if contacts:
                emails_by_contact = {
                    cid: int(n)
                    for cid, n in conn.execute(
                        select(a.c.contact_id, func.count())
                        .where(
                            a.c.org_id == ctx.org_id,
                            a.c.kind == "email",
                            a.c.occurred_at >= since,
                            a.c.contact_id.in_(contacts),
                        )
                        .group_by(a.c.contact_id)
                    )
                }
    out = []
    for row in deals:
        st = stats.get(row.id)
        out.append(
            ScannedDeal(
                deal_id=str(row.id),
                name=row.name,
                company=row.company,
                owner_id=str(row.owner_id) if row.owner_id else None,
                stage=row.stage,
                value=float(row.value or 0),
                currency=row.currency,
                close_date=_iso(row.close_date),
                last_activity_at=_iso(row.last_activity_at),
                created_at=row.created_at.isoformat(),
                emails_30d=int(st.emails or 0) if st else 0,
                primary_contact_emails_30d=emails_by_contact.get(row.primary_contact_id, 0)
                if row.primary_contact_id
                else None,
                meetings_30d=max(int(st.meetings or 0) if st else 0, int(meetings.get(row.id, 0))),
                contacts_engaged_30d=int(st.contacts or 0) if st else 0,
            )
        )
    return ScanOutput(deals=out)


def _facts(deal: Mapping[str, Any]) -> DealFacts:
    from datetime import date

    return DealFacts(
        deal_id=deal["deal_id"],
        stage=deal["stage"],
        value=Decimal(str(deal["value"])),
        close_date=date.fromisoformat(deal["close_date"]) if deal.get("close_date") else None,
        last_activity_at=datetime.fromisoformat(deal["last_activity_at"]) if deal.get("last_activity_at") else None,
        created_at=datetime.fromisoformat(deal["created_at"]),
        emails_30d=deal["emails_30d"],
        primary_contact_emails_30d=deal.get("primary_contact_emails_30d"),
        meetings_30d=deal["meetings_30d"],
        contacts_engaged_30d=deal["contacts_engaged_30d"],
    )


def score_deal_risks(ctx: StepContext, inputs: Mapping[str, Any]) -> ScoreOutput:
    """Score each scanned deal and store the score (history kept; a retry replaces its own rows)."""
    scanned = (inputs.get("scan-active-deals") or {}).get("deals")
    if scanned is None:
        raise SkipStep("no_scan")
    r = DealRiskScore.__table__
    scored: list[ScoredDeal] = []
    with ctx.transaction() as conn:
        conn.execute(delete(r).where(r.c.org_id == ctx.org_id, r.c.job_id == ctx.job_id))
        ids = [uuid.UUID(d["deal_id"]) for d in scanned]
        previous: dict[uuid.UUID, Any] = {}
        last_alert: dict[uuid.UUID, datetime] = {}
        if ids:
            latest = (
                select(r.c.deal_id, func.max(r.c.scored_at).label("at"))
                .where(r.c.org_id == ctx.org_id, r.c.deal_id.in_(ids))
                .group_by(r.c.deal_id)
                .subquery()
            )
            for row in conn.execute(
                select(r.c.deal_id, r.c.score)
                .join(latest, and_(latest.c.deal_id == r.c.deal_id, latest.c.at == r.c.scored_at))
                .where(r.c.org_id == ctx.org_id)
            ):
                previous[row.deal_id] = row.score
            for row in conn.execute(
                select(r.c.deal_id, func.max(r.c.alerted_at))
                .where(r.c.org_id == ctx.org_id, r.c.deal_id.in_(ids), r.c.alerted_at.is_not(None))
                .group_by(r.c.deal_id)
            ):
                last_alert[row[0]] = row[1]
        rows = []
        for deal in scanned:
            deal_id = uuid.UUID(deal["deal_id"])
            result = risk_score(_facts(deal), ctx.now)
            factors = [{"rule": f.rule, "points": f.points, "detail": f.detail} for f in result.factors]
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "org_id": ctx.org_id,
                    "deal_id": deal_id,
                    "job_id": ctx.job_id,
                    "score": result.score,
                    "level": result.level.value,
                    "factors": factors,
                    "scored_at": ctx.now,
                    "alerted_at": None,
                }
            )
            alerted = last_alert.get(deal_id)
            scored.append(
                ScoredDeal(
                    deal_id=deal["deal_id"],
                    name=deal["name"],
                    company=deal.get("company"),
                    owner_id=deal.get("owner_id"),
                    stage=deal["stage"],
                    value=deal["value"],
                    currency=deal["currency"],
                    score=result.score,
                    level=result.level.value,
                    previous_score=previous.get(deal_id),
                    last_alerted_at=alerted.isoformat() if alerted else None,
                    factors=factors,
                )
            )
        if rows:
            conn.execute(insert(r), rows)
    return ScoreOutput(scored=scored)


def generate_risk_alerts(ctx: StepContext, inputs: Mapping[str, Any]) -> AlertsOutput:
    """Deals to alert (score >= 60 or up > 10, not alerted in 7 days), grouped by owner."""
    scored = (inputs.get("score-deal-risks") or {}).get("scored")
    if scored is None:
        raise SkipStep("no_scores")
    by_owner: dict[str, list[ScoredDeal]] = defaultdict(list)
    alerted_ids: list[uuid.UUID] = []
    for item in scored:
        deal = ScoredDeal.model_validate(item)
        last = datetime.fromisoformat(deal.last_alerted_at) if deal.last_alerted_at else None
        if deal.owner_id and should_alert(deal.score, deal.previous_score, last, ctx.now):
            by_owner[deal.owner_id].append(deal)
            alerted_ids.append(uuid.UUID(deal.deal_id))
    if alerted_ids:
        r = DealRiskScore.__table__
        with ctx.transaction() as conn:
            conn.execute(
                update(r)
                .where(r.c.org_id == ctx.org_id, r.c.job_id == ctx.job_id, r.c.deal_id.in_(alerted_ids))
                .values(alerted_at=ctx.now)
            )
    return AlertsOutput(by_owner=dict(by_owner), alerted=len(alerted_ids))


def deliver_risk_slack(ctx: StepContext, inputs: Mapping[str, Any]) -> DeliverOutput:
    """One Slack message per deal owner with their deals at risk (deduplicated per job and owner)."""
    alerts = (inputs.get("generate-risk-alerts") or {}).get("by_owner")
    if alerts is None:
        raise SkipStep("no_alerts")
    if not alerts:
        return DeliverOutput(messages=0, owners=[])
    owners = [uuid.UUID(o) for o in alerts]
    sent = 0
    with ctx.transaction() as conn:
        names = dict(
            conn.execute(select(User.id, User.name).where(User.org_id == ctx.org_id, User.id.in_(owners))).all()
        )
        for owner_id in owners:
            if owner_id not in names:
                continue  # owner left the org: nobody to tell
            items = [{**deal, "deal_name": deal["name"]} for deal in alerts[str(owner_id)]]
            message = blocks.deal_risk_alerts(names[owner_id], items)
            if enqueue_message(
                conn,
                ctx.org_id,
                kind="deal_risk_alerts",
                message=message,
                now=ctx.now,
                dedupe_key=f"deal_risk:{ctx.job_id}:{owner_id}",
                user_id=owner_id,
                job_id=ctx.job_id,
                console=ctx.dry_run,
            ):
                sent += 1
    return DeliverOutput(messages=sent, owners=[str(o) for o in owners if o in names])
