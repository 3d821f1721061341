"""`POST /webhooks/gmail` through the Flask test client on PostgreSQL + Redis, with Pub/Sub's OIDC
tokens signed here and verified against a local certs endpoint (tests/fakes/google_certs.py): the
push recorded once per messageId, a sync requested (stamp + `proactive.gmail_sync` on `slow`) for
each active integration of the mailbox in every org, every token check refused with 401 and one
rejected_events row, malformed or unknown-mailbox pushes recorded and acknowledged (204), the
certificate cache, and outages (503)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.fakes.google_certs import FakeGoogleCerts, new_key
from tests.support.edge import closed_port, db_counts, env_changed, latest_rejected, refusal_delta
from tests.support.engine import TestOrg, make_org
from tests.support.pubsub import AUDIENCE, SERVICE_ACCOUNT, deliver, good_claims, push_body
from webhooks import create_app
from worker.config import reset_settings
from worker.db import transaction
from worker.google import pubsub_auth
from worker.google.sync import SYNC_TASK
from worker.models import GmailPush, Integration

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("edge_env")]

SOURCE = "webhook:gmail"
pushes = GmailPush.__table__
integrations = Integration.__table__


@pytest.fixture(scope="module")
def certs() -> Iterator[FakeGoogleCerts]:
    with FakeGoogleCerts() as fake:
        yield fake


@pytest.fixture(scope="module")
def edge_env(pg, certs) -> Iterator[dict[str, str]]:
    """The pg backend plus the Pub/Sub settings, Google's certs served by the fake."""
    env = {
        **pg.env,
        "PUBSUB_AUDIENCE": AUDIENCE,
        "PUBSUB_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
        "GOOGLE_CERTS_URL": certs.certs_url,
    }
    with pytest.MonkeyPatch.context() as mp:
        for key in ("PUBSUB_AUDIENCE", "PUBSUB_SERVICE_ACCOUNT", "GOOGLE_CERTS_URL"):
            mp.setenv(key, env[key])
        reset_settings()
        yield env
    reset_settings()


@pytest.fixture(scope="module")
def client(edge_env) -> FlaskClient:
    return create_app().test_client()


# --------------------------------------------------------------------------- helpers


def connect(org: TestOrg, account: str, *, status: str = "active") -> uuid.UUID:
    """A Google integration of the org's rep for `account`; returns its id."""
    integration_id = uuid.uuid4()
    with transaction() as conn:
        conn.execute(
            integrations.insert().values(
                id=integration_id,
                org_id=org.id,
                user_id=org.rep,
                provider="google",
                account=account,
                scopes=[],
                status=status,
                history_id="100",
            )
        )
    return integration_id


def sync_wanted_at(integration_id: uuid.UUID) -> Any:
    with transaction() as conn:
        return conn.execute(
            select(integrations.c.sync_wanted_at).where(integrations.c.id == integration_id)
        ).scalar_one()


def push_rows(message_id: str) -> list[Any]:
    with transaction() as conn:
        return list(conn.execute(select(pushes).where(pushes.c.message_id == message_id)))


def push_count() -> int:
    with transaction() as conn:
        return conn.execute(select(func.count()).select_from(pushes)).scalar_one()


