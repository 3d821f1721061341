"""Who may push: the OIDC token Pub/Sub sends with every push (`Authorization: Bearer <JWT>`).

A push is authentic when its JWT is signed by one of Google's current keys (the v1 certs
endpoint, GOOGLE_CERTS_URL: `{kid: PEM certificate}`), is not expired, was issued by
`accounts.google.com`, is meant for us (`aud` == PUBSUB_AUDIENCE) and names the push
subscription's service account (`email` == PUBSUB_SERVICE_ACCOUNT, `email_verified` true).
`verify_push()` returns the claims or raises `PushUnauthenticated` naming the check that failed.

Google's certificates are cached in-process for the response's Cache-Control max-age (1 h when
absent) and fetched again, at most once per `MIN_REFETCH_INTERVAL_S`, when a token names a key id
the cache does not hold (keys rotate). Tokens are never logged nor put in an error message.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from google.auth import exceptions as google_exceptions
from google.auth import jwt

from worker.config import Settings, get_settings
from worker.errors import TransientError, UserError

# Issuers Google puts in the OIDC tokens of push subscriptions.
ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
# The only signature algorithm Google uses for these tokens.
ALGORITHM = "RS256"
# Seconds Google's certificates are kept when the response has no Cache-Control max-age.
DEFAULT_CERTS_MAX_AGE_S = 3600
# Seconds between two fetches forced by an unknown key id: a stream of forged key ids must not
# turn every push into a request to Google.
MIN_REFETCH_INTERVAL_S = 30.0
# Seconds of clock difference with Google tolerated on `iat` and `exp`.
CLOCK_SKEW_S = 10
# Longest claim or key id quoted back in an error (characters; they come from the sender).
MAX_QUOTED_CHARS = 64

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


class PushUnauthenticated(UserError):
    """The push's token is missing or fails a check (`check` names which): answered 401, recorded."""

    http_status = 401

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


class CertsUnavailable(TransientError):
    """Google's certificates could not be fetched: the push cannot be verified now (503, redelivered)."""


# --------------------------------------------------------------------------- certificates


def max_age_s(cache_control: str | None, default_s: int = DEFAULT_CERTS_MAX_AGE_S) -> int:
    """Seconds a response may be cached according to its Cache-Control header."""
    match = _MAX_AGE.search(cache_control or "")
    return int(match.group(1)) if match else default_s


@dataclass(frozen=True)
class FetchedCerts:
    """Google's certificates by key id, and how long they may be kept (seconds)."""

    certs: Mapping[str, str]
    max_age_s: int


