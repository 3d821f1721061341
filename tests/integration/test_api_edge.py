"""The events API through the Flask test client on PostgreSQL + Redis: firing with an org key or the
admin token, idempotency, `?wait` against a real worker, org scoping, every refusal (one
rejected_events row, nothing else changed), the OpenAPI document, the `proactive keys` commands,
and a database or broker outage."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support import sequences as test_dags
from tests.support.edge import closed_port, db_counts, env_changed, latest_rejected, refusal_delta
from tests.support.engine import TestOrg, job_row, make_org, settled, step_rows
from tests.support.waiting import wait_for
from webhooks import create_app
from worker.access.api_keys import create_key, org_for_key, revoke
from worker.config import reset_settings
from worker.db import transaction
from worker.engine import registry
from worker.models import ApiKey, jobs

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("edge_env")]

ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
# The source of the `org_key` fixture's events and refusals: the key's name (its events are stored
# as `api:<key name>`, never a source the caller picked).
KEY_SOURCE = "api:tests"
PRODUCT_TYPES = (
    "calendar_find_times",
    "campaign_daily_check",
    "coaching_weekly",
    "deal_risk_scan",
    "email_received",
    "meeting_ended",
    "pre_meeting_90min",
    "proposal_generation",
    "stale_deal_revival",
)


@pytest.fixture(scope="module")
def edge_env(pg) -> Iterator[dict[str, str]]:
    """The pg backend plus the admin token; the product's sequences in this process."""
    import importlib

    env = {**pg.env, "ADMIN_TOKEN": ADMIN_TOKEN}
    product = [importlib.import_module(f"sequences.{t}").SEQUENCE for t in PRODUCT_TYPES]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADMIN_TOKEN", ADMIN_TOKEN)
        reset_settings()
        with registry.overridden(product):
            yield env
    reset_settings()


@pytest.fixture(scope="module")
def client(edge_env) -> FlaskClient:
    return create_app().test_client()


@pytest.fixture
def org_key(edge_env, org) -> str:
    key, _info = create_key(org.id, "tests")
    return key


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def envelope(org: TestOrg, event_type: str = "deal_risk_scan", **extra: Any) -> dict[str, Any]:
    """An API event for `org` with a unique key (deal_risk_scan: org-level, no user needed). No
    source: the server sets it."""
    return {
        "type": event_type,
        "org_id": str(org.id),
        "payload": {},
        "idempotency_key": f"api-test:{uuid.uuid4().hex}",
        **extra,
    }


def post_event(client: FlaskClient, token: str, body: Any, query: str = "") -> Any:
    return client.post(f"/api/events{query}", json=body, headers=bearer(token))


def published(env: dict[str, str], step_run_id: uuid.UUID) -> bool:
    """True when a run_step message for this step waits in the Redis `steps` queue."""
    broker = redis.Redis.from_url(env["BROKER_URL"])
    return any(str(step_run_id).encode() in m for m in broker.lrange("steps", 0, -1))


