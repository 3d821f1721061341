"""Google access: OAuth credentials from an integration row, Calendar/Gmail service objects, and `call`,
which executes one API request and turns every Google failure into the engine's error families.

Credentials are stored encrypted (worker.crypto) as JSON `{token, refresh_token, expiry, scopes}`;
google-auth refreshes the access token against GOOGLE_TOKEN_URI when it is missing or expires within
`REFRESH_BEFORE` (5 minutes; see `credentials_for` for how). `GOOGLE_API_URL` (tests)
points both services at another host with Google's own paths (`/calendar/v3/...`, `/gmail/v1/...`).

Error mapping (`call`): 429, or 403 with reason rateLimitExceeded/userRateLimitExceeded ->
`RateLimited` (Retry-After if sent); 5xx, timeouts, connection errors -> `TransientError`; 401, or a
refused refresh (`invalid_grant`, reauth required) -> `AuthRevoked(provider="google")`; other 4xx ->
`PermanentError` with Google's message. A POST or PATCH whose connection closed after it was sent
and before any answer -> `AnswerLost` (Google may have acted: an effect asks before acting again).

httplib2 re-sends a request by itself when the connection ends without a status line (it takes it
for a stale keep-alive connection), which for `messages.send` would be a second email. The Http
used here (`NoResendHttp`) never re-sends a POST or PATCH: it sends them on a connection that has
not answered before (so a dead idle connection cannot be mistaken for a lost answer) and raises
`NoAnswer` when the answer does not come. GETs keep httplib2's behaviour.
"""

from __future__ import annotations

import http.client
import json
import time
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import google_auth_httplib2
import httplib2
from google.auth import _helpers as google_auth_helpers
from google.auth import exceptions as google_auth_exceptions
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from worker import ratelimit
from worker.clients.http import api_error_message, error_for_status, parse_retry_after
from worker.config import get_settings
from worker.crypto import decrypt_json
from worker.db import transaction
from worker.errors import AnswerLost, AuthRevoked, PermanentError, RateLimited, TransientError

PROVIDER = "google"
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
CLIENT_CONFIG_ERRORS = frozenset({"invalid_client", "unauthorized_client"})  # our OAuth app, not the user

# Refresh an access token this long before it expires: a step started on a token with
# seconds left would fail mid-request.
REFRESH_BEFORE = timedelta(minutes=5)

# Which integration a Credentials object came from, so `call` can name it in AuthRevoked.
_INTEGRATION_OF: weakref.WeakKeyDictionary[Credentials, Any] = weakref.WeakKeyDictionary()
# The stored expiry of Credentials whose `expiry` `credentials_for` moved earlier: (moved, stored).
_STORED_EXPIRY: weakref.WeakKeyDictionary[Credentials, tuple[datetime, datetime]] = weakref.WeakKeyDictionary()


def _refresh_shift() -> timedelta:
    """How much earlier than stored to give google-auth the expiry so it refreshes `REFRESH_BEFORE`
    ahead: it refreshes within its own REFRESH_THRESHOLD of `expiry` (3 min 45 s in 2.x)."""
    return max(REFRESH_BEFORE - google_auth_helpers.REFRESH_THRESHOLD, timedelta(0))


