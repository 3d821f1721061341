"""Google OAuth connect (`/oauth/google/start|callback`, worker.google.oauth) through the Flask test
client on PostgreSQL, against the fake Google: the consent redirect, the full round trip (encrypted
credentials, scopes, Gmail watch), reconnecting, every refusal (recorded, nothing stored, the code
not spent when the state is bad) and the reconnect DM's signed link."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask.testing import FlaskClient
from itsdangerous import URLSafeSerializer
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select

from tests.fakes.google import CLIENT_ID, CLIENT_SECRET, FakeGoogle, google_error
from tests.support.edge import latest_rejected
from tests.support.engine import TestOrg
from webhooks import create_app
from worker.config import reset_settings
from worker.crypto import decrypt_json
from worker.db import transaction
from worker.engine.executor import _mark_revoked
from worker.errors import AuthRevoked
from worker.google import links
from worker.google import oauth as google_oauth
from worker.models import Integration, SlackOutbox

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("pg")]

APP_URL = "http://proactive.test"
CALLBACK = f"{APP_URL}/oauth/google/callback"
SECRET = "oauth-state-" + uuid.uuid4().hex
TOPIC = "projects/proactive-test/topics/gmail-push"
SOURCE = "oauth:google"
integrations = Integration.__table__


@pytest.fixture
def google(fake_google: FakeGoogle) -> Iterator[FakeGoogle]:
    """The fake Google with the connect's settings (secret, app URL, Pub/Sub topic)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OAUTH_STATE_SECRET", SECRET)
        mp.setenv("APP_URL", APP_URL)
        mp.setenv("GMAIL_PUBSUB_TOPIC", TOPIC)
        reset_settings()
        yield fake_google
    reset_settings()


@pytest.fixture
def client(google: FakeGoogle) -> FlaskClient:
    """A browser: keeps the nonce cookie between start and callback."""
    return create_app().test_client()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@contextmanager
def signed_days_ago(days: float) -> Iterator[None]:
    """Within it, tokens are signed `days` ago (itsdangerous reads the clock when signing)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time() - days * 86400))
    try:
        yield
    finally:
        mp.undo()


def with_payload(token: str, payload: dict[str, str]) -> str:
    """`token` with its signed payload replaced (timestamp and signature kept), encoded as itsdangerous
    encodes it."""
    _, timestamp, signature = token.rsplit(".", 2)
    return f"{URLSafeSerializer('unused').dump_payload(payload).decode()}.{timestamp}.{signature}"


def start(client: FlaskClient, org: TestOrg, user_id: uuid.UUID | None = None) -> dict[str, str]:
    """Open the connect link; the consent URL's query."""
    token = links.connect_token(org.id, user_id or org.rep)
    response = client.get(f"/oauth/google/start?token={token}")
    assert response.status_code == 302, response.get_data(as_text=True)
    return query(response.headers["Location"])


def callback(client: FlaskClient, **params: str) -> Any:
    return client.get(f"/oauth/google/callback?{urlencode(params)}")


def connect(client: FlaskClient, fake: FakeGoogle, org: TestOrg, email: str, **code_kwargs: Any) -> Any:
    """The whole round trip for the org's rep, as the browser makes it."""
    state = start(client, org)["state"]
    return callback(client, code=fake.issue_code(email, redirect_uri=CALLBACK, **code_kwargs), state=state)


def google_rows(org: TestOrg) -> list[Any]:
    with transaction() as conn:
        return list(conn.execute(select(integrations).where(integrations.c.org_id == org.id)))


def assert_refused(response: Any, status: int, error_type: str, *, org: TestOrg | None = None) -> Any:
    """`status` + JSON error, one rejected_events row without credentials, no integration stored."""
    assert response.status_code == status, response.get_data(as_text=True)
    rejected = latest_rejected()
    assert (rejected.source, rejected.error_type) == (SOURCE, error_type)
    body = json.loads(rejected.body)
    for secret_param in ("token", "code"):
        assert body["query"].get(secret_param) in (None, "(redacted)")
    assert "cookie" not in {k.lower() for k in rejected.headers}
    if org is not None:
        assert rejected.org_id == org.id
        assert google_rows(org) == []
    return response.get_json()


# --------------------------------------------------------------------------- start


def test_start_redirects_to_the_consent_screen_with_a_signed_state(client: FlaskClient, org: TestOrg) -> None:
    token = links.connect_token(org.id, org.rep)
    response = client.get(f"/oauth/google/start?token={token}")

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    q = query(location)
    assert q["client_id"] == CLIENT_ID
    assert q["redirect_uri"] == CALLBACK
    assert q["response_type"] == "code"
    assert q["scope"].split() == list(google_oauth.SCOPES)
    assert (q["access_type"], q["prompt"], q["include_granted_scopes"]) == ("offline", "consent", "true")
    cookie = client.get_cookie(google_oauth.NONCE_COOKIE, path="/oauth/google")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    grant = google_oauth.read_state(q["state"], datetime.now(UTC), nonce=cookie.value)
    assert (grant.org_id, grant.user_id) == (org.id, org.rep)