def assert_refused(response: Any, status: int, before: dict[str, int], error_type: str, source: str = "api") -> Any:
    """The answer is a JSON error with `status`; exactly one rejected_events row was added."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert body["error"] and body["message"]
    assert refusal_delta(before) == {"rejected": 1}
    row = latest_rejected()
    assert (row.source, row.error_type) == (source, error_type)
    kept = {k.lower() for k in (row.headers or {})}
    assert "host" in kept and "authorization" not in kept  # the request's headers, its credentials left out
    return body


# --------------------------------------------------------------------------- firing


def test_org_key_fires_an_event_and_gets_202(client, org, org_key, edge_env):
    ev = envelope(org)
    response = post_event(client, org_key, ev)
    assert response.status_code == 202
    body = response.get_json()
    assert set(body) == {"job_id", "status", "duplicate"}
    assert body["status"] == "queued" and body["duplicate"] is False
    first_step = next(iter(step_rows(uuid.UUID(body["job_id"])).values()))
    assert published(edge_env, first_step.id)  # no worker runs here: the message waits in Redis
    job = job_row(uuid.UUID(body["job_id"]))
    assert (job.org_id, job.event_type, job.source, job.idempotency_key) == (
        org.id,
        "deal_risk_scan",
        KEY_SOURCE,  # the key's name, set by the server
        "caller:" + ev["idempotency_key"],  # a caller's keys live in their own namespace
    )


def test_the_same_key_twice_is_one_job(client, org, org_key):
    ev = envelope(org)
    first = post_event(client, org_key, ev).get_json()
    second = post_event(client, org_key, ev)
    assert second.status_code == 202
    assert second.get_json() == {**first, "duplicate": True}
    with transaction() as conn:
        found = conn.execute(
            select(jobs.c.id).where(
                jobs.c.org_id == org.id, jobs.c.idempotency_key == "caller:" + ev["idempotency_key"]
            )
        ).all()
    assert [r.id for r in found] == [uuid.UUID(first["job_id"])]


def test_admin_token_fires_and_reads_for_any_org(client, edge_env):
    one, two = make_org(), make_org()
    ids = []
    for o in (one, two):
        response = post_event(client, ADMIN_TOKEN, envelope(o))
        assert response.status_code == 202
        ids.append(response.get_json()["job_id"])
    for o, job_id in zip((one, two), ids, strict=True):
        detail = client.get(f"/api/jobs/{job_id}", headers=bearer(ADMIN_TOKEN))
        assert detail.status_code == 200 and detail.get_json()["org_id"] == str(o.id)


def test_a_gated_event_answers_skipped_with_the_reason():
    gated = make_org(enabled_sequences=["deal_risk_scan"])
    key, _ = create_key(gated.id, "gated")
    client = create_app().test_client()
    response = post_event(
        client,
        key,
        envelope(gated, "proposal_generation", user_id=str(gated.rep), payload={"deal_id": str(uuid.uuid4())}),
    )
    assert response.status_code == 202
    assert response.get_json()["status"] == "skipped" and response.get_json()["reason"] == "sequence_disabled"


def test_job_detail_has_steps_approvals_and_messages(client, org, org_key):
    job_id = post_event(client, org_key, envelope(org)).get_json()["job_id"]
    response = client.get(f"/api/jobs/{job_id}", headers=bearer(org_key))
    assert response.status_code == 200
    detail = response.get_json()
    assert detail["id"] == job_id and detail["status"] == "queued"
    assert [s["step"] for s in detail["steps"]] == list(step_rows(uuid.UUID(job_id)))
    assert detail["steps"] and all(s["status"] == "queued" for s in detail["steps"])
    assert detail["approvals"] == [] and detail["messages"] == []


def test_a_key_in_use_records_when_it_was_last_used(client, org):
    key, info = create_key(org.id, "usage")
    assert info.last_used_at is None
    assert post_event(client, key, envelope(org)).status_code == 202
    with transaction() as conn:
        used = conn.execute(select(ApiKey.last_used_at).where(ApiKey.id == info.id)).scalar_one()
    assert used is not None and used >= info.created_at


# --------------------------------------------------------------------------- ?wait with a real worker


def test_wait_returns_the_completed_status(client, org, org_key, workers):
    with registry.overridden(test_dags.ALL):
        workers()
        response = post_event(client, org_key, envelope(org, "campaign_daily_check"), "?wait=20")
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "completed"
    assert settled(uuid.UUID(body["job_id"])) == "completed"


def test_wait_returns_when_the_job_pauses_for_approval(client, org, org_key, workers):
    with registry.overridden(test_dags.ALL):
        workers()
        ev = envelope(org, "calendar_find_times", user_id=str(org.rep))
        started = time.monotonic()
        response = post_event(client, org_key, ev, "?wait=20")
    assert response.status_code == 202
    assert response.get_json()["status"] == "awaiting_approval"
    assert time.monotonic() - started < 15  # it answered at the pause, not at the deadline
    detail = client.get(f"/api/jobs/{response.get_json()['job_id']}", headers=bearer(org_key)).get_json()
    assert [a["status"] for a in detail["approvals"]] == ["pending"]


def test_a_completed_job_with_failed_best_effort_steps_counts_them(client, org, org_key, workers):
    with registry.overridden(test_dags.ALL):
        workers()
        ev = envelope(org, "meeting_ended", user_id=str(org.rep), payload={"fail_steps": ["optional"]})
        response = post_event(client, org_key, ev, "?wait=20")
        clean = post_event(client, org_key, envelope(org, "meeting_ended", user_id=str(org.rep)), "?wait=20")
    assert response.status_code == 202 and response.get_json()["status"] == "completed"
    detail = client.get(f"/api/jobs/{response.get_json()['job_id']}", headers=bearer(org_key)).get_json()
    assert detail["status"] == "completed" and detail["error"] is None  # the job went on...
    assert detail["errors"] == 1  # ...but it is not a clean run
    assert detail["failed_steps"] == [
        {"step": "optional", "error": "PermanentError: optional refuses bad data", "error_class": "permanent"}
    ]
    assert clean.get_json()["status"] == "completed"
    fresh = client.get(f"/api/jobs/{clean.get_json()['job_id']}", headers=bearer(org_key)).get_json()
    assert (fresh["errors"], fresh["failed_steps"]) == (0, [])

    from worker.ops.cli import main  # the CLI reads the same counts

    listed = CliRunner().invoke(main, ["jobs", "--org", str(org.id), "--type", "meeting_ended"])
    assert listed.exit_code == 0, listed.output
    by_job = {line.split()[0]: line for line in listed.output.splitlines()[1:]}
    assert "completed · 1 error " in by_job[detail["id"]]
    assert "completed" in by_job[fresh["id"]] and "error" not in by_job[fresh["id"]]
    shown = CliRunner().invoke(main, ["job", detail["id"]])
    assert shown.exit_code == 0 and "completed · 1 error" in shown.output.splitlines()[0]
    assert "failed steps (best-effort, the job went on): optional" in shown.output


def test_wait_gives_the_latest_status_at_the_deadline(client, org, org_key):
    started = time.monotonic()
    response = post_event(client, org_key, envelope(org), "?wait=0.3")  # no worker here: it stays queued
    assert response.status_code == 202 and response.get_json()["status"] == "queued"
    assert 0.3 <= time.monotonic() - started < 5


# --------------------------------------------------------------------------- org scoping


def test_another_orgs_key_gets_404_for_a_job(client, org, org_key):
    job_id = post_event(client, org_key, envelope(org)).get_json()["job_id"]
    other = make_org()
    other_key, _ = create_key(other.id, "other")
    before = db_counts()
    response = client.get(f"/api/jobs/{job_id}", headers=bearer(other_key))
    body = assert_refused(response, 404, before, "NotFound")
    assert job_id in body["message"]
    assert latest_rejected().org_id == other.id


def test_a_key_cannot_fire_for_another_org(client, org, org_key):
    other = make_org()
    before = db_counts()
    response = post_event(client, org_key, envelope(other))
    body = assert_refused(response, 403, before, "Forbidden", source=KEY_SOURCE)
    assert str(other.id) in body["message"]


def test_unknown_job_id_and_non_uuid_are_404(client, org, org_key):
    for job_id in (str(uuid.uuid4()), "not-a-uuid"):
        before = db_counts()
        assert_refused(client.get(f"/api/jobs/{job_id}", headers=bearer(org_key)), 404, before, "NotFound")


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer pk_not-a-real-key"},
        {"Authorization": "Bearer admin-wrong"},
    ],
    ids=["missing", "empty", "basic", "unknown-key", "wrong-admin"],
)
def test_unauthenticated_requests_are_401(client, org, headers):
    before = db_counts()
    response = client.post("/api/events", json=envelope(org), headers=headers)
    assert_refused(response, 401, before, "Unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    before = db_counts()
    assert_refused(client.get(f"/api/jobs/{uuid.uuid4()}", headers=headers), 401, before, "Unauthorized")


def test_a_revoked_key_is_401(client, org):
    key, info = create_key(org.id, "to-revoke")
    assert post_event(client, key, envelope(org)).status_code == 202
    revoked = revoke(info.id)
    assert revoked.revoked_at is not None
    before = db_counts()
    assert_refused(post_event(client, key, envelope(org)), 401, before, "Unauthorized")


def test_a_key_revoked_elsewhere_stops_working_within_the_cache_window(client, org, monkeypatch):
    from worker.access import api_keys

    monkeypatch.setattr(api_keys, "AUTH_CACHE_S", 0.5)
    key, info = create_key(org.id, "revoked-by-another-process")
    assert api_keys.authenticate(key) == org.id
    with transaction() as conn:  # what `proactive keys revoke` in another process does
        conn.execute(ApiKey.__table__.update().where(ApiKey.id == info.id).values(revoked_at=info.created_at))
    assert api_keys.authenticate(key) == org.id  # this process still trusts it for a moment...
    assert wait_for(lambda: api_keys.authenticate(key) is None, timeout_s=5, what="revocation noticed")
    assert post_event(client, key, envelope(org)).status_code == 401  # ...then never again


def test_invalid_json_is_400(client, org, org_key):
    for raw in (
        b"{not json",
        b'{"type": NaN}',
        b'{"a": "\\u0000"}',
        b'["\\ud800"]',
        b"[" * 40 + b"]" * 40,
        b"\xff\xfe",
    ):
        before = db_counts()
        response = client.post("/api/events", data=raw, headers={**bearer(org_key), "Content-Type": "application/json"})
        assert_refused(response, 400, before, "BadJson", source=KEY_SOURCE)


def test_unsupported_content_type_is_415(client, org, org_key):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        before = db_counts()
        headers = {**bearer(org_key), **({"Content-Type": content_type} if content_type else {})}
        response = client.post("/api/events", data=json.dumps(envelope(org)), headers=headers)
        assert_refused(response, 415, before, "UnsupportedMediaType", source=KEY_SOURCE)


def test_schema_errors_are_422_listing_every_field(client, org, org_key):
    before = db_counts()
    bad = {**envelope(org, "meeting_ended"), "source": "carrier-pigeon", "colour": "red", "depth": 10**12}
    del bad["type"]
    # recorded under the key's source, not the one the body claims
    body = assert_refused(post_event(client, org_key, bad), 422, before, "InvalidEvent", source=KEY_SOURCE)
    assert body["error"] == "invalid_event"  # snake_case like every other code; the row keeps the class name
    assert {e["field"] for e in body["errors"]} == {"type", "source", "colour", "depth"}

    before = db_counts()
    bad_payload = envelope(org, "meeting_ended", user_id=str(org.rep), payload={"meeting_id": "x", "extra": 1})
    body = assert_refused(post_event(client, org_key, bad_payload), 422, before, "InvalidEvent", source=KEY_SOURCE)
    assert {e["field"] for e in body["errors"]} == {"payload.meeting_id", "payload.extra"}

    for not_an_object in (b"[1, 2]", b'"text"', b"null"):
        before = db_counts()
        response = client.post(
            "/api/events", data=not_an_object, headers={**bearer(org_key), "Content-Type": "application/json"}
        )
        assert_refused(response, 422, before, "InvalidEvent", source=KEY_SOURCE)


def test_a_user_of_another_org_is_422(client, org, org_key):
    other = make_org()
    before = db_counts()
    ev = envelope(org, "meeting_ended", user_id=str(other.rep), payload={"meeting_id": str(uuid.uuid4())})
    body = assert_refused(post_event(client, org_key, ev), 422, before, "InvalidEvent", source=KEY_SOURCE)
    assert "not a member" in body["message"]


def test_an_oversized_body_is_413_json(client, org, org_key):
    ev = envelope(org, payload={"blob": "x" * (1024 * 1024)})
    before = db_counts()
    response = post_event(client, org_key, ev)
    body = assert_refused(response, 413, before, "PayloadTooLarge", source=KEY_SOURCE)
    assert body["error"] == "payload_too_large"
    assert "over the" in latest_rejected().body


@pytest.mark.parametrize("wait", ["0", "-1", "31", "abc", "nan", "inf", ""])
def test_a_bad_wait_is_400(client, org, org_key, wait):
    before = db_counts()
    body = assert_refused(
        post_event(client, org_key, envelope(org), f"?wait={wait}"), 400, before, "BadWait", source=KEY_SOURCE
    )
    assert "wait" in body["message"]


# --------------------------------------------------------------------------- the document


def test_openapi_document_is_valid_and_generated_from_the_models(client):
    from openapi_spec_validator import validate

    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert {"/api/events", "/api/jobs/{job_id}", "/api/jobs/{job_id}/cancel"} <= set(doc["paths"])
    schemas = doc["components"]["schemas"]
    for name in (
        "Event",
        "MeetingEnded",
        "PreMeeting",
        "EmailReceived",
        "ProposalGeneration",
        "CalendarFindTimes",
        "StaleDealRevival",
        "CampaignDailyCheck",
        "CoachingWeekly",
        "DealRiskScan",
        "FireResult",
        "Job",
    ):
        assert name in schemas, name
    conditions = {c["if"]["properties"]["type"]["const"]: c["then"] for c in schemas["Event"]["allOf"]}
    assert set(conditions) == set(PRODUCT_TYPES)
    assert conditions["meeting_ended"]["properties"]["payload"]["$ref"] == "#/components/schemas/MeetingEnded"
    assert schemas["MeetingEnded"]["required"] == ["meeting_id"]
    # the caller's envelope: no field only the server sets
    assert set(schemas["Event"]["properties"]) == {
        "type",
        "org_id",
        "user_id",
        "payload",
        "idempotency_key",
        "delay_minutes",
        "replace",
    }
    assert schemas["Event"]["additionalProperties"] is False
    assert {"live_job_id", "scheduled_for"} <= set(schemas["FireResult"]["properties"])
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    responses = doc["paths"]["/api/events"]["post"]["responses"]
    assert {"202", "400", "401", "403", "413", "415", "422", "503"} <= set(responses)


# --------------------------------------------------------------------------- keys CLI


def test_keys_cli_creates_lists_and_revokes(client, org):
    from worker.ops.cli import main

    runner = CliRunner()
    made = runner.invoke(main, ["keys", "create", "--org", str(org.id), "--name", "crm-sync", "--json"])
    assert made.exit_code == 0, made.output
    info = json.loads(made.stdout)
    assert info["key"].startswith("pk_") and info["prefix"] == info["key"][:11]
    with transaction() as conn:
        assert org_for_key(conn, info["key"]) == org.id
    assert post_event(client, info["key"], envelope(org)).status_code == 202

    listed = runner.invoke(main, ["keys", "list", "--org", str(org.id), "--json"])
    assert listed.exit_code == 0
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert rows[info["id"]]["name"] == "crm-sync" and "key" not in rows[info["id"]]
    assert info["key"] not in listed.stdout

    gone = runner.invoke(main, ["keys", "revoke", info["id"]])
    assert gone.exit_code == 0 and "revoked" in gone.stdout
    assert post_event(client, info["key"], envelope(org)).status_code == 401
    unknown = runner.invoke(main, ["keys", "revoke", str(uuid.uuid4())])
    assert unknown.exit_code == 2 and "not found" in unknown.output


def test_keys_cli_refuses_an_unknown_org_and_an_empty_name(org):
    from worker.ops.cli import main

    runner = CliRunner()
    assert runner.invoke(main, ["keys", "create", "--org", str(uuid.uuid4()), "--name", "x"]).exit_code == 2
    empty = runner.invoke(main, ["keys", "create", "--org", str(org.id), "--name", " "])
    assert empty.exit_code == 2 and "name" in empty.output


# --------------------------------------------------------------------------- outages


def test_database_down_is_503_for_key_and_admin_callers(client, org, org_key, edge_env):
    ev = envelope(org)
    with env_changed(edge_env, DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nope"):
        for token in (org_key, ADMIN_TOKEN):
            response = post_event(client, token, ev)
            assert response.status_code == 503, response.get_data(as_text=True)
            assert response.get_json()["error"] == "unavailable"
            assert int(response.headers["Retry-After"]) > 0
        assert client.get(f"/api/jobs/{uuid.uuid4()}", headers=bearer(ADMIN_TOKEN)).status_code == 503
    with transaction() as conn:  # nothing slipped through while it was down
        stored = "caller:" + ev["idempotency_key"]
        assert conn.execute(select(jobs.c.id).where(jobs.c.idempotency_key == stored)).first() is None


def test_broker_down_still_commits_and_answers_202_then_the_sweeper_publishes(client, org, org_key, edge_env, workers):
    with registry.overridden(test_dags.ALL):
        with env_changed(edge_env, BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0"):
            response = post_event(client, org_key, envelope(org, "campaign_daily_check"))
        assert response.status_code == 202
        job_id = uuid.UUID(response.get_json()["job_id"])
        queued = [r.id for r in step_rows(job_id).values() if r.status == "queued"]
        assert len(queued) == 1  # committed...
        assert not published(edge_env, queued[0])  # ...never published
        workers()  # a starting worker sweeps: it re-publishes every queued step
        assert wait_for(lambda: settled(job_id), timeout_s=30, what="job settled") == "completed"
