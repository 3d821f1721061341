"""API key roles on PostgreSQL through the Flask test client: an "events" key (the default) fires
events and reads jobs but is refused the admin API with a 403 that says how to make an admin key; an
"admin" key reads its own org's metrics, another org answers 404 as a missing one; a revoked admin
key is 401; the process's key memory keeps the role with the org; `proactive keys create --role`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from tests.support.edge import db_counts, latest_rejected, refusal_delta
from tests.support.engine import TestOrg, make_org
from webhooks import create_app
from worker.access import api_keys
from worker.access.api_keys import ApiKeyRole, KeyAuth, create_key, revoke
from worker.config import reset_settings
from worker.errors import UserError

pytestmark = pytest.mark.postgres

ADMIN_TOKEN = "admin-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def env(pg) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADMIN_TOKEN", ADMIN_TOKEN)
        reset_settings()
        yield
    reset_settings()


@pytest.fixture(scope="module")
def client(env) -> FlaskClient:
    return create_app().test_client()


@pytest.fixture
def org(env) -> TestOrg:
    return make_org()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def metrics(client: FlaskClient, token: str, org_id: uuid.UUID | str | None = None) -> Any:
    query = "" if org_id is None else f"?org_id={org_id}"
    return client.get(f"/api/admin/metrics{query}", headers=bearer(token))


def envelope(org: TestOrg) -> dict[str, Any]:
    return {
        "type": "deal_risk_scan",
        "org_id": str(org.id),
        "payload": {},
        "idempotency_key": f"roles:{uuid.uuid4().hex}",
    }


def test_an_events_key_fires_and_reads_jobs_but_is_refused_the_admin_api(client, org):
    key, info = create_key(org.id, "crm-sync")
    assert info.role == "events"  # the default
    fired = client.post("/api/events", json=envelope(org), headers=bearer(key))
    assert fired.status_code == 202, fired.json
    assert client.get(f"/api/jobs/{fired.json['job_id']}", headers=bearer(key)).status_code == 200

    for asked in (org.id, None, make_org().id, uuid.uuid4()):  # own org, default, another, none: one answer
        before = db_counts()
        refused = metrics(client, key, asked)
        assert refused.status_code == 403, refused.json
        body = refused.json
        assert body["error"] == "forbidden" and body["request_id"] == refused.headers["X-Request-Id"]
        assert (body["role"], body["required_role"]) == ("events", "admin")
        assert "admin role" in body["message"] and "proactive keys create" in body["message"]
        assert "--role admin" in body["message"]
        assert refusal_delta(before) == {"rejected": 1}  # recorded, as every refusal is
        row = latest_rejected()
        assert (row.source, row.error_type, row.org_id) == ("api", "Forbidden", org.id)


def test_an_admin_key_reads_its_own_org_and_another_org_is_404(client, org):
    key, info = create_key(org.id, "dashboards", role=ApiKeyRole.ADMIN)
    assert info.role == "admin"
    own = metrics(client, key, org.id)
    assert own.status_code == 200, own.json
    assert own.json["org_id"] == str(org.id) and own.json["range_days"] == 7
    assert metrics(client, key).json["org_id"] == str(org.id)  # its own org by default

    other = make_org()
    theirs = metrics(client, key, other.id)
    missing = metrics(client, key, uuid.uuid4())
    assert theirs.status_code == missing.status_code == 404  # another org looks exactly like a missing one
    assert theirs.json["error"] == missing.json["error"] == "not_found"
    assert metrics(client, ADMIN_TOKEN, other.id).status_code == 200  # the admin token still reads any org

    # everything an events key can do, too
    fired = client.post("/api/events", json=envelope(org), headers=bearer(key))
    assert fired.status_code == 202, fired.json
    refused = client.post("/api/events", json=envelope(other), headers=bearer(key))
    assert refused.status_code == 403 and "may not fire events for org" in refused.json["message"]
    # the smoke test stays the admin token's alone
    assert client.post("/api/admin/smoke", headers=bearer(key)).status_code == 403


def test_a_revoked_admin_key_is_401(client, org):
    key, info = create_key(org.id, "to-revoke", role="admin")
    assert metrics(client, key, org.id).status_code == 200
    revoke(info.id)
    gone = metrics(client, key, org.id)
    assert gone.status_code == 401 and gone.json["error"] == "unauthorized"
    assert gone.headers["WWW-Authenticate"].startswith("Bearer")
    assert metrics(client, "pk_unknown", org.id).status_code == 401
    assert client.get(f"/api/admin/metrics?org_id={org.id}").status_code == 401


def test_the_key_memory_keeps_the_role_with_the_org(env, org):
    events_key, _ = create_key(org.id, "events")
    admin_key, _ = create_key(org.id, "admin", role="admin")
    api_keys.forget_keys()
    for _ in range(2):  # from the database, then from this process's memory
        assert api_keys.authenticate_key(events_key) == KeyAuth(org.id, ApiKeyRole.EVENTS)
        assert api_keys.authenticate_key(admin_key) == KeyAuth(org.id, ApiKeyRole.ADMIN)
        assert api_keys.authenticate(admin_key) == org.id  # the org alone, for callers that need no role
    assert api_keys.authenticate_key("pk_unknown") is None
    with pytest.raises(UserError, match="accepted: events, admin"):
        create_key(org.id, "bad", role="root")


def test_keys_cli_creates_a_key_with_a_role_and_refuses_an_unknown_role(client, org):
    from worker.ops.cli import main

    runner = CliRunner()
    made = runner.invoke(main, ["keys", "create", "--org", str(org.id), "--name", "ops", "--role", "admin", "--json"])
    assert made.exit_code == 0, made.output
    info = json.loads(made.stdout)
    assert info["role"] == "admin"
    assert metrics(client, info["key"], org.id).status_code == 200

    default = runner.invoke(main, ["keys", "create", "--org", str(org.id), "--name", "crm"])
    assert default.exit_code == 0, default.output
    assert "role events" in default.stderr
    assert metrics(client, default.stdout.strip(), org.id).status_code == 403

    listed = runner.invoke(main, ["keys", "list", "--org", str(org.id)])
    assert listed.exit_code == 0
    lines = {line.rsplit(maxsplit=1)[-1]: line for line in listed.stdout.splitlines()}
    assert " admin " in lines["ops"] and " events " in lines["crm"]
    as_json = json.loads(runner.invoke(main, ["keys", "list", "--org", str(org.id), "--json"]).stdout)
    assert {r["name"]: r["role"] for r in as_json} == {"ops": "admin", "crm": "events"}

    bad = runner.invoke(main, ["keys", "create", "--org", str(org.id), "--name", "x", "--role", "superuser"])
    assert bad.exit_code == 2
    assert "Invalid value for '--role'" in bad.output and "'events'" in bad.output and "'admin'" in bad.output


def test_openapi_documents_the_403_of_an_events_key(client):
    doc = client.get("/api/openapi.json").json
    refused = doc["paths"]["/api/admin/metrics"]["get"]["responses"]["403"]
    assert "events role" in refused["description"] and "--role admin" in refused["description"]
    assert doc["components"]["schemas"]["Error"]["properties"]["required_role"]["enum"] == ["admin"]