def test_start_without_a_token_is_400(client: FlaskClient) -> None:
    body = assert_refused(client.get("/oauth/google/start"), 400, "MissingToken")
    assert body["error"] == "bad_request"


def test_start_with_an_altered_token_is_403(client: FlaskClient, org: TestOrg) -> None:
    token = links.connect_token(org.id, org.rep)
    response = client.get(f"/oauth/google/start?token={token[:-3]}xyz")
    body = assert_refused(response, 403, "TokenInvalid")
    assert "not valid" in body["message"]
    assert client.get_cookie(google_oauth.NONCE_COOKIE, path="/oauth/google") is None


def test_start_with_an_expired_token_is_403_and_names_the_org(client: FlaskClient, org: TestOrg) -> None:
    with signed_days_ago(8):
        token = links.connect_token(org.id, org.rep)
    body = assert_refused(client.get(f"/oauth/google/start?token={token}"), 403, "TokenExpired", org=org)
    assert "expired" in body["message"]


def test_missing_secret_is_a_503_naming_the_setting(client: FlaskClient, org: TestOrg) -> None:
    token = links.connect_token(org.id, org.rep)
    state = start(client, org)["state"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OAUTH_STATE_SECRET", "")
        reset_settings()
        started = client.get(f"/oauth/google/start?token={token}")
        assert "OAUTH_STATE_SECRET" in assert_refused(started, 503, "OAuthNotConfigured")["message"]
        finished = callback(client, code="4/0Aanything", state=state)
        assert "OAUTH_STATE_SECRET" in assert_refused(finished, 503, "OAuthNotConfigured")["message"]
    reset_settings()
    assert google_rows(org) == []


# --------------------------------------------------------------------------- callback: the round trip


def test_round_trip_stores_encrypted_credentials_and_sets_up_the_watch(
    client: FlaskClient, google: FakeGoogle, org: TestOrg
) -> None:
    before = datetime.now(UTC)
    response = connect(client, google, org, "rep@example.com", refresh_token="1//refresh-first")

    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    assert "Google connected" in page and "rep@example.com" in page and "sees new mail" in page
    (exchange,) = google.requests_to("POST", "/token")
    assert exchange.form["grant_type"] == "authorization_code"
    assert exchange.form["redirect_uri"] == CALLBACK
    assert (exchange.form["client_id"], exchange.form["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)

    (row,) = google_rows(org)
    assert (row.user_id, row.provider, row.account, row.status, row.last_error) == (
        org.rep,
        "google",
        "rep@example.com",
        "active",
        None,
    )
    assert row.scopes == list(google_oauth.SCOPES)
    assert b"1//refresh-first" not in row.credentials
    stored = decrypt_json(row.credentials)
    assert set(stored) == {"token", "refresh_token", "expiry", "scopes"}
    assert stored["refresh_token"] == "1//refresh-first"
    assert stored["token"] in google.access_tokens and google.mailboxes[stored["token"]] == "rep@example.com"
    assert stored["scopes"] == list(google_oauth.SCOPES)
    expiry = datetime.fromisoformat(stored["expiry"])
    assert before + timedelta(seconds=3920) <= expiry <= datetime.now(UTC) + timedelta(seconds=3920)

    (watch,) = google.watches
    assert watch["mailbox"] == "rep@example.com" and watch["body"]["topicName"] == TOPIC
    assert row.watch_expiration is not None and row.history_id == str(google.history_id)
    assert client.get_cookie(google_oauth.NONCE_COOKIE, path="/oauth/google") is None  # one use


def test_reconnecting_updates_the_same_row(client: FlaskClient, google: FakeGoogle, org: TestOrg) -> None:
    assert connect(client, google, org, "rep@example.com", refresh_token="1//first").status_code == 200
    (first,) = google_rows(org)
    with transaction() as conn:
        conn.execute(
            integrations.update()
            .where(integrations.c.id == first.id)
            .values(status="revoked", last_error="invalid_grant", history_id="100")
        )

    assert connect(client, google, org, "rep@example.com", refresh_token="1//second").status_code == 200

    (row,) = google_rows(org)
    assert row.id == first.id
    assert (row.status, row.last_error) == ("active", None)
    assert decrypt_json(row.credentials)["refresh_token"] == "1//second"
    assert row.history_id == "100"  # same mailbox: history sync goes on from where it was
    assert len(google.watches) == 2


def test_connecting_another_mailbox_forgets_the_old_history(
    client: FlaskClient, google: FakeGoogle, org: TestOrg
) -> None:
    assert connect(client, google, org, "old@example.com").status_code == 200
    google.history_id = "777"
    assert connect(client, google, org, "new@example.com").status_code == 200
    (row,) = google_rows(org)
    assert (row.account, row.history_id) == ("new@example.com", "777")


def test_a_watch_failure_does_not_undo_the_connection(client: FlaskClient, google: FakeGoogle, org: TestOrg) -> None:
    google.watch_errors["rep@example.com"] = google_error(403, "Gmail API has not been used", "accessNotConfigured")
    response = connect(client, google, org, "rep@example.com")

    assert response.status_code == 200
    assert "Inbox sync is not set up yet" in response.get_data(as_text=True)
    (row,) = google_rows(org)
    assert row.status == "active" and row.watch_expiration is None
    assert "Gmail API has not been used" in row.last_error


# --------------------------------------------------------------------------- callback: refusals


def test_access_denied_shows_a_cancelled_page_and_stores_nothing(client: FlaskClient, org: TestOrg) -> None:
    state = start(client, org)["state"]
    response = callback(client, error="access_denied", state=state)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "cancelled" in response.get_data(as_text=True)
    rejected = latest_rejected()
    assert (rejected.source, rejected.error_type) == (SOURCE, "ConsentDenied")
    assert "access_denied" in rejected.reason
    assert google_rows(org) == []


def test_a_tampered_state_is_refused_before_the_code_is_spent(
    client: FlaskClient, google: FakeGoogle, org: TestOrg
) -> None:
    state = start(client, org)["state"]
    nonce = client.get_cookie(google_oauth.NONCE_COOKIE, path="/oauth/google").value
    code = google.issue_code("rep@example.com")
    assert with_payload(state, {"o": str(org.id), "u": str(org.rep), "n": nonce}) == state  # the encoding matches
    other_user = with_payload(state, {"o": str(org.id), "u": str(org.other_rep), "n": nonce})
    for bad in (state[:-4] + "AAAA", other_user):
        assert_refused(callback(client, code=code, state=bad), 403, "TokenInvalid")
    assert google.requests_to("POST", "/token") == []
    assert code in google.codes
    assert google_rows(org) == []


def test_an_expired_state_is_refused(client: FlaskClient, google: FakeGoogle, org: TestOrg) -> None:
    with signed_days_ago(11 / (24 * 60)):  # eleven minutes
        state = start(client, org)["state"]
    response = callback(client, code=google.issue_code("rep@example.com"), state=state)
    assert_refused(response, 403, "TokenExpired", org=org)
    assert google.requests_to("POST", "/token") == []


def test_a_state_from_another_browser_is_refused(client: FlaskClient, google: FakeGoogle, org: TestOrg) -> None:
    state = start(client, org)["state"]  # the rep's consent URL, opened by someone else
    other_browser = create_app().test_client()
    response = callback(other_browser, code=google.issue_code("victim@example.com"), state=state)
    assert "another browser" in assert_refused(response, 403, "TokenInvalid")["message"]
    assert google_rows(org) == []


def test_invalid_grant_at_the_exchange_is_a_clear_400(client: FlaskClient, google: FakeGoogle, org: TestOrg) -> None:
    state = start(client, org)["state"]
    response = callback(client, code="4/0Aunknown-or-already-used", state=state)
    body = assert_refused(response, 400, "GrantRefused", org=org)
    assert "invalid_grant" in body["message"] and "connect link" in body["message"]


def test_an_unticked_scope_is_refused_and_nothing_stored(client: FlaskClient, google: FakeGoogle, org: TestOrg) -> None:
    scope = " ".join(s for s in google_oauth.SCOPES if "calendar" not in s)
    response = connect(client, google, org, "rep@example.com", scope=scope)
    body = assert_refused(response, 400, "GrantRefused", org=org)
    assert "calendar.events" in body["message"] and "calendar.freebusy" in body["message"]
    assert google.watches == []


def test_a_user_no_longer_in_the_org_is_refused(client: FlaskClient, google: FakeGoogle, org: TestOrg) -> None:
    state = start(client, org, uuid.uuid4())["state"]
    response = callback(client, code=google.issue_code("gone@example.com"), state=state)
    assert_refused(response, 404, "UserGone", org=org)


def test_callback_without_code_or_state_is_400(client: FlaskClient) -> None:
    assert_refused(callback(client, state="s"), 400, "MissingParameter")
    assert_refused(callback(client, code="c"), 400, "MissingParameter")


# --------------------------------------------------------------------------- reconnect DM


@pytest.mark.usefixtures("google")
def test_the_reconnect_dm_carries_a_signed_connect_link(org: TestOrg) -> None:
    integration_id = uuid.uuid4()
    job = {"id": uuid.uuid4(), "org_id": org.id, "user_id": org.rep}
    now = datetime.now(UTC)
    with transaction() as conn:
        conn.execute(
            integrations.insert().values(
                id=integration_id, org_id=org.id, user_id=org.rep, provider="google", status="active", scopes=[]
            )
        )
        _mark_revoked(conn, job, AuthRevoked("invalid_grant", provider="google", integration_id=integration_id), now)
    with transaction() as conn:
        (dm,) = conn.execute(
            select(SlackOutbox.__table__).where(SlackOutbox.kind == "reconnect", SlackOutbox.org_id == org.id)
        )
    link = dm.text.rsplit(" ", 1)[-1]
    assert link.startswith(f"{APP_URL}/oauth/google/start?token=")
    grant = google_oauth.read_connect_token(query(link)["token"], now)
    assert (grant.org_id, grant.user_id) == (org.id, org.rep)
