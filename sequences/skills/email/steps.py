"""email_received steps: what the email wants, who sent it, and the branch that answers it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Uuid, and_, bindparam, func, select, update

from sequences.skills import common, outbound
from sequences.skills.email.addresses import domain_of, is_free_mail, parse_address
from sequences.skills.email.drafts import EmailDraft, draft_reply, reply_subject
from sequences.skills.email.intents import EmailIntent, classify_email
from sequences.skills.email.out_of_office import ooo_until
from worker.engine.context import FollowUp, StepContext, StepResult
from worker.errors import PermanentError, SkipStep
from worker.models import CampaignReply, Company, Contact, Deal, Email, of_org

OPEN_DEAL_EXCLUDED = ("closed_won", "closed_lost")

# Statements built once (bind parameters b_*).
_ID, _ORG = bindparam("b_id", type_=Uuid()), bindparam("b_org", type_=Uuid())
# The biggest open deal (`!=` for each closed stage rather than NOT IN, whose list would be rendered
# at each run), correlated below with a contact (as its primary contact) or a company.
_OPEN_DEAL = (
    select(Deal.id)
    .where(Deal.org_id == _ORG, *(Deal.stage != stage for stage in OPEN_DEAL_EXCLUDED))
    .order_by(Deal.value.desc())
    .limit(1)
)
_COMPANY_DEAL = _OPEN_DEAL.where(Deal.company_id == Company.id).scalar_subquery().label("company_deal")
# The sender as a contact of the org, its company and the open deal of each, in one statement.
_CONTACT_BY_EMAIL = (
    select(
        Contact.id,
        Contact.name,
        Company.id.label("company_id"),
        Company.name.label("company_name"),
        _OPEN_DEAL.where(Deal.primary_contact_id == Contact.id).scalar_subquery().label("contact_deal"),
        _COMPANY_DEAL,
    )
    .select_from(Contact)
    .outerjoin(Company, and_(Company.id == Contact.company_id, of_org(Company.org_id, _ORG)))
    .where(Contact.org_id == _ORG, func.lower(Contact.email) == bindparam("b_email"))
)
# No such contact: the company by the sender's domain, and its open deal.
_COMPANY_BY_DOMAIN = select(Company.id, Company.name, _COMPANY_DEAL).where(
    Company.org_id == _ORG, Company.domain == bindparam("b_domain")
)
_REPLY_DRAFTED = (
    update(CampaignReply).where(CampaignReply.id == _ID, of_org(CampaignReply.org_id, _ORG)).values(status="drafted")
)
_SET_CONTACT_STATUS = (
    update(Contact)
    .where(Contact.id == _ID, of_org(Contact.org_id, _ORG))
    .values(status=bindparam("b_status"), status_until=bindparam("b_until"))
)


class InboundEmail(BaseModel):
    """The email being handled (from the emails table, or the event's own content)."""

    email_id: str | None
    from_name: str | None
    from_email: str
    subject: str
    body: str
    thread_id: str | None
    rfc822_message_id: str | None
    references: str | None


class Classified(BaseModel):
    email: InboundEmail
    intent: EmailIntent


class Match(BaseModel):
    contact_id: str | None
    contact_name: str | None
    company_id: str | None
    company_name: str | None
    deal_id: str | None
    free_mail: bool


class ReplyPreview(BaseModel):
    to: str
    subject: str
    body: str
    thread: bool
    context: str
    title: str
    timezone: str
    deal_id: str | None
    approver_user_ids: list[str]


class ReplySent(BaseModel):
    to: str
    subject: str
    result: dict[str, Any]


class BookingHandOff(BaseModel):
    scheduling_text: str


class ContactStatus(BaseModel):
    contact_id: str | None
    status: str
    until: str | None


def _inbound(ctx: StepContext) -> InboundEmail:
    p = ctx.payload
    if p.get("email_id"):
        email = common.load(ctx, Email, p["email_id"], "email")
        name, address = parse_address(email.from_addr)
        return InboundEmail(
            email_id=str(email.id),
            from_name=name or None,
            from_email=address or email.from_addr,
            subject=email.subject or "",
            body=email.body or email.snippet or "",
            thread_id=email.thread_id,
            rfc822_message_id=email.rfc822_message_id,
            references=email.references,
        )
    name, address = parse_address(p.get("from_email"))
    if not address:
        raise PermanentError("the event has neither an email_id nor a valid from_email")
    return InboundEmail(
        email_id=None,
        from_name=name or None,
        from_email=address,
        subject=p.get("subject") or "",
        body=p.get("body") or "",
        thread_id=p.get("thread_id"),
        rfc822_message_id=p.get("message_id"),
        references=None,
    )


def classify_email_intent(ctx: StepContext, inputs: Mapping[str, Any]) -> StepResult:
    """reply_required | booking_request | out_of_office | unsubscribe | fyi | spam (LLM when configured)."""
    email = _inbound(ctx)
    user = common.rep(ctx)
    answer = common.think(
        ctx,
        EmailIntent,
        "Classify this inbound sales email as reply_required, booking_request, out_of_office, unsubscribe, fyi or "
        "spam. Answer with JSON {intent, confidence, signals, scheduling_text}.",
        f"From: {email.from_email}\nSubject: {email.subject}\n\n{email.body[:8000]}",
        lambda: classify_email(email.subject, email.body, email.from_email, to_user_email=user.email),
    )
    return StepResult(
        output=Classified(email=email, intent=EmailIntent.model_validate(answer.output)),
        cost_usd=answer.cost_usd,
        tokens=answer.tokens,
    )


def match_to_crm_contact(ctx: StepContext, inputs: Mapping[str, Any]) -> Match:
    """The sender as a contact of this org (never another org's), its company by domain unless the
    domain is free mail, and the contact's (or company's) open deal."""
    email = Classified.model_validate(inputs["classify-email-intent"]).email
    free = is_free_mail(email.from_email)
    contact = common.first(ctx, _CONTACT_BY_EMAIL, b_org=ctx.org_id, b_email=email.from_email.lower())
    company_id = company_name = deal_id = None
    if contact is not None:
        company_id, company_name = contact.company_id, contact.company_name
        deal_id = contact.contact_deal or contact.company_deal
    elif not free and domain_of(email.from_email):
        company = common.first(ctx, _COMPANY_BY_DOMAIN, b_org=ctx.org_id, b_domain=domain_of(email.from_email))
        if company is not None:
            company_id, company_name, deal_id = company.id, company.name, company.company_deal
    return Match(
        contact_id=str(contact.id) if contact else None,
        contact_name=contact.name if contact else None,
        company_id=str(company_id) if company_id else None,
        company_name=company_name,
        deal_id=str(deal_id) if deal_id else None,
        free_mail=free,
    )


def intent_is(*intents: str) -> Any:
    """A `when` predicate: the classified intent is one of `intents`."""
    return lambda w: (w.output("classify-email-intent", "intent") or {}).get("intent") in intents


def draft_email_reply(ctx: StepContext, inputs: Mapping[str, Any]) -> StepResult:
    """A reply for the rep to review (LLM when configured)."""
    classified = Classified.model_validate(inputs["classify-email-intent"])
    match = Match.model_validate(inputs["match-to-crm-contact"])
    user = common.rep(ctx)
    email = classified.email
    answer = common.think(
        ctx,
        EmailDraft,
        "Draft a short, helpful reply from a salesperson. Answer with JSON {subject, body}.",
        f"From: {email.from_name or email.from_email}\nSubject: {email.subject}\n\n{email.body[:8000]}",
        lambda: draft_reply(
            classified.intent, email.subject, email.body, match.contact_name or email.from_name, user.name
        ),
    )
    if ctx.payload.get("campaign_reply_id"):
        reply_id = common.as_uuid(ctx.payload["campaign_reply_id"], "campaign reply")
        common.execute(ctx, _REPLY_DRAFTED, b_id=reply_id, b_org=ctx.org_id)
    return answer


def review_email_reply(ctx: StepContext, inputs: Mapping[str, Any]) -> ReplyPreview:
    """The reply as the rep reviews it (approval email_preview, in the email's thread)."""
    if not inputs.get("draft-reply"):
        raise SkipStep("no_draft")  # the best-effort draft failed: nothing to review
    email = Classified.model_validate(inputs["classify-email-intent"]).email
    draft = EmailDraft.model_validate(inputs["draft-reply"])
    match = Match.model_validate(inputs["match-to-crm-contact"])
    user = common.rep(ctx)
    who = match.contact_name or email.from_name or email.from_email
    return ReplyPreview(
        to=email.from_email,
        subject=draft.subject,
        body=draft.body,
        thread=bool(email.thread_id),
        context=f"Reply to {who}" + (f" ({match.company_name})" if match.company_name else ""),
        title=f"Reply to {who}: {reply_subject(email.subject).removeprefix('Re: ')}",
        timezone=common.rep_zone(ctx, user).key,
        deal_id=match.deal_id,
        approver_user_ids=[str(user.id)],
    )


def send_email_reply(ctx: StepContext, inputs: Mapping[str, Any]) -> ReplySent:
    """Send the approved reply in the same thread (In-Reply-To / References) after the Undo window."""
    review = inputs["review-reply"]
    preview = review.get("preview") or {}
    email = Classified.model_validate(inputs["classify-email-intent"]).email
    match = Match.model_validate(inputs["match-to-crm-contact"])
    user = common.rep(ctx)
    subject = common.edited(review, "subject", preview.get("subject"))
    body = common.edited(review, "body", preview.get("body"))
    references = " ".join(r for r in (email.references, email.rfc822_message_id) if r) or None
    result = outbound.send_email(
        ctx,
        user,
        [email.from_email],
        subject,
        body,
        thread_id=email.thread_id,
        in_reply_to=email.rfc822_message_id,
        references=references,
    )
    outbound.record_activity(
        ctx,
        kind="email",
        subject=subject,
        body=body,
        deal_id=match.deal_id,
        contact_id=match.contact_id,
        company_id=match.company_id,
    )
    return ReplySent(to=email.from_email, subject=subject, result=result)


def hand_off_booking(ctx: StepContext, inputs: Mapping[str, Any]) -> StepResult:
    """A booking request becomes a calendar_find_times follow-up with the email as scheduling text."""
    classified = Classified.model_validate(inputs["classify-email-intent"])
    match = Match.model_validate(inputs["match-to-crm-contact"])
    text = (classified.intent.scheduling_text or classified.email.body or classified.email.subject).strip()
    payload: dict[str, Any] = {"scheduling_text": text[:20_000] or "find a time"}
    if match.contact_id:
        payload["contact_id"] = match.contact_id
    if match.deal_id:
        payload["deal_id"] = match.deal_id
    return StepResult(
        output=BookingHandOff(scheduling_text=payload["scheduling_text"]),
        follow_ups=[FollowUp("calendar_find_times", payload)],
    )


def record_contact_status(ctx: StepContext, inputs: Mapping[str, Any]) -> ContactStatus:
    """Out of office or unsubscribe: record it on the contact, and stop."""
    classified = Classified.model_validate(inputs["classify-email-intent"])
    match = Match.model_validate(inputs["match-to-crm-contact"])
    status = classified.intent.intent.value
    until = ooo_until(classified.email.body, ctx.now) if status == "out_of_office" else None
    if match.contact_id:
        common.execute(
            ctx,
            _SET_CONTACT_STATUS,
            b_id=common.as_uuid(match.contact_id, "contact"),
            b_org=ctx.org_id,
            b_status="unsubscribed" if status == "unsubscribe" else "out_of_office",
            b_until=datetime.combine(until, time(9), tzinfo=UTC) if until else None,
        )
    return ContactStatus(contact_id=match.contact_id, status=status, until=until.isoformat() if until else None)
