"""The events API (docs/events.md): `POST /api/events`, `GET /api/jobs/<id>`,
`POST /api/jobs/<id>/cancel`, `GET /api/openapi.json`.

Auth: `Authorization: Bearer <token>`, either an org API key (`worker.access.api_keys.authenticate_key`:
found by its SHA-256, refused once revoked, within AUTH_CACHE_S in other processes; it may fire and
read for its own org only, whatever its role; a key with the admin role may also use the admin API
for its own org, webhooks/admin.py) or ADMIN_TOKEN (compared in constant time; any org). `POST /api/events`
takes the caller's envelope (`worker.engine.payloads.PublicEvent`: no source, depth or parent, each a 422
naming it) and answers 202 `{job_id, status, duplicate}`; the job's source is the caller
(`api:<key name>`, `api` for the admin token) and its key is stored under `caller:`;
`?wait=N` (0 < N <= 30) first waits up to N seconds for a final or paused state. Each org has a
limit on accepted events (`PROACTIVE_ORG_EVENTS_PER_S`, bursts of `PROACTIVE_ORG_EVENTS_BURST`: a
token bucket in rate_slots, key `events:<org_id>`, shared by every web worker, which takes its tokens
in small batches, `allowance_batch`); over it the answer is 429 with Retry-After. Every refusal is
a precise 4xx with one rejected_events row; an unreachable database is 503 (errors.py); an
unreachable broker still answers 202: the job is committed and the sweeper publishes it.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, jsonify, request

from webhooks import openapi
from webhooks.errors import LazySafeHeaders
from webhooks.inbound import BadJson, parse_json, read_body, refuse, refuse_unless_json
from worker import ratelimit
from worker.access.api_keys import ApiKeyRole, authenticate_key
from worker.config import get_settings
from worker.db import transaction
from worker.engine.events import fire_public_event
from worker.engine.executor import request_cancel
from worker.engine.payloads import api_source
from worker.errors import InvalidEvent, NotFound
from worker.models import utcnow
from worker.ops.views import SETTLED, job_detail, wait_settled

blueprint = Blueprint("api", __name__)

SOURCE = "api"
# Longest `?wait=` accepted (seconds): a web worker is held while it waits.
MAX_WAIT_S = 30.0
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="proactive"'}
EVENTS_KEY = "events"  # rate_slots key prefix of the per-org events limit: events:<org_id>


@dataclass(frozen=True)
class Caller:
    """Who is calling: an org's key (`org_id`, with the key's `role` and `name`) or the admin token
    (`org_id` None: every org; `role` and `name` None)."""

    org_id: uuid.UUID | None
    role: ApiKeyRole | None = None
    name: str | None = None

    @property
    def source(self) -> str:
        """The source of this caller's events and refusals: `api:<key name>`, `api` for the admin token."""
        return api_source(self.name)

    @property
    def is_admin(self) -> bool:
        """True for the admin token."""
        return self.org_id is None

    @property
    def may_administer(self) -> bool:
        """True when the org-scoped admin API is open to this caller: the admin token (any org) or a
        key with the admin role (its own org)."""
        return self.is_admin or self.role is ApiKeyRole.ADMIN