def fetch_certs(url: str, timeout_s: float) -> FetchedCerts:
    """GET the certs endpoint; CertsUnavailable when it fails or answers something else."""
    try:
        response = httpx.get(url, timeout=timeout_s, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise CertsUnavailable(f"could not fetch Google's certificates from {url}: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise CertsUnavailable(f"Google's certificates endpoint {url} answered HTTP {response.status_code}")
    try:
        certs = response.json()
    except ValueError:
        certs = None
    if (
        not isinstance(certs, dict)
        or not certs
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in certs.items())
    ):
        raise CertsUnavailable(f"Google's certificates endpoint {url} did not answer {{kid: PEM certificate}}")
    return FetchedCerts(certs, max_age_s(response.headers.get("Cache-Control")))


Fetch = Callable[[], FetchedCerts]


class CertCache:
    """Google's certificates for one URL, kept for their max-age; thread-safe (one fetch at a time)."""

    def __init__(self, fetch: Fetch, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._certs: Mapping[str, str] = {}
        self._expires_at = float("-inf")
        self._fetched_at = float("-inf")

    def certs_for(self, kid: str) -> Mapping[str, str]:
        """The current certificates, fetched when expired, or refetched when `kid` is unknown."""
        with self._lock:
            now = self._clock()
            if now >= self._expires_at or (kid not in self._certs and now - self._fetched_at >= MIN_REFETCH_INTERVAL_S):
                fetched = self._fetch()
                self._certs, self._fetched_at = dict(fetched.certs), now
                self._expires_at = now + fetched.max_age_s
            return self._certs


_caches: dict[str, CertCache] = {}
_caches_lock = threading.Lock()


def cert_cache(settings: Settings) -> CertCache:
    """This process's cache of the certificates at `settings.google_certs_url`."""
    url = settings.google_certs_url
    with _caches_lock:
        cache = _caches.get(url)
        if cache is None:
            timeout_s = settings.google_timeout_s
            cache = _caches[url] = CertCache(lambda: fetch_certs(url, timeout_s))
        return cache


# --------------------------------------------------------------------------- checks (pure)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    if not authorization:
        raise PushUnauthenticated("header", "no Authorization header: Pub/Sub pushes carry a Bearer OIDC token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise PushUnauthenticated("header", "the Authorization header is not a Bearer token")
    token = token.strip()
    if not token:
        raise PushUnauthenticated("header", "the Bearer token is empty")
    return token


def check_settings(settings: Settings) -> None:
    """Every push is refused until the audience and the service account are configured."""
    for env, value in (
        ("PUBSUB_AUDIENCE", settings.pubsub_audience),
        ("PUBSUB_SERVICE_ACCOUNT", settings.pubsub_service_account),
    ):
        if not value:
            raise PushUnauthenticated("config", f"{env} is not configured: every Pub/Sub push is refused")


def check_claims(claims: Mapping[str, Any], audience: str, service_account: str) -> None:
    """Issuer, audience, service account and its verification (the signature and expiry are
    checked by google-auth before this)."""
    if claims.get("iss") not in ISSUERS:
        raise PushUnauthenticated(
            "issuer", f"the token was not issued by accounts.google.com (iss={_quote(claims.get('iss'))})"
        )
    if claims.get("aud") != audience:
        raise PushUnauthenticated(
            "audience", f"the token's audience {_quote(claims.get('aud'))} is not PUBSUB_AUDIENCE"
        )
    if claims.get("email") != service_account:
        raise PushUnauthenticated(
            "email", f"the token's email {_quote(claims.get('email'))} is not PUBSUB_SERVICE_ACCOUNT"
        )
    if claims.get("email_verified") is not True:
        raise PushUnauthenticated("email_verified", "the token's email is not verified (email_verified is not true)")


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_QUOTED_CHARS else text[:MAX_QUOTED_CHARS] + "..."


def _header_of(token: str) -> Mapping[str, Any]:
    """The JWT's header, after checking the whole token parses (no signature check yet)."""
    try:
        header = jwt.decode_header(token)
        claims = jwt.decode(token, verify=False)
    except (ValueError, TypeError, google_exceptions.GoogleAuthError):
        # google-auth's messages quote the token: say why without it.
        raise PushUnauthenticated("token", "the Bearer token is not a well-formed JWT") from None
    if not isinstance(header, Mapping):
        raise PushUnauthenticated("token", "the Bearer token is not a well-formed JWT")
    for name in ("iat", "exp"):
        if not isinstance(claims.get(name), int) or isinstance(claims.get(name), bool):
            raise PushUnauthenticated("token", f"the token has no numeric {name} claim")
    return header


# --------------------------------------------------------------------------- verification


def verify_push(authorization: str | None, *, settings: Settings | None = None) -> Mapping[str, Any]:
    """The verified claims of a push's OIDC token; PushUnauthenticated (which check failed) or
    CertsUnavailable (Google's certificates could not be fetched)."""
    settings = settings or get_settings()
    check_settings(settings)
    token = bearer_token(authorization)
    header = _header_of(token)
    if header.get("alg") != ALGORITHM:
        raise PushUnauthenticated("token", f"the token is signed with {_quote(header.get('alg'))}, not {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise PushUnauthenticated("token", "the token header has no key id (kid)")
    certs = cert_cache(settings).certs_for(kid)
    if kid not in certs:
        raise PushUnauthenticated("signature", f"no current Google certificate has key id {_quote(kid)}")
    try:
        claims = jwt.decode(token, certs={kid: certs[kid]}, clock_skew_in_seconds=CLOCK_SKEW_S)
    except google_exceptions.MalformedError:
        raise PushUnauthenticated(
            "signature", "the token's signature does not verify with Google's certificate"
        ) from None
    except google_exceptions.InvalidValue as exc:
        # iat/exp (the signature verified): google-auth's message quotes the times only.
        raise PushUnauthenticated("expiry", f"the token is not valid now: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise CertsUnavailable(f"Google's certificate {_quote(kid)} could not be used: {type(exc).__name__}") from exc
    check_claims(claims, settings.pubsub_audience, settings.pubsub_service_account)
    return claims
