"""Browser sign-in for the admin pages: one-time login links, the session they open, CSRF tokens.

A page cannot send a bearer header, so an operator runs `proactive admin link [--org ID]`:
`create_link` stores a row in `admin_logins` (a random `jti`, the org or NULL for every org, its
expiry) and prints `APP_URL/admin/login?token=…`, the token being the signed `jti` and expiry.
`redeem` checks the signature, then marks the row used with one conditional UPDATE (`used_at IS
NULL AND expires_at > now`): of two requests with the same link exactly one wins, and a copy of the
URL left in a terminal, a chat or a proxy log signs nobody in afterwards. Keeping used ids in the
database (not in a process's memory) holds across web workers and restarts.

The session is a signed cookie value naming the login id and its scope (one org, or every org);
pages read it with `read_session` and trust it for `SESSION_MAX_AGE`. A form that changes state
carries `csrf_token(session)`, which only this session's pages can produce (`csrf_ok`).

Everything is signed with ADMIN_SESSION_SECRET (HMAC-SHA256, one salt per purpose so a login token
is never a valid cookie or CSRF token): comma-separated keys of at least 32 characters, the first
signs, all verify, so a key can be rotated without signing everyone out at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, insert, select, update

from worker.config import get_settings
from worker.db import transaction
from worker.errors import NotFound, PermanentError, UserError
from worker.models import AdminLogin, Org, utcnow

admin_logins = AdminLogin.__table__

LINK_MINUTES = 15  # default life of a login link: long enough to switch from a terminal to a browser
MAX_LINK_MINUTES = 24 * 60  # longest a link may live: it is a credential lying in a terminal or chat
SESSION_MAX_AGE = timedelta(hours=12)  # a browser session: one working day, then a new link
PURGE_AFTER = timedelta(days=1)  # used or expired login rows are kept this long (a reuse says "used")
MIN_SECRET_CHARS = 32  # each ADMIN_SESSION_SECRET key; `secrets.token_urlsafe(32)` gives 43
LOGIN_SALT = "proactive.admin.login-link"
SESSION_SALT = "proactive.admin.session"
CSRF_SALT = "proactive.admin.csrf"
LOGIN_PATH = "/admin/login"
HOME_PATH = "/admin/orchestrator"  # where a link without a page asked for lands: the dashboard
SECRET_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# A page a login may lead to: one of ours, a path (never a scheme, a host or `//`), printable ASCII.
_NEXT = re.compile(r"^/admin(?:/[A-Za-z0-9._~\-/]*)?(?:\?[A-Za-z0-9._~\-=&%]*)?$")


class AdminAuthNotConfigured(PermanentError):
    """ADMIN_SESSION_SECRET is missing or too short: login links cannot be signed or checked. An
    operator sets it on the CLI's and the web server's machines (the message says how)."""


class LoginRefused(UserError):
    """A login link that signs nobody in: not made by this server, expired, or used already. The
    message says which and that `proactive admin link` makes a new one."""

    http_status = 401


@dataclass(frozen=True)
class LoginLink:
    """What `create_link` made: the URL to open, whose sessions it opens, until when it works."""

    url: str
    org_id: uuid.UUID | None
    expires_at: datetime


@dataclass(frozen=True)
class AdminSession:
    """A signed-in browser: the login it came from (`sid`) and its scope, one org or every org."""

    sid: str
    org_id: uuid.UUID | None

    @property
    def all_orgs(self) -> bool:
        """True for the operator's session over every org."""
        return self.org_id is None


# --------------------------------------------------------------------------- signing


def _serializer(salt: str) -> URLSafeTimedSerializer:
    keys = [k.strip() for k in get_settings().admin_session_secret.split(",") if k.strip()]
    if not keys:
        raise AdminAuthNotConfigured(f"ADMIN_SESSION_SECRET is not set: admin sign-in links need it; {SECRET_HINT}")
    if any(len(k) < MIN_SECRET_CHARS for k in keys):
        raise AdminAuthNotConfigured(
            f"ADMIN_SESSION_SECRET keys must be at least {MIN_SECRET_CHARS} characters; {SECRET_HINT}"
        )
    # itsdangerous signs with the last key and verifies with all; ours signs with the first.
    return URLSafeTimedSerializer(list(reversed(keys)), salt=salt, signer_kwargs={"digest_method": hashlib.sha256})


def _loads(salt: str, token: str, max_age: timedelta | None = None) -> Any:
    """The payload of `token` signed under `salt` (and not older than `max_age`); None if it is not."""
    try:
        return _serializer(salt).loads(token, max_age=max_age.total_seconds() if max_age else None)
    except BadSignature:  # SignatureExpired is one
        return None


