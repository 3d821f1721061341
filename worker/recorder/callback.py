"""A meeting recorder's "recording ready" callback: its signature, its body, and what it changes.

Signature: `X-Recording-Signature: sha256=<hex>` is HMAC-SHA256 of `f"{timestamp}.{raw_body}"`
under the org's recorder secret (`/webhooks/recording/<org_id>`, worker/recorder/secrets.py: the
current one or, during a rotation, the previous one) or, single-tenant, under
RECORDING_WEBHOOK_SECRET (`/webhooks/recording`), with `X-Recording-Timestamp` in unix seconds no
further than 300 s from now either way (a replayed or pre-dated request is refused).

Body (`RecordingReady`): the org, the recorder's meeting id, title, start/end, attendees,
transcript, optionally the rep's email and a call type. Accepting it upserts the meeting
(unique per org and external id) and, only when more than one person attended and the rep is
known, fires `meeting_ended` (default key `meeting_ended:{meeting_id}`, so a re-delivery or an
updated transcript never makes a second job). Upsert and event are one transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import Connection, func, select

from worker.db import transaction
from worker.engine.events import FireResult, accept, validate_event
from worker.engine.payloads import Event, EventType, Source
from worker.engine.publish import Publish, publish_steps
from worker.errors import InvalidEvent
from worker.models import Meeting, Org, User, utcnow

meetings = Meeting.__table__

TIMESTAMP_HEADER = "X-Recording-Timestamp"
SIGNATURE_HEADER = "X-Recording-Signature"
SIGNATURE_SCHEME = "sha256="
# How far the timestamp may be from now, either way (seconds): replay window.
SIGNATURE_WINDOW_S = 300
# Meeting times accepted (UTC): anything outside is a broken clock, and could not be stored.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, tzinfo=UTC)
# Confidence given to a call type the recorder states (classify-call-type keeps one >= 0.5).
STATED_CALL_TYPE_CONFIDENCE = 1.0


# --------------------------------------------------------------------------- signature (pure)


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The `X-Recording-Signature` value for `body` sent at `timestamp`."""
    message = str(timestamp).encode() + b"." + body
    return SIGNATURE_SCHEME + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_problem(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now_s: float
) -> str | None:
    """Why the request is not authentic under RECORDING_WEBHOOK_SECRET, or None when it is."""
    if not secret:
        return "RECORDING_WEBHOOK_SECRET is not configured"
    return secrets_problem([secret], timestamp, signature, body, now_s)


def secrets_problem(
    secrets: Sequence[str], timestamp: str | None, signature: str | None, body: bytes, now_s: float
) -> str | None:
    """Why the request is not signed by any of `secrets` within the window, or None when it is
    (constant-time comparisons, every secret tried: an org's current and previous one)."""
    if not secrets:
        return "no recorder secret is configured"
    if not timestamp or not signature:
        return f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header"
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return f"{TIMESTAMP_HEADER} must be unix seconds"
    if abs(now_s - int(timestamp)) > SIGNATURE_WINDOW_S:
        return f"{TIMESTAMP_HEADER} is more than {SIGNATURE_WINDOW_S} s from now"
    given = signature.strip().encode("utf-8", errors="replace")
    matches = [hmac.compare_digest(sign(secret, timestamp, body).encode(), given) for secret in secrets]
    return None if any(matches) else "signature mismatch"


# --------------------------------------------------------------------------- body


class Attendee(BaseModel):
    """One person in the meeting; a name, an email or both."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")

    @model_validator(mode="after")
    def _someone(self) -> Attendee:
        if not (self.name or self.email):
            raise ValueError("an attendee needs a name or an email")
        return self


class RecordingReady(BaseModel):
    """The recorder's callback body. Unknown fields are ignored: recorders add fields over time."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    org_id: uuid.UUID
    external_id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=300)
    start: AwareDatetime
    end: AwareDatetime | None = None
    attendees: list[Attendee] = Field(default_factory=list, max_length=500)
    transcript: str | None = Field(default=None, max_length=1_000_000)
    user_email: str | None = Field(default=None, max_length=320)
    call_type: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("start", "end")
    @classmethod
    def _in_utc_range(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            utc = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("out of range") from None
        if not (EARLIEST <= utc <= LATEST):
            raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} UTC")
        return utc

    @model_validator(mode="after")
    def _ends_after_start(self) -> RecordingReady:
        if self.end is not None and self.end < self.start:
            raise ValueError("end is before start")
        return self

    @property
    def attendees_count(self) -> int:
        """Distinct people (by email, else by name)."""
        return len({(a.email or "").lower() or f"name:{a.name}" for a in self.attendees})


def parse_recording(data: Any, *, org_id: uuid.UUID | None = None) -> RecordingReady:
    """Validate a callback body; InvalidEvent listing every field error otherwise.

    `org_id` is the org whose secret verified the request (`/webhooks/recording/<org_id>`): the
    recording is that org's, and a body naming another org is refused. Without it (the global
    RECORDING_WEBHOOK_SECRET) the body's `org_id` is required and names the org.
    """
    if not isinstance(data, dict):
        raise InvalidEvent("a recording must be a JSON object")
    if org_id is not None:
        claimed = data.get("org_id")
        if claimed is not None and str(claimed).strip().lower() != str(org_id):
            raise InvalidEvent(
                f"org_id {str(claimed)[:64]!r} in the body is not the org of this endpoint ({org_id}): "
                "leave it out or send this org's id",
                errors=[{"field": "org_id", "message": "not the org whose secret signed the request"}],
            )
        data = {**data, "org_id": str(org_id)}
    try:
        return RecordingReady.model_validate(data)
    except ValidationError as err:
        items = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
            for e in err.errors(include_url=False, include_context=False, include_input=False)
        ]
        text = "; ".join(f"{i['field']}: {i['message']}" for i in items)
        raise InvalidEvent(f"invalid recording: {text}", errors=items) from None


