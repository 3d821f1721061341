"""SQLAlchemy 2 typed models for every table (docs/architecture.md#data-model): tenancy, CRM, engine.

One id type everywhere (UUID). Every table but `orgs` carries `org_id`, and every query filters by
it. Timestamps are timezone-aware UTC in Python on both PostgreSQL and SQLite (`UTCDateTime`).
JSON columns are JSONB on PostgreSQL and JSON text on SQLite.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store timezone-aware UTC values")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")  # None -> SQL NULL

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        uuid.UUID: Uuid(),
    }


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)


def _org(*, index: bool = True) -> Mapped[uuid.UUID]:
    """The tenant column. `index=False` on a table whose every write is on the step path and which has
    an index leading with org_id anyway (it serves org lookups and the cascade; a second one is only
    write cost: migration 0016)."""
    return mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=index)


def _created() -> Mapped[datetime]:
    return mapped_column(default=utcnow)


# --------------------------------------------------------------------------- tenancy


def checked(condition: Any) -> Any:
    """`condition` as a check on rows a more selective key finds (a primary key, a job's id), written
    `(condition) IS true`: PostgreSQL cannot use an index for it, so the planner never reads such rows
    through the index of a less selective column. Plain `org_id = :org` or `status = :s` next to
    `id = :id` lets a plan made without statistics (a table never analyzed, an org the statistics
    never saw) go through the `org_id` or `status` index and filter on the id: every row of the org,
    or every running step, read to find one, a cost that grows with the table. Keep plain conditions
    where they are what the query selects by."""
    return condition.is_(true())


def of_org(column: Any, org: Any) -> Any:
    """The tenant check `column = org` on rows a more selective key finds (see `checked`)."""
    return checked(column == org)


class Org(Base):
    __tablename__ = "orgs"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(200))
    slack_team_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # enabled_sequences (list or absent = all), days_inactive, stale_deals_hour, thresholds...
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = _created()


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("org_id", "email"),
        UniqueConstraint("org_id", "slack_user_id"),
    )
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="member")  # member | admin
    slack_user_id: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str | None] = mapped_column(String(64))
    briefing_time: Mapped[str] = mapped_column(String(5), default="08:00")  # local HH:MM
    quiet_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # {"start": "20:00", "end": "07:00"}
    max_notifications_per_hour: Mapped[int] = mapped_column(Integer, default=10)
    opted_out_sequences: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = _created()


class Integration(Base):
    __tablename__ = "integrations"
    __table_args__ = (
        Index(None, "provider", "status"),
        Index(None, "provider", "account"),
        # one recorder integration per org, found by org on every recording (worker/recorder/secrets.py; 0013)
        Index(
            "ix_integrations_recorder_org",
            "org_id",
            unique=True,
            postgresql_where=text("provider = 'recorder'"),
            sqlite_where=text("provider = 'recorder'"),
        ),
    )
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(16))  # slack | google | instantly | recorder
    account: Mapped[str | None] = mapped_column(String(320))  # e.g. the Gmail address
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary)  # Fernet token (MultiFernet)
    scopes: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | revoked | error
    history_id: Mapped[str | None] = mapped_column(String(32))
    watch_expiration: Mapped[datetime | None] = mapped_column()
    resource_id: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    # Gmail history sync, one at a time per mailbox: a push stamps sync_wanted_at; the syncing task
    # holds sync_lease_until and syncs again when a push came in while it ran (worker/google/sync.py).
    sync_wanted_at: Mapped[datetime | None] = mapped_column()
    sync_lease_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --------------------------------------------------------------------------- CRM


class Company(Base):
    __tablename__ = "companies"
    __table_args__ = (Index(None, "org_id", "domain"),)
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(200))
    industry: Mapped[str | None] = mapped_column(String(100))
    employees: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("org_id", "email"),)
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    company_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32), default="active")  # active | out_of_office | unsubscribed
    status_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = _created()


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (Index(None, "org_id", "stage"), Index(None, "org_id", "owner_id"))
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    company_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    # prospecting | qualification | discovery | demo | proposal | negotiation | closed_won | closed_lost
    stage: Mapped[str] = mapped_column(String(32), default="prospecting")
    value: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    primary_contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    close_date: Mapped[date | None] = mapped_column(Date)
    next_step: Mapped[str | None] = mapped_column(Text)
    lost_reason: Mapped[str | None] = mapped_column(Text)
    stage_changed_at: Mapped[datetime | None] = mapped_column()
    last_activity_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = _created()


class Meeting(Base):
    __tablename__ = "meetings"
    __table_args__ = (
        UniqueConstraint("org_id", "external_id"),
        # rows whose transcript retention has not purged yet, by age (worker/ops/retention.py; migration 0012)
        Index(
            "ix_meetings_unpurged",
            "org_id",
            "created_at",
            postgresql_where=text("purged_at IS NULL"),
            sqlite_where=text("purged_at IS NULL"),
        ),
    )
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    deal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))
    company_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    external_id: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime | None] = mapped_column()
    attendees: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    attendees_count: Mapped[int] = mapped_column(Integer, default=0)
    transcript: Mapped[str | None] = mapped_column(Text)
    call_type: Mapped[str | None] = mapped_column(String(64))
    call_type_confidence: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = _created()
    # when retention purged the transcript (worker/ops/retention.py; migration 0012); NULL before
    purged_at: Mapped[datetime | None] = mapped_column()


class CalendarEvent(Base):
    __tablename__ = "calendar_events"
    __table_args__ = (UniqueConstraint("org_id", "user_id", "external_id"), Index(None, "start_at"))
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    deal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))
    external_id: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime] = mapped_column()
    attendees: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    attendees_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _created()


class Activity(Base):
    __tablename__ = "activities"
    __table_args__ = (Index(None, "org_id", "deal_id", "occurred_at"), Index(None, "org_id", "contact_id"))
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    deal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    company_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))  # email | meeting | call | note
    direction: Mapped[str | None] = mapped_column(String(8))  # inbound | outbound
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = _created()


class Email(Base):
    __tablename__ = "emails"
    __table_args__ = (
        UniqueConstraint("org_id", "message_id"),
        # rows whose body retention has not purged yet, by age (worker/ops/retention.py; migration 0012)
        Index(
            "ix_emails_unpurged",
            "org_id",
            "created_at",
            postgresql_where=text("purged_at IS NULL"),
            sqlite_where=text("purged_at IS NULL"),
        ),
    )
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    message_id: Mapped[str] = mapped_column(String(300))
    thread_id: Mapped[str | None] = mapped_column(String(300))
    rfc822_message_id: Mapped[str | None] = mapped_column(String(500))
    references: Mapped[str | None] = mapped_column(Text)
    from_addr: Mapped[str] = mapped_column(String(320))
    to_addrs: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    subject: Mapped[str | None] = mapped_column(String(500))
    snippet: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = _created()
    # when retention purged the body and snippet (worker/ops/retention.py; migration 0012); NULL before
    purged_at: Mapped[datetime | None] = mapped_column()


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (Index(None, "org_id", "user_id", "status"),)
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    deal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))
    meeting_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("meetings.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(500))
    due_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | done
    source_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    created_at: Mapped[datetime] = _created()


class Proposal(Base):
    __tablename__ = "proposals"
    # rows whose content retention has not purged yet, by age (worker/ops/retention.py; migration 0012)
    __table_args__ = (
        Index(
            "ix_proposals_unpurged",
            "org_id",
            "created_at",
            postgresql_where=text("purged_at IS NULL"),
            sqlite_where=text("purged_at IS NULL"),
        ),
    )
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    deal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    template: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    content: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | sent | shared | skipped
    link: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = _created()
    # when retention purged the content (worker/ops/retention.py; migration 0012); NULL before
    purged_at: Mapped[datetime | None] = mapped_column()


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("org_id", "external_id"),)
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="active")
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = _created()


class CampaignReply(Base):
    __tablename__ = "campaign_replies"
    __table_args__ = (
        UniqueConstraint("org_id", "external_id"),
        # rows whose body retention has not purged yet, by age (worker/ops/retention.py; migration 0012)
        Index(
            "ix_campaign_replies_unpurged",
            "org_id",
            "created_at",
            postgresql_where=text("purged_at IS NULL"),
            sqlite_where=text("purged_at IS NULL"),
        ),
    )
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    external_id: Mapped[str] = mapped_column(String(200))
    from_email: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    classification: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed | nurture | drafted
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = _created()
    # when retention purged the body (worker/ops/retention.py; migration 0012); NULL before
    purged_at: Mapped[datetime | None] = mapped_column()


class NurtureEntry(Base):
    __tablename__ = "nurture_queue"
    __table_args__ = (UniqueConstraint("org_id", "contact_id"),)
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    email: Mapped[str | None] = mapped_column(String(320))
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(String(200))
    added_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()


class DealRiskScore(Base):
    __tablename__ = "deal_risk_scores"
    __table_args__ = (Index(None, "org_id", "deal_id", "scored_at"),)
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    deal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    score: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(8))  # low | medium | high
    factors: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    scored_at: Mapped[datetime] = mapped_column(default=utcnow)
    alerted_at: Mapped[datetime | None] = mapped_column()


class CoachingReport(Base):
    __tablename__ = "coaching_reports"
    __table_args__ = (UniqueConstraint("org_id", "user_id", "week"),)
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    week: Mapped[str] = mapped_column(String(10))  # ISO week, e.g. 2026-W48
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    digest: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    created_at: Mapped[datetime] = _created()


# --------------------------------------------------------------------------- engine


# The jobs that hold their live key (ux_sequence_jobs_live): still live, no cancel requested.
# The step runs still to run or running (an OR, not IN: SQLite uses a partial index only when the
# query's condition is one of the OR's terms).
LIVE_STEP_WHERE = "status = 'queued' OR status = 'running'"
LIVE_WHERE = "live_key IS NOT NULL AND status IN ('queued', 'running', 'awaiting_approval') AND NOT cancel_requested"


class SequenceJob(Base):
    __tablename__ = "sequence_jobs"
    __table_args__ = (
        UniqueConstraint("org_id", "idempotency_key"),
        Index(None, "org_id", "created_at"),
        Index(None, "status", "deadline_at"),
        # a job's follow-ups (timeline page; migration 0007); root jobs, most of them, have no entry (0016)
        Index(
            None,
            "parent_job_id",
            postgresql_where=text("parent_job_id IS NOT NULL"),
            sqlite_where=text("parent_job_id IS NOT NULL"),
        ),
        # Jobs not folded into metrics_rollups yet: the metrics' live part, and the roll-up's work
        # (worker/metrics/rollup.py; migration 0009). Partial, so they stay small.
        Index(
            "ix_sequence_jobs_unrolled",
            "org_id",
            "created_at",
            postgresql_where=text("rolled_up_at IS NULL"),
            sqlite_where=text("rolled_up_at IS NULL"),
        ),
        Index(
            "ix_sequence_jobs_rollup_due",
            "finished_at",
            postgresql_where=text("rolled_up_at IS NULL AND finished_at IS NOT NULL"),
            sqlite_where=text("rolled_up_at IS NULL AND finished_at IS NOT NULL"),
        ),
        # One live job per (rep, deal) for the deal-bound sequences (worker/engine/one_live.py; migration 0010):
        # unique over the jobs still live, so the database refuses a second one, whatever the race.
        Index(
            "ux_sequence_jobs_live",
            "org_id",
            "live_key",
            unique=True,
            postgresql_where=text(LIVE_WHERE),
            sqlite_where=text(LIVE_WHERE),
        ),
        # Jobs whose content retention has not purged yet, by age (worker/ops/retention.py; migration 0012).
        Index(
            "ix_sequence_jobs_unpurged",
            "org_id",
            "created_at",
            postgresql_where=text("purged_at IS NULL"),
            sqlite_where=text("purged_at IS NULL"),
        ),
    )
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org(index=False)  # (org_id, created_at) leads with it
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    event_type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(120))  # a Source, or api:<key name> (migration 0010)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # a caller's keys are stored as caller:<key> (up to 300 + the prefix; migration 0010)
    idempotency_key: Mapped[str] = mapped_column(String(320))
    parent_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    depth: Mapped[int] = mapped_column(Integer, default=0)
    iteration: Mapped[int] = mapped_column(Integer, default=0)  # bumped when a decision re-runs steps
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(String(200))  # why skipped/cancelled/expired
    definition_hash: Mapped[str | None] = mapped_column(String(64))
    trace_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    error_step: Mapped[str | None] = mapped_column(String(100))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # sends recorded, Slack kept in the console inbox; decided when the event is accepted (events.accept)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    deadline_at: Mapped[datetime | None] = mapped_column()
    paused_at: Mapped[datetime | None] = mapped_column()
    paused_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # when the job was folded into metrics_rollups (settled: final, its messages sent); NULL before
    rolled_up_at: Mapped[datetime | None] = mapped_column()
    # deal-bound jobs: <type>:<user_id>:<deal_id> (worker/engine/one_live.py); NULL for the other types
    live_key: Mapped[str | None] = mapped_column(String(120))
    # a job skipped `already_live`: the live job it met
    live_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    # an event fired with delay_minutes: when its first steps may start (they wait until then)
    scheduled_for: Mapped[datetime | None] = mapped_column()
    # when retention purged the payload and its steps' outputs, approvals' drafts and effects' results
    # (worker/ops/retention.py; migration 0012); NULL before. The metadata stays.
    purged_at: Mapped[datetime | None] = mapped_column()


class SequenceDefinition(Base):
    """A sequence definition as data, stored once per hash (no org: definitions are code, not tenant
    data). A job plans from the one its `definition_hash` names, so a deploy never changes the DAG of
    a job already running (worker/engine/definitions.py, worker/engine/pinned.py)."""

    __tablename__ = "sequence_definitions"
    definition_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)  # worker/engine/definitions.py to_json
    created_at: Mapped[datetime] = _created()


class StepRun(Base):
    __tablename__ = "step_runs"
    __table_args__ = (
        UniqueConstraint("job_id", "step", "iteration"),
        # The sweeper's and the claims' scans of queued and running steps; a finished step has no entry
        # (two of a step's three row versions write none: migration 0016).
        Index(None, "status", "queued_at", postgresql_where=text(LIVE_STEP_WHERE), sqlite_where=text(LIVE_STEP_WHERE)),
        Index(None, "org_id", "step"),
    )
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org(index=False)  # (org_id, step) leads with it
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sequence_jobs.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(100))
    iteration: Mapped[int] = mapped_column(Integer, default=0)  # > 0 when a decision re-runs the step
    superseded: Mapped[bool] = mapped_column(Boolean, default=False)  # an older run replaced by a re-run
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(String(200))  # why skipped/cancelled
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    queue: Mapped[str] = mapped_column(String(16), default="steps")
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    not_before: Mapped[datetime | None] = mapped_column()  # retry backoff / snooze
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    follow_ups: Mapped[list[Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    tokens: Mapped[int | None] = mapped_column(Integer)
    # when retention purged the output and follow-ups, with its job's (migration 0012); NULL before
    purged_at: Mapped[datetime | None] = mapped_column()
    # the worker process (WorkerHeartbeat.instance) that last claimed it; NULL when claimed outside a
    # worker (a test, a CLI). A running step whose claimant stopped beating is re-queued (migration 0014)
    claimed_by: Mapped[str | None] = mapped_column(String(64))


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (
        Index(None, "status", "expires_at"),
        Index(None, "org_id", "job_id"),
        Index(None, "org_id", "status"),  # an org's pending approvals: metrics, dashboard (migration 0009)
    )
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org(index=False)  # (org_id, job_id) and (org_id, status) lead with it
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sequence_jobs.id", ondelete="CASCADE"))
    step_run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("step_runs.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    critical: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    approver_user_ids: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    preview: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    decision: Mapped[str | None] = mapped_column(String(32))
    decision_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column()
    resumed_at: Mapped[datetime | None] = mapped_column()  # the engine has applied the decision
    expires_at: Mapped[datetime] = mapped_column()
    nudged_at: Mapped[datetime | None] = mapped_column()
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    # The latest click's response_url: good for 5 uses within 30 min, then chat.update.
    response_url: Mapped[str | None] = mapped_column(Text)
    response_url_uses: Mapped[int] = mapped_column(Integer, default=0)
    response_url_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = _created()
    # when retention purged the preview and decision data, with its job's (migration 0012); NULL before
    purged_at: Mapped[datetime | None] = mapped_column()


class MetricsRollup(Base):
    """Settled jobs' metrics per org, local day (the org's zone when rolled up) and kind: counts,
    failures, a sum of milliseconds, a quantile sketch, an example job (worker/metrics/fold.py
    lists the kinds; worker/metrics/rollup.py writes them; migration 0009). The sketched kinds also
    have week cells (span 7), so a long window merges few sketches."""

    __tablename__ = "metrics_rollups"
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    span: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # 1: a day; 7: the week from `day`
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    detail: Mapped[str] = mapped_column(String(100), primary_key=True)  # an error's message prefix, else ""
    n: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)
    sum_ms: Mapped[float] = mapped_column(Double, default=0.0)
    sketch: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # worker/metrics/sketch.py's JSON
    example_job_id: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An org's key for `POST /api/events` and `GET /api/jobs` (only its SHA-256 is stored)."""

    __tablename__ = "api_keys"
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))  # shown to people to tell keys apart
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created()
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    # what the key may do (worker.access.api_keys.ApiKeyRole): "events" sends events and reads jobs; "admin" can also
    # use the org-scoped admin API for its own org (migration 0008)
    role: Mapped[str] = mapped_column(String(16), default="events", server_default="events")


