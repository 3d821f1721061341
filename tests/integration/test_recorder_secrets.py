"""Per-org recorder secrets on PostgreSQL, through the Flask test client and the CLI in-process:
`POST /webhooks/recording/<org_id>` verified with that org's secret sets the org (the body cannot
name another), a rotation keeps the old and the new secret valid until it is finished (or its
grace period ends), the global RECORDING_WEBHOOK_SECRET still works on `/webhooks/recording`, and
every refused signature is a 401 with one rejected_events row."""

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

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support.edge import db_counts, latest_rejected, refusal_delta
from tests.support.engine import TestOrg, make_org
from webhooks import create_app
from worker.config import reset_settings
from worker.crypto import generate_key
from worker.db import transaction
from worker.engine import registry
from worker.models import AuditLog, Integration, Meeting, User, utcnow
from worker.ops.cli import main
from worker.recorder import secrets as recorder_secrets

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("edge_env")]

GLOBAL_SECRET = "global-" + uuid.uuid4().hex
SOURCE = "webhook:recording"


@pytest.fixture(scope="module")
def edge_env(pg) -> Iterator[dict[str, str]]:
    """The pg backend, the global secret, an encryption key; the product's meeting_ended here."""
    env = {**pg.env, "RECORDING_WEBHOOK_SECRET": GLOBAL_SECRET, "ENCRYPTION_KEYS": generate_key()}
    meeting_ended = importlib.import_module("sequences.meeting_ended").SEQUENCE
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECORDING_WEBHOOK_SECRET", env["RECORDING_WEBHOOK_SECRET"])
        mp.setenv("ENCRYPTION_KEYS", env["ENCRYPTION_KEYS"])
        reset_settings()
        with registry.overridden([meeting_ended]):
            yield env
    reset_settings()


@pytest.fixture(scope="module")
def client(edge_env) -> FlaskClient:
    return create_app().test_client()


def rep_email(org: TestOrg) -> str:
    with transaction() as conn:
        return conn.execute(select(User.email).where(User.id == org.rep)).scalar_one()


def recording(org: TestOrg, **changes: Any) -> dict[str, Any]:
    """A two-person meeting of the org's rep, without org_id (the path names the org)."""
    return {
        "external_id": f"rec-{uuid.uuid4().hex}",
        "title": "Initech discovery",
        "start": "2026-03-02T15:00:00+00:00",
        "attendees": [{"name": "Rep", "email": rep_email(org)}, {"name": "Pat", "email": "pat@initech.test"}],
        **changes,
    }


def deliver(client: FlaskClient, path: str, body: Any, secret: str) -> Any:
    """POST a body signed with `secret` now (the HMAC computed here, independently of the app)."""
    data = json.dumps(body).encode()
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), ts.encode() + b"." + data, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Recording-Timestamp": ts,
        "X-Recording-Signature": f"sha256={digest}",
    }
    return client.post(path, data=data, headers=headers)


def path_of(org: TestOrg) -> str:
    return f"/webhooks/recording/{org.id}"


def meetings_of(org_id: uuid.UUID) -> list[Any]:
    with transaction() as conn:
        return list(conn.execute(select(Meeting.__table__).where(Meeting.org_id == org_id)))


def audit_actions(org_id: uuid.UUID) -> list[str]:
    with transaction() as conn:
        return list(
            conn.execute(
                select(AuditLog.action).where(AuditLog.org_id == org_id).order_by(AuditLog.created_at)
            ).scalars()
        )


def assert_401(response: Any, before: dict[str, int], org_id: uuid.UUID | None) -> Any:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert refusal_delta(before) == {"rejected": 1}
    row = latest_rejected()
    assert (row.source, row.error_type, row.org_id) == (SOURCE, "BadSignature", org_id)
    assert "x-recording-signature" not in {k.lower() for k in (row.headers or {})}
    return response.get_json()


# --------------------------------------------------------------------------- verification


def test_the_orgs_secret_verifies_and_sets_the_org(client, org):
    secret = recorder_secrets.create(org.id, actor="test").secret
    assert secret and secret.startswith(recorder_secrets.PREFIX)
    response = deliver(client, path_of(org), recording(org), secret)
    assert response.status_code == 202, response.get_data(as_text=True)
    [meeting] = meetings_of(org.id)
    assert str(meeting.id) == response.get_json()["meeting_id"]
    same = deliver(client, path_of(org), recording(org, org_id=str(org.id)), secret)  # naming its own org is fine
    assert same.status_code == 202
    with transaction() as conn:  # stored encrypted, never in clear
        stored = conn.execute(
            select(Integration.credentials).where(Integration.org_id == org.id, Integration.provider == "recorder")
        ).scalar_one()
    assert secret.encode() not in stored