def _caller() -> Caller | str:
    """The authenticated caller, or why the request is not authenticated."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return "send Authorization: Bearer <API key or admin token>"
    admin = get_settings().admin_token
    if admin and hmac.compare_digest(token.encode("utf-8", "replace"), admin.encode()):
        return Caller(None)
    auth = authenticate_key(token)
    return Caller(auth.org_id, auth.role, auth.name) if auth is not None else "unknown or revoked API key"


def _unauthorized(reason: str) -> Response:
    return refuse(SOURCE, 401, "unauthorized", reason, error_type="Unauthorized", headers=CHALLENGE)


def _wait_seconds() -> float | str | None:
    """The `?wait=` seconds, None when absent, or why it is not acceptable."""
    if not request.query_string:  # most requests: no query string to parse
        return None
    value = request.args.get("wait")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (0 < seconds <= MAX_WAIT_S):  # NaN fails too
        return f"wait must be a number of seconds, 0 < wait <= {MAX_WAIT_S:g} (got {value[:20]!r})"
    return seconds


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


@blueprint.post("/api/events")
def post_event() -> Any:
    """Fire one event; 202 `{job_id, status, duplicate}` (see the module docstring)."""
    caller = _caller()
    if isinstance(caller, str):
        return _unauthorized(caller)
    source = caller.source
    wait_s = _wait_seconds()
    if isinstance(wait_s, str):
        return refuse(source, 400, "bad_request", wait_s, error_type="BadWait", org_id=caller.org_id)
    if (not_json := refuse_unless_json(source, caller.org_id)) is not None:
        return not_json
    raw = read_body()
    if raw is None:
        return refuse(
            source,
            413,
            "payload_too_large",
            "the body is over 1 MiB",
            error_type="PayloadTooLarge",
            org_id=caller.org_id,
        )
    try:
        data = parse_json(raw)
    except BadJson as err:
        return refuse(source, 400, "bad_request", str(err), error_type="BadJson", org_id=caller.org_id)
    if not caller.is_admin and isinstance(data, dict):
        target = _uuid(data.get("org_id"))
        if target is not None and target != caller.org_id:
            return refuse(
                source,
                403,
                "forbidden",
                f"this API key may not fire events for org {target}",
                error_type="Forbidden",
                org_id=caller.org_id,
            )
    org_id = caller.org_id or (_uuid(data.get("org_id")) if isinstance(data, dict) else None)
    if org_id is not None and (limited := _over_limit(source, org_id)) is not None:
        return limited
    try:
        # InvalidEvent (422 with the field errors) is recorded by fire_public_event and answered by errors.py
        result = fire_public_event(data, source=source, raw_body=raw, headers=LazySafeHeaders())
    except InvalidEvent:
        if org_id is not None:
            _give_back(org_id)  # only accepted events use the org's budget
        raise
    out = result.as_dict()
    if wait_s is not None and result.status not in SETTLED:
        out["status"] = wait_settled(result.job_id, wait_s)
    response = jsonify(out)
    response.status_code = 202
    return response


def _events_bucket() -> tuple[float, float] | None:
    """(interval_s, burst_s) of each org's events bucket; None when the limit is off (rate 0)."""
    settings = get_settings()
    if settings.org_events_per_s <= 0:
        return None
    return ratelimit.bucket(settings.org_events_per_s, settings.org_events_burst)


# A web process takes up to this many of an org's events tokens from the shared bucket in one
# statement and spends them itself (see `_Allowance`): at most ALLOWANCE_S of the org's rate and a tenth
# of its burst, so the bucket is never overdrawn and unspent tokens, which lapse after ALLOWANCE_S, cost
# an org at its limit little.
ALLOWANCE_S = 0.5
ALLOWANCE_MAX = 64


@dataclass
class _Allowance:
    """Tokens of an org's events bucket this process took and has not spent yet, until `until`
    (time.monotonic()); after a refused batch (`tight`), tokens are taken one at a time till then."""

    tokens: int
    until: float
    tight: bool = False


_allowances: dict[uuid.UUID, _Allowance] = {}
_allowances_lock = threading.Lock()


