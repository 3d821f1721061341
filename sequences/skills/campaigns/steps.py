"""campaign_daily_check steps: fetch Instantly analytics, classify replies, build and deliver the report."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Uuid, bindparam, select, update

import blocks
from sequences.skills import common
from sequences.skills.campaigns.health import CampaignCounts
from sequences.skills.campaigns.replies import ReplyClass, classify_reply
from sequences.skills.campaigns.report import ReplyIn, build_report
from worker.engine.context import StepContext, StepResult
from worker.engine.jobstore import insert_ignoring_conflicts
from worker.errors import PermanentError
from worker.models import Campaign, CampaignReply, Contact, Integration, User, of_org
from worker.worktime import zone

# Replies newer than this are reported (hours): the day since the last daily check, plus slack.
REPLY_WINDOW_H = 26

# Statements built once (bind parameters b_*).
_ORG = bindparam("b_org", type_=Uuid())
_INSTANTLY = (
    select(Integration.__table__)
    .where(Integration.org_id == _ORG, Integration.provider == "instantly", Integration.status == "active")
    .limit(1)
)
_ACTIVE_CAMPAIGNS = (
    select(Campaign.id, Campaign.name, Campaign.metrics, Campaign.owner_id)
    .where(Campaign.org_id == _ORG, Campaign.status == "active")
    .order_by(Campaign.name)
)
_RECENT_REPLIES = (
    select(
        CampaignReply.id,
        CampaignReply.campaign_id,
        CampaignReply.from_email,
        CampaignReply.subject,
        CampaignReply.body,
        CampaignReply.received_at,
        Contact.name.label("contact_name"),
    )
    .outerjoin(Contact, (Contact.org_id == CampaignReply.org_id) & (Contact.email == CampaignReply.from_email))
    .where(
        CampaignReply.org_id == _ORG,
        CampaignReply.campaign_id.in_(bindparam("b_ids", expanding=True)),
        CampaignReply.received_at >= bindparam("b_since", type_=CampaignReply.received_at.type),
    )
    .order_by(CampaignReply.received_at.desc())
)
_SET_CLASSIFICATION = (
    update(CampaignReply)
    .where(CampaignReply.id == bindparam("b_id", type_=Uuid()), of_org(CampaignReply.org_id, _ORG))
    .values(classification=bindparam("b_label"))
)
_ADMINS = select(User.id).where(User.org_id == _ORG, User.role == "admin").order_by(User.name)


class FetchedCampaigns(BaseModel):
    source: str  # instantly | stored
    campaigns: list[CampaignCounts]
    owners: dict[str, str | None]  # campaign id -> owner user id
    replies: list[ReplyIn]


class ClassifiedReplies(BaseModel):
    replies: list[ReplyIn]


class ReplyClasses(BaseModel):
    """What the LLM answers: one label per reply id."""

    labels: dict[str, str]


class Delivered(BaseModel):
    messages: int
    owners: list[str]


def _integration(ctx: StepContext) -> Integration:
    row = common.first(ctx, _INSTANTLY, b_org=ctx.org_id)
    if row is None:
        raise PermanentError("this org has no active Instantly integration (connect Instantly first)")
    return row  # type: ignore[return-value]


def _refresh_from_instantly(ctx: StepContext, integration: Integration) -> None:
    """Pull analytics and recent replies from the Instantly API into our rows."""
    since = ctx.now - timedelta(hours=REPLY_WINDOW_H)
    ctx.checkpoint()  # no transaction stays open across Instantly's answers
    from worker.clients.instantly import InstantlyClient  # httpx (~7 MiB) loads only in a worker that calls Instantly

    with InstantlyClient.for_integration(integration) as client:
        analytics = client.active_campaign_analytics()
        replies = client.recent_replies(since)
    with ctx.session() as session:
        by_external = {
            c.external_id: c for c in session.execute(select(Campaign).where(Campaign.org_id == ctx.org_id)).scalars()
        }
        for a in analytics:
            row = by_external.get(a.campaign_id)
            metrics = {
                "sent": a.sent,
                "opened": a.opened,
                "replied": a.replied,
                "bounced": a.bounced,
                "unsubscribed": a.unsubscribed,
            }
            if row is None:
                row = Campaign(
                    id=uuid.uuid4(),
                    org_id=ctx.org_id,
                    external_id=a.campaign_id,
                    name=a.name or a.campaign_id,
                    status="active",
                    metrics=metrics,
                )
                session.add(row)
                by_external[a.campaign_id] = row
            else:  # an UPDATE scoped by org (a changed ORM object would be flushed by its id alone)
                session.execute(
                    update(Campaign)
                    .where(Campaign.id == row.id, of_org(Campaign.org_id, ctx.org_id))
                    .values(metrics=metrics, name=a.name or row.name)
                )
        active = {a.campaign_id for a in analytics}
        for external_id, row in by_external.items():  # paused or finished in Instantly: no longer reported
            if external_id not in active and row.status == "active":
                session.execute(
                    update(Campaign)
                    .where(Campaign.id == row.id, of_org(Campaign.org_id, ctx.org_id))
                    .values(status="paused")
                )
        session.flush()
        for r in replies:
            campaign = by_external.get(r.campaign_id or "")
            if campaign is None:
                continue
            session.execute(
                insert_ignoring_conflicts(
                    session.connection(), CampaignReply.__table__, ["org_id", "external_id"]
                ).values(
                    id=uuid.uuid4(),
                    org_id=ctx.org_id,
                    campaign_id=campaign.id,
                    external_id=r.id,
                    from_email=r.from_email,
                    subject=r.subject,
                    body=r.body_text,
                    status="open",
                    received_at=r.received_at or ctx.now,
                    created_at=ctx.now,
                )
            )


def fetch_campaign_metrics(ctx: StepContext, inputs: Mapping[str, Any]) -> FetchedCampaigns:
    """Active campaigns' analytics and new replies: from Instantly when the integration holds an API
    key, else the last stored copy (demo, smoke)."""
    integration = _integration(ctx)
    source = "stored"
    if integration.credentials is not None:
        _refresh_from_instantly(ctx, integration)
        source = "instantly"
    wanted = {str(x) for x in ctx.payload.get("campaign_ids") or []}
    since = ctx.now - timedelta(hours=REPLY_WINDOW_H)
    campaigns = [c for c in common.rows(ctx, _ACTIVE_CAMPAIGNS, b_org=ctx.org_id) if not wanted or str(c.id) in wanted]
    ids = [c.id for c in campaigns]
    replies = (
        [(r, r.contact_name) for r in common.rows(ctx, _RECENT_REPLIES, b_org=ctx.org_id, b_ids=ids, b_since=since)]
        if ids
        else []
    )
    names = {c.id: c.name for c in campaigns}
    m = {c.id: c.metrics or {} for c in campaigns}
    return FetchedCampaigns(
        source=source,
        campaigns=[
            CampaignCounts(
                campaign_id=str(c.id),
                name=c.name,
                sent=int(m[c.id].get("sent", 0)),
                opened=int(m[c.id].get("opened", 0)),
                replied=int(m[c.id].get("replied", 0)),
                bounced=int(m[c.id].get("bounced", 0)),
                unsubscribed=int(m[c.id].get("unsubscribed", 0)),
            )
            for c in campaigns
        ],
        owners={str(c.id): str(c.owner_id) if c.owner_id else None for c in campaigns},
        replies=[
            ReplyIn(
                reply_id=str(r.id),
                campaign_id=str(r.campaign_id),
                from_email=r.from_email,
                from_name=contact_name,
                subject=r.subject,
                body=r.body,
                received_at=r.received_at,
                campaign_name=names.get(r.campaign_id),
            )
            for r, contact_name in replies
        ],
    )


def classify_replies(ctx: StepContext, inputs: Mapping[str, Any]) -> StepResult:
    """positive | negative | out_of_office | unsubscribe | other for each new reply; stored on the reply."""
    fetched = FetchedCampaigns.model_validate(inputs["fetch-campaign-metrics"])

    def offline() -> ReplyClasses:
        return ReplyClasses(labels={r.reply_id: classify_reply(r.subject, r.body).label.value for r in fetched.replies})

    if not fetched.replies:
        result = StepResult(output=ClassifiedReplies(replies=[]))
        return result
    answer = common.think(
        ctx,
        ReplyClasses,
        "Classify each cold-email reply as positive, negative, out_of_office, unsubscribe or other. "
        "Answer with JSON {labels: {reply_id: label}}.",
        "\n".join(f"{r.reply_id}: {r.subject or ''} — {(r.body or '')[:500]}" for r in fetched.replies),
        offline,
    )
    labels = ReplyClasses.model_validate(answer.output).labels
    classified = []
    for r in fetched.replies:
        rule = classify_reply(r.subject, r.body)
        label = labels.get(r.reply_id) or rule.label.value
        if label not in {"positive", "negative", "out_of_office", "unsubscribe", "other"}:
            label = rule.label.value
        cls = rule if rule.label.value == label else ReplyClass(label=label, confidence=0.8, signals=["llm"])
        classified.append(r.model_copy(update={"classification": cls}))
    with ctx.transaction() as conn:  # one executemany
        conn.execute(
            _SET_CLASSIFICATION,
            [
                {"b_id": uuid.UUID(r.reply_id), "b_org": ctx.org_id, "b_label": r.classification.label.value}
                for r in classified
            ],
        )
    return StepResult(output=ClassifiedReplies(replies=classified), cost_usd=answer.cost_usd, tokens=answer.tokens)


def build_campaign_report(ctx: StepContext, inputs: Mapping[str, Any]) -> Any:
    """Rates, health status and suggestions per campaign, replies first-positive (in the org's day)."""
    fetched = FetchedCampaigns.model_validate(inputs["fetch-campaign-metrics"])
    classified = ClassifiedReplies.model_validate(inputs["classify-replies"])
    org = common.org(ctx)
    day = ctx.now.astimezone(zone(org.timezone if org is not None else None)).date()
    return build_report(day, fetched.campaigns, classified.replies)


def _admins(ctx: StepContext) -> list[str]:
    return [str(u) for u in common.scalars(ctx, _ADMINS, b_org=ctx.org_id)]


def deliver_campaign_slack(ctx: StepContext, inputs: Mapping[str, Any]) -> Delivered:
    """One report per campaign owner with their campaigns and replies (reply buttons included)."""
    fetched = FetchedCampaigns.model_validate(inputs["fetch-campaign-metrics"])
    report = inputs["build-report"]
    by_owner: dict[str, set[str]] = defaultdict(set)
    admins = _admins(ctx)
    for campaign_id, owner in fetched.owners.items():
        for person in [owner] if owner else admins:  # a campaign nobody owns goes to the org's admins
            by_owner[person].add(campaign_id)
    if not by_owner:
        raise PermanentError("no campaign has an owner and the org has no admin to send the report to")
    sent = []
    for owner, campaign_ids in sorted(by_owner.items()):
        mine = {
            **report,
            "campaigns": [c for c in report.get("campaigns", []) if c.get("campaign_id") in campaign_ids],
            "replies": [r for r in report.get("replies", []) if r.get("campaign_id") in campaign_ids],
        }
        if common.notify(ctx, "campaign_report", blocks.campaign_report(mine), user_id=owner, key=owner):
            sent.append(owner)
    return Delivered(messages=len(sent), owners=sorted(by_owner))