# --------------------------------------------------------------------------- accepting


@dataclass(frozen=True)
class RecordingOutcome:
    """What the recorder is told: the meeting, and the job or why none was fired."""

    meeting_id: uuid.UUID
    created: bool
    job: FireResult | None = None
    reason: str | None = None

    @property
    def new_job(self) -> bool:
        """True when this delivery created the job (not a duplicate, not unfired)."""
        return self.job is not None and not self.job.duplicate

    def as_dict(self) -> dict[str, Any]:
        """`{meeting_id, created, fired, ...}` plus `{job_id, status, duplicate}` or `reason`."""
        out: dict[str, Any] = {"meeting_id": str(self.meeting_id), "created": self.created}
        out["fired"] = self.job is not None
        if self.job is not None:
            out.update(self.job.as_dict())
        if self.reason:
            out["reason"] = self.reason
        return out


def _people(conn: Connection, rec: RecordingReady) -> tuple[uuid.UUID | None, set[str]]:
    """The rep (user_email, else the first attendee who is an org user) and the org users' emails."""
    wanted = {a.email.lower() for a in rec.attendees if a.email}
    if rec.user_email:
        wanted.add(rec.user_email.lower())
    if not wanted:
        return None, set()
    email = func.lower(User.email)
    users = dict(conn.execute(select(email, User.id).where(User.org_id == rec.org_id, email.in_(wanted))).all())
    if rec.user_email:
        rep = users.get(rec.user_email.lower())
        if rep is None:
            raise InvalidEvent(
                f"user_email {rec.user_email} is not a user of org {rec.org_id}",
                errors=[{"field": "user_email", "message": "not a user of this org"}],
            )
        return rep, set(users)
    first = next((a.email.lower() for a in rec.attendees if a.email and a.email.lower() in users), None)
    return (users[first] if first else None), set(users)


def _upsert(conn: Connection, rec: RecordingReady, rep: uuid.UUID | None, internal: set[str], now: datetime) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    attendees = [
        {**a.model_dump(exclude_none=True), "internal": bool(a.email and a.email.lower() in internal)}
        for a in rec.attendees
    ]
    fresh: dict[str, Any] = {
        "title": rec.title,
        "start_at": rec.start,
        "end_at": rec.end,
        "attendees": attendees,
        "attendees_count": rec.attendees_count,
        "transcript": rec.transcript,
    }
    if rep is not None:
        fresh["user_id"] = rep
    if rec.call_type:
        fresh["call_type"] = rec.call_type
        fresh["call_type_confidence"] = STATED_CALL_TYPE_CONFIDENCE
    stmt = dialect_insert(meetings).values(
        id=uuid.uuid4(), org_id=rec.org_id, external_id=rec.external_id, created_at=now, **fresh
    )
    stmt = stmt.on_conflict_do_update(index_elements=["org_id", "external_id"], set_=fresh)
    # created_at = now only on an insert; an update keeps the first delivery's time
    return conn.execute(stmt.returning(meetings.c.id, meetings.c.created_at)).one()


def accept_recording(rec: RecordingReady, *, now: datetime | None = None) -> RecordingOutcome:
    """Upsert the meeting and fire meeting_ended when it qualifies; publish after commit.

    Raises InvalidEvent (unknown org, user_email not in the org) with nothing changed.
    """
    now = now or utcnow()
    with transaction() as conn:
        outcome, pubs = accept_recording_in(conn, rec, now)
    publish_steps(pubs)
    return outcome


def accept_recording_in(conn: Connection, rec: RecordingReady, now: datetime) -> tuple[RecordingOutcome, list[Publish]]:
    """`accept_recording` in the caller's transaction (a replay adds its own rows to it); the caller
    publishes the returned steps after commit."""
    if conn.execute(select(Org.id).where(Org.id == rec.org_id)).first() is None:
        raise InvalidEvent(f"unknown org {rec.org_id}", errors=[{"field": "org_id", "message": "unknown org"}])
    rep, internal = _people(conn, rec)
    row = _upsert(conn, rec, rep, internal, now)
    created = row.created_at == now
    if rec.attendees_count <= 1:
        return RecordingOutcome(row.id, created, reason="single_attendee"), []
    if rep is None:
        return RecordingOutcome(row.id, created, reason="no_rep"), []
    event, payload = validate_event(
        Event(
            type=EventType.MEETING_ENDED,
            source=Source.WEBHOOK_RECORDING,
            org_id=rec.org_id,
            user_id=rep,
            payload={"meeting_id": str(row.id)},
        )
    )
    result, pubs = accept(conn, event, payload, now)
    return RecordingOutcome(row.id, created, job=result), pubs
