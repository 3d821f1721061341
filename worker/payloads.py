"""The event envelope and the payload schema of each of the nine event types (docs/events.md).

These are the public contract of `fire_event`, `/api/events` and `proactive fire`: unknown fields
are refused so a typo is an error, not a silently ignored value.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Largest accepted payload, serialised (bytes): events carry ids and short texts, not documents.
MAX_PAYLOAD_BYTES = 256 * 1024
# Deepest follow-up chain accepted (above 5 -> skipped, reason chain_too_deep).
MAX_CHAIN_DEPTH = 5
# Largest depth / item index an envelope may carry at all (deeper than the chain limit is stored as
# a visible skipped job; beyond this it is nonsense, refused before it reaches a 32-bit column).
MAX_DEPTH_STORED = 1000


class EventType(StrEnum):
    MEETING_ENDED = "meeting_ended"
    PRE_MEETING_90MIN = "pre_meeting_90min"
    EMAIL_RECEIVED = "email_received"
    PROPOSAL_GENERATION = "proposal_generation"
    CALENDAR_FIND_TIMES = "calendar_find_times"
    STALE_DEAL_REVIVAL = "stale_deal_revival"
    CAMPAIGN_DAILY_CHECK = "campaign_daily_check"
    COACHING_WEEKLY = "coaching_weekly"
    DEAL_RISK_SCAN = "deal_risk_scan"


class Source(StrEnum):
    WEBHOOK_RECORDING = "webhook:recording"
    WEBHOOK_GMAIL = "webhook:gmail"
    SLACK_ACTION = "slack:action"
    CRON_MORNING = "cron:morning"
    CRON_MEETING_PREP = "cron:meeting-prep"
    CRON_DAILY = "cron:daily"
    CRON_WEEKLY = "cron:weekly"
    CHAIN = "chain"
    API = "api"
    CLI = "cli"
    SMOKE = "smoke"


class Payload(BaseModel):
    """Base of the per-type payloads: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class MeetingEnded(Payload):
    meeting_id: uuid.UUID


class PreMeeting(Payload):
    calendar_event_id: uuid.UUID


class EmailReceived(Payload):
    """Either a stored email (`email_id`) or the content itself (campaign reply drafts)."""

    email_id: uuid.UUID | None = None
    # 294 = 300 - len("email:"): the default key `email:{message_id}` must fit idempotency_key (300)
    message_id: str | None = Field(default=None, max_length=294)
    from_email: str | None = Field(default=None, max_length=320)
    subject: str | None = Field(default=None, max_length=1000)
    body: str | None = Field(default=None, max_length=100_000)
    thread_id: str | None = Field(default=None, max_length=300)
    campaign_reply_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _needs_email_or_content(self) -> EmailReceived:
        if self.email_id is None and not (self.from_email and self.body):
            raise ValueError("give email_id, or from_email and body")
        return self


class ProposalGeneration(Payload):
    deal_id: uuid.UUID
    contact_id: uuid.UUID | None = None
    meeting_id: uuid.UUID | None = None
    notes: str | None = Field(default=None, max_length=20_000)


class CalendarFindTimes(Payload):
    scheduling_text: str = Field(min_length=1, max_length=20_000)
    contact_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    meeting_id: uuid.UUID | None = None


class StaleDealRevival(Payload):
    deal_id: uuid.UUID


class CampaignDailyCheck(Payload):
    date: dt.date | None = None
    campaign_ids: list[uuid.UUID] | None = None


class CoachingWeekly(Payload):
    week: str | None = Field(default=None, pattern=r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$", examples=["2026-W48"])


class DealRiskScan(Payload):
    date: dt.date | None = None
    deal_ids: list[uuid.UUID] | None = Field(default=None, max_length=500)


PAYLOAD_MODELS: dict[str, type[Payload]] = {
    EventType.MEETING_ENDED: MeetingEnded,
    EventType.PRE_MEETING_90MIN: PreMeeting,
    EventType.EMAIL_RECEIVED: EmailReceived,
    EventType.PROPOSAL_GENERATION: ProposalGeneration,
    EventType.CALENDAR_FIND_TIMES: CalendarFindTimes,
    EventType.STALE_DEAL_REVIVAL: StaleDealRevival,
    EventType.CAMPAIGN_DAILY_CHECK: CampaignDailyCheck,
    EventType.COACHING_WEEKLY: CoachingWeekly,
    EventType.DEAL_RISK_SCAN: DealRiskScan,
}

# Event types that concern the whole org rather than one rep: user_id may be omitted.
ORG_LEVEL_TYPES = frozenset({EventType.DEAL_RISK_SCAN, EventType.CAMPAIGN_DAILY_CHECK})


class Event(BaseModel):
    """The envelope every producer builds (webhook, cron, Slack, CLI, API, follow-up)."""

    model_config = ConfigDict(extra="forbid")

    type: EventType
    source: Source
    org_id: uuid.UUID
    user_id: uuid.UUID | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=300)
    parent_job_id: uuid.UUID | None = None
    # bounded so a hostile value is a field error, not an overflow of the integer column
    depth: int = Field(default=0, ge=0, le=MAX_DEPTH_STORED)
    item_index: int | None = Field(default=None, ge=0, le=MAX_DEPTH_STORED)  # position among a parent's follow-ups
    delay_minutes: float | None = Field(default=None, ge=0, le=60 * 24 * 30)

    @model_validator(mode="after")
    def _user_for_rep_events(self) -> Event:
        if self.user_id is None and self.type not in ORG_LEVEL_TYPES:
            raise ValueError(f"user_id is required for {self.type.value} events")
        return self