class AdminLogin(Base):
    """One browser sign-in link (`proactive admin link`), remembered so it signs in once (migration 0007)."""

    __tablename__ = "admin_logins"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)  # the token's random id
    # NULL: the link signs in to every org (the operator's admin session)
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column()


class SlackEventSeen(Base):
    """Events API deliveries already handled (Slack retries with X-Slack-Retry-Num)."""

    __tablename__ = "slack_events_seen"
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class SlackOutbox(Base):
    __tablename__ = "slack_outbox"
    __table_args__ = (
        Index(None, "org_id", "status", "created_at"),
        Index(None, "status", "not_before"),
        Index(None, "user_id", "admitted_at"),
        Index(None, "approval_id"),  # a click finds its approval's message by it (migration 0004)
        Index(None, "job_id"),  # a job's messages: metrics, the roll-up's settle check (migration 0009)
    )
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org(index=False)  # (org_id, status, created_at) leads with it
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    approval_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    kind: Mapped[str] = mapped_column(String(32))  # message kind, e.g. approval, deal_risk_alerts
    channel: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    blocks: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | console | failed
    ts: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    sent_at: Mapped[datetime | None] = mapped_column()
    # Delivery (worker/slack/delivery.py): urgent rows skip quiet hours and the hourly budget.
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    error_code: Mapped[str | None] = mapped_column(String(64))  # Slack's error code, e.g. channel_not_found
    not_before: Mapped[datetime | None] = mapped_column()  # deferred (quiet hours, budget, 429, backoff)
    lease_expires_at: Mapped[datetime | None] = mapped_column()  # a worker is delivering it until then
    admitted_at: Mapped[datetime | None] = mapped_column()  # passed quiet hours + budget (counts in it)
    slot_at: Mapped[datetime | None] = mapped_column()  # the channel's 1 msg/s slot this row holds
    revision: Mapped[int] = mapped_column(Integer, default=0)  # bumped by replace_message
    updated_at: Mapped[datetime | None] = mapped_column()
    # the worker process (or `<instance>/<pid>` pool child) whose delivery holds the lease; meaningful
    # while lease_expires_at is set. A lease whose claimant stopped beating is given back (migration 0015)
    claimed_by: Mapped[str | None] = mapped_column(String(64))


