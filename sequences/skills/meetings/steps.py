"""meeting_ended steps: read the transcript, find action items and intents, coach, update the CRM,
debrief the rep, and send the follow-up email once it is approved."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Uuid, bindparam, func, or_, select, update

import blocks
from sequences.skills import common, outbound
from sequences.skills.email.drafts import EmailDraft
from sequences.skills.meetings.action_items import ActionItem, extract_action_items
from sequences.skills.meetings.call_coaching import CoachingStats, coaching_stats
from sequences.skills.meetings.call_types import CallTypeResult, classify_call_type
from sequences.skills.meetings.followup_email import draft_followup_email
from sequences.skills.meetings.intents import Intents, detect_intents
from sequences.skills.meetings.next_actions import NextAction, suggest_next_actions
from sequences.skills.meetings.summary import summarize, task_line, what_they_said
from sequences.skills.meetings.transcript import Transcript, parse_transcript
from worker.audit import record
from worker.engine.context import FollowUp, StepContext, StepResult
from worker.engine.payloads import Event
from worker.errors import PermanentError, SkipStep
from worker.models import Contact, Deal, Meeting, Task, of_org, steps
from worker.precompiled import PrecompiledInsert


class ActionItems(BaseModel):
    items: list[ActionItem]
    summary: str


class DetectedIntents(BaseModel):
    intents: Intents
    follow_ups: list[str]  # the follow-up event types fired when the job completes


class NextActions(BaseModel):
    actions: list[NextAction]


class FollowupDraft(BaseModel):
    to: str | None
    contact_name: str | None
    subject: str
    body: str


class CrmUpdate(BaseModel):
    deal_id: str | None
    next_step: str | None
    close_date_hint: str | None
    activity_logged: bool


class TasksCreated(BaseModel):
    created: int
    titles: list[str]


class Debrief(BaseModel):
    outbox_id: str | None
    failed_steps: list[str]


class FollowupPreview(BaseModel):
    to: str | None
    subject: str
    body: str
    context: str
    title: str
    timezone: str
    deal_id: str | None
    approver_user_ids: list[str]


class FollowupSent(BaseModel):
    to: str
    subject: str
    result: dict[str, Any]


# --------------------------------------------------------------------------- statements (built once)

_ID, _ORG = bindparam("b_id", type_=Uuid()), bindparam("b_org", type_=Uuid())
_SET_CALL_TYPE = (
    update(Meeting)
    .where(Meeting.id == _ID, of_org(Meeting.org_id, _ORG))
    .values(call_type=bindparam("b_call_type"), call_type_confidence=bindparam("b_confidence"))
)
_CONTACT_BY_EMAIL = select(Contact.id).where(Contact.org_id == _ORG, func.lower(Contact.email) == bindparam("b_email"))
_TASK_TITLES = select(Task.title).where(Task.org_id == _ORG, Task.meeting_id == _ID)
_DEAL_NEXT_STEP = select(Deal.next_step).where(Deal.id == _ID, of_org(Deal.org_id, _ORG))
# The deal after a meeting: its last activity, and its next step when the meeting gave one.
_DEAL_AFTER_MEETING = (
    update(Deal)
    .where(Deal.id == _ID, of_org(Deal.org_id, _ORG))
    .values(
        last_activity_at=bindparam("b_at", type_=Deal.last_activity_at.type),
        next_step=func.coalesce(bindparam("b_next_step", type_=Deal.next_step.type), Deal.next_step),
    )
)
_NEW_TASKS = PrecompiledInsert(Task.__table__)  # one statement for every new task, compiled once
_FAILED_OR_CALL_TYPE = select(steps.c.step, steps.c.status, steps.c.output).where(
    steps.c.job_id == bindparam("b_job", type_=Uuid()),
    steps.c.org_id == _ORG,
    or_(steps.c.status == "failed", steps.c.step == "classify-call-type"),
)

# --------------------------------------------------------------------------- gate and loading


def enough_attendees(conn: Connection, event: Event, payload: Any) -> str | None:
    """meeting_ended's gate: only meetings with more than one attendee are worth a debrief."""
    count = conn.execute(
        select(Meeting.attendees_count).where(Meeting.id == payload.meeting_id, of_org(Meeting.org_id, event.org_id))
    ).scalar()
    if count is not None and count <= 1:
        return "single_attendee"
    return None


def _meeting(ctx: StepContext, *, with_org_users: bool = False) -> Meeting:
    """The event's meeting (with the org's users in the same read when the step needs them)."""
    return common.load(ctx, Meeting, ctx.payload.get("meeting_id"), "meeting", with_org_users=with_org_users)


