"""`POST /webhooks/recording` through the Flask test client on PostgreSQL + Redis: the signature
(a vector computed here, the 300 s window both ways), the meeting upsert, meeting_ended fired only
for meetings with more than one attendee and only once per meeting, every refusal (one
rejected_events row, nothing else changed), and a database outage (503)."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support.edge import closed_port, db_counts, env_changed, latest_rejected, refusal_delta
from tests.support.engine import TestOrg, job_row, make_org
from webhooks import create_app
from worker.config import reset_settings
from worker.db import transaction
from worker.engine import registry
from worker.models import Meeting, jobs
from worker.recorder.callback import sign

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("edge_env")]

SECRET = "rec-secret-" + uuid.uuid4().hex
SOURCE = "webhook:recording"
TRANSCRIPT = "Rep: Thanks for joining.\nDana: Happy to. We need pricing by Friday.\nRep: I'll send a proposal."


@pytest.fixture(scope="module")
def edge_env(pg) -> Iterator[dict[str, str]]:
    """The pg backend plus the recorder's secret; the product's meeting_ended in this process."""
    env = {**pg.env, "RECORDING_WEBHOOK_SECRET": SECRET}
    meeting_ended = importlib.import_module("sequences.meeting_ended").SEQUENCE
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECORDING_WEBHOOK_SECRET", SECRET)
        reset_settings()
        with registry.overridden([meeting_ended]):
            yield env
    reset_settings()


@pytest.fixture(scope="module")
def client(edge_env) -> FlaskClient:
    return create_app().test_client()


def rep_email(org: TestOrg) -> str:
    with transaction() as conn:
        from worker.models import User

        return conn.execute(select(User.email).where(User.id == org.rep)).scalar_one()


def recording(org: TestOrg, **changes: Any) -> dict[str, Any]:
    """A two-person meeting of `org`'s rep with a prospect."""
    return {
        "org_id": str(org.id),
        "external_id": f"rec-{uuid.uuid4().hex}",
        "title": "Globex discovery call",
        "start": "2026-03-02T15:00:00+00:00",
        "end": "2026-03-02T16:45:00+01:00",
        "attendees": [{"name": "Rep", "email": rep_email(org).upper()}, {"name": "Dana", "email": "dana@globex.test"}],
        "transcript": TRANSCRIPT,
        **changes,
    }


def deliver(
    client: FlaskClient,
    body: Any,
    *,
    secret: str = SECRET,
    timestamp: int | str | None = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Any:
    """POST a signed recording (the signature computed here with hmac, independently of the app)."""
    data = raw if raw is not None else json.dumps(body).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), ts.encode() + b"." + data, hashlib.sha256).hexdigest()
    sent = {
        "Content-Type": content_type,
        "X-Recording-Timestamp": ts,
        "X-Recording-Signature": f"sha256={digest}",
        **(headers or {}),
    }
    return client.post("/webhooks/recording", data=data, headers=sent)


def meeting_row(org: TestOrg, external_id: str) -> Any:
    with transaction() as conn:
        return conn.execute(
            select(Meeting.__table__).where(Meeting.org_id == org.id, Meeting.external_id == external_id)
        ).one_or_none()


def meeting_jobs(org: TestOrg) -> list[Any]:
    with transaction() as conn:
        return list(conn.execute(select(jobs).where(jobs.c.org_id == org.id, jobs.c.event_type == "meeting_ended")))


