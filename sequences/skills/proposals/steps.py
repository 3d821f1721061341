"""proposal_generation steps: choose a template, fill it from the org's records, add custom sections,
present it for review, then email it (or hand the link to the rep)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Uuid, bindparam, update

from sequences.skills import common, outbound
from sequences.skills.proposals.templates import (
    ProposalDraft,
    ProposalFacts,
    TemplateChoice,
    executive_summary,
    populate,
    select_template,
    template_by_key,
)
from worker.config import get_settings
from worker.engine.context import StepContext, StepResult
from worker.engine.jobstore import insert_ignoring_conflicts
from worker.errors import PermanentError
from worker.models import Company, Contact, Deal, Meeting, Proposal, User, of_org


class TemplatePick(BaseModel):
    choice: TemplateChoice
    deal_name: str


class Populated(BaseModel):
    proposal_id: str
    link: str
    draft: ProposalDraft
    contact_name: str | None
    contact_email: str | None


class CustomSections(BaseModel):
    executive_summary: str
    sections: list[dict[str, str]] = []


class ProposalPreview(BaseModel):
    title: str
    deal_name: str
    company: str | None
    value: float
    currency: str
    template: str
    sections: list[dict[str, str]]
    link: str
    contact_name: str | None
    contact_email: str | None
    deal_id: str
    timezone: str


class ProposalSent(BaseModel):
    action: str
    proposal_id: str
    result: dict[str, Any] = {}


def _deal(ctx: StepContext) -> Deal:
    return common.load(ctx, Deal, ctx.payload.get("deal_id"), "deal")


def _facts(ctx: StepContext, deal: Deal) -> tuple[ProposalFacts, Contact | None]:
    company = common.load_optional(ctx, Company, deal.company_id)
    contact = common.load_optional(ctx, Contact, ctx.payload.get("contact_id") or deal.primary_contact_id)
    owner = common.load_optional(ctx, User, deal.owner_id or ctx.user_id)
    notes = ctx.payload.get("notes")
    if not notes and ctx.payload.get("meeting_id"):
        meeting = common.load_optional(ctx, Meeting, ctx.payload.get("meeting_id"))
        notes = f"Following our {meeting.title}." if meeting else None
    facts = ProposalFacts(
        deal_name=deal.name,
        deal_value=deal.value,
        currency=deal.currency,
        stage=deal.stage,
        close_date=deal.close_date,
        contact_name=contact.name if contact else None,
        contact_title=contact.title if contact else None,
        contact_email=contact.email if contact else None,
        company_name=company.name if company else None,
        industry=company.industry if company else None,
        employees=company.employees if company else None,
        rep_name=owner.name if owner else None,
        meeting_notes=notes,
    )
    return facts, contact


def select_proposal_template(ctx: StepContext, inputs: Mapping[str, Any]) -> TemplatePick:
    """The org's template for this deal's stage, size and industry."""
    deal = _deal(ctx)
    company = common.load_optional(ctx, Company, deal.company_id)
    choice = select_template(
        deal.stage, deal.value, company.industry if company else None, company.employees if company else None
    )
    return TemplatePick(choice=choice, deal_name=deal.name)


def populate_proposal(ctx: StepContext, inputs: Mapping[str, Any]) -> Populated:
    """Fill the template from the deal, contact, company and meeting notes; store the draft."""
    pick = TemplatePick.model_validate(inputs["select-proposal-template"])
    deal = _deal(ctx)
    facts, contact = _facts(ctx, deal)
    draft = populate(template_by_key(pick.choice.template_key), facts)
    proposal_id = uuid.uuid5(uuid.NAMESPACE_URL, f"proposal:{ctx.job_id}")
    link = f"{get_settings().app_url.rstrip('/')}/p/{proposal_id}"
    with ctx.transaction() as conn:
        conn.execute(
            insert_ignoring_conflicts(conn, Proposal.__table__, ["id"]).values(
                id=proposal_id,
                org_id=ctx.org_id,
                deal_id=deal.id,
                job_id=ctx.job_id,
                template=pick.choice.template_key,
                title=draft.title,
                content=draft.model_dump(mode="json"),
                status="draft",
                link=link,
                created_at=ctx.now,
            )
        )
    return Populated(
        proposal_id=str(proposal_id),
        link=link,
        draft=draft,
        contact_name=contact.name if contact else None,
        contact_email=contact.email if contact else None,
    )


def generate_custom_sections(ctx: StepContext, inputs: Mapping[str, Any]) -> StepResult:
    """An executive summary for this deal (the LLM when configured, else the offline summary)."""
    deal = _deal(ctx)
    facts, _contact = _facts(ctx, deal)
    populated = Populated.model_validate(inputs["populate-proposal"])
    return common.think(
        ctx,
        CustomSections,
        "You write concise B2B sales proposals. Answer with JSON {executive_summary, sections:[{heading, body}]}.",
        lambda: f"Deal facts: {facts.model_dump_json()}\nDraft: {populated.draft.model_dump_json()}",
        lambda: CustomSections(executive_summary=executive_summary(facts)),
    )


def present_for_review(ctx: StepContext, inputs: Mapping[str, Any]) -> ProposalPreview:
    """The proposal as the rep will review it (approval proposal_review)."""
    populated = Populated.model_validate(inputs["populate-proposal"])
    custom = inputs.get("generate-custom-sections") or {}
    deal = _deal(ctx)
    company = common.load_optional(ctx, Company, deal.company_id)
    sections = [s.model_dump() for s in populated.draft.sections]
    if custom.get("executive_summary"):  # the template's own summary section takes it, else it goes first
        summary = {"heading": "Executive summary", "body": custom["executive_summary"]}
        at = next((i for i, x in enumerate(sections) if x.get("heading") == summary["heading"]), None)
        if at is None:
            sections.insert(0, summary)
        else:
            sections[at] = summary
    sections += [dict(s) for s in custom.get("sections") or []]
    owner = common.load_optional(ctx, User, deal.owner_id or ctx.user_id)
    return ProposalPreview(
        title=populated.draft.title,
        deal_name=deal.name,
        company=company.name if company else None,
        value=float(deal.value or 0),
        currency=deal.currency,
        template=populated.draft.template_key,
        sections=sections,
        link=populated.link,
        contact_name=populated.contact_name,
        contact_email=populated.contact_email,
        deal_id=str(deal.id),
        timezone=common.rep_zone(ctx, owner).key,
    )


def send_proposal(ctx: StepContext, inputs: Mapping[str, Any]) -> ProposalSent:
    """Approve & send: email the contact the proposal link. Share link: give the link to the rep only."""
    review = inputs["present-for-review"]
    preview = review.get("preview") or {}
    decision = review.get("decision")
    populated = Populated.model_validate(inputs["populate-proposal"])
    proposal_id = uuid.UUID(populated.proposal_id)
    user = common.rep(ctx)
    if decision == "share_link":
        common.notify(
            ctx,
            "proposal_link",
            {"text": f"Here is the proposal link for {preview.get('deal_name')}: {populated.link}", "blocks": []},
            user_id=user.id,
        )
        _set_status(ctx, proposal_id, "shared")
        return ProposalSent(action="link_shared", proposal_id=str(proposal_id))
    if decision not in ("approve_send", "approve", "edit"):
        raise PermanentError(f"unexpected decision {decision!r} for a proposal_review approval")
    to = common.require(populated.contact_email, "cannot send the proposal: the deal has no contact with an email")
    subject = common.edited(review, "subject", preview.get("title") or "Our proposal")
    body = common.edited(
        review,
        "body",
        (
            f"Hi {common.first_name(populated.contact_name)},\n\nAs promised, here is our proposal for "
            f"{preview.get('deal_name')}: {populated.link}\n\nHappy to walk you through it.\n\n"
            f"{common.first_name(user.name)}"
        ),
    )
    result = outbound.send_email(ctx, user, [to], subject, body)
    _set_status(ctx, proposal_id, "sent")
    outbound.record_activity(ctx, kind="email", subject=subject, body=body, deal_id=preview.get("deal_id"))
    return ProposalSent(action="sent", proposal_id=str(proposal_id), result=result)


_SET_STATUS = (
    update(Proposal)
    .where(Proposal.id == bindparam("b_id", type_=Uuid()), of_org(Proposal.org_id, bindparam("b_org", type_=Uuid())))
    .values(status=bindparam("b_status"))
)


def _set_status(ctx: StepContext, proposal_id: uuid.UUID, status: str) -> None:
    common.execute(ctx, _SET_STATUS, b_id=proposal_id, b_org=ctx.org_id, b_status=status)