def sync_messages(env: dict[str, str]) -> list[tuple[str, str]]:
    """(org_id, integration_id) of every gmail_sync task waiting on the `slow` queue in Redis."""
    broker = redis.Redis.from_url(env["BROKER_URL"])
    found = []
    for raw in broker.lrange("slow", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == SYNC_TASK:
            args = json.loads(base64.b64decode(message["body"]))[0]
            found.append((args[0], args[1]))
    return found


def assert_acknowledged(response: Any, before: dict[str, int], error_type: str) -> Any:
    """204 with no body, one rejected_events row of `error_type`, nothing else."""
    assert response.status_code == 204, response.get_data(as_text=True)
    assert response.get_data() == b""
    assert refusal_delta(before) == {"rejected": 1}
    row = latest_rejected()
    assert (row.source, row.error_type) == (SOURCE, error_type)
    assert "authorization" not in {k.lower() for k in (row.headers or {})}
    return row


# --------------------------------------------------------------------------- accepting


def test_a_push_is_recorded_and_syncs_the_mailbox_in_every_org(client, certs, edge_env):
    address = f"dana-{uuid.uuid4().hex[:8]}@example.com"
    first_org, second_org = make_org(), make_org()
    in_first = connect(first_org, address)
    in_second = connect(second_org, address)
    revoked = connect(make_org(), address, status="revoked")
    elsewhere = connect(first_org, f"other-{uuid.uuid4().hex[:8]}@example.com")
    body = push_body(address.upper(), history_id="123456")  # Gmail's case need not match ours (stored lowercased)
    before, queued = db_counts(), sync_messages(edge_env)

    response = deliver(client, certs, body)

    assert response.status_code == 204, response.get_data(as_text=True)
    assert refusal_delta(before) == {}  # no job, no refusal: the sync task does the rest
    [row] = push_rows(body["message"]["messageId"])
    assert (row.email_address, row.history_id, row.status, row.integrations) == (
        address.upper(),
        "123456",
        "accepted",
        2,
    )
    assert row.subscription == body["subscription"] and row.error is None
    assert row.published_at.isoformat() == "2026-11-25T09:13:55.749000+00:00"
    assert sync_wanted_at(in_first) is not None and sync_wanted_at(in_second) is not None
    assert sync_wanted_at(revoked) is None and sync_wanted_at(elsewhere) is None
    new = [m for m in sync_messages(edge_env) if m not in queued]
    assert sorted(new) == sorted([(str(first_org.id), str(in_first)), (str(second_org.id), str(in_second))])


def test_a_redelivered_message_id_does_nothing_more(client, certs, edge_env):
    address = f"rep-{uuid.uuid4().hex[:8]}@example.com"
    mailbox = connect(make_org(), address)
    body = push_body(address)
    assert deliver(client, certs, body).status_code == 204
    stamped, queued, count, before = sync_wanted_at(mailbox), sync_messages(edge_env), push_count(), db_counts()

    again = deliver(client, certs, push_body(address, message_id=body["message"]["messageId"], history_id="999"))

    assert again.status_code == 204
    assert push_count() == count and len(push_rows(body["message"]["messageId"])) == 1
    assert push_rows(body["message"]["messageId"])[0].history_id == "9876543210"  # the first delivery's
    assert sync_wanted_at(mailbox) == stamped
    assert sync_messages(edge_env) == queued
    assert refusal_delta(before) == {}


def test_an_unknown_mailbox_is_recorded_and_acknowledged(client, certs, edge_env):
    address = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    connect(make_org(), address, status="revoked")  # only a revoked one: unknown all the same
    body = push_body(address)
    before, queued = db_counts(), sync_messages(edge_env)
    row = assert_acknowledged(deliver(client, certs, body), before, "UnknownMailbox")
    assert address in row.reason and row.org_id is None
    [push] = push_rows(body["message"]["messageId"])
    assert (push.status, push.integrations, push.email_address) == ("unknown_mailbox", 0, address)
    assert push.error
    assert sync_messages(edge_env) == queued


# --------------------------------------------------------------------------- token refusals


def _refusals(certs: FakeGoogleCerts) -> dict[str, tuple[str | None, str]]:
    """Authorization header -> (the check named in the 401's message)."""
    now = int(time.time())
    foreign_key, _cert = new_key()
    unpublished = certs.add_key(publish=False)
    return {
        "forged-signature": ("Bearer " + certs.token(good_claims(), key_pem=foreign_key), "signature does not verify"),
        "unknown-kid": ("Bearer " + certs.token(good_claims(), kid=unpublished), "key id"),
        "expired": ("Bearer " + certs.token(good_claims(iat=now - 7200, exp=now - 3600)), "expired"),
        "wrong-audience": ("Bearer " + certs.token(good_claims(aud="https://elsewhere.test")), "PUBSUB_AUDIENCE"),
        "wrong-email": ("Bearer " + certs.token(good_claims(email="intruder@evil.test")), "PUBSUB_SERVICE_ACCOUNT"),
        "email-unverified": ("Bearer " + certs.token(good_claims(email_verified=False)), "not verified"),
        "wrong-issuer": ("Bearer " + certs.token(good_claims(iss="https://evil.test")), "accounts.google.com"),
        "no-exp": ("Bearer " + certs.token(good_claims(exp=None)), "exp"),
        "not-a-jwt": ("Bearer not.a.jwt", "well-formed JWT"),
        "missing-header": ("", "no Authorization header"),
        "not-bearer": ("Basic " + base64.b64encode(b"user:pass").decode(), "not a Bearer token"),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "forged-signature",
        "unknown-kid",
        "expired",
        "wrong-audience",
        "wrong-email",
        "email-unverified",
        "wrong-issuer",
        "no-exp",
        "not-a-jwt",
        "missing-header",
        "not-bearer",
    ],
)
def test_a_token_failing_any_check_is_401_and_recorded(client, certs, kind):
    address = f"rep-{uuid.uuid4().hex[:8]}@example.com"
    mailbox = connect(make_org(), address)
    authorization, says = _refusals(certs)[kind]
    body = push_body(address)
    before, count = db_counts(), push_count()

    response = deliver(client, certs, body, authorization=authorization)

    assert response.status_code == 401, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["error"] == "unauthorized" and says in answer["message"]
    assert answer["request_id"] == response.headers["X-Request-Id"]
    assert refusal_delta(before) == {"rejected": 1}
    row = latest_rejected()
    assert (row.source, row.error_type) == (SOURCE, "BadToken") and says in row.reason
    assert "authorization" not in {k.lower() for k in (row.headers or {})}
    token = authorization.partition(" ")[2]
    if len(token) > 20:
        assert token not in row.reason and token[-40:] not in answer["message"]  # never echoed
    assert push_count() == count and sync_wanted_at(mailbox) is None


