"""`proactive replay REJECTED_ID [--force]`: a refused request handled again, as a new request.

A replay re-runs, on the stored body and headers, what the edge ran after its authenticity check:
the same parsing and the same business validation, then the same hand-over, in one transaction
with the row's `replayed_at` / `replay_job_id` and an audit row (worker/audit.py, action
`rejected.replayed`, actor = who ran it) in each org it acted on. A replay that is refused again
changes nothing (no new rejected_events row) and says why (exit 2).

Signatures and tokens are never stored (a rejected_events row keeps its headers without
credentials), so they cannot be checked again: a row refused *after* its signature or token
verified is known authentic by its error type and is replayed as is; a row refused *for* its
signature or token (`BadSignature`, `InvalidSignature`, `BadToken`, and the API's `Unauthorized` /
`Forbidden`) is replayed only with `--force`, which skips that one check (and a wrong Content-Type,
`UnsupportedMediaType`), and is audited with `forced: true` and the check skipped.

Per source (`SOURCES`):
- `webhook:recording`: the body parsed as JSON, `parse_recording` with the row's org (the org of
  the path, or the body's on the single-tenant path), the meeting upserted and meeting_ended fired
  when it qualifies (`accept_recording_in`);
- `webhook:gmail`: `parse_push`, then the push recorded and a sync requested for each mailbox
  connected now (`accept_push_in(replay=True)`: a push kept as `unknown_mailbox` is taken up);
- `slack:events`: `body_problem` (worker/slack/requests.py), then the delivery acknowledged once per
  event id (Slack events start no job here);
- `slack:action`: never: a click's `response_url` is a credential, redacted when stored, and its
  trigger id dies after 3 s, so the person clicks again (or `proactive approve|reject`);
- anything else: the stored event envelope validated and fired, a caller's (`api`, `api:<key
  name>`, `cli`: `PublicEvent`) under the row's source, as the edge does, an internal one (`chain`)
  as it is.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from worker.audit import record
from worker.db import transaction
from worker.engine.events import accept, validate_event, validate_public
from worker.engine.jobstore import insert_ignoring_conflicts
from worker.engine.payloads import is_caller_source
from worker.engine.publish import Publish, publish_steps
from worker.errors import NotFound, UserError
from worker.google.push import InvalidPush, PushStatus, accept_push_in, parse_push
from worker.models import Integration, Org, RejectedEvent, SlackEventSeen, utcnow
from worker.recorder.callback import accept_recording_in, parse_recording
from worker.slack.requests import JSON_BODY, body_problem

table = RejectedEvent.__table__

# Refusals of the request's authenticity: the signature, token or key did not hold.
AUTHENTICITY = frozenset({"BadSignature", "InvalidSignature", "BadToken", "Unauthorized", "Forbidden"})
# Checks `--force` may skip: authenticity, and the declared content type.
FORCEABLE = AUTHENTICITY | {"UnsupportedMediaType"}
# Refusals whose body was not kept (over the size limit).
BODY_NOT_KEPT = frozenset({"PayloadTooLarge"})
AUDIT_ACTION = "rejected.replayed"


class NotReplayable(UserError):
    """This row cannot be replayed (or was refused again): the message says why and what to do."""

    http_status = 409


@dataclass
class Replayed:
    """What a replay did."""

    rejected_id: uuid.UUID
    source: str
    summary: str
    job_id: uuid.UUID | None = None
    status: str | None = None
    skipped_check: str | None = None  # the check --force skipped (the refusal's error type)
    org_ids: list[uuid.UUID] = field(default_factory=list)
    pubs: list[Publish] = field(default_factory=list, repr=False)

    @property
    def forced(self) -> bool:
        """True when --force skipped the check that refused the request."""
        return self.skipped_check is not None

    def as_dict(self) -> dict[str, Any]:
        """The `--json` shape."""
        return {
            "rejected_id": str(self.rejected_id),
            "source": self.source,
            "summary": self.summary,
            "job_id": str(self.job_id) if self.job_id else None,
            "status": self.status,
            "forced": self.forced,
            "org_ids": [str(o) for o in self.org_ids],
        }


# --------------------------------------------------------------------------- rules (pure)


def forced_check(error_type: str, force: bool) -> str | None:
    """The check a replay skips (the row's error type), None when it skips none; NotReplayable when
    the row was refused for its authenticity and `force` is not given."""
    if error_type not in FORCEABLE:
        return None
    if force:
        return error_type
    if error_type == "UnsupportedMediaType":
        raise NotReplayable(
            "it was refused for its Content-Type, which is checked again: "
            "--force reads the stored body as JSON anyway (audited)"
        )
    raise NotReplayable(
        f"it was refused for its signature, token or key ({error_type}), which is not stored and cannot be "
        "checked again: --force replays it if you know who sent it (audited with your name)"
    )


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """A stored header, whatever its case."""
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def mimetype(headers: Mapping[str, Any] | None) -> str:
    """The stored Content-Type without its parameters ('' when absent)."""
    return (header(headers, "Content-Type") or "").split(";")[0].strip().lower()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def stored_json(body: str | None) -> Any:
    """The stored body as JSON (NaN and Infinity refused, as at the edge); NotReplayable otherwise."""
    if not body:
        raise NotReplayable("no body was stored with it")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as err:
        raise NotReplayable(f"the stored body is not JSON ({err}; bodies are kept up to 64 KB)") from None


# --------------------------------------------------------------------------- per source


Handler = Callable[[Connection, Any, bool, datetime], Replayed]


def _recording(conn: Connection, row: Any, force: bool, now: datetime) -> Replayed:
    skipped = forced_check(row.error_type, force)
    if mimetype(row.headers) != "application/json" and skipped != "UnsupportedMediaType":
        raise NotReplayable(f"its Content-Type was {mimetype(row.headers) or 'missing'!r}, not application/json")
    rec = parse_recording(stored_json(row.body), org_id=row.org_id)
    outcome, pubs = accept_recording_in(conn, rec, now)
    if outcome.job is not None:
        job = outcome.job
        what = "a duplicate of job" if job.duplicate else "job"
        summary = f"meeting {outcome.meeting_id} stored, {what} {job.job_id} {job.status}"
        return Replayed(row.id, row.source, summary, job.job_id, job.status, skipped, [rec.org_id], pubs)
    summary = f"meeting {outcome.meeting_id} stored, not fired: {outcome.reason}"
    return Replayed(row.id, row.source, summary, skipped_check=skipped, org_ids=[rec.org_id])


def _gmail(conn: Connection, row: Any, force: bool, now: datetime) -> Replayed:
    skipped = forced_check(row.error_type, force)
    try:
        notice = parse_push(stored_json(row.body))
    except InvalidPush as err:
        raise NotReplayable(f"the stored push is still not a Gmail notification: {err}") from None
    outcome = accept_push_in(conn, notice, now, replay=True)
    if outcome.duplicate:
        raise NotReplayable(f"push {notice.message_id} was recorded and accepted before: nothing to do")
    if outcome.status is PushStatus.UNKNOWN_MAILBOX:
        raise NotReplayable(
            f"still no active Google integration has the address {notice.email_address}: connect it "
            "(proactive gmail link --user EMAIL), then replay"
        )
    ids = list(outcome.integration_ids)
    integrations = Integration.__table__
    orgs = list(conn.execute(select(integrations.c.org_id).where(integrations.c.id.in_(ids))).scalars())
    summary = (
        f"push {notice.message_id} recorded: a sync requested for {len(ids)} mailbox(es) of {notice.email_address}"
    )
    return Replayed(row.id, row.source, summary, skipped_check=skipped, org_ids=sorted(set(orgs), key=str))


def _slack_event(conn: Connection, row: Any, force: bool, now: datetime) -> Replayed:
    skipped = forced_check(row.error_type, force)
    raw = (row.body or "").encode("utf-8")
    if not raw:
        raise NotReplayable("no body was stored with it")
    bad = body_problem(raw, mimetype(row.headers), JSON_BODY)
    if bad is not None and bad[0] == 415:
        if not force:
            raise NotReplayable(f"{bad[1]}: --force reads the stored body as JSON anyway (audited)")
        skipped = skipped or "UnsupportedMediaType"
        bad = body_problem(raw, JSON_BODY, JSON_BODY)
    if bad is not None:
        raise NotReplayable(f"the stored body is still refused: {bad[1]}")
    data = json.loads(raw)
    kind = data.get("type")
    if kind == "url_verification":
        raise NotReplayable("a url_verification handshake is answered when it arrives: there is nothing to replay")
    if kind != "event_callback":
        raise NotReplayable(f"a Slack request of type {str(kind)[:64]!r} has no handler here")
    event_id, team_id = data.get("event_id"), data.get("team_id")
    if not isinstance(event_id, str) or not event_id:
        raise NotReplayable("the stored event has no event_id")
    team = team_id[:32] if isinstance(team_id, str) and team_id else None
    seen = SlackEventSeen.__table__
    new = conn.execute(
        insert_ignoring_conflicts(conn, seen, ["event_id"])
        .values(event_id=event_id[:64], team_id=team, received_at=now)
        .returning(seen.c.event_id)
    ).first()
    if new is None:
        raise NotReplayable(f"Slack event {event_id[:64]} was delivered and acknowledged before: nothing to do")
    org = conn.execute(select(Org.id).where(Org.slack_team_id == team)).scalar() if team else None
    summary = f"Slack event {event_id[:64]} acknowledged (Slack events start no job here)"
    return Replayed(row.id, row.source, summary, skipped_check=skipped, org_ids=[org] if org else [])


def _slack_action(conn: Connection, row: Any, force: bool, now: datetime) -> Replayed:
    raise NotReplayable(
        "a Slack click or modal submission cannot be replayed: its response_url is a credential and was "
        "not stored, and its trigger id expired 3 s after the click; ask the person to click again, or "
        "decide with `proactive approve|reject APPROVAL_ID`"
    )


def _envelope(conn: Connection, row: Any, force: bool, now: datetime) -> Replayed:
    skipped = forced_check(row.error_type, force)
    data = stored_json(row.body)
    if not isinstance(data, dict) or "type" not in data:
        raise NotReplayable(
            f"its body is not an event envelope (a refused {row.error_type}): there is no event to fire"
        )
    if is_caller_source(row.source):  # a caller's envelope: the edge that received it sets the source
        event, payload = validate_public(data, row.source)
    else:
        event, payload = validate_event(data)
    if row.org_id is not None and event.org_id != row.org_id:
        if not force:
            raise NotReplayable(
                f"it was refused in org {row.org_id} and names org {event.org_id}: "
                "--force fires it for the named org (audited)"
            )
        skipped = skipped or "Forbidden"
    result, pubs = accept(conn, event, payload, now)
    what = "a duplicate of job" if result.duplicate else "job"
    summary = f"{what} {result.job_id} {result.status}" + (f" ({result.reason})" if result.reason else "")
    return Replayed(row.id, row.source, summary, result.job_id, result.status, skipped, [event.org_id], pubs)


SOURCES: Mapping[str, Handler] = {
    "webhook:recording": _recording,
    "webhook:gmail": _gmail,
    "slack:events": _slack_event,
    "slack:action": _slack_action,
}


# --------------------------------------------------------------------------- replaying


def replay(rejected_id: uuid.UUID, *, force: bool = False, actor: str = "cli", now: datetime | None = None) -> Replayed:
    """Handle the stored request again (see the module docstring); NotFound, or NotReplayable with the
    reason when it cannot be or is refused again (nothing changed then)."""
    now = now or utcnow()
    with transaction() as conn:
        row = conn.execute(select(table).where(table.c.id == rejected_id)).first()
    if row is None:
        raise NotFound(f"rejected event {rejected_id} not found (proactive rejected lists them)")
    if row.error_type in BODY_NOT_KEPT:
        raise NotReplayable(f"rejected event {rejected_id} was over the size limit: its body was not kept")
    handler = SOURCES.get(row.source, _envelope)
    try:
        with transaction() as conn:
            done = handler(conn, row, force, now)
            if done.forced and not done.org_ids:
                raise NotReplayable("a forced replay is audited in the org it acts on, and no org is known for it")
            conn.execute(update(table).where(table.c.id == row.id).values(replayed_at=now, replay_job_id=done.job_id))
            for org_id in done.org_ids:
                record(
                    conn,
                    org_id,
                    action=AUDIT_ACTION,
                    target_type="rejected_event",
                    target_id=str(row.id),
                    actor=actor,
                    data={
                        "source": row.source,
                        "forced": done.forced,
                        "skipped_check": done.skipped_check,
                        "reason": row.reason[:300],
                        "job_id": str(done.job_id) if done.job_id else None,
                        "summary": done.summary,
                    },
                )
    except NotReplayable as err:
        raise NotReplayable(f"rejected event {rejected_id} ({row.source}) not replayed: {err}") from None
    except UserError as err:
        raise NotReplayable(
            f"rejected event {rejected_id} ({row.source}) refused again, nothing changed: {err}"
        ) from None
    publish_steps(done.pubs)
    return done
