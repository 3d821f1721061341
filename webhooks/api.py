"""The events API (docs/events.md): `POST /api/events`, `GET /api/jobs/<id>`, `GET /api/openapi.json`.

Auth: `Authorization: Bearer <token>`, either an org API key (`worker.api_keys.authenticate`: found
by its SHA-256, refused once revoked, within AUTH_CACHE_S in other processes; it may fire and read
for its own org only) or ADMIN_TOKEN (compared in constant time; any org). `POST /api/events`
takes the event envelope (`worker.payloads.Event`) and answers 202 `{job_id, status, duplicate}`;
`?wait=N` (0 < N <= 30) first waits up to N seconds for a final or paused state. Every refusal is a
precise 4xx with one rejected_events row; an unreachable database is 503 (errors.py); an
unreachable broker still answers 202: the job is committed and the sweeper publishes it.
"""

from __future__ import annotations

import hmac
import math
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, jsonify, request

from webhooks import openapi
from webhooks.errors import safe_headers
from webhooks.inbound import BadJson, parse_json, read_body, refuse, refuse_unless_json
from worker.api_keys import authenticate
from worker.config import get_settings
from worker.db import transaction
from worker.errors import NotFound
from worker.events import fire_event
from worker.views import SETTLED, job_detail, wait_settled

blueprint = Blueprint("api", __name__)

SOURCE = "api"
# Longest `?wait=` accepted (seconds): a web worker is held while it waits.
MAX_WAIT_S = 30.0
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="proactive"'}


@dataclass(frozen=True)
class Caller:
    """Who is calling: an org's key (`org_id`) or the admin token (`org_id` None: every org)."""

    org_id: uuid.UUID | None

    @property
    def is_admin(self) -> bool:
        """True for the admin token."""
        return self.org_id is None


def _caller() -> Caller | str:
    """The authenticated caller, or why the request is not authenticated."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return "send Authorization: Bearer <API key or admin token>"
    admin = get_settings().admin_token
    if admin and hmac.compare_digest(token.encode("utf-8", "replace"), admin.encode()):
        return Caller(None)
    org_id = authenticate(token)
    return Caller(org_id) if org_id is not None else "unknown or revoked API key"


def _unauthorized(reason: str) -> Response:
    return refuse(SOURCE, 401, "unauthorized", reason, error_type="Unauthorized", headers=CHALLENGE)


def _wait_seconds() -> float | str | None:
    """The `?wait=` seconds, None when absent, or why it is not acceptable."""
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
    wait_s = _wait_seconds()
    if isinstance(wait_s, str):
        return refuse(SOURCE, 400, "bad_request", wait_s, error_type="BadWait", org_id=caller.org_id)
    if (not_json := refuse_unless_json(SOURCE, caller.org_id)) is not None:
        return not_json
    raw = read_body()
    if raw is None:
        return refuse(
            SOURCE,
            413,
            "payload_too_large",
            "the body is over 1 MiB",
            error_type="PayloadTooLarge",
            org_id=caller.org_id,
        )
    try:
        data = parse_json(raw)
    except BadJson as err:
        return refuse(SOURCE, 400, "bad_request", str(err), error_type="BadJson", org_id=caller.org_id)
    if not caller.is_admin and isinstance(data, dict):
        target = _uuid(data.get("org_id"))
        if target is not None and target != caller.org_id:
            return refuse(
                SOURCE,
                403,
                "forbidden",
                f"this API key may not fire events for org {target}",
                error_type="Forbidden",
                org_id=caller.org_id,
            )
    # InvalidEvent (422 with the field errors) is recorded by fire_event and answered by errors.py
    result = fire_event(data, raw_body=raw.decode("utf-8"), headers=safe_headers())
    out = result.as_dict()
    if wait_s is not None and result.status not in SETTLED:
        out["status"] = wait_settled(result.job_id, wait_s)
    response = jsonify(out)
    response.status_code = 202
    return response


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


@blueprint.get("/api/openapi.json")
def openapi_document() -> Any:
    """The OpenAPI 3.1 description of this API (no auth needed)."""
    return jsonify(openapi.document())