def assert_refused(response: Any, status: int, before: dict[str, int], error_type: str) -> Any:
    """A JSON error with `status`, one rejected_events row without the signature, nothing else."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] and body["message"] and body["request_id"] == response.headers["X-Request-Id"]
    assert refusal_delta(before) == {"rejected": 1}
    row = latest_rejected()
    assert (row.source, row.error_type) == (SOURCE, error_type)
    assert "x-recording-signature" not in {k.lower() for k in (row.headers or {})}
    return body


# --------------------------------------------------------------------------- signature


def test_signature_vector():
    body = b'{"org_id":"00000000-0000-0000-0000-000000000001","external_id":"m-1"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", 1700000000, body) == f"sha256={expected}"
    assert sign("s3cret", "1700000000", body) == sign("s3cret", 1700000000, body)
    assert sign("s3cret", 1700000001, body) != sign("s3cret", 1700000000, body)


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("wrong-secret", lambda c, b: deliver(c, b, secret="not-the-secret")),
        ("stale", lambda c, b: deliver(c, b, timestamp=int(time.time()) - 301)),
        ("future", lambda c, b: deliver(c, b, timestamp=int(time.time()) + 301)),
        ("non-numeric", lambda c, b: deliver(c, b, timestamp="12:00")),
        ("missing-signature", lambda c, b: deliver(c, b, headers={"X-Recording-Signature": ""})),
        ("missing-both", lambda c, b: c.post("/webhooks/recording", json=b)),
        (
            "body-changed",
            lambda c, b: deliver(
                c,
                b,
                raw=json.dumps({**b, "title": "forged"}).encode(),
                headers={
                    "X-Recording-Signature": sign(SECRET, int(time.time()), json.dumps(b).encode()),
                    "X-Recording-Timestamp": str(int(time.time())),
                },
            ),
        ),
    ],
)
def test_unauthentic_deliveries_are_401(client, org, kind, make):
    body = recording(org)
    before = db_counts()
    answer = assert_refused(make(client, body), 401, before, "BadSignature")
    assert answer["error"] == "unauthorized"
    assert meeting_row(org, body["external_id"]) is None


def test_timestamps_inside_the_window_are_accepted(client, org):
    for offset in (-290, 290):
        response = deliver(client, recording(org), timestamp=int(time.time()) + offset)
        assert response.status_code == 202, response.get_data(as_text=True)


def test_no_secret_configured_refuses_everything(client, org, edge_env):
    with env_changed(edge_env, RECORDING_WEBHOOK_SECRET=""):
        before = db_counts()
        body = assert_refused(deliver(client, recording(org), secret=""), 401, before, "BadSignature")
    assert "not configured" in body["message"]


# --------------------------------------------------------------------------- accepting


def test_a_two_person_meeting_is_stored_and_fires_meeting_ended(client, org):
    body = recording(org, call_type="discovery")
    response = deliver(client, body)
    assert response.status_code == 202, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["fired"] is True and answer["created"] is True and answer["duplicate"] is False
    meeting = meeting_row(org, body["external_id"])
    assert str(meeting.id) == answer["meeting_id"]
    assert (meeting.title, meeting.attendees_count, meeting.transcript) == (body["title"], 2, TRANSCRIPT)
    assert meeting.user_id == org.rep  # matched by email, case-insensitively
    assert (meeting.call_type, meeting.call_type_confidence) == ("discovery", 1.0)
    assert meeting.start_at.isoformat() == "2026-03-02T15:00:00+00:00"
    assert meeting.end_at.isoformat() == "2026-03-02T15:45:00+00:00"  # stored in UTC
    assert [a["internal"] for a in meeting.attendees] == [True, False]
    job = job_row(uuid.UUID(answer["job_id"]))
    assert (job.event_type, job.source, job.user_id) == ("meeting_ended", SOURCE, org.rep)
    assert job.idempotency_key == f"meeting_ended:{meeting.id}"
    assert job.payload == {"meeting_id": str(meeting.id)}
    assert answer["status"] == job.status == "queued"


def test_a_duplicate_delivery_makes_one_job(client, org):
    body = recording(org)
    first = deliver(client, body).get_json()
    again = deliver(client, body)
    assert again.status_code == 200
    second = again.get_json()
    assert second == {**first, "created": False, "duplicate": True}
    assert [j.id for j in meeting_jobs(org)] == [uuid.UUID(first["job_id"])]


def test_a_redelivery_updates_the_meeting_in_place(client, org):
    body = recording(org)
    first = deliver(client, body).get_json()
    longer = TRANSCRIPT + "\nDana: One more thing about security reviews."
    attendees = [*body["attendees"], {"name": "Hank", "email": "hank@globex.test"}]
    updated = deliver(client, {**body, "transcript": longer, "title": "Globex discovery (v2)", "attendees": attendees})
    assert updated.status_code == 200 and updated.get_json()["meeting_id"] == first["meeting_id"]
    meeting = meeting_row(org, body["external_id"])
    assert (meeting.transcript, meeting.title, meeting.attendees_count) == (longer, "Globex discovery (v2)", 3)
    with transaction() as conn:
        count = conn.execute(select(Meeting.id).where(Meeting.org_id == org.id)).all()
    assert len(count) == 1
    assert len(meeting_jobs(org)) == 1


def test_a_one_person_meeting_is_stored_but_not_fired(client, org):
    body = recording(org, attendees=[{"name": "Rep", "email": rep_email(org)}])
    response = deliver(client, body)
    assert response.status_code == 200
    answer = response.get_json()
    assert (answer["fired"], answer["reason"]) == (False, "single_attendee")
    meeting = meeting_row(org, body["external_id"])
    assert str(meeting.id) == answer["meeting_id"] and meeting.attendees_count == 1
    assert meeting_jobs(org) == []


def test_the_same_person_twice_counts_once(client, org):
    me = rep_email(org)
    body = recording(org, attendees=[{"name": "Rep", "email": me}, {"name": "Rep (phone)", "email": me.upper()}])
    answer = deliver(client, body).get_json()
    assert (answer["fired"], answer["reason"]) == (False, "single_attendee")


def test_user_email_names_the_rep(client, org):
    with transaction() as conn:
        from worker.models import User

        other_email = conn.execute(select(User.email).where(User.id == org.other_rep)).scalar_one()
    answer = deliver(client, recording(org, user_email=other_email)).get_json()
    assert job_row(uuid.UUID(answer["job_id"])).user_id == org.other_rep


def test_no_org_user_among_attendees_stores_without_firing(client, org):
    body = recording(org, attendees=[{"name": "Dana", "email": "dana@globex.test"}, {"name": "Hank"}])
    response = deliver(client, body)
    assert response.status_code == 200
    assert (response.get_json()["fired"], response.get_json()["reason"]) == (False, "no_rep")
    assert meeting_row(org, body["external_id"]).attendees_count == 2
    assert meeting_jobs(org) == []


def test_a_gated_org_still_stores_and_answers_the_skipped_job(client, edge_env):
    disabled = make_org(enabled_sequences=["deal_risk_scan"])
    response = deliver(client, recording(disabled))
    assert response.status_code == 202
    answer = response.get_json()
    assert (answer["status"], answer["reason"]) == ("skipped", "sequence_disabled")


# --------------------------------------------------------------------------- refusals


def test_schema_errors_are_422_listing_fields(client, org):
    body = recording(org, start="2026-03-02T15:00:00", attendees=[{"title": "CFO"}], colour="red")
    del body["external_id"]
    before = db_counts()
    answer = assert_refused(deliver(client, body), 422, before, "InvalidEvent")
    assert answer["error"] == "invalid_event"
    assert {e["field"] for e in answer["errors"]} == {"external_id", "start", "attendees.0"}
    assert latest_rejected().org_id == org.id

    before = db_counts()
    later = recording(org, start="2026-03-02T16:00:00Z", end="2026-03-02T15:00:00Z")
    assert "end is before start" in assert_refused(deliver(client, later), 422, before, "InvalidEvent")["message"]

    for start in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "1900-01-01T00:00:00Z"):
        before = db_counts()
        answer = assert_refused(deliver(client, recording(org, start=start)), 422, before, "InvalidEvent")
        assert [e["field"] for e in answer["errors"]] == ["start"]

    for not_an_object in ([1], "x", None):
        before = db_counts()
        assert_refused(deliver(client, not_an_object), 422, before, "InvalidEvent")


def test_an_unknown_org_or_user_email_is_422_and_stores_nothing(client, org):
    ghost = recording(org, org_id=str(uuid.uuid4()))
    before = db_counts()
    assert "unknown org" in assert_refused(deliver(client, ghost), 422, before, "InvalidEvent")["message"]

    stranger = recording(org, user_email="nobody@elsewhere.test")
    before = db_counts()
    answer = assert_refused(deliver(client, stranger), 422, before, "InvalidEvent")
    assert answer["errors"] == [{"field": "user_email", "message": "not a user of this org"}]
    assert meeting_row(org, stranger["external_id"]) is None


def test_invalid_json_is_400(client):
    for raw in (b"{oops", b'{"title": Infinity}', b'{"title": "a\\u0000b"}', b"[" * 64 + b"]" * 64, b"\xc3\x28"):
        before = db_counts()
        assert_refused(deliver(client, None, raw=raw), 400, before, "BadJson")


def test_unsupported_content_type_is_415(client, org):
    before = db_counts()
    assert_refused(deliver(client, recording(org), content_type="text/plain"), 415, before, "UnsupportedMediaType")


def test_an_oversized_body_is_413(client, org):
    before = db_counts()
    body = recording(org, transcript="x" * (1024 * 1024))
    answer = assert_refused(deliver(client, body), 413, before, "PayloadTooLarge")
    assert answer["error"] == "payload_too_large"
    assert meeting_row(org, body["external_id"]) is None


# --------------------------------------------------------------------------- outages


def test_database_down_is_503_and_the_recorder_retries(client, org, edge_env):
    body = recording(org)
    with env_changed(edge_env, DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nope"):
        response = deliver(client, body)
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["error"] == "unavailable" and "Retry-After" in response.headers
    assert meeting_row(org, body["external_id"]) is None
    retried = deliver(client, body)  # the recorder's retry once the database is back
    assert retried.status_code == 202 and meeting_row(org, body["external_id"]) is not None
