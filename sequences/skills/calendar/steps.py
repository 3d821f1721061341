"""calendar_find_times steps: parse the request, find free slots, act on the rep's choice."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from sequences.skills import common, outbound
from sequences.skills.calendar.scheduling import (
    SchedulingRequest,
    Slot,
    find_slots,
    freebusy_window,
    parse_scheduling_request,
)
from worker.engine.context import StepContext
from worker.errors import PermanentError
from worker.models import Contact

# Days added to the search window each time the rep asks for more options.
MORE_OPTIONS_DAYS = 10


class ParsedRequest(BaseModel):
    request: SchedulingRequest
    timezone: str
    text: str


class SlotsFound(BaseModel):
    slots: list[Slot]
    source: str  # google | stored
    extra_days: int
    timezone: str
    window_text: str
    duration_minutes: int


class TimeOptions(BaseModel):
    title: str
    contact_name: str | None
    contact_email: str | None
    duration_minutes: int
    timezone: str
    window_text: str
    slots: list[dict[str, Any]]
    deal_id: str | None
    approver_user_ids: list[str]


class ActResult(BaseModel):
    action: str
    slot_start: str | None = None
    result: dict[str, Any] = {}


def parse_request(ctx: StepContext, inputs: Mapping[str, Any]) -> ParsedRequest:
    """Duration, window and part of day from the scheduling text, in the rep's time zone."""
    text = common.require(str(ctx.payload.get("scheduling_text") or "").strip(), "the event has no scheduling_text")
    user = common.rep(ctx)
    tz = common.rep_zone(ctx, user)
    return ParsedRequest(request=parse_scheduling_request(text, ctx.now, tz), timezone=tz.key, text=text)


def find_available_slots(ctx: StepContext, inputs: Mapping[str, Any]) -> SlotsFound:
    """Up to 5 scored free slots in working hours, from the rep's calendar (wider on each re-run)."""
    parsed = ParsedRequest.model_validate(inputs["parse-scheduling-request"])
    user = common.rep(ctx)
    tz = common.zone_of(parsed.timezone)
    extra = MORE_OPTIONS_DAYS * ctx.iteration
    time_min, time_max = freebusy_window(parsed.request, tz, extra_days=extra)
    busy, source = outbound.busy_intervals(ctx, user, time_min, time_max)
    slots = find_slots(busy, parsed.request, tz, ctx.now, extra_days=extra)
    window = parsed.request.window_text + (f" or in the {extra} days after" if extra else "")
    return SlotsFound(
        slots=slots,
        source=source,
        extra_days=extra,
        timezone=tz.key,
        window_text=window,
        duration_minutes=parsed.request.duration_minutes,
    )


def present_time_options(ctx: StepContext, inputs: Mapping[str, Any]) -> TimeOptions:
    """The approval preview: the slots as radio options for the rep."""
    found = SlotsFound.model_validate(inputs["find-available-slots"])
    contact = common.load_optional(ctx, Contact, ctx.payload.get("contact_id"))
    who = contact.name if contact else "your contact"
    return TimeOptions(
        title=f"Times to meet {who}",
        contact_name=contact.name if contact else None,
        contact_email=contact.email if contact else None,
        duration_minutes=found.duration_minutes,
        timezone=found.timezone,
        window_text=found.window_text,
        slots=[s.model_dump(mode="json") for s in found.slots],
        deal_id=ctx.payload.get("deal_id"),
        approver_user_ids=[str(ctx.user_id)] if ctx.user_id else [],
    )


def _chosen(review: Mapping[str, Any]) -> dict[str, Any]:
    slots = (review.get("preview") or {}).get("slots") or []
    if not slots:
        raise PermanentError("no slot to act on: the search found no free time (ask for more options)")
    wanted = (review.get("data") or {}).get("slot")
    if not wanted:
        return slots[0]  # no choice given: the radio's preselected first slot
    try:
        instant = datetime.fromisoformat(str(wanted))
        chosen = next((s for s in slots if datetime.fromisoformat(s["start"]) == instant), None)
    except ValueError:  # not a time at all (a naive time never equals an offered aware start)
        chosen = None
    if chosen is None:
        raise PermanentError(f"the chosen slot {wanted!r} is not one of the offered times")
    return chosen


def act_on_choice(ctx: StepContext, inputs: Mapping[str, Any]) -> ActResult:
    """Send the invite for the chosen slot, or email the proposed times to the contact."""
    review = inputs["present-time-options"]
    decision = review.get("decision")
    user = common.rep(ctx)
    contact = common.load_optional(ctx, Contact, ctx.payload.get("contact_id"))
    if decision == "send_invite":
        slot = _chosen(review)
        attendee = common.require(
            contact.email if contact else None, "cannot send an invite: the event names no contact (contact_id)"
        )
        start = datetime.fromisoformat(slot["start"])
        end = datetime.fromisoformat(slot["end"]) if slot.get("end") else start + timedelta(minutes=30)
        title = f"{common.first_name(user.name)} / {contact.name if contact else attendee}"
        result = outbound.create_event(
            ctx,
            user,
            title,
            start,
            end,
            [attendee],
            description=f"Scheduled by Proactive from: {ctx.payload.get('scheduling_text')}",
        )
        outbound.record_activity(
            ctx,
            kind="meeting",
            subject=f"Meeting booked: {slot.get('label', slot['start'])}",
            deal_id=ctx.payload.get("deal_id"),
            contact_id=contact.id if contact else None,
        )
        return ActResult(action="invite", slot_start=slot["start"], result=result)
    if decision == "send_times":
        slots = (review.get("preview") or {}).get("slots") or []
        to = common.require(contact.email if contact else None, "cannot email times: the event names no contact")
        lines = "\n".join(f"  • {s.get('label', s['start'])}" for s in slots) or "  (no free time found)"
        body = (
            f"Hi {common.first_name(contact.name if contact else None)},\n\nHere are a few times that work on "
            f"my side:\n{lines}\n\nReply with the one that suits you and I'll send the invite.\n\n"
            f"{common.first_name(user.name)}"
        )
        result = outbound.send_email(ctx, user, [to], "A few times to meet", body)
        outbound.record_activity(
            ctx,
            kind="email",
            subject="Proposed meeting times",
            body=body,
            deal_id=ctx.payload.get("deal_id"),
            contact_id=contact.id if contact else None,
        )
        return ActResult(action="times_emailed", result=result)
    raise PermanentError(f"unexpected decision {decision!r} for a calendar_slots approval")