def test_the_body_cannot_name_another_org(client, org):
    victim = make_org()
    secret = recorder_secrets.create(org.id, actor="test").secret
    body = recording(org, org_id=str(victim.id))
    before = db_counts()
    response = deliver(client, path_of(org), body, secret)
    assert response.status_code == 422
    assert refusal_delta(before) == {"rejected": 1}
    assert [e["field"] for e in response.get_json()["errors"]] == ["org_id"]
    row = latest_rejected()
    assert (row.error_type, row.org_id) == ("InvalidEvent", org.id)
    assert meetings_of(victim.id) == [] and meetings_of(org.id) == []
    # nor can one org's secret post on another org's path
    recorder_secrets.create(victim.id, actor="test")
    before = db_counts()
    assert_401(deliver(client, path_of(victim), recording(victim), secret), before, victim.id)
    assert meetings_of(victim.id) == []


def test_rotation_keeps_old_and_new_until_finished(client, org):
    old = recorder_secrets.create(org.id, actor="test").secret
    rotated = recorder_secrets.rotate(org.id, actor="test")
    assert rotated.secret != old
    assert rotated.previous_expires_at is not None
    assert timedelta(days=6) < rotated.previous_expires_at - utcnow() <= timedelta(days=7)
    for secret in (old, rotated.secret):
        assert deliver(client, path_of(org), recording(org), secret).status_code == 202
    recorder_secrets.finish_rotation(org.id, actor="test")
    before = db_counts()
    assert (
        "signature mismatch"
        in assert_401(deliver(client, path_of(org), recording(org), old), before, org.id)["message"]
    )
    assert deliver(client, path_of(org), recording(org), rotated.secret).status_code == 202
    assert audit_actions(org.id) == [
        "recorder.secret_created",
        "recorder.secret_rotated",
        "recorder.rotation_finished",
    ]


def test_the_previous_secret_stops_at_the_end_of_its_grace(client, org):
    old = recorder_secrets.create(org.id, actor="test").secret
    new = recorder_secrets.rotate(org.id, actor="test", grace=timedelta(hours=1)).secret
    with transaction() as conn:
        assert recorder_secrets.valid_secrets(conn, org.id) == [new, old]
        assert recorder_secrets.valid_secrets(conn, org.id, utcnow() + timedelta(hours=2)) == [new]


def test_the_global_secret_still_works_on_the_single_tenant_path(client, org):
    body = {**recording(org), "org_id": str(org.id)}
    response = deliver(client, "/webhooks/recording", body, GLOBAL_SECRET)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert len(meetings_of(org.id)) == 1
    # an org path checks that org's secrets only
    recorder_secrets.create(org.id, actor="test")
    before = db_counts()
    assert_401(deliver(client, path_of(org), recording(org), GLOBAL_SECRET), before, org.id)


def test_a_wrong_secret_or_an_org_without_one_is_401_and_recorded(client, org):
    before = db_counts()
    answer = assert_401(deliver(client, path_of(org), recording(org), "guess"), before, org.id)
    assert f"proactive recorder secret --org {org.id}" in answer["message"]
    recorder_secrets.create(org.id, actor="test")
    before = db_counts()
    assert_401(deliver(client, path_of(org), recording(org), "guess"), before, org.id)
    assert meetings_of(org.id) == []


# --------------------------------------------------------------------------- the CLI


def test_the_cli_prints_a_secret_once_rotates_and_finishes(client, org):
    runner = CliRunner()
    made = runner.invoke(main, ["recorder", "secret", "--org", str(org.id)])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("rs_") and "not shown again" in made.stderr
    again = runner.invoke(main, ["recorder", "secret", "--org", str(org.id)])
    assert again.exit_code == 2 and "--rotate" in again.stderr
    rotated = runner.invoke(main, ["recorder", "secret", "--org", str(org.id), "--rotate", "--json"])
    assert rotated.exit_code == 0, rotated.output
    info = json.loads(rotated.stdout)
    assert info["secret"] != secret and info["previous_expires_at"]
    finished = runner.invoke(main, ["recorder", "secret", "--org", str(org.id), "--finish"])
    assert finished.exit_code == 0 and "rotation finished" in finished.stdout
    nothing = runner.invoke(main, ["recorder", "secret", "--org", str(org.id), "--finish"])
    assert nothing.exit_code == 2 and "no rotation in progress" in nothing.stderr
    assert deliver(client, path_of(org), recording(org), info["secret"]).status_code == 202
    with transaction() as conn:
        actors = set(conn.execute(select(AuditLog.actor).where(AuditLog.org_id == org.id)).scalars())
    assert len(actors) == 1 and actors.pop().startswith("cli:")
