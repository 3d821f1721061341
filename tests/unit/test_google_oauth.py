"""worker.google.oauth without services: signed connect links and states (expiry, tampering,
purposes, rotation, missing secret), the consent URL, the token answer -> stored credentials, the
reconnect link; and worker.google.client refreshing 5 minutes before expiry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from worker.config import reset_settings
from worker.google import links, oauth
from worker.google.client import credentials_for, credentials_json

SECRET = "s" * 40
OTHER_SECRET = "t" * 40
ORG, USER = uuid.uuid4(), uuid.uuid4()
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """OAUTH_STATE_SECRET, GOOGLE_CLIENT_ID and APP_URL set; settings re-read after each change."""
    monkeypatch.setenv("OAUTH_STATE_SECRET", SECRET)
    monkeypatch.setenv("GOOGLE_CLIENT_ID", "cid.apps.googleusercontent.com")
    monkeypatch.setenv("APP_URL", "https://proactive.example.com/")
    reset_settings()
    yield monkeypatch
    reset_settings()


def set_secret(mp: pytest.MonkeyPatch, value: str) -> None:
    mp.setenv("OAUTH_STATE_SECRET", value)
    reset_settings()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, strict_parsing=True).items()}


# --------------------------------------------------------------------------- connect links


def test_connect_url_round_trip(env: pytest.MonkeyPatch) -> None:
    url = links.connect_url(ORG, USER)
    assert url.startswith("https://proactive.example.com/oauth/google/start?token=")
    grant = oauth.read_connect_token(query(url)["token"], datetime.now(UTC))
    assert (grant.org_id, grant.user_id) == (ORG, USER)


def test_connect_token_lasts_seven_days(env: pytest.MonkeyPatch) -> None:
    token = links.connect_token(ORG, USER)
    now = datetime.now(UTC)
    oauth.read_connect_token(token, now + timedelta(days=7) - timedelta(minutes=1))
    with pytest.raises(oauth.TokenExpired) as caught:
        oauth.read_connect_token(token, now + timedelta(days=7, minutes=1))
    assert caught.value.org_id == ORG and caught.value.http_status == 403
    assert "expired at" in str(caught.value)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: "x" + t,  # payload changed
        lambda t: "not-a-token",
        lambda t: "",
    ],
)
def test_altered_connect_token_is_invalid(env: pytest.MonkeyPatch, mangle) -> None:
    with pytest.raises(oauth.TokenInvalid):
        oauth.read_connect_token(mangle(links.connect_token(ORG, USER)), datetime.now(UTC))


def test_a_token_signed_with_another_secret_is_invalid(env: pytest.MonkeyPatch) -> None:
    token = links.connect_token(ORG, USER)
    set_secret(env, OTHER_SECRET)
    with pytest.raises(oauth.TokenInvalid):
        oauth.read_connect_token(token, datetime.now(UTC))


def test_rotation_first_key_signs_every_key_verifies(env: pytest.MonkeyPatch) -> None:
    old = links.connect_token(ORG, USER)
    set_secret(env, f"{OTHER_SECRET},{SECRET}")
    new = links.connect_token(ORG, USER)
    assert oauth.read_connect_token(old, datetime.now(UTC)).user_id == USER
    set_secret(env, OTHER_SECRET)  # the old key removed: only tokens signed by the new one remain valid
    assert oauth.read_connect_token(new, datetime.now(UTC)).user_id == USER
    with pytest.raises(oauth.TokenInvalid):
        oauth.read_connect_token(old, datetime.now(UTC))


def test_a_connect_token_is_not_a_state_and_back(env: pytest.MonkeyPatch) -> None:
    state = query(oauth.authorization_url(ORG, USER, nonce="n1"))["state"]
    with pytest.raises(oauth.TokenInvalid):
        oauth.read_state(links.connect_token(ORG, USER), datetime.now(UTC), nonce="n1")
    with pytest.raises(oauth.TokenInvalid):
        oauth.read_connect_token(state, datetime.now(UTC))


@pytest.mark.parametrize("secret", ["", " , ", "short-secret"])
def test_missing_or_weak_secret_is_a_clear_configuration_error(env: pytest.MonkeyPatch, secret: str) -> None:
    set_secret(env, secret)
    with pytest.raises(oauth.OAuthNotConfigured, match="OAUTH_STATE_SECRET"):
        links.connect_url(ORG, USER)
    with pytest.raises(oauth.OAuthNotConfigured, match="OAUTH_STATE_SECRET"):
        oauth.authorization_url(ORG, USER, nonce="n")


def test_reconnect_link_carries_a_token_only_for_google_with_a_secret(env: pytest.MonkeyPatch) -> None:
    google = links.reconnect_link("google", ORG, USER)
    assert oauth.read_connect_token(query(google)["token"], datetime.now(UTC)).user_id == USER
    assert links.reconnect_link("google", ORG, None) == "https://proactive.example.com/oauth/google/start"
    assert links.reconnect_link("instantly", ORG, USER) == "https://proactive.example.com/oauth/instantly/start"
    set_secret(env, "")
    assert links.reconnect_link("google", ORG, USER) == "https://proactive.example.com/oauth/google/start"


# --------------------------------------------------------------------------- consent URL and state


def test_authorization_url_asks_for_offline_access_to_the_four_scopes(env: pytest.MonkeyPatch) -> None:
    url = oauth.authorization_url(ORG, USER, nonce="n1")
    assert url.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    q = query(url)
    assert q["client_id"] == "cid.apps.googleusercontent.com"
    assert q["redirect_uri"] == "https://proactive.example.com/oauth/google/callback"
    assert q["response_type"] == "code"
    assert q["scope"].split() == [
        "https://www.googleapis.com/auth/gmail.readonly",
        "https://www.googleapis.com/auth/gmail.send",
        "https://www.googleapis.com/auth/calendar.events",
        "https://www.googleapis.com/auth/calendar.freebusy",
    ]
    assert (q["access_type"], q["prompt"], q["include_granted_scopes"]) == ("offline", "consent", "true")
    grant = oauth.read_state(q["state"], datetime.now(UTC), nonce="n1")
    assert (grant.org_id, grant.user_id, grant.nonce) == (ORG, USER, "n1")


def test_authorization_url_needs_a_client_id(env: pytest.MonkeyPatch) -> None:
    env.setenv("GOOGLE_CLIENT_ID", "")
    reset_settings()
    with pytest.raises(oauth.OAuthNotConfigured, match="GOOGLE_CLIENT_ID"):
        oauth.authorization_url(ORG, USER, nonce="n")


def test_state_expires_after_ten_minutes(env: pytest.MonkeyPatch) -> None:
    state = query(oauth.authorization_url(ORG, USER, nonce="n1"))["state"]
    now = datetime.now(UTC)
    oauth.read_state(state, now + timedelta(minutes=9), nonce="n1")
    with pytest.raises(oauth.TokenExpired):
        oauth.read_state(state, now + timedelta(minutes=11), nonce="n1")


@pytest.mark.parametrize("nonce", ["", "n2"])
def test_state_from_another_browser_is_refused(env: pytest.MonkeyPatch, nonce: str) -> None:
    state = query(oauth.authorization_url(ORG, USER, nonce="n1"))["state"]
    with pytest.raises(oauth.TokenInvalid, match="another browser"):
        oauth.read_state(state, datetime.now(UTC), nonce=nonce)


def test_nonces_differ() -> None:
    assert len({oauth.new_nonce() for _ in range(50)}) == 50


# --------------------------------------------------------------------------- token answer


ANSWER = {
    "access_token": "ya29.new",
    "refresh_token": "1//r",
    "expires_in": 3599,
    "scope": " ".join(oauth.SCOPES),
    "token_type": "Bearer",
}


def test_stored_credentials_from_the_token_answer() -> None:
    stored = oauth.stored_credentials(ANSWER, T0)
    assert stored == {
        "token": "ya29.new",
        "refresh_token": "1//r",
        "expiry": (T0 + timedelta(seconds=3599)).isoformat(),
        "scopes": list(oauth.SCOPES),
    }


def test_extra_granted_scopes_are_kept() -> None:
    answer = dict(ANSWER, scope=ANSWER["scope"] + " openid")
    assert oauth.stored_credentials(answer, T0)["scopes"][-1] == "openid"


def test_an_unticked_scope_is_refused_by_name() -> None:
    answer = dict(ANSWER, scope=" ".join(s for s in oauth.SCOPES if not s.endswith("gmail.send")))
    with pytest.raises(oauth.GrantRefused, match=r"did not grant gmail\.send:"):
        oauth.stored_credentials(answer, T0)


@pytest.mark.parametrize("missing", ["access_token", "refresh_token"])
def test_an_answer_without_tokens_is_refused(missing: str) -> None:
    answer = {k: v for k, v in ANSWER.items() if k != missing}
    with pytest.raises(oauth.GrantRefused):
        oauth.stored_credentials(answer, T0)


# --------------------------------------------------------------------------- refresh window


def creds_expiring_in(delta: timedelta):
    expiry = datetime.now(UTC) + delta
    return credentials_for({"token": "ya29.t", "refresh_token": "1//r", "expiry": expiry.isoformat()}), expiry


@pytest.mark.parametrize(("minutes", "stale"), [(4, True), (4.9, True), (5.1, False), (6, False), (60, False)])
def test_token_is_refreshed_five_minutes_before_expiry(minutes: float, stale: bool) -> None:
    creds, _ = creds_expiring_in(timedelta(minutes=minutes))
    assert creds.expired is stale
    assert creds.valid is not stale


def test_credentials_json_keeps_the_stored_expiry() -> None:
    creds, expiry = creds_expiring_in(timedelta(hours=1))
    assert datetime.fromisoformat(credentials_json(creds)["expiry"]) == expiry
