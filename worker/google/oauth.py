"""Connecting a user's Google account: signed links, the consent URL, and the code exchange.

The flow: a Slack DM carries `connect_url` (a signed, 7-day token naming org and user) ->
`/oauth/google/start` checks it and redirects to Google's consent screen (`authorization_url`, whose
`state` is a signed 10-minute token with org, user and a nonce that the start page also puts in a
cookie) -> Google redirects to `/oauth/google/callback?code&state` -> `complete` checks the state
against the browser's nonce, exchanges the code at GOOGLE_TOKEN_URI, asks Gmail whose mailbox it is,
stores the user's Google integration (credentials encrypted) and sets up the Gmail watch.

The nonce cookie ties the callback to the browser that opened the start link, so a consent URL sent
to someone else cannot connect their mailbox to the sender's account. Tokens are signed with
OAUTH_STATE_SECRET (HMAC-SHA256, one salt per purpose so a connect token is never a valid state).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from itsdangerous import BadSignature
from sqlalchemy import Connection, select, update

from worker.config import get_settings
from worker.crypto import encrypt_json
from worker.db import transaction
from worker.engine.executor import wake_parked
from worker.errors import PermanentError, ProactiveError, TransientError, UserError
from worker.google.links import (
    CONNECT_MAX_AGE,
    CONNECT_SALT,
    PROVIDER,
    OAuthNotConfigured,
    app_url,
    serializer,
    sign,
)
from worker.google.watch import RenewResult, renew_one
from worker.integrations import IntegrationStatus
from worker.models import Integration, User

log = logging.getLogger(__name__)

integrations = Integration.__table__
users = User.__table__

# What Proactive reads and does: inbox sync, sending approved mail, meeting prep and scheduling.
SCOPES = (
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/gmail.send",
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.freebusy",
)
STATE_MAX_AGE = timedelta(minutes=10)  # start -> consent -> callback; a person takes seconds to minutes
STATE_SALT = "proactive.google.oauth-state"
NONCE_COOKIE = "proactive_google_oauth"  # holds the state's nonce between start and callback
CALLBACK_PATH = "/oauth/google/callback"


class ConnectRefused(UserError):
    """The connect cannot go on (the message says why and what to do); nothing was stored. `org_id` is
    set once a verified token named the org."""

    org_id: uuid.UUID | None = None


class TokenInvalid(ConnectRefused):
    """A connect link or `state` that this server did not sign, was altered, or is for another step."""

    http_status = 403


class TokenExpired(ConnectRefused):
    """An authentic connect link or `state` that is too old: start again from a new link."""

    http_status = 403

    def __init__(self, message: str, *, org_id: uuid.UUID | None = None) -> None:
        super().__init__(message)
        self.org_id = org_id


class UserGone(ConnectRefused):
    """The link names a user who is no longer in the organisation."""

    http_status = 404


class GrantRefused(ConnectRefused):
    """Google refused the authorization code (`invalid_grant`: used, expired or revoked) or granted
    less than Proactive needs."""


@dataclass(frozen=True)
class Grant:
    """What a verified connect token or state says: whose account to connect, and when it was signed."""

    org_id: uuid.UUID
    user_id: uuid.UUID
    issued_at: datetime
    nonce: str = ""


@dataclass(frozen=True)
class Connected:
    """The outcome of `complete`: the stored integration, and whether the Gmail watch is set up."""

    integration_id: uuid.UUID
    org_id: uuid.UUID
    user_id: uuid.UUID
    account: str
    scopes: list[str]
    watch: RenewResult


# --------------------------------------------------------------------------- signed tokens


def _verify(salt: str, token: str, now: datetime, max_age: timedelta, what: str) -> Grant:
    """The grant in `token`, signed under `salt` no longer than `max_age` before `now`."""
    try:
        payload, signed_at = serializer(salt).loads(token, return_timestamp=True)
        org_id, user_id = uuid.UUID(payload["o"]), uuid.UUID(payload["u"])
        nonce = str(payload.get("n", ""))
    except (BadSignature, KeyError, TypeError, ValueError, AttributeError):
        raise TokenInvalid(f"this {what} is not valid (altered, or not made by this server)") from None
    if now - signed_at > max_age:
        raise TokenExpired(
            f"this {what} expired at {signed_at + max_age:%Y-%m-%d %H:%M} UTC: start again from a new link",
            org_id=org_id,
        )
    return Grant(org_id, user_id, signed_at, nonce)


def read_connect_token(token: str, now: datetime) -> Grant:
    """The org and user of a connect token; TokenInvalid or TokenExpired otherwise."""
    return _verify(CONNECT_SALT, token, now, CONNECT_MAX_AGE, "connect link")


def new_nonce() -> str:
    """A random value binding a consent round trip to one browser (state + cookie)."""
    return secrets.token_urlsafe(16)


def read_state(state: str, now: datetime, *, nonce: str) -> Grant:
    """The grant in an OAuth `state`, checked against the nonce the browser kept (its cookie)."""
    grant = _verify(STATE_SALT, state, now, STATE_MAX_AGE, "sign-in attempt")
    if not nonce or not hmac.compare_digest(grant.nonce.encode(), nonce.encode()):
        raise TokenInvalid(
            "this sign-in was started in another browser (or its cookie was blocked): "
            "open your connect link again in this browser"
        )
    return grant


# --------------------------------------------------------------------------- consent URL


def redirect_uri() -> str:
    """Where Google sends the browser back (register it in the Google Cloud OAuth client)."""
    return f"{app_url()}{CALLBACK_PATH}"


def authorization_url(org_id: uuid.UUID, user_id: uuid.UUID, *, nonce: str) -> str:
    """Google's consent screen for SCOPES with offline access (a refresh token), and a 10-minute
    signed `state` holding org, user and `nonce`."""
    settings = get_settings()
    if not settings.google_client_id.strip():
        raise OAuthNotConfigured("GOOGLE_CLIENT_ID is not set: create an OAuth client (web application) and set it")
    state = sign(STATE_SALT, {"o": str(org_id), "u": str(user_id), "n": nonce})
    query = {
        "client_id": settings.google_client_id.strip(),
        "redirect_uri": redirect_uri(),
        "response_type": "code",
        "scope": " ".join(SCOPES),
        "access_type": "offline",
        "prompt": "consent",  # Google sends a refresh token only on a consent screen
        "include_granted_scopes": "true",
        "state": state,
    }
    return f"{settings.google_auth_uri}?{urlencode(query)}"


# --------------------------------------------------------------------------- code exchange


def missing_scopes(granted: list[str]) -> list[str]:
    """The SCOPES a person unticked on the consent screen (Google lets them)."""
    return [s for s in SCOPES if s not in set(granted)]


def stored_credentials(answer: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The credentials JSON to encrypt (`{token, refresh_token, expiry, scopes}`) from Google's token
    answer; GrantRefused when it lacks a refresh token or a needed scope."""
    token, refresh_token = answer.get("access_token"), answer.get("refresh_token")
    if not isinstance(token, str) or not token:
        raise GrantRefused("Google's answer holds no access token: start again from your connect link")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise GrantRefused(
            "Google sent no refresh token, so Proactive could not work while you are away: "
            "remove Proactive at myaccount.google.com/permissions, then use your connect link again"
        )
    scope = answer.get("scope")
    scopes = scope.split() if isinstance(scope, str) and scope.strip() else list(SCOPES)
    if missing := missing_scopes(scopes):
        names = ", ".join(s.rsplit("/", 1)[-1] for s in missing)
        raise GrantRefused(f"Google did not grant {names}: use your connect link again and allow every access asked")
    try:
        expires_in_s = float(answer.get("expires_in", 3600))
    except (TypeError, ValueError):
        expires_in_s = 0.0  # unknown: treat as expired, google-auth refreshes before first use
    return {
        "token": token,
        "refresh_token": refresh_token,
        "expiry": (now + timedelta(seconds=expires_in_s)).isoformat(),
        "scopes": scopes,
    }