def safe_next(path: str | None) -> str:
    """`path` when it is one of the admin pages, else the dashboard: a login never leads off-site."""
    return path if path and _NEXT.fullmatch(path) and "//" not in path else HOME_PATH


# --------------------------------------------------------------------------- login links


def create_link(org_id: uuid.UUID | None, minutes: int = LINK_MINUTES, next_path: str | None = None) -> LoginLink:
    """Store a one-time login for `org_id` (None: every org) valid `minutes`, and return its URL.
    NotFound for an unknown org; ValueError for minutes outside 1..MAX_LINK_MINUTES."""
    if not 1 <= minutes <= MAX_LINK_MINUTES:
        raise ValueError(f"minutes must be between 1 and {MAX_LINK_MINUTES}, got {minutes}")
    serializer = _serializer(LOGIN_SALT)  # refuse before storing anything when the secret is missing
    now = utcnow()
    expires_at = now + timedelta(minutes=minutes)
    jti = secrets.token_urlsafe(18)
    with transaction() as conn:
        if org_id is not None and conn.execute(select(Org.id).where(Org.id == org_id)).first() is None:
            raise NotFound(f"org {org_id} not found")
        conn.execute(delete(admin_logins).where(admin_logins.c.expires_at < now - PURGE_AFTER))
        conn.execute(insert(admin_logins).values(jti=jti, org_id=org_id, created_at=now, expires_at=expires_at))
    token = serializer.dumps({"j": jti, "e": int(expires_at.timestamp())})
    query = {"token": token}
    if next_path is not None:
        query["next"] = safe_next(next_path)
    base = get_settings().app_url.rstrip("/")
    return LoginLink(f"{base}{LOGIN_PATH}?{urlencode(query)}", org_id, expires_at)


def redeem(token: str, now: datetime | None = None) -> AdminSession:
    """Sign in with a login token, once: the session it opens, or LoginRefused saying why not."""
    now = now or utcnow()
    payload = _loads(LOGIN_SALT, token)
    try:
        jti, expires_at = str(payload["j"]), datetime.fromtimestamp(int(payload["e"]), UTC)
    except (KeyError, TypeError, ValueError, OverflowError):
        raise LoginRefused(
            "this sign-in link is not valid (altered, cut short, or made with another ADMIN_SESSION_SECRET); "
            "run `proactive admin link` for a new one"
        ) from None
    if now >= expires_at:
        raise LoginRefused(
            f"this sign-in link expired at {expires_at:%Y-%m-%d %H:%M} UTC; run `proactive admin link` for a new one"
        )
    with transaction() as conn:
        won = conn.execute(
            update(admin_logins)
            .where(admin_logins.c.jti == jti, admin_logins.c.used_at.is_(None), admin_logins.c.expires_at > now)
            .values(used_at=now)
            .returning(admin_logins.c.org_id)
        ).first()
        if won is not None:
            return AdminSession(jti, won.org_id)
        used_at = conn.execute(select(admin_logins.c.used_at).where(admin_logins.c.jti == jti)).scalar()
    if used_at is not None:
        raise LoginRefused(
            f"this sign-in link was already used at {used_at:%Y-%m-%d %H:%M} UTC and signs in once; "
            "run `proactive admin link` for a new one"
        )
    raise LoginRefused("this sign-in link is unknown or expired; run `proactive admin link` for a new one")


# --------------------------------------------------------------------------- sessions and CSRF


def session_cookie(session: AdminSession) -> str:
    """The signed cookie value of `session` (checked by `read_session`)."""
    return _serializer(SESSION_SALT).dumps({"s": session.sid, "o": str(session.org_id) if session.org_id else ""})


def read_session(value: str | None) -> AdminSession | None:
    """The session in a cookie value, or None when it is missing, altered or older than SESSION_MAX_AGE."""
    if not value:
        return None
    payload = _loads(SESSION_SALT, value, SESSION_MAX_AGE)
    try:
        return AdminSession(str(payload["s"]), uuid.UUID(payload["o"]) if payload["o"] else None)
    except (KeyError, TypeError, ValueError):
        return None


def csrf_token(session: AdminSession) -> str:
    """The token a state-changing form of this session carries (valid as long as the session)."""
    return _serializer(CSRF_SALT).dumps(session.sid)


def csrf_ok(session: AdminSession, token: str | None) -> bool:
    """True when `token` was made by `csrf_token` for this very session."""
    sid = _loads(CSRF_SALT, token, SESSION_MAX_AGE) if token else None
    return isinstance(sid, str) and hmac.compare_digest(sid.encode(), session.sid.encode())