@pytest.mark.parametrize("setting", ["PUBSUB_AUDIENCE", "PUBSUB_SERVICE_ACCOUNT"])
def test_without_the_pubsub_settings_every_push_is_refused(client, certs, edge_env, setting):
    body = push_body(f"rep-{uuid.uuid4().hex[:8]}@example.com")
    with env_changed(edge_env, **{setting: ""}):
        before = db_counts()
        response = deliver(client, certs, body)
        assert response.status_code == 401
        assert setting in response.get_json()["message"] and refusal_delta(before) == {"rejected": 1}
    assert push_rows(body["message"]["messageId"]) == []


# --------------------------------------------------------------------------- malformed but verified


def _data(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    ("kind", "raw", "error_type", "says"),
    [
        ("not-json", b"{nope", "BadJson", "invalid JSON"),
        ("not-an-object", b"[1, 2]", "InvalidPush", "not a JSON object"),
        (
            "data-not-base64",
            json.dumps({"message": {"data": "%%%", "messageId": "1"}}).encode(),
            "InvalidPush",
            "not base64",
        ),
        (
            "no-message-id",
            json.dumps({"message": {"data": _data(b'{"emailAddress": "a@b.c", "historyId": "1"}')}}).encode(),
            "InvalidPush",
            "messageId",
        ),
        (
            "data-without-address",
            json.dumps({"message": {"data": _data(b'{"historyId": "1"}'), "messageId": "2"}}).encode(),
            "InvalidPush",
            "emailAddress",
        ),
        (
            "data-not-json",
            json.dumps({"message": {"data": _data(b"hello"), "messageId": "3"}}).encode(),
            "InvalidPush",
            "JSON",
        ),
    ],
)
def test_a_malformed_verified_push_is_recorded_and_acknowledged(client, certs, kind, raw, error_type, says):
    before, count = db_counts(), push_count()
    row = assert_acknowledged(deliver(client, certs, None, raw=raw), before, error_type)
    assert says in row.reason and row.body == raw.decode()
    assert push_count() == count