def exchange_code(code: str) -> dict[str, Any]:
    """POST the authorization code to GOOGLE_TOKEN_URI; Google's JSON answer, or GrantRefused
    (invalid_grant), OAuthNotConfigured (our client or redirect URI), TransientError (network, 5xx)."""
    settings = get_settings()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": settings.google_client_id.strip(),
        "client_secret": settings.google_client_secret.strip(),
        "redirect_uri": redirect_uri(),
    }
    try:
        response = httpx.post(settings.google_token_uri, data=form, timeout=settings.google_timeout_s)
    except httpx.HTTPError as exc:
        raise TransientError(f"Google's token endpoint is unreachable ({type(exc).__name__}): try again") from exc
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code >= 500 or not isinstance(answer, dict):
        raise TransientError(f"Google's token endpoint answered HTTP {response.status_code}: try again")
    if response.is_success:
        return answer
    error, detail = str(answer.get("error", "")), str(answer.get("error_description", "") or "")
    if error == "invalid_grant":
        raise GrantRefused(
            "Google refused the authorization code (invalid_grant: already used, expired, or access was "
            "withdrawn): start again from your connect link"
        )
    if error in {"invalid_client", "unauthorized_client", "redirect_uri_mismatch"}:
        raise OAuthNotConfigured(
            f"Google refused our OAuth client ({error}): check GOOGLE_CLIENT_ID/GOOGLE_CLIENT_SECRET and that "
            f"{redirect_uri()} is an authorized redirect URI"
        )
    reason = error or f"HTTP {response.status_code}"
    raise GrantRefused(f"Google refused the code exchange: {reason}" + (f" ({detail})" if detail else ""))