def _transcript(ctx: StepContext, meeting: Meeting) -> Transcript:
    transcript = parse_transcript(meeting.transcript)
    if transcript.is_empty:
        raise PermanentError(f"meeting {meeting.id} ({meeting.title!r}) has no transcript")
    return transcript


def _start(meeting: Meeting) -> datetime:
    return meeting.start_at if meeting.start_at.tzinfo else meeting.start_at.replace(tzinfo=UTC)


def _primary_external(ctx: StepContext, meeting: Meeting) -> tuple[str | None, str | None]:
    """(name, email) of the first attendee who is not one of the org's users."""
    internal = common.internal_emails(ctx)
    for person in meeting.attendees or []:
        if isinstance(person, Mapping) and person.get("email") and str(person["email"]).lower() not in internal:
            return person.get("name"), str(person["email"])
    return None, None


def is_sales(w: Any) -> bool:
    """`when`: the call was classified as a sales call (unknown counts as sales)."""
    return bool(w.output("classify-call-type", "is_sales", True))


def coaching_on(w: Any) -> bool:
    """`when`: coaching is enabled for this call type."""
    return bool(w.output("classify-call-type", "coaching_enabled", True))


# --------------------------------------------------------------------------- steps


def classify_call(ctx: StepContext, inputs: Mapping[str, Any]) -> CallTypeResult:
    """Keep a confident existing call type, else match the org's call types; stored on the meeting."""
    meeting = _meeting(ctx)
    settings = common.org_settings(ctx)
    result = classify_call_type(
        meeting.title, meeting.transcript, meeting.call_type, meeting.call_type_confidence, settings.get("call_types")
    )
    common.execute(
        ctx,
        _SET_CALL_TYPE,
        b_id=meeting.id,
        b_org=ctx.org_id,
        b_call_type=result.call_type,
        b_confidence=result.confidence,
    )
    return result


def extract_items(ctx: StepContext, inputs: Mapping[str, Any]) -> StepResult:
    """Commitments with an owner (rep or prospect) and a due date (LLM when configured)."""
    meeting = _meeting(ctx, with_org_users=True)
    transcript = _transcript(ctx, meeting)
    reps = common.internal_names(ctx)

    def offline() -> ActionItems:
        items = extract_action_items(transcript, reps, _start(meeting))
        intents = detect_intents(transcript, reps, _start(meeting))
        return ActionItems(items=items, summary=summarize(transcript, items, intents, meeting.title, reps))

    return common.think(
        ctx,
        ActionItems,
        "Extract action items (text, owner rep|prospect, due ISO date or null, speaker) and a short "
        "summary from this sales call. Answer with JSON {items, summary}.",
        lambda: transcript.text[:20_000],
        offline,
    )


def detect_call_intents(ctx: StepContext, inputs: Mapping[str, Any]) -> StepResult:
    """Commitments, buying signals and follow-ups; a promised proposal or meeting becomes a follow-up event."""
    meeting = _meeting(ctx, with_org_users=True)
    transcript = _transcript(ctx, meeting)
    reps = common.internal_names(ctx)
    answer = common.think(
        ctx,
        Intents,
        "Find commitments, buying signals (budget, pricing, timeline, decision_maker, competitor) and "
        "follow-ups in this sales call. Answer with JSON matching the Intents schema.",
        lambda: transcript.text[:20_000],
        lambda: detect_intents(transcript, reps, _start(meeting)),
    )
    intents = Intents.model_validate(answer.output)
    contact = _contact_id(ctx, meeting)
    follow_ups: list[FollowUp] = []
    if intents.send_proposal and meeting.deal_id:
        follow_ups.append(
            FollowUp(
                "proposal_generation",
                {
                    "deal_id": str(meeting.deal_id),
                    "meeting_id": str(meeting.id),
                    **({"contact_id": contact} if contact else {}),
                    **({"notes": "\n".join(heard)[:2000]} if (heard := what_they_said(intents.buying_signals)) else {}),
                },
            )
        )
    if intents.schedule_meeting:
        follow_ups.append(
            FollowUp(
                "calendar_find_times",
                {
                    "scheduling_text": intents.schedule_meeting.text,
                    "meeting_id": str(meeting.id),
                    **({"deal_id": str(meeting.deal_id)} if meeting.deal_id else {}),
                    **({"contact_id": contact} if contact else {}),
                },
            )
        )
    return StepResult(
        output=DetectedIntents(intents=intents, follow_ups=[f.type for f in follow_ups]),
        follow_ups=follow_ups,
        cost_usd=answer.cost_usd,
        tokens=answer.tokens,
    )