class RateSlot(Base):
    """A shared pacing slot (e.g. one Slack channel): the earliest time the next call may go.

    Not tenant data, so no org_id: keys name a provider resource (`slack:C024BE91L`).
    `next_at_s` is epoch seconds so one portable statement can advance it (worker/ratelimit.py).
    """

    __tablename__ = "rate_slots"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    next_at_s: Mapped[float] = mapped_column(Double)


class WorkerHeartbeat(Base):
    """One running worker process, beating every few seconds (worker/engine/heartbeat.py): a running
    step whose claimant's beat stopped is re-queued within seconds instead of waiting for its lease.

    Not tenant data, so no org_id: a worker serves every org (migration 0014).
    """

    __tablename__ = "worker_heartbeats"
    instance: Mapped[str] = mapped_column(String(64), primary_key=True)  # random, new at each start
    name: Mapped[str] = mapped_column(String(200), index=True)  # the Celery node name (`-n`)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column()
    beat_at: Mapped[datetime] = mapped_column(index=True)


class Effect(Base):
    __tablename__ = "effects"
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sequence_jobs.id", ondelete="CASCADE"), index=True)
    step: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # started | done | failed
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = _created()
    done_at: Mapped[datetime | None] = mapped_column()


class ScheduledEvent(Base):
    """A follow-up event with `delay_minutes`, fired by the sweeper when due (no long countdowns)."""

    __tablename__ = "scheduled_events"
    __table_args__ = (UniqueConstraint("org_id", "idempotency_key"), Index(None, "fired_at", "fire_at"))
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    parent_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    idempotency_key: Mapped[str] = mapped_column(String(300))
    event: Mapped[dict[str, Any]] = mapped_column(JSONType)
    fire_at: Mapped[datetime] = mapped_column()
    fired_at: Mapped[datetime | None] = mapped_column()
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class RejectedEvent(Base):
    __tablename__ = "rejected_events"
    __table_args__ = (Index(None, "created_at"),)
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), index=True)  # unknown when the org is
    source: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    error_type: Mapped[str] = mapped_column(String(64))
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    body: Mapped[str | None] = mapped_column(Text)  # at most 64 KB
    replayed_at: Mapped[datetime | None] = mapped_column()
    replay_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    created_at: Mapped[datetime] = _created()