def mailbox_address(credentials: dict[str, Any]) -> str:
    """The Gmail address the new credentials are for (`users.getProfile`).

    Gmail's own `emailAddress` is what its push notifications name, so the stored account matches
    them exactly; it needs no extra `openid email` scope, and no id_token signature check.
    """
    # googleapiclient (hundreds of ms to import) loads only in the process that completes a connect
    from worker.google.client import call, credentials_for, gmail_service

    with gmail_service(credentials_for(credentials)) as service:
        profile = call(service.users().getProfile(userId="me"))
    address = profile.get("emailAddress") if isinstance(profile, dict) else None
    if not isinstance(address, str) or "@" not in address:
        raise PermanentError(f"Gmail answered users.getProfile without an address: {profile!r:.200}")
    return address.strip().lower()  # stored lowercased: pushes find it by an indexed equality


def complete(code: str, state: str, now: datetime, *, nonce: str) -> Connected:
    """Finish a consent round trip: verify `state` (and the browser's `nonce`), exchange `code`, read
    the mailbox address, store the user's Google integration, and set up its Gmail watch (a watch
    failure is in `Connected.watch`, the connection stands)."""
    grant = read_state(state, now, nonce=nonce)
    settings = get_settings()
    required = {"GOOGLE_CLIENT_SECRET": settings.google_client_secret, "ENCRYPTION_KEYS": settings.encryption_keys}
    for name, value in required.items():
        if not value.strip():  # checked before the code is spent: a code works once
            raise OAuthNotConfigured(f"{name} is not set: the Google connect cannot store credentials without it")
    try:
        credentials = stored_credentials(exchange_code(code), now)
        account = _account(credentials)
        encrypted = encrypt_json(credentials)
        with transaction() as conn:
            integration_id = save_integration(conn, grant, account, encrypted, credentials["scopes"], now)
            wake_parked(conn, grant.org_id, grant.user_id, now)  # jobs that waited for this reconnect
    except ConnectRefused as err:
        err.org_id = err.org_id or grant.org_id
        raise
    log.info("google account %s connected for user %s (integration %s)", account, grant.user_id, integration_id)
    watch = renew_one(grant.org_id, integration_id, now)
    return Connected(integration_id, grant.org_id, grant.user_id, account, credentials["scopes"], watch)


def _account(credentials: dict[str, Any]) -> str:
    """`mailbox_address`, its failures worded for the person connecting (the code is spent by now)."""
    try:
        return mailbox_address(credentials)
    except TransientError as err:
        raise TransientError(f"Gmail did not answer ({err}): start again from your connect link") from err
    except ProactiveError as err:
        raise GrantRefused(f"Gmail refused the new credentials ({err}): start again from your connect link") from err


def save_integration(
    conn: Connection, grant: Grant, account: str, encrypted: bytes, scopes: list[str], now: datetime
) -> uuid.UUID:
    """Insert or update the user's Google integration in their org; a different mailbox than before
    forgets the old one's history id and watch."""
    user = conn.execute(
        select(users.c.id).where(users.c.id == grant.user_id, users.c.org_id == grant.org_id).with_for_update()
    ).first()
    if user is None:  # the user row lock also serialises two callbacks of one user
        raise UserGone("this connect link is for a user who is no longer in the organisation")
    row = conn.execute(
        select(integrations.c.id, integrations.c.account)
        .where(
            integrations.c.org_id == grant.org_id,
            integrations.c.user_id == grant.user_id,
            integrations.c.provider == PROVIDER,
        )
        .order_by(integrations.c.created_at.desc())
        .limit(1)
    ).first()
    values: dict[str, Any] = {
        "account": account,
        "credentials": encrypted,
        "scopes": scopes,
        "status": IntegrationStatus.ACTIVE,
        "last_error": None,
        "updated_at": now,
    }
    if row is None:
        integration_id = uuid.uuid4()
        conn.execute(
            integrations.insert().values(
                id=integration_id,
                org_id=grant.org_id,
                user_id=grant.user_id,
                provider=PROVIDER,
                created_at=now,
                **values,
            )
        )
        return integration_id
    if (row.account or "").lower() != account.lower():
        values.update(history_id=None, watch_expiration=None, resource_id=None)
    conn.execute(update(integrations).where(integrations.c.id == row.id).values(**values))
    return row.id