def _contact_id(ctx: StepContext, meeting: Meeting) -> str | None:
    _name, email = _primary_external(ctx, meeting)
    if not email:
        return None
    found = common.first(ctx, _CONTACT_BY_EMAIL, b_org=ctx.org_id, b_email=email.lower())
    return str(found.id) if found else None


def coaching_feedback(ctx: StepContext, inputs: Mapping[str, Any]) -> CoachingStats:
    """Talk ratio, questions, longest monologue, next-step clarity and one tip."""
    meeting = _meeting(ctx, with_org_users=True)
    return coaching_stats(_transcript(ctx, meeting), common.internal_names(ctx))


def next_actions(ctx: StepContext, inputs: Mapping[str, Any]) -> NextActions:
    """Ranked actions not already among the action items and intents."""
    items = ActionItems.model_validate(inputs["extract-action-items"]).items
    intents = Intents.model_validate((inputs.get("detect-intents") or {}).get("intents") or {})
    meeting = _meeting(ctx)
    deal = common.load_optional(ctx, Deal, meeting.deal_id)
    return NextActions(actions=suggest_next_actions(items, intents, deal.stage if deal else None))


def draft_followup(ctx: StepContext, inputs: Mapping[str, Any]) -> StepResult:
    """The follow-up email to the primary external attendee (LLM when configured)."""
    meeting = _meeting(ctx, with_org_users=True)
    extracted = ActionItems.model_validate(inputs["extract-action-items"])
    intents = Intents.model_validate((inputs.get("detect-intents") or {}).get("intents") or {})
    name, email = _primary_external(ctx, meeting)
    user = common.rep(ctx)
    answer = common.think(
        ctx,
        EmailDraft,
        "Write a short follow-up email after a sales call. Answer with JSON {subject, body}.",
        lambda: (
            f"Meeting: {meeting.title}\nSummary: {extracted.summary}\nAction items: "
            f"{[i.model_dump(mode='json') for i in extracted.items]}"
        ),
        lambda: draft_followup_email(meeting.title, name, user.name, extracted.items, intents),
    )
    draft = EmailDraft.model_validate(answer.output)
    return StepResult(
        output=FollowupDraft(to=email, contact_name=name, subject=draft.subject, body=draft.body),
        cost_usd=answer.cost_usd,
        tokens=answer.tokens,
    )


def update_crm(ctx: StepContext, inputs: Mapping[str, Any]) -> CrmUpdate:
    """Write the next step and close-date hint to the deal, log the meeting (activity + audit)."""
    meeting = _meeting(ctx)
    items = ActionItems.model_validate(inputs["extract-action-items"]).items
    if not meeting.deal_id:
        return CrmUpdate(deal_id=None, next_step=None, close_date_hint=None, activity_logged=False)
    rep_items = [i for i in items if i.owner == "rep"] or items
    next_step = rep_items[0].text[:500] if rep_items else None
    due = min((i.due for i in items if i.due), default=None)
    deal = common.first(ctx, _DEAL_NEXT_STEP, b_id=meeting.deal_id, b_org=ctx.org_id)
    if deal is None:
        raise PermanentError(f"deal {meeting.deal_id} of meeting {meeting.id} not found (deleted?)")
    before = {"next_step": deal.next_step}
    # The activity first: the deal is then written once, its last activity being the one just logged
    # (the meeting's end when this step's activity was already there).
    logged_at = outbound.record_activity(
        ctx,
        kind="meeting",
        subject=meeting.title,
        body=next_step,
        deal_id=meeting.deal_id,
        direction=None,
        touch_deal=False,
    )
    with ctx.transaction() as conn:
        common.execute_on(
            conn,
            _DEAL_AFTER_MEETING,
            b_id=meeting.deal_id,
            b_org=ctx.org_id,
            b_at=logged_at or meeting.end_at or ctx.now,
            b_next_step=next_step or None,
        )
        record(
            conn,
            ctx.org_id,
            actor="proactive",
            action="deal.next_step",
            target_type="deal",
            target_id=str(meeting.deal_id),
            data={"before": before, "after": next_step, "meeting": str(meeting.id)},
        )
    return CrmUpdate(
        deal_id=str(meeting.deal_id),
        next_step=next_step,
        close_date_hint=due.isoformat() if due else None,
        activity_logged=True,
    )


