"""Signed Google connect links: what a DM carries so a person can connect (or reconnect) Google.

Kept apart from the consent flow (worker/google/oauth.py) so that what only needs a link (the
reconnect DM of worker/integrations.py) does not depend on the flow, which sets up the Gmail watch
and wakes the jobs that waited for the connect. Tokens are signed with OAUTH_STATE_SECRET
(HMAC-SHA256, one salt per purpose so a connect token is never a valid OAuth state).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import timedelta
from urllib.parse import urlencode

from itsdangerous import URLSafeTimedSerializer

from worker.config import get_settings
from worker.errors import PermanentError

log = logging.getLogger(__name__)

PROVIDER = "google"
CONNECT_MAX_AGE = timedelta(days=7)  # a reconnect DM's link: long enough to be read after a weekend
MIN_SECRET_CHARS = 32  # each OAUTH_STATE_SECRET key; `secrets.token_urlsafe(32)` gives 43
CONNECT_SALT = "proactive.google.connect-link"
START_PATH = "/oauth/google/start"
SECRET_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class OAuthNotConfigured(PermanentError):
    """A setting the Google connect needs (OAUTH_STATE_SECRET, GOOGLE_CLIENT_ID/SECRET) is missing or
    unusable: an operator fixes the configuration; the message names the setting."""


def serializer(salt: str) -> URLSafeTimedSerializer:
    """The signer for one purpose (`salt`), keyed by OAUTH_STATE_SECRET; OAuthNotConfigured when unusable."""
    raw = get_settings().oauth_state_secret
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise OAuthNotConfigured(f"OAUTH_STATE_SECRET is not set: Google connect links need it; {SECRET_HINT}")
    if any(len(k) < MIN_SECRET_CHARS for k in keys):
        raise OAuthNotConfigured(
            f"OAUTH_STATE_SECRET keys must be at least {MIN_SECRET_CHARS} characters; {SECRET_HINT}"
        )
    # itsdangerous signs with the last key and verifies with all; ours signs with the first.
    return URLSafeTimedSerializer(list(reversed(keys)), salt=salt, signer_kwargs={"digest_method": hashlib.sha256})


def sign(salt: str, payload: dict[str, str]) -> str:
    """`payload` signed for `salt`'s purpose (timestamped: the reader checks its age)."""
    return serializer(salt).dumps(payload)


def connect_token(org_id: uuid.UUID, user_id: uuid.UUID) -> str:
    """A signed token naming whose Google account to connect (valid `CONNECT_MAX_AGE`)."""
    return sign(CONNECT_SALT, {"o": str(org_id), "u": str(user_id)})


def connect_url(org_id: uuid.UUID, user_id: uuid.UUID) -> str:
    """The link a person opens to connect (or reconnect) their Google account."""
    return f"{app_url()}{START_PATH}?{urlencode({'token': connect_token(org_id, user_id)})}"


def reconnect_link(provider: str, org_id: uuid.UUID, user_id: uuid.UUID | None) -> str:
    """What a "reconnect" DM links to: a signed Google connect link when OAUTH_STATE_SECRET is set and
    the user is known, else the provider's bare start page."""
    if provider == PROVIDER and user_id is not None and get_settings().oauth_state_secret.strip():
        try:
            return connect_url(org_id, user_id)
        except OAuthNotConfigured as err:  # a DM must still go out; the operator sees this in the log
            log.warning("reconnect link without a token: %s", err)
    return f"{app_url()}/oauth/{provider}/start"


def app_url() -> str:
    """APP_URL without its trailing slash: the base of every link a person opens."""
    return get_settings().app_url.rstrip("/")