class GmailPush(Base):
    """One Pub/Sub push delivery for Gmail, deduplicated on Pub/Sub's messageId (redeliveries)."""

    __tablename__ = "gmail_pushes"
    id: Mapped[uuid.UUID] = _id()
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    subscription: Mapped[str | None] = mapped_column(String(300))
    email_address: Mapped[str | None] = mapped_column(String(320), index=True)
    history_id: Mapped[str | None] = mapped_column(String(32))
    published_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(24), default="accepted")  # accepted | unknown_mailbox | invalid
    integrations: Mapped[int] = mapped_column(Integer, default=0)  # mailboxes (integrations) it concerns
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # retention deletes by it (0012)


class CronRun(Base):
    __tablename__ = "cron_runs"
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), index=True)
    task: Mapped[str] = mapped_column(String(64))
    slot_key: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # retention deletes by it (0012)
    finished_at: Mapped[datetime | None] = mapped_column()


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index(None, "org_id", "created_at"),
        # rows whose data retention has not purged yet, by age (worker/ops/retention.py; migration 0012)
        Index(
            "ix_audit_log_unpurged",
            "org_id",
            "created_at",
            postgresql_where=text("purged_at IS NULL"),
            sqlite_where=text("purged_at IS NULL"),
        ),
    )
    id: Mapped[uuid.UUID] = _id()
    org_id: Mapped[uuid.UUID] = _org()
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    actor: Mapped[str | None] = mapped_column(String(200))  # "cli", "slack:U123", "system"
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = _created()
    # when retention purged `data` (e.g. an edited draft); who, what and when stay (migration 0012)
    purged_at: Mapped[datetime | None] = mapped_column()


jobs = SequenceJob.__table__
steps = StepRun.__table__
approvals = Approval.__table__
worker_heartbeats = WorkerHeartbeat.__table__