def test_an_oversized_verified_push_is_recorded_and_acknowledged(client, certs):
    before = db_counts()
    raw = json.dumps({"message": {"data": "x" * (1024 * 1024)}}).encode()
    row = assert_acknowledged(deliver(client, certs, None, raw=raw), before, "PayloadTooLarge")
    assert "over the" in row.reason and "body not kept" in row.body


# --------------------------------------------------------------------------- certificates


def test_certificates_are_fetched_once_and_again_for_a_rotated_key(client, edge_env, monkeypatch):
    address = f"rep-{uuid.uuid4().hex[:8]}@example.com"
    connect(make_org(), address)
    with FakeGoogleCerts(key_count=1) as fresh, env_changed(edge_env, GOOGLE_CERTS_URL=fresh.certs_url):
        assert deliver(client, fresh, push_body(address)).status_code == 204
        assert deliver(client, fresh, push_body(address)).status_code == 204
        assert fresh.fetches == 1

        rotated = fresh.add_key()  # Google publishes a new key; the cache still holds the old set
        monkeypatch.setattr(pubsub_auth, "MIN_REFETCH_INTERVAL_S", 0.0)
        assert (
            deliver(client, fresh, push_body(address), token=fresh.token(good_claims(), kid=rotated)).status_code == 204
        )
        assert (
            deliver(client, fresh, push_body(address), token=fresh.token(good_claims(), kid=rotated)).status_code == 204
        )
        assert fresh.fetches == 2


def test_certificates_out_of_reach_is_503_and_nothing_recorded(client, certs, edge_env):
    body = push_body(f"rep-{uuid.uuid4().hex[:8]}@example.com")
    with env_changed(edge_env, GOOGLE_CERTS_URL=f"http://127.0.0.1:{closed_port()}/oauth2/v1/certs"):
        before = db_counts()
        response = deliver(client, certs, body)
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["error"] == "unavailable" and "Retry-After" in response.headers
    assert refusal_delta(before) == {} and push_rows(body["message"]["messageId"]) == []


# --------------------------------------------------------------------------- outages


def test_database_down_is_503_and_pubsub_redelivers(client, certs, edge_env):
    address = f"rep-{uuid.uuid4().hex[:8]}@example.com"
    mailbox = connect(make_org(), address)
    body = push_body(address)
    with env_changed(edge_env, DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nope"):
        response = deliver(client, certs, body)
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["error"] == "unavailable" and "Retry-After" in response.headers
    assert push_rows(body["message"]["messageId"]) == [] and sync_wanted_at(mailbox) is None
    assert deliver(client, certs, body).status_code == 204  # Pub/Sub's redelivery once the database is back
    assert len(push_rows(body["message"]["messageId"])) == 1 and sync_wanted_at(mailbox) is not None


# --------------------------------------------------------------------------- verified garbage

_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20,
)
_notification = st.fixed_dictionaries({}, optional={"emailAddress": _json, "historyId": _json})
_envelope = st.fixed_dictionaries(
    {},
    optional={
        "message": st.one_of(
            _json,
            st.fixed_dictionaries(
                {},
                optional={
                    "data": st.one_of(_json, _notification.map(lambda n: _data(json.dumps(n).encode()))),
                    "messageId": _json,
                    "publishTime": _json,
                },
            ),
        ),
        "subscription": _json,
    },
)
garbage = st.one_of(
    st.binary(max_size=256),
    _json.map(lambda v: json.dumps(v).encode()),
    _envelope.map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(raw=garbage)
def test_verified_garbage_is_always_acknowledged_never_a_5xx(client, certs, raw):
    token = certs.token(good_claims())  # one signature per example is plenty
    before = db_counts()
    response = deliver(client, certs, None, raw=raw, token=token)
    assert response.status_code == 204, (response.status_code, response.get_data(as_text=True)[:300])
    assert set(refusal_delta(before)) <= {"rejected"}