def create_tasks(ctx: StepContext, inputs: Mapping[str, Any]) -> TasksCreated:
    """One open task per rep-owned action item (not twice for the same text of the same meeting)."""
    meeting = _meeting(ctx)
    items = [i for i in ActionItems.model_validate(inputs["extract-action-items"]).items if i.owner == "rep"]
    titles = []
    new_rows = []
    existing = {t.lower() for t in common.scalars(ctx, _TASK_TITLES, b_org=ctx.org_id, b_id=meeting.id)}
    for item in items:
        title = item.text[:500]
        if title.lower() in existing:
            continue
        existing.add(title.lower())
        new_rows.append(
            {
                "id": uuid.uuid4(),
                "org_id": ctx.org_id,
                "user_id": meeting.user_id or ctx.user_id,
                "deal_id": meeting.deal_id,
                "meeting_id": meeting.id,
                "title": title,
                "due_at": datetime.combine(item.due, time(17), tzinfo=UTC) if item.due else None,
                "status": "open",
                "source_job_id": ctx.job_id,
                "created_at": ctx.now,
            }
        )
        titles.append(title)
    if new_rows:
        with ctx.transaction() as conn:
            _NEW_TASKS.run(conn, new_rows)
    return TasksCreated(created=len(titles), titles=titles)


def notify_summary(ctx: StepContext, inputs: Mapping[str, Any]) -> Debrief:
    """The debrief DM: summary, action items, intents, coaching tip, next actions and what failed."""
    meeting = _meeting(ctx)
    extracted = inputs.get("extract-action-items") or {}
    intents = (inputs.get("detect-intents") or {}).get("intents") or {}
    coaching = inputs.get("coaching-micro-feedback") or {}  # a dependency: ended before this step ran
    # One read for both: the job's failed steps and classify-call-type's output.
    failed, call_type = [], {}
    for row in common.rows(ctx, _FAILED_OR_CALL_TYPE, b_job=ctx.job_id, b_org=ctx.org_id):
        if row.status == "failed":
            failed.append(row.step)
        if row.step == "classify-call-type":
            call_type = row.output or {}
    data = {
        "meeting_title": meeting.title,
        "meeting_start": meeting.start_at.isoformat(),
        "call_type": call_type.get("call_type"),
        "summary": extracted.get("summary", ""),
        "action_items": [  # each with its line as the rep reads it: "Send the proposal by Fri 11 Dec — owner: Alice"
            {**item, "line": task_line(ActionItem.model_validate(item))} for item in extracted.get("items", [])
        ],
        "intents": {  # the commitments are the action items above, as tasks
            "buying_signals": common.unique(s.get("quote", "") for s in intents.get("buying_signals", [])),
            "follow_ups": intents.get("follow_ups", []),
        },
        "coaching_tip": coaching.get("tip"),
        "next_actions": [a.get("text") for a in (inputs.get("suggest-next-actions") or {}).get("actions", [])],
        "failed_steps": failed,
    }
    outbox_id = common.notify(
        ctx, "meeting_debrief", blocks.meeting_debrief(data), user_id=meeting.user_id or ctx.user_id
    )
    return Debrief(outbox_id=str(outbox_id) if outbox_id else None, failed_steps=failed)


def review_followup(ctx: StepContext, inputs: Mapping[str, Any]) -> FollowupPreview:
    """The follow-up email as the rep reviews it (approval email_preview)."""
    if not inputs.get("draft-followup-email"):
        raise SkipStep("no_draft")  # the best-effort draft failed: nothing to review
    draft = FollowupDraft.model_validate(inputs["draft-followup-email"])
    meeting = _meeting(ctx)
    user = common.rep(ctx, meeting.user_id or ctx.user_id)
    return FollowupPreview(
        to=draft.to,
        subject=draft.subject,
        body=draft.body,
        title=f"Follow-up email: {meeting.title}",
        context=f"Follow-up to {meeting.title}" + (f" with {draft.contact_name}" if draft.contact_name else ""),
        timezone=common.rep_zone(ctx, user).key,
        deal_id=str(meeting.deal_id) if meeting.deal_id else None,
        approver_user_ids=[str(user.id)],
    )


def send_followup(ctx: StepContext, inputs: Mapping[str, Any]) -> FollowupSent:
    """Send the approved (maybe edited) follow-up as the rep, after the Undo window; log it."""
    review = inputs.get("review-followup-email")
    if not review:  # the review was skipped (no draft) or expired: nothing was approved
        raise SkipStep("upstream_skipped:review-followup-email")
    preview = review.get("preview") or {}
    to = common.require(preview.get("to"), "cannot send the follow-up: no external attendee with an email")
    meeting = _meeting(ctx)
    user = common.rep(ctx, meeting.user_id or ctx.user_id)
    subject = common.edited(review, "subject", preview.get("subject"))
    body = common.edited(review, "body", preview.get("body"))
    result = outbound.send_email(ctx, user, [to], subject, body)
    outbound.record_activity(ctx, kind="email", subject=subject, body=body, deal_id=meeting.deal_id)
    return FollowupSent(to=to, subject=subject, result=result)
