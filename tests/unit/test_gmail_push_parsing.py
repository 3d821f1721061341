"""Pure parts of the Gmail push: Pub/Sub's envelope and the notification in it (worker.google.push),
and the token checks that need no network (worker.google.pubsub_auth): the Bearer header, the claims,
Cache-Control, and the certificate cache's fetch/refetch decisions on a fake clock."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.config import Settings
from worker.google.pubsub_auth import (
    DEFAULT_CERTS_MAX_AGE_S,
    MIN_REFETCH_INTERVAL_S,
    CertCache,
    FetchedCerts,
    PushUnauthenticated,
    bearer_token,
    check_claims,
    check_settings,
    max_age_s,
    verify_push,
)
from worker.google.push import MAX_DATA_CHARS, InvalidPush, PushNotice, decode_data, parse_push

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "real-payloads" / "google"
AUDIENCE = "https://proactive.example.com/webhooks/gmail"
ACCOUNT = "gmail-push@proactive-test.iam.gserviceaccount.com"


def b64(data: Any, *, urlsafe: bool = True, pad: bool = True) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    text = (base64.urlsafe_b64encode if urlsafe else base64.standard_b64encode)(raw).decode()
    return text if pad else text.rstrip("=")


def envelope(notification: Any = None, **message: Any) -> dict[str, Any]:
    """A Gmail push: `notification` (encoded unless already a string) as its data, `message` overrides."""
    if notification is None:
        notification = {"emailAddress": "rep@example.com", "historyId": "9876543210"}
    return {
        "message": {
            "data": notification if isinstance(notification, str) else b64(notification),
            "messageId": "2070443601311540",
            "publishTime": "2021-02-26T19:13:55.749Z",
            **message,
        },
        "subscription": "projects/myproject/subscriptions/mysubscription",
    }


# --------------------------------------------------------------------------- envelope


def test_the_published_gmail_sample_parses():
    sample = json.loads((SAMPLES / "pubsub_push_gmail.json").read_text())
    decoded = json.loads((SAMPLES / "gmail_push_data.decoded_from_example.json").read_text())
    assert parse_push(sample) == PushNotice(
        message_id="2070443601311540",
        email_address=decoded["emailAddress"],
        history_id=decoded["historyId"],
        subscription="projects/myproject/subscriptions/mysubscription",
        published_at=datetime(2021, 2, 26, 19, 13, 55, 749000, tzinfo=UTC),
    )


def test_the_snake_case_spellings_of_the_generic_envelope_are_read():
    sample = json.loads((SAMPLES / "pubsub_push_envelope.json").read_text())
    del sample["message"]["messageId"], sample["message"]["publishTime"]
    sample["message"]["data"] = b64(json.loads((SAMPLES / "gmail_push_data.as_published.json").read_text()))
    notice = parse_push(sample)
    assert (notice.message_id, notice.history_id) == ("2070443601311540", "9876543210")
    assert notice.published_at == datetime(2021, 2, 26, 19, 13, 55, 749000, tzinfo=UTC)


def test_optional_fields_may_be_missing_or_unreadable():
    body = envelope(publishTime="yesterday")
    del body["subscription"]
    notice = parse_push(body)
    assert (notice.subscription, notice.published_at) == (None, None)
    assert parse_push(envelope(publishTime="2021-02-26T19:13:55")).published_at is None  # no zone: not guessed
    offset = parse_push(envelope(publishTime="2021-02-26T20:13:55.123456789+01:00")).published_at
    assert offset == datetime(2021, 2, 26, 19, 13, 55, 123456, tzinfo=UTC)


def test_a_numeric_history_id_is_kept_as_its_digits():
    assert parse_push(envelope({"emailAddress": "a@b.c", "historyId": 12345})).history_id == "12345"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([], "not a JSON object"),
        ({"subscription": "s"}, "message is missing"),
        ({"message": "x"}, "message is missing or not an object"),
        (envelope(messageId=None), "message.messageId is missing"),
        (envelope(messageId=""), "message.messageId is missing"),
        (envelope(messageId=7), "message.messageId is missing"),
        (envelope(messageId="x" * 201), "longer than 200"),
        (envelope(messageId="a\nb"), "not printable"),
        (envelope(data=None), "message.data is missing"),
        (envelope("not base64!"), "not base64"),
        (envelope("x" * (MAX_DATA_CHARS + 1)), "longer than"),
        (envelope(b64(b"\xff\xfe")), "does not decode to JSON"),
        (envelope(b64(b"{nope")), "does not decode to JSON"),
        (envelope(["a@b.c", "1"]), "not decode to a JSON object"),
        (envelope({"historyId": "1"}), "no emailAddress"),
        (envelope({"emailAddress": "a@b.c"}), "no historyId"),
        (envelope({"emailAddress": "not-an-address", "historyId": "1"}), "not an email address"),
        (envelope({"emailAddress": "a@b.c", "historyId": "-1"}), "not a positive integer"),
        (envelope({"emailAddress": "a@b.c", "historyId": True}), "not a positive integer"),
        (envelope({"emailAddress": "a@b.c", "historyId": "1" * 33}), "not a positive integer"),
        (envelope({"emailAddress": "a@b.c", "historyId": 1.5}), "not a positive integer"),
        (envelope({"emailAddress": "a\x00@b.c", "historyId": "1"}), "not printable"),
    ],
)
def test_malformed_pushes_say_what_is_wrong(body, expected):
    with pytest.raises(InvalidPush, match=expected):
        parse_push(body)


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=4), st.booleans(), st.booleans())
def test_data_decodes_in_every_base64_alphabet_with_or_without_padding(data, urlsafe, pad):
    assert decode_data(b64(data, urlsafe=urlsafe, pad=pad)) == data


# --------------------------------------------------------------------------- token checks


def claims(**changes: Any) -> dict[str, Any]:
    base = {"iss": "https://accounts.google.com", "aud": AUDIENCE, "email": ACCOUNT, "email_verified": True}
    return {**base, **changes}


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token abc"])
def test_only_a_bearer_header_carries_a_token(header):
    with pytest.raises(PushUnauthenticated) as caught:
        bearer_token(header)
    assert caught.value.check == "header" and caught.value.http_status == 401


def test_the_bearer_scheme_is_case_insensitive():
    assert bearer_token("bearer a.b.c") == bearer_token("Bearer  a.b.c ") == "a.b.c"


def test_both_issuer_spellings_pass():
    for issuer in ("accounts.google.com", "https://accounts.google.com"):
        check_claims(claims(iss=issuer), AUDIENCE, ACCOUNT)


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"iss": "https://evil.example.com"}, "issuer"),
        ({"iss": None}, "issuer"),
        ({"aud": "https://other.example.com"}, "audience"),
        ({"aud": [AUDIENCE]}, "audience"),
        ({"email": "someone@appspot.gserviceaccount.com"}, "email"),
        ({"email": ACCOUNT.upper()}, "email"),
        ({"email_verified": False}, "email_verified"),
        ({"email_verified": "true"}, "email_verified"),
    ],
)
def test_each_claim_check_fails_on_its_own(changes, check):
    with pytest.raises(PushUnauthenticated) as caught:
        check_claims(claims(**changes), AUDIENCE, ACCOUNT)
    assert caught.value.check == check


@pytest.mark.parametrize("missing", ["PUBSUB_AUDIENCE", "PUBSUB_SERVICE_ACCOUNT"])
def test_a_missing_setting_refuses_every_push_and_names_itself(missing):
    values = {"pubsub_audience": AUDIENCE, "pubsub_service_account": ACCOUNT, missing.lower(): ""}
    settings = Settings(**values)
    with pytest.raises(PushUnauthenticated, match=missing) as caught:
        check_settings(settings)
    assert caught.value.check == "config"
    with pytest.raises(PushUnauthenticated, match=missing):
        verify_push("Bearer whatever", settings=settings)  # refused before any certificate fetch


def test_the_published_token_is_refused_without_quoting_it():
    sample = json.loads((SAMPLES / "pubsub_push_oidc_jwt.json").read_text())
    settings = Settings(pubsub_audience=AUDIENCE, pubsub_service_account=ACCOUNT)
    mangled = sample["jwt"].replace(".", "..", 1)
    with pytest.raises(PushUnauthenticated) as caught:
        verify_push("Bearer " + mangled, settings=settings)
    assert caught.value.check == "token" and sample["jwt"][:20] not in str(caught.value)


def test_max_age_is_read_from_cache_control():
    assert max_age_s("public, max-age=19809, must-revalidate, no-transform") == 19809
    assert max_age_s('max-age="60"') == 60
    assert max_age_s("s-maxage=5, no-cache") == DEFAULT_CERTS_MAX_AGE_S
    assert max_age_s(None) == max_age_s("") == DEFAULT_CERTS_MAX_AGE_S


# --------------------------------------------------------------------------- certificate cache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_cache(*answers: dict[str, str], max_age: int = 600) -> tuple[CertCache, Clock, list[int]]:
    clock, calls = Clock(), []

    def fetch() -> FetchedCerts:
        calls.append(1)
        return FetchedCerts(answers[min(len(calls), len(answers)) - 1], max_age)

    return CertCache(fetch, clock), clock, calls


def test_certs_are_kept_for_their_max_age():
    cache, clock, calls = counting_cache({"k1": "c1"}, {"k1": "c1b"})
    assert cache.certs_for("k1") == {"k1": "c1"}
    clock.now += 599
    assert cache.certs_for("k1") == {"k1": "c1"} and len(calls) == 1
    clock.now += 1
    assert cache.certs_for("k1") == {"k1": "c1b"} and len(calls) == 2


def test_an_unknown_kid_refetches_once_then_waits_for_the_interval():
    cache, clock, calls = counting_cache({"k1": "c1"}, {"k1": "c1", "k2": "c2"})
    cache.certs_for("k1")
    clock.now += MIN_REFETCH_INTERVAL_S
    assert "k2" in cache.certs_for("k2") and len(calls) == 2  # rotated key found
    assert "k3" not in cache.certs_for("k3") and len(calls) == 2  # forged kid right after: no fetch
    clock.now += MIN_REFETCH_INTERVAL_S
    cache.certs_for("k3")
    assert len(calls) == 3
