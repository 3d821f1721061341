"""`proactive replay` for every source, on PostgreSQL + Redis, in process: requests refused at the
web edge (Flask test client, signed as their senders sign), then replayed from the stored row once
what refused them is fixed: a recording (a rep who was not a user yet), a Gmail push (a mailbox not
connected yet), an API event (an org that did not exist yet), a Slack event (a wrong content type,
a bad signature: `--force`), a Slack click (never: its response_url is redacted when stored). A
forced replay is audited with who forced it; a refused replay changes nothing. `proactive rejected`
filters by source, reason, time and org."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import unquote_plus

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import insert, select, update

from tests.fakes.google_certs import FakeGoogleCerts
from tests.support.edge import db_counts, latest_rejected, refusal_delta
from tests.support.engine import TestOrg, job_row, make_org
from tests.support.pubsub import AUDIENCE, SERVICE_ACCOUNT, push_body
from tests.support.pubsub import deliver as deliver_push
from tests.support.slack import SIGNING_SECRET, click, form_body, signed_headers
from webhooks import create_app
from worker.config import reset_settings
from worker.db import transaction
from worker.engine import registry
from worker.errors import NotFound
from worker.models import AuditLog, GmailPush, Integration, Org, RejectedEvent, SlackEventSeen, User, utcnow
from worker.ops.cli import main
from worker.ops.replay import NotReplayable, replay

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("edge_env")]

RECORDING_SECRET = "rec-" + uuid.uuid4().hex
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
rejected_table = RejectedEvent.__table__


@pytest.fixture(scope="module")
def certs() -> Iterator[FakeGoogleCerts]:
    with FakeGoogleCerts() as fake:
        yield fake


@pytest.fixture(scope="module")
def edge_env(pg, certs) -> Iterator[dict[str, str]]:
    """The pg backend plus every edge's secrets; the product's meeting_ended in this process."""
    extra = {
        "RECORDING_WEBHOOK_SECRET": RECORDING_SECRET,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PUBSUB_AUDIENCE": AUDIENCE,
        "PUBSUB_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
        "GOOGLE_CERTS_URL": certs.certs_url,
        "ADMIN_TOKEN": ADMIN_TOKEN,
    }
    meeting_ended = importlib.import_module("sequences.meeting_ended").SEQUENCE
    with pytest.MonkeyPatch.context() as mp:
        for key, value in extra.items():
            mp.setenv(key, value)
        reset_settings()
        with registry.overridden([meeting_ended]):
            yield {**pg.env, **extra}
    reset_settings()


@pytest.fixture(scope="module")
def client(edge_env) -> FlaskClient:
    return create_app().test_client()


# --------------------------------------------------------------------------- helpers


def rejected_row(rid: uuid.UUID) -> Any:
    with transaction() as conn:
        return conn.execute(select(rejected_table).where(rejected_table.c.id == rid)).one()


def replay_audits(rid: uuid.UUID) -> list[Any]:
    with transaction() as conn:
        return list(
            conn.execute(
                select(AuditLog.__table__).where(AuditLog.action == "rejected.replayed", AuditLog.target_id == str(rid))
            )
        )


def refused_again(rid: uuid.UUID, says: str, *, force: bool = False) -> str:
    """Replaying `rid` is refused with a message containing `says`, and changes nothing."""
    before = db_counts()
    with pytest.raises(NotReplayable) as err:
        replay(rid, force=force, actor="cli:tester")
    assert says in str(err.value), str(err.value)
    assert refusal_delta(before) == {}
    assert rejected_row(rid).replayed_at is None and replay_audits(rid) == []
    return str(err.value)


def post_recording(client: FlaskClient, body: Any, secret: str = RECORDING_SECRET) -> Any:
    data = json.dumps(body).encode()
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), ts.encode() + b"." + data, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Recording-Timestamp": ts,
        "X-Recording-Signature": f"sha256={digest}",
    }
    return client.post("/webhooks/recording", data=data, headers=headers)


def recording(org: TestOrg, rep: str) -> dict[str, Any]:
    return {
        "org_id": str(org.id),
        "external_id": f"rec-{uuid.uuid4().hex}",
        "title": "Umbrella pricing call",
        "start": "2026-03-02T15:00:00+00:00",
        "attendees": [{"name": "New rep", "email": rep}, {"name": "Ada", "email": "ada@umbrella.test"}],
        "user_email": rep,
    }


def add_user(org: TestOrg, email: str) -> uuid.UUID:
    uid = uuid.uuid4()
    with transaction() as conn:
        conn.execute(
            insert(User.__table__).values(
                id=uid,
                org_id=org.id,
                email=email,
                name="New rep",
                role="member",
                timezone="UTC",
                opted_out_sequences=[],
                briefing_time="08:00",
                max_notifications_per_hour=10,
            )
        )
    return uid


# --------------------------------------------------------------------------- recordings


def test_a_refused_recording_is_replayed_once_its_rep_exists(client, org):
    email = f"new-{uuid.uuid4().hex[:6]}@example.com"
    response = post_recording(client, recording(org, email))
    assert response.status_code == 422
    row = latest_rejected()
    assert (row.source, row.error_type, row.org_id) == ("webhook:recording", "InvalidEvent", org.id)
    refused_again(row.id, "not a user of org")  # not fixed yet: nothing changes, no new row

    rep = add_user(org, email)
    done = replay(row.id, actor="cli:tester")

    assert done.job_id is not None and not done.forced
    job = job_row(done.job_id)
    assert (job.event_type, job.source, job.user_id, job.org_id) == ("meeting_ended", "webhook:recording", rep, org.id)
    stored = rejected_row(row.id)
    assert stored.replay_job_id == done.job_id and stored.replayed_at is not None
    [audit] = replay_audits(row.id)
    assert (audit.org_id, audit.actor, audit.data["forced"]) == (org.id, "cli:tester", False)


def test_a_recording_refused_for_its_signature_needs_force_and_is_audited(client, org):
    with transaction() as conn:
        email = conn.execute(select(User.email).where(User.id == org.rep)).scalar_one()
    response = post_recording(client, recording(org, email), secret="an old secret")
    assert response.status_code == 401
    row = latest_rejected()
    assert row.error_type == "BadSignature"
    refused_again(row.id, "--force")

    runner = CliRunner()
    result = runner.invoke(main, ["replay", str(row.id), "--force", "--json"])
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert done["forced"] is True and done["job_id"]
    [audit] = replay_audits(row.id)
    assert audit.actor.startswith("cli:") and audit.org_id == org.id
    assert (audit.data["forced"], audit.data["skipped_check"]) == (True, "BadSignature")


# --------------------------------------------------------------------------- Gmail


def test_a_push_for_an_unknown_mailbox_is_replayed_once_it_is_connected(client, certs):
    address = f"late-{uuid.uuid4().hex[:8]}@example.com"
    body = push_body(address)
    assert deliver_push(client, certs, body).status_code == 204
    row = latest_rejected()
    assert (row.source, row.error_type) == ("webhook:gmail", "UnknownMailbox")
    refused_again(row.id, "still no active Google integration")

    org = make_org()
    mailbox = uuid.uuid4()
    with transaction() as conn:
        conn.execute(
            insert(Integration.__table__).values(
                id=mailbox,
                org_id=org.id,
                user_id=org.rep,
                provider="google",
                account=address,
                scopes=[],
                status="active",
                history_id="100",
            )
        )
    done = replay(row.id, actor="cli:tester")

    assert str(1) in done.summary and done.org_ids == [org.id]
    with transaction() as conn:
        push = conn.execute(
            select(GmailPush.__table__).where(GmailPush.message_id == body["message"]["messageId"])
        ).one()
        wanted = conn.execute(select(Integration.sync_wanted_at).where(Integration.id == mailbox)).scalar_one()
    assert (push.status, push.integrations, push.error) == ("accepted", 1, None)
    assert wanted is not None
    assert rejected_row(row.id).replayed_at is not None and len(replay_audits(row.id)) == 1
    refused_again_after = pytest.raises(NotReplayable)
    with refused_again_after as err:  # the push is accepted now: a second replay has nothing to do
        replay(row.id)
    assert "nothing to do" in str(err.value)


def test_a_push_refused_for_its_token_needs_force(client, certs):
    address = f"rep-{uuid.uuid4().hex[:8]}@example.com"
    org = make_org()
    with transaction() as conn:
        conn.execute(
            insert(Integration.__table__).values(
                id=uuid.uuid4(),
                org_id=org.id,
                user_id=org.rep,
                provider="google",
                account=address,
                scopes=[],
                status="active",
                history_id="100",
            )
        )
    expired = certs.token(
        {"aud": AUDIENCE, "email": SERVICE_ACCOUNT, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}
    )
    assert deliver_push(client, certs, push_body(address), token=expired).status_code == 401
    row = latest_rejected()
    assert (row.source, row.error_type) == ("webhook:gmail", "BadToken")
    assert "authorization" not in {k.lower() for k in (row.headers or {})}
    assert "cannot be checked again" in refused_again(row.id, "--force")
    done = replay(row.id, force=True, actor="cli:tester")
    assert done.forced and done.org_ids == [org.id]
    [audit] = replay_audits(row.id)
    assert (audit.actor, audit.data["skipped_check"]) == ("cli:tester", "BadToken")


# --------------------------------------------------------------------------- API events


def test_an_api_event_for_an_org_that_did_not_exist_yet_is_replayed(client):
    org_id = uuid.uuid4()
    body = {"type": "deal_risk_scan", "org_id": str(org_id), "payload": {}}
    response = client.post("/api/events", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 422
    row = latest_rejected()
    assert (row.error_type, row.org_id) == ("InvalidEvent", org_id)
    refused_again(row.id, "unknown org")
    with transaction() as conn:
        conn.execute(
            insert(Org.__table__).values(id=org_id, name="Late org", timezone="UTC", enabled=True, settings={})
        )
    done = replay(row.id)
    job = job_row(done.job_id)
    assert (job.org_id, job.source) == (org_id, "api") and rejected_row(row.id).replay_job_id == done.job_id


# --------------------------------------------------------------------------- Slack


def slack_event(team: str) -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": team,
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event": {"type": "app_mention", "user": "U0ALICE", "text": "hi", "channel": "C1", "ts": "1.2"},
    }


def test_a_slack_event_refused_for_its_content_type_or_signature_is_replayed_with_force(client):
    team = "T" + uuid.uuid4().hex[:9].upper()
    org = make_org()
    with transaction() as conn:
        conn.execute(update(Org.__table__).where(Org.id == org.id).values(slack_team_id=team))
    event = slack_event(team)
    raw = json.dumps(event).encode()
    wrong_type = client.post("/slack/events", data=raw, headers=signed_headers(raw, content_type="text/plain"))
    assert wrong_type.status_code == 415
    row = latest_rejected()
    assert (row.source, row.error_type) == ("slack:events", "InvalidPayload")
    refused_again(row.id, "--force reads the stored body as JSON")

    done = replay(row.id, force=True, actor="cli:tester")

    assert done.forced and "acknowledged" in done.summary and done.org_ids == [org.id]
    with transaction() as conn:
        seen = conn.execute(select(SlackEventSeen.team_id).where(SlackEventSeen.event_id == event["event_id"])).scalar()
    assert seen == team
    [audit] = replay_audits(row.id)
    assert audit.data["skipped_check"] == "UnsupportedMediaType"

    other = json.dumps(slack_event(team)).encode()
    unsigned = client.post(
        "/slack/events", data=other, headers=signed_headers(other, secret="not-slack", content_type="application/json")
    )
    assert unsigned.status_code == 401
    row = latest_rejected()
    assert row.error_type == "InvalidSignature"
    refused_again(row.id, "--force")
    assert replay(row.id, force=True, actor="cli:tester").forced


def test_a_refused_click_is_stored_without_its_response_url_and_cannot_be_replayed(client):
    url = "https://hooks.slack.com/actions/T0DEMO0001/123/secret-" + uuid.uuid4().hex
    payload = click("orch_launch_rockets", str(uuid.uuid4()), user="U0NOBODY", response_url=url)
    body = form_body(payload)
    assert client.post("/slack/interactive", data=body, headers=signed_headers(body)).status_code == 200
    unknown_action = latest_rejected()
    unsigned = client.post("/slack/interactive", data=body, headers=signed_headers(body, secret="forged"))
    assert unsigned.status_code == 401
    bad_signature = latest_rejected()
    for row in (unknown_action, bad_signature):
        assert row.source == "slack:action"
        stored = unquote_plus(row.body)  # the form body stays form-encoded
        assert url not in stored and "secret-" not in stored and '"response_url": "(redacted)"' in stored
        assert payload["token"] not in stored and '"token": "(redacted)"' in stored  # Slack's verification token
        refused_again(row.id, "cannot be replayed", force=True)
    result = CliRunner().invoke(main, ["replay", str(unknown_action.id)])
    assert result.exit_code == 2 and "response_url" in result.stderr


def test_replaying_a_missing_row_says_so():
    with pytest.raises(NotFound):
        replay(uuid.uuid4())


# --------------------------------------------------------------------------- proactive rejected


def test_rejected_filters_by_source_reason_time_and_org(client, org):
    other = make_org()
    with transaction() as conn:
        now = utcnow()
        ids = {}
        for name, source, reason, org_id, age in (
            ("old", "slack:events", "X-Slack-Signature does not match", org.id, timedelta(days=3)),
            ("slack", "slack:action", "unknown action 'orch_x'", org.id, timedelta(minutes=5)),
            ("gmail", "webhook:gmail", "204 ignored: no active Google integration", other.id, timedelta(minutes=5)),
        ):
            ids[name] = uuid.uuid4()
            conn.execute(
                insert(rejected_table).values(
                    id=ids[name],
                    org_id=org_id,
                    source=source,
                    reason=reason,
                    error_type="Test",
                    created_at=now - age,
                )
            )

    def listed(*args: str) -> list[str]:
        result = CliRunner().invoke(main, ["rejected", "--json", "--limit", "500", *args])
        assert result.exit_code == 0, result.output
        return [r["id"] for r in json.loads(result.stdout)]

    mine = {str(v) for v in ids.values()}
    assert {i for i in listed("--org", str(org.id))} & mine == {str(ids["old"]), str(ids["slack"])}
    assert set(listed("--source", "slack", "--org", str(org.id))) == {str(ids["old"]), str(ids["slack"])}
    assert set(listed("--source", "slack:action", "--org", str(org.id))) == {str(ids["slack"])}
    assert set(listed("--since", "1h", "--org", str(org.id))) == {str(ids["slack"])}
    assert set(listed("--reason", "SIGNATURE", "--org", str(org.id))) == {str(ids["old"])}
    assert set(listed("--reason", "google integration")) & mine == {str(ids["gmail"])}
    bad = CliRunner().invoke(main, ["rejected", "--since", "yesterday"])
    assert bad.exit_code == 2 and "--since" in bad.stderr