def allowance_batch(rate_per_s: float, burst: int) -> int:
    """Tokens taken per statement for a bucket of `rate_per_s` and `burst` (pure; 1 = one per event)."""
    return max(1, min(ALLOWANCE_MAX, int(rate_per_s * ALLOWANCE_S), burst // 10))


def _spend_allowance(org_id: uuid.UUID, now: float) -> bool | None:
    """Spend a token this process holds for the org: True; None when it holds none but may take a
    batch; False when a batch was refused lately (take one token at a time)."""
    with _allowances_lock:
        held = _allowances.get(org_id)
        if held is None or held.until <= now:
            return None
        if held.tokens > 0:
            held.tokens -= 1
            return True
        return None if not held.tight else False


def _over_limit(source: str, org_id: uuid.UUID) -> Response | None:
    """Take a token of the org's events bucket (one statement per batch, `allowance_batch`); the
    recorded 429 with Retry-After (whole seconds, at least 1) when it has none, None when the event
    may go on."""
    shape = _events_bucket()
    if shape is None:
        return None
    now = time.monotonic()
    local = _spend_allowance(org_id, now)
    if local:
        return None
    settings = get_settings()
    batch = 1 if local is False else allowance_batch(settings.org_events_per_s, settings.org_events_burst)
    key = f"{EVENTS_KEY}:{org_id}"
    with transaction() as conn:
        got = ratelimit.take(conn, key, shape[0] * batch, utcnow(), shape[1])
        if not got.taken and batch > 1:  # fewer tokens left than a batch: one at a time for a while
            with _allowances_lock:
                _allowances[org_id] = _Allowance(0, now + ALLOWANCE_S, tight=True)
            batch = 1
            got = ratelimit.take(conn, key, shape[0], utcnow(), shape[1])
    if got.taken:
        if batch > 1:
            with _allowances_lock:
                _allowances[org_id] = _Allowance(batch - 1, now + ALLOWANCE_S)
        return None
    retry_after = max(1, math.ceil(got.wait_s))
    return refuse(
        source,
        429,
        "rate_limited",
        f"org {org_id} is over its events limit ({settings.org_events_per_s:g}/s, bursts of "
        f"{settings.org_events_burst}): retry in {retry_after} s",
        error_type="RateLimited",
        org_id=org_id,
        headers={"Retry-After": str(retry_after)},
        retry_after_s=retry_after,
    )


def _give_back(org_id: uuid.UUID) -> None:
    """Return the token a refused event took (a 422 does not use the org's budget): to this
    process's allowance while it lasts, else to the bucket."""
    shape = _events_bucket()
    if shape is None:
        return
    with _allowances_lock:
        held = _allowances.get(org_id)
        if held is not None and not held.tight and held.until > time.monotonic():
            held.tokens += 1
            return
    with transaction() as conn:
        ratelimit.give_back(conn, f"{EVENTS_KEY}:{org_id}", shape[0])


@blueprint.get("/api/jobs/<job_id>")
def get_job(job_id: str) -> Any:
    """One job with its steps, approvals, Slack messages and failed steps (`errors`, `failed_steps`;
    the caller's org only)."""
    caller = _caller()
    if isinstance(caller, str):
        return _unauthorized(caller)
    jid = _uuid(job_id)
    if jid is None:
        return refuse(
            SOURCE,
            404,
            "not_found",
            f"job {job_id[:60]!r} not found (not a UUID)",
            error_type="NotFound",
            org_id=caller.org_id,
        )
    try:
        with transaction() as conn:
            detail = job_detail(conn, jid, caller.org_id)
    except NotFound as err:  # another org's job looks exactly like a missing one
        return refuse(SOURCE, 404, "not_found", str(err), error_type="NotFound", org_id=caller.org_id)
    return jsonify(detail)


@blueprint.post("/api/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> Any:
    """Cancel a job of the caller's org (a delayed one before it starts, a live one to free its
    deal): 200 `{job_id, status, immediate}`; honoured now if no step runs, else at the next step
    boundary. An ended job answers its final status with `immediate` false."""
    caller = _caller()
    if isinstance(caller, str):
        return _unauthorized(caller)
    jid = _uuid(job_id)
    try:
        if jid is None:
            raise NotFound(f"job {job_id[:60]!r} not found (not a UUID)")
        result = request_cancel(jid, org_id=caller.org_id, actor=caller.source)
    except NotFound as err:  # another org's job looks exactly like a missing one
        return refuse(caller.source, 404, "not_found", str(err), error_type="NotFound", org_id=caller.org_id)
    return jsonify({"job_id": str(result.job_id), "status": result.status, "immediate": result.immediate})


@blueprint.get("/api/openapi.json")
def openapi_document() -> Any:
    """The OpenAPI 3.1 description of this API (no auth needed)."""
    return jsonify(openapi.document())
