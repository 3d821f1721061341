"""The event envelopes and the payload schema of each of the nine event types (docs/events.md).

Two envelopes: `PublicEvent` is what a caller may send (`POST /api/events`, `proactive fire`):
type, org, user, payload, an idempotency key, a delay and `replace`. `Event` is what the system's
own producers build (webhooks, crons, Slack, follow-ups, smoke, the edges after they read a
`PublicEvent`): it adds the fields only the system may set (`source`, `parent_job_id`, `depth`,
`item_index`). Unknown fields are refused in both, so a typo is an error, not a silently ignored
value; an internal field sent by a caller is refused naming it (`INTERNAL_FIELDS`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    """Who produced an event. Set by the producer, never by a caller: an API key's events are
    `api:<key name>` (`api_source`), the admin token's `api`."""

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


# An API key's events carry `api:<key name>` as their source, cut to 100 characters: the source is
# a key of the metrics roll-up (metrics_rollups.key, 100), and sequence_jobs.source holds 120.
API_SOURCE_PREFIX = "api:"
MAX_SOURCE_CHARS = 100
# Envelope fields only the system sets: refused with a 422 naming them when a caller sends one.
INTERNAL_FIELDS = ("source", "parent_job_id", "depth", "item_index")
# Where a caller's idempotency keys live: stored as `caller:<key>` (explicit or default), so a
# caller's key can never be one a cron, webhook or follow-up uses (their keys have no such prefix).
CALLER_KEY_PREFIX = "caller:"
# Longest idempotency key stored (sequence_jobs.idempotency_key): a 300-character key plus the prefix.
MAX_STORED_KEY_CHARS = 320
# Longest delay (minutes) an event may ask for: 30 days.
MAX_DELAY_MINUTES = 60 * 24 * 30


def api_source(key_name: str | None) -> str:
    """The source of an event fired over the API: `api:<key name>` for an org key (cut to fit the
    column), `api` for the admin token (`key_name` None)."""
    if not key_name:
        return Source.API.value
    return (API_SOURCE_PREFIX + key_name)[:MAX_SOURCE_CHARS]


def is_caller_source(source: str) -> bool:
    """True for the sources of events a caller sent (`api`, `api:<key name>`, `cli`): their
    idempotency keys live under `CALLER_KEY_PREFIX`."""
    return source in (Source.API.value, Source.CLI.value) or source.startswith(API_SOURCE_PREFIX)


def parse_source(value: Any) -> Source | str:
    """A stored or received source: one of `Source`, or `api:<key name>`; ValueError otherwise."""
    if isinstance(value, Source):
        return value
    if isinstance(value, str):
        try:
            return Source(value)
        except ValueError:
            if value.startswith(API_SOURCE_PREFIX) and len(API_SOURCE_PREFIX) < len(value) <= MAX_SOURCE_CHARS:
                return value
    accepted = ", ".join(s.value for s in Source)
    raise ValueError(f"unknown source; one of {accepted}, or {API_SOURCE_PREFIX}<key name>")


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


def _needs_user(event_type: EventType, user_id: uuid.UUID | None) -> None:
    if user_id is None and event_type not in ORG_LEVEL_TYPES:
        raise ValueError(f"user_id is required for {event_type.value} events")


class PublicEvent(BaseModel):
    """What a caller sends (`POST /api/events`, `proactive fire`). The edge that receives it sets
    the source; `idempotency_key` is stored under `CALLER_KEY_PREFIX`; `delay_minutes` makes the job
    wait (visible, cancellable); `replace` cancels the live job of the same rep and deal
    (deal-bound types, docs/events.md)."""

    model_config = ConfigDict(extra="forbid", title="Event")

    type: EventType
    org_id: uuid.UUID
    user_id: uuid.UUID | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=300)
    delay_minutes: float | None = Field(default=None, ge=0, le=MAX_DELAY_MINUTES)
    replace: bool = False

    @model_validator(mode="after")
    def _user_for_rep_events(self) -> PublicEvent:
        _needs_user(self.type, self.user_id)
        return self


class Event(BaseModel):
    """The envelope the system's producers build (webhook, cron, Slack, follow-up, smoke, and the
    API and CLI edges from a `PublicEvent`)."""

    model_config = ConfigDict(extra="forbid")

    type: EventType
    source: Source | str
    org_id: uuid.UUID
    user_id: uuid.UUID | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=300)
    parent_job_id: uuid.UUID | None = None
    # bounded so a hostile value is a field error, not an overflow of the integer column
    depth: int = Field(default=0, ge=0, le=MAX_DEPTH_STORED)
    item_index: int | None = Field(default=None, ge=0, le=MAX_DEPTH_STORED)  # position among a parent's follow-ups
    delay_minutes: float | None = Field(default=None, ge=0, le=MAX_DELAY_MINUTES)
    replace: bool = False  # cancel the live job of the same rep and deal (deal-bound types)

    @field_validator("source", mode="plain")
    @classmethod
    def _known_source(cls, value: Any) -> Source | str:
        return parse_source(value)

    @model_validator(mode="after")
    def _user_for_rep_events(self) -> Event:
        _needs_user(self.type, self.user_id)
        return self
