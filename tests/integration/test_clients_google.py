"""Google clients (credentials, Calendar, Gmail send) through the real google-auth and googleapiclient
against a fake Google over HTTP (no database, but for the per-user quota slots at the end)."""

from __future__ import annotations

import base64
import email
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from typing import Any

import pytest

from tests.fakes.google import (
    CLIENT_ID,
    CLIENT_SECRET,
    INVALID_GRANT_RAPT_REQUIRED,
    FakeGoogle,
    google_error,
    rate_limited,
)
from tests.fakes.server import Reply
from worker.config import reset_settings
from worker.crypto import encrypt_json
from worker.errors import AuthRevoked, PermanentError, RateLimited, TransientError
from worker.google import calendar, gmail_send
from worker.google.client import calendar_service, call, credentials_for, credentials_json, gmail_service
from worker.models import Integration

CAL = "rep@example.com"


@pytest.fixture(autouse=True)
def _no_quota_slots() -> Iterator[None]:
    """These tests exercise the clients without a database: per-user quota slots (a database row
    each) are off here and tested on their own at the end."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROACTIVE_GOOGLE_PACING", "0")
        reset_settings()
        yield
    reset_settings()


FREEBUSY = r"/calendar/v3/freeBusy"
EVENTS = r"/calendar/v3/calendars/[^/]+/events"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def integration(
    fake: FakeGoogle, *, token: str | None = None, expiry: datetime | None = None, refresh_token: str = "1//refresh-ok"
) -> dict[str, Any]:
    """A row-like mapping with encrypted credentials; an expired/absent token forces a refresh."""
    data = {
        "token": token,
        "refresh_token": refresh_token,
        "expiry": expiry.isoformat() if expiry else None,
        "scopes": ["https://www.googleapis.com/auth/calendar", "https://www.googleapis.com/auth/gmail.send"],
    }
    return {"id": uuid.uuid4(), "credentials": encrypt_json(data), "scopes": data["scopes"]}


@pytest.fixture
def opened() -> Iterator[Callable[..., Any]]:
    """`opened(calendar_service, creds, ...)`: build a service and close it (its sockets) after the test."""
    services: list[Any] = []

    def build(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        services.append(factory(*args, **kwargs))
        return services[-1]

    yield build
    for service in services:
        service.close()


@pytest.fixture
def cal(fake_google: FakeGoogle) -> Iterator[Any]:
    """A Calendar service whose credentials hold a valid access token (no refresh needed)."""
    fake_google.grant("1//refresh-ok")
    token = fake_google.issue_access_token()
    creds = credentials_for(integration(fake_google, token=token, expiry=datetime.now(UTC) + timedelta(hours=1)))
    with calendar_service(creds, timeout_s=5) as service:
        yield service


# --------------------------------------------------------------------------- credentials


def test_expired_token_is_refreshed_against_the_token_uri(fake_google: FakeGoogle, opened: Callable[..., Any]) -> None:
    fake_google.grant("1//refresh-ok")
    fake_google.busy[CAL] = []
    creds = credentials_for(integration(fake_google, token="ya29.stale", expiry=datetime.now(UTC) - timedelta(hours=1)))

    assert calendar.free_busy(opened(calendar_service, creds), CAL, T0, T0 + timedelta(hours=8)) == []

    (refresh,) = fake_google.requests_to("POST", "/token")
    form = refresh.form
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == "1//refresh-ok"
    assert (form["client_id"], form["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)
    (api,) = fake_google.requests_to("POST", FREEBUSY)
    assert api.headers["authorization"] == f"Bearer {creds.token}"
    assert creds.token.startswith("ya29.fake-") and creds.token != "ya29.stale"
    stored = credentials_json(creds)
    assert stored["token"] == creds.token
    assert stored["refresh_token"] == "1//refresh-ok"
    assert datetime.fromisoformat(stored["expiry"]) > datetime.now(UTC) + timedelta(minutes=60)


def test_a_valid_token_is_used_without_refresh(fake_google: FakeGoogle, cal: Any) -> None:
    fake_google.busy[CAL] = []
    calendar.free_busy(cal, CAL, T0, T0 + timedelta(hours=1))
    assert fake_google.requests_to("POST", "/token") == []


def test_credentials_from_an_integration_row(fake_google: FakeGoogle) -> None:
    row = Integration(
        id=uuid.uuid4(),
        provider="google",
        scopes=["s"],
        credentials=encrypt_json({"token": "t", "refresh_token": "r", "expiry": None}),
    )
    creds = credentials_for(row)
    assert (creds.token, creds.refresh_token, creds.scopes) == ("t", "r", ["s"])
    assert creds.token_uri == fake_google.token_uri
    assert creds.client_id == CLIENT_ID


@pytest.mark.parametrize("error", [None, INVALID_GRANT_RAPT_REQUIRED])
def test_invalid_grant_on_refresh_is_auth_revoked_naming_the_integration(
    fake_google: FakeGoogle, error: dict[str, Any] | None, opened: Callable[..., Any]
) -> None:
    fake_google.revoke("1//revoked", error)
    row = integration(fake_google, refresh_token="1//revoked")
    service = opened(calendar_service, credentials_for(row))
    with pytest.raises(AuthRevoked) as info:
        calendar.free_busy(service, CAL, T0, T0 + timedelta(hours=1))
    assert info.value.provider == "google"
    assert info.value.integration_id == row["id"]
    assert fake_google.requests_to("POST", FREEBUSY) == []  # never reached the API


def test_a_refused_oauth_client_is_permanent_not_revoked(
    fake_google: FakeGoogle, monkeypatch: pytest.MonkeyPatch, opened: Callable[..., Any]
) -> None:
    fake_google.grant("1//refresh-ok")
    monkeypatch.setenv("GOOGLE_CLIENT_SECRET", "wrong")
    reset_settings()
    service = opened(calendar_service, credentials_for(integration(fake_google)))
    with pytest.raises(PermanentError, match="GOOGLE_CLIENT_ID/SECRET"):
        calendar.free_busy(service, CAL, T0, T0 + timedelta(hours=1))


def test_401_after_refresh_is_auth_revoked(fake_google: FakeGoogle, cal: Any) -> None:
    unauthorized = google_error(401, "Request had invalid authentication credentials.", "authError")
    fake_google.script("POST", FREEBUSY, unauthorized, unauthorized, unauthorized)
    with pytest.raises(AuthRevoked, match="invalid authentication credentials"):
        calendar.free_busy(cal, CAL, T0, T0 + timedelta(hours=1))
    assert len(fake_google.requests_to("POST", "/token")) >= 1  # google-auth tried a refresh first


# --------------------------------------------------------------------------- error mapping


def test_429_with_retry_after_is_rate_limited(fake_google: FakeGoogle, cal: Any) -> None:
    fake_google.script("POST", FREEBUSY, rate_limited("12"))
    with pytest.raises(RateLimited, match="Rate Limit Exceeded") as info:
        calendar.free_busy(cal, CAL, T0, T0 + timedelta(hours=1))
    assert info.value.retry_after_s == 12.0


def test_403_user_rate_limit_is_rate_limited(fake_google: FakeGoogle, cal: Any) -> None:
    fake_google.script("POST", FREEBUSY, rate_limited(None, status=403, reason="userRateLimitExceeded"))
    with pytest.raises(RateLimited) as info:
        calendar.free_busy(cal, CAL, T0, T0 + timedelta(hours=1))
    assert info.value.retry_after_s == 1.0


def test_other_403_is_permanent(fake_google: FakeGoogle, cal: Any) -> None:
    fake_google.script("POST", FREEBUSY, google_error(403, "The caller does not have permission", "forbidden"))
    with pytest.raises(PermanentError, match="does not have permission") as info:
        calendar.free_busy(cal, CAL, T0, T0 + timedelta(hours=1))
    assert not isinstance(info.value, AuthRevoked | TransientError)


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_transient(fake_google: FakeGoogle, cal: Any, status: int) -> None:
    fake_google.script("POST", FREEBUSY, google_error(status, "Backend Error", "backendError"))
    with pytest.raises(TransientError, match=f"HTTP {status}: Backend Error") as info:
        calendar.free_busy(cal, CAL, T0, T0 + timedelta(hours=1))
    assert not isinstance(info.value, RateLimited)


def test_404_is_permanent_with_googles_message(fake_google: FakeGoogle, cal: Any) -> None:
    with pytest.raises(PermanentError, match="Not Found"):
        call(cal.events().get(calendarId=CAL, eventId="nosuchevent"))


def test_a_stalled_google_times_out_as_transient(fake_google: FakeGoogle, opened: Callable[..., Any]) -> None:
    token = fake_google.issue_access_token()
    creds = credentials_for(integration(fake_google, token=token, expiry=datetime.now(UTC) + timedelta(hours=1)))
    fake_google.script("POST", FREEBUSY, Reply(200, {}, delay_s=30))
    with pytest.raises(TransientError, match="timed out"):
        calendar.free_busy(opened(calendar_service, creds, timeout_s=0.3), CAL, T0, T0 + timedelta(hours=1))


# --------------------------------------------------------------------------- Calendar


def test_free_busy_returns_aware_sorted_intervals_in_the_window(fake_google: FakeGoogle, cal: Any) -> None:
    fake_google.busy[CAL] = [
        (T0 + timedelta(hours=5), T0 + timedelta(hours=6)),
        (T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
        (T0 + timedelta(days=2), T0 + timedelta(days=2, hours=1)),  # outside the window
    ]
    window_start = T0.astimezone(datetime.now().astimezone().tzinfo)  # any aware zone is accepted
    busy = calendar.free_busy(cal, CAL, window_start, T0 + timedelta(hours=8))

    assert busy == [
        (T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
        (T0 + timedelta(hours=5), T0 + timedelta(hours=6)),
    ]
    assert all(s.tzinfo is not None and e.tzinfo is not None for s, e in busy)
    (sent,) = fake_google.requests_to("POST", FREEBUSY)
    assert sent.json == {"timeMin": "2026-11-30T09:00:00Z", "timeMax": "2026-11-30T17:00:00Z", "items": [{"id": CAL}]}


def test_free_busy_of_an_unknown_calendar_is_permanent(fake_google: FakeGoogle, cal: Any) -> None:
    with pytest.raises(PermanentError, match="notFound"):
        calendar.free_busy(cal, "nobody@example.com", T0, T0 + timedelta(hours=1))


def test_free_busy_refuses_naive_datetimes(cal: Any) -> None:
    with pytest.raises(ValueError, match="naive"):
        calendar.free_busy(cal, CAL, datetime(2026, 11, 30, 9), T0 + timedelta(hours=1))


def test_event_ids_are_deterministic_base32hex() -> None:
    first = calendar.event_id_for("job-1:act")
    assert first == calendar.event_id_for("job-1:act")
    assert first != calendar.event_id_for("job-1:act2")
    assert re.fullmatch(r"[0-9a-v]{5,1024}", first)


def test_insert_event_sends_invitations_with_our_id(fake_google: FakeGoogle, cal: Any) -> None:
    start = T0 + timedelta(hours=2)
    created = calendar.insert_event(
        cal,
        CAL,
        "Demo",
        start,
        start + timedelta(minutes=30),
        ["buyer@acme.test", "cfo@acme.test"],
        "Agenda",
        request_id="job-7:invite",
    )

    expected_id = calendar.event_id_for("job-7:invite")
    assert created == {"id": expected_id, "htmlLink": f"https://www.google.com/calendar/event?eid={expected_id}"}
    (sent,) = fake_google.requests_to("POST", EVENTS)
    assert sent.path == "/calendar/v3/calendars/rep%40example.com/events"
    assert sent.arg("sendUpdates") == "all"
    assert sent.json["id"] == expected_id
    assert sent.json["start"] == {"dateTime": "2026-11-30T11:00:00Z"}
    assert sent.json["end"] == {"dateTime": "2026-11-30T11:30:00Z"}
    assert [a["email"] for a in sent.json["attendees"]] == ["buyer@acme.test", "cfo@acme.test"]
    assert (sent.json["summary"], sent.json["description"]) == ("Demo", "Agenda")


def test_a_retried_insert_returns_the_existing_event(fake_google: FakeGoogle, cal: Any) -> None:
    start = T0 + timedelta(hours=3)
    args = (cal, CAL, "Demo", start, start + timedelta(hours=1), ["buyer@acme.test"], "Agenda")
    first = calendar.insert_event(*args, request_id="job-8:invite")
    second = calendar.insert_event(*args, request_id="job-8:invite")

    assert second == first
    assert len(fake_google.events) == 1
    methods = [(r.method, r.path.rsplit("/", 1)[-1]) for r in fake_google.requests if r.path != "/token"]
    assert methods == [("POST", "events"), ("POST", "events"), ("GET", first["id"])]


def test_insert_after_a_lost_response_is_idempotent(fake_google: FakeGoogle, cal: Any) -> None:
    """The first attempt created the event but its answer was lost (timeout): the retry gets it back."""
    start = T0 + timedelta(hours=4)
    event_id = calendar.event_id_for("job-9:invite")
    fake_google.events[(CAL, event_id)] = {
        "id": event_id,
        "htmlLink": "https://calendar.test/e1",
        "status": "confirmed",
    }
    created = calendar.insert_event(
        cal, CAL, "Demo", start, start + timedelta(hours=1), [], "", request_id="job-9:invite"
    )
    assert created == {"id": event_id, "htmlLink": "https://calendar.test/e1"}


def test_insert_errors_other_than_409_are_not_swallowed(fake_google: FakeGoogle, cal: Any) -> None:
    fake_google.script("POST", EVENTS, google_error(400, "Invalid attendee email.", "invalid"))
    with pytest.raises(PermanentError, match="Invalid attendee email"):
        calendar.insert_event(cal, CAL, "Demo", T0, T0 + timedelta(hours=1), ["bad"], "", request_id="job-10")
    assert fake_google.requests_to("GET", EVENTS + "/.+") == []


# --------------------------------------------------------------------------- Gmail


def _decode(raw: str) -> email.message.EmailMessage:
    return email.message_from_bytes(base64.urlsafe_b64decode(raw), policy=policy.default)


def test_build_mime_threaded_reply_round_trips() -> None:
    raw = gmail_send.build_mime(
        "Rep <rep@example.com>",
        ["buyer@acme.test"],
        "Re: Pricing",
        "Thanks!\nTalk soon.",
        in_reply_to="<m2@acme.test>",
        references="<m1@acme.test>",
        cc=["boss@example.com"],
    )
    assert re.fullmatch(r"[A-Za-z0-9_=-]+", raw)  # base64url alphabet, no + or /
    msg = _decode(raw)
    assert msg["From"] == "Rep <rep@example.com>"
    assert msg["To"] == "buyer@acme.test"
    assert msg["Cc"] == "boss@example.com"
    assert msg["Subject"] == "Re: Pricing"
    assert msg["In-Reply-To"] == "<m2@acme.test>"
    assert msg["References"] == "<m1@acme.test> <m2@acme.test>"
    assert msg["Message-ID"].endswith("@example.com>")
    assert msg["Date"]
    assert msg.get_content().replace("\r\n", "\n") == "Thanks!\nTalk soon.\n"
    assert b"\r\n" in base64.urlsafe_b64decode(raw)  # RFC 5322 line endings


def test_build_mime_new_thread_has_no_threading_headers() -> None:
    msg = _decode(gmail_send.build_mime("rep@example.com", ["a@x.test", "b@x.test"], "Hello", "Body"))
    assert msg["To"] == "a@x.test, b@x.test"
    assert msg["In-Reply-To"] is None and msg["References"] is None


def test_build_mime_references_default_to_in_reply_to() -> None:
    msg = _decode(gmail_send.build_mime("rep@example.com", ["a@x.test"], "Re: x", "b", in_reply_to="<m1@x.test>"))
    assert msg["References"] == "<m1@x.test>"


def test_build_mime_refuses_header_injection() -> None:
    with pytest.raises(PermanentError, match="cannot build the email"):
        gmail_send.build_mime("rep@example.com", ["a@x.test"], "Hi\r\nBcc: evil@x.test", "b")


def test_send_threaded_reply_through_gmail(fake_google: FakeGoogle, opened: Callable[..., Any]) -> None:
    token = fake_google.issue_access_token()
    creds = credentials_for(integration(fake_google, token=token, expiry=datetime.now(UTC) + timedelta(hours=1)))
    raw = gmail_send.build_mime(
        "rep@example.com",
        ["buyer@acme.test"],
        "Re: Pricing",
        "Thanks",
        in_reply_to="<m2@acme.test>",
        references=["<m1@acme.test>"],
    )

    sent = gmail_send.send(opened(gmail_service, creds), raw, thread_id="18bthread")

    (message,) = fake_google.sent
    assert sent == {"id": message.id, "threadId": "18bthread"}
    (request,) = fake_google.requests_to("POST", "/gmail/v1/users/me/messages/send")
    assert request.json == {"raw": raw, "threadId": "18bthread"}
    assert message.mime["In-Reply-To"] == "<m2@acme.test>"
    assert message.mime["References"] == "<m1@acme.test> <m2@acme.test>"


def test_send_new_message_gets_its_own_thread(fake_google: FakeGoogle, opened: Callable[..., Any]) -> None:
    token = fake_google.issue_access_token()
    creds = credentials_for(integration(fake_google, token=token, expiry=datetime.now(UTC) + timedelta(hours=1)))
    sent = gmail_send.send(
        opened(gmail_service, creds), gmail_send.build_mime("rep@example.com", ["b@x.test"], "Hi", "b")
    )
    assert "threadId" not in fake_google.requests_to("POST", "/gmail/v1/users/me/messages/send")[0].json
    assert sent["threadId"] == sent["id"]


def test_gmail_rate_limit_is_rate_limited(fake_google: FakeGoogle, opened: Callable[..., Any]) -> None:
    token = fake_google.issue_access_token()
    creds = credentials_for(integration(fake_google, token=token, expiry=datetime.now(UTC) + timedelta(hours=1)))
    fake_google.script("POST", "/gmail/v1/users/me/messages/send", rate_limited("Wed, 21 Oct 2015 07:28:00 GMT"))
    with pytest.raises(RateLimited) as info:
        gmail_send.send(opened(gmail_service, creds), gmail_send.build_mime("rep@example.com", ["b@x.test"], "Hi", "b"))
    assert info.value.retry_after_s == 0.0  # an HTTP-date in the past: retry now


# --------------------------------------------------------------------------- per-user quota


def test_quota_costs_follow_googles_per_user_limits() -> None:
    from worker.google.client import CALENDAR_CALL_S, quota_cost_s

    assert quota_cost_s("gmail.users.messages.send") == 100 / 250  # 2.5 sends/s per user
    assert quota_cost_s("gmail.users.messages.get") == 5 / 250
    assert quota_cost_s("gmail.users.history.list") == 2 / 250
    assert quota_cost_s("calendar.freebusy.query") == CALENDAR_CALL_S
    assert quota_cost_s("other.api") == 0.0


def test_calls_of_one_user_share_one_quota_across_processes(pg) -> None:
    from datetime import UTC, datetime

    from worker.google.client import pace

    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    waits = [pace(mine, 0.4, now) for _ in range(5)]
    # one second of quota at once (a 1-s bucket: 0.4 + 0.4 + 0.2 of the third), then one slot after
    # the other, whoever asks
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.2, 0.6], abs=1e-4)  # epoch-second floats
    assert pace(theirs, 0.4, now) == 0.0  # another user's quota is their own
    assert pace(mine, 0.4, now + timedelta(seconds=10)) == 0.0  # an idle user's bucket refills