def _parse_expiry(value: Any) -> datetime | None:
    """google-auth wants a naive UTC expiry; we store ISO-8601 (aware) or epoch seconds."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        when = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, datetime):
        when = value
    else:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def credentials_for(integration: Any) -> Credentials:
    """Credentials for an `Integration` row, a row-like mapping (`credentials`, `scopes`, `id`), or the
    decrypted JSON itself."""
    if isinstance(integration, Mapping):
        encrypted = integration.get("credentials")
        data = decrypt_json(encrypted) if isinstance(encrypted, bytes | str) else dict(integration)
        row_scopes, integration_id = integration.get("scopes"), integration.get("id")
    else:
        if integration.credentials is None:
            raise PermanentError(f"integration {integration.id} has no stored credentials: reconnect Google")
        data = decrypt_json(integration.credentials)
        row_scopes, integration_id = getattr(integration, "scopes", None), getattr(integration, "id", None)
    if not data.get("token") and not data.get("refresh_token"):
        raise AuthRevoked(
            "stored Google credentials hold neither a token nor a refresh token",
            provider=PROVIDER,
            integration_id=integration_id,
        )
    settings = get_settings()
    scopes = data.get("scopes") or row_scopes or None
    if isinstance(scopes, str):
        scopes = scopes.split()
    # google-auth has no setting for its refresh window, so the expiry it sees is moved earlier;
    # `credentials_json` stores the real one back (a refresh replaces it with Google's new one).
    stored_expiry = _parse_expiry(data.get("expiry"))
    expiry = stored_expiry - _refresh_shift() if stored_expiry is not None else None
    creds = Credentials(
        token=data.get("token"),
        refresh_token=data.get("refresh_token"),
        token_uri=settings.google_token_uri,
        client_id=settings.google_client_id or None,
        client_secret=settings.google_client_secret or None,
        scopes=list(scopes) if scopes else None,
        expiry=expiry,
    )
    if stored_expiry is not None and expiry is not None:
        _STORED_EXPIRY[creds] = (expiry, stored_expiry)
    if integration_id is not None:
        _INTEGRATION_OF[creds] = integration_id
    return creds


def credentials_json(creds: Credentials) -> dict[str, Any]:
    """The JSON to store (encrypted) after a refresh: `{token, refresh_token, expiry, scopes}`."""
    moved, stored = _STORED_EXPIRY.get(creds, (None, None))
    when = stored if moved is not None and creds.expiry == moved else creds.expiry
    expiry = when.replace(tzinfo=UTC).isoformat() if when else None
    return {
        "token": creds.token,
        "refresh_token": creds.refresh_token,
        "expiry": expiry,
        "scopes": list(creds.scopes or []),
    }


# Methods httplib2 must not send a second time by itself: the server may have acted on the first.
NOT_RESENT = frozenset({"POST", "PATCH"})


class NoAnswer(ConnectionResetError):
    """A POST or PATCH was sent and the connection closed before any answer: the server may have acted.
    (A ConnectionResetError, so httplib2 closes the connection and raises it instead of re-sending.)"""


class _OnceConnection(http.client.HTTPConnection):
    """A connection that sends a POST or PATCH only on a socket with no earlier answer (a kept-alive
    one may have been closed by the server meanwhile) and turns its missing status line into
    `NoAnswer`, which httplib2 raises instead of re-sending the request."""

    answered = False  # this socket has carried a complete exchange (set again by every connect)
    sent_method = ""

    def connect(self) -> None:
        super().connect()
        self.answered = False

    def request(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.sent_method = method.upper()
        if self.sent_method in NOT_RESENT and self.sock is not None and self.answered:
            self.close()  # http.client opens a fresh socket to send on
        super().request(method, *args, **kwargs)

    def getresponse(self) -> http.client.HTTPResponse:
        try:
            response = super().getresponse()
        except (http.client.BadStatusLine, http.client.ResponseNotReady) as exc:
            if self.sent_method not in NOT_RESENT:
                raise  # httplib2 re-sends a GET on a fresh connection: harmless
            raise NoAnswer(f"{self.sent_method} sent, the connection closed without an answer ({exc!r})") from exc
        self.answered = True
        return response


class _OnceHTTPConnection(_OnceConnection, httplib2.HTTPConnectionWithTimeout):
    pass


class _OnceHTTPSConnection(_OnceConnection, httplib2.HTTPSConnectionWithTimeout):
    pass


class NoResendHttp(httplib2.Http):
    """httplib2.Http that never sends a POST or PATCH twice by itself (see `_OnceConnection`)."""

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        redirections: int = httplib2.DEFAULT_MAX_REDIRECTS,
        connection_type: Any = None,
    ) -> Any:
        if connection_type is None:
            secure = uri.lower().startswith("https:")
            connection_type = _OnceHTTPSConnection if secure else _OnceHTTPConnection
        return super().request(uri, method, body, headers, redirections, connection_type)


def _authorized_http(creds: Credentials, timeout_s: float | None) -> google_auth_httplib2.AuthorizedHttp:
    timeout = timeout_s if timeout_s is not None else get_settings().google_timeout_s
    return google_auth_httplib2.AuthorizedHttp(creds, http=NoResendHttp(timeout=timeout))


def _build(name: str, version: str, service_path: str, creds: Credentials, timeout_s: float | None) -> Any:
    api_url = get_settings().google_api_url.strip()
    options = {"api_endpoint": urljoin(api_url.rstrip("/") + "/", service_path)} if api_url else None
    return build(
        name,
        version,
        http=_authorized_http(creds, timeout_s),
        static_discovery=True,
        cache_discovery=False,
        client_options=options,
    )


def calendar_service(creds: Credentials, *, timeout_s: float | None = None) -> Any:
    """A Calendar v3 service (bundled discovery document, no network at build time).

    Use it as a context manager (`with calendar_service(creds) as cal:`): httplib2 keeps its sockets
    open until the service is closed.
    """
    return _build("calendar", "v3", "calendar/v3/", creds, timeout_s)


def gmail_service(creds: Credentials, *, timeout_s: float | None = None) -> Any:
    """A Gmail v1 service (bundled discovery document, no network at build time); close it after use."""
    return _build("gmail", "v1", "", creds, timeout_s)


def _google_error(exc: HttpError, integration_id: Any) -> Exception:
    status = int(exc.resp.status)
    message, reasons = api_error_message(exc.content or b""), set()
    try:
        error = json.loads(exc.content or b"{}").get("error", {})
        reasons = {e.get("reason") for e in error.get("errors", []) if isinstance(e, dict)}
    except (ValueError, AttributeError):
        pass
    retry_after = exc.resp.get("retry-after")
    if status == 403 and reasons & RATE_LIMIT_REASONS:
        return RateLimited(f"google HTTP 403: {message}", retry_after_s=parse_retry_after(retry_after))
    return error_for_status(
        status, message, provider=PROVIDER, retry_after=retry_after, auth_statuses=(401,), integration_id=integration_id
    )


def _refresh_error(exc: google_auth_exceptions.RefreshError, integration_id: Any) -> Exception:
    data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], Mapping) else {}
    if getattr(exc, "retryable", False):
        return TransientError(f"google token refresh failed, retryable: {exc.args[0]}")
    if data.get("error") in CLIENT_CONFIG_ERRORS:
        return PermanentError(f"google refused our OAuth client ({data['error']}): check GOOGLE_CLIENT_ID/SECRET")
    return AuthRevoked(
        f"google refused the refresh token: {exc.args[0] if exc.args else exc}",
        provider=PROVIDER,
        integration_id=integration_id,
    )


# Per-user quotas, shared by every worker through worker/ratelimit.py (one slot row per mailbox):
# Gmail allows 250 quota units per user per second, each method costs its units (Gmail API "Usage
# limits"); Calendar about 10 requests per user per second. A call waits for its slot (at most
# PACE_WAIT_MAX_S) or is retried later as RateLimited; a 429 / 403 rateLimitExceeded that still
# happens is RateLimited too (below), with Google's Retry-After.
GMAIL_UNITS_PER_S = 250.0
GMAIL_UNITS = {
    "gmail.users.messages.get": 5,
    "gmail.users.messages.list": 5,
    "gmail.users.history.list": 2,
    "gmail.users.messages.send": 100,
    "gmail.users.watch": 100,
    "gmail.users.getProfile": 1,
}
GMAIL_DEFAULT_UNITS = 5
CALENDAR_CALL_S = 0.1
PACE_WAIT_MAX_S = 2.0
QUOTA_BURST_S = 1.0  # an idle user may spend one second of quota at once (Google's quotas are per second)


def quota_cost_s(method_id: str) -> float:
    """Seconds of a user's quota one call of `method_id` (googleapiclient's methodId) uses."""
    if method_id.startswith("gmail."):
        return GMAIL_UNITS.get(method_id, GMAIL_DEFAULT_UNITS) / GMAIL_UNITS_PER_S
    if method_id.startswith("calendar."):
        return CALENDAR_CALL_S
    return 0.0


def pace(integration_id: Any, cost_s: float, now: datetime | None = None) -> float:
    """Take the next slot of this integration's Google quota (a token bucket of QUOTA_BURST_S);
    seconds to wait before calling."""
    with transaction() as conn:
        return ratelimit.reserve(
            conn, f"google:{integration_id}", cost_s, now or datetime.now(UTC), burst_s=QUOTA_BURST_S
        )


def wait_for_quota(integration_id: Any, method_id: str, count: int = 1) -> None:
    """Take `count` calls of `method_id` from the user's quota at once (one database round trip),
    waiting for the slot (at most PACE_WAIT_MAX_S) or raising RateLimited."""
    cost = quota_cost_s(method_id) * count
    if integration_id is None or cost <= 0 or not get_settings().google_pacing:
        return
    wait = pace(integration_id, cost)
    if wait > PACE_WAIT_MAX_S:
        raise RateLimited(
            f"google quota of integration {integration_id}: next slot in {wait:.1f} s", retry_after_s=wait
        )
    if wait > 0:
        time.sleep(wait)


def call(request: Any, *, integration_id: Any = None, quota_taken: bool = False) -> Any:
    """Execute one googleapiclient request (no library retries) within the user's quota (unless the
    caller took it already for several calls: `quota_taken`), and map its failure to our errors."""
    if integration_id is None:
        creds = getattr(getattr(request, "http", None), "credentials", None)
        integration_id = _INTEGRATION_OF.get(creds) if creds is not None else None
    if not quota_taken:
        wait_for_quota(integration_id, str(getattr(request, "methodId", "") or ""))
    try:
        return request.execute(num_retries=0)
    except HttpError as exc:
        raise _google_error(exc, integration_id) from exc
    except google_auth_exceptions.RefreshError as exc:
        raise _refresh_error(exc, integration_id) from exc
    except google_auth_exceptions.TransportError as exc:
        raise TransientError(f"google transport error: {exc}") from exc
    except NoAnswer as exc:
        raise AnswerLost(f"google request sent, no answer: {exc}") from exc
    except (TimeoutError, OSError, httplib2.HttpLib2Error) as exc:
        raise TransientError(f"google request failed: {exc!r}") from exc
