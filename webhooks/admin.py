"""The admin API: `GET /api/admin/metrics` (an org's metrics, docs/metrics.md) and
`POST /api/admin/smoke` (runs the smoke test, README.md#smoke-test).

Auth is the events API's (`webhooks/api.py`): the admin token may read any org; an org API key
with the admin role (`proactive keys create --role admin`) reads its own org only, and any other org
answers 404 exactly as a missing one; a key with the (default) events role is refused with 403 and
told how to make an admin key. The smoke test fires events into an org it picks, so it takes the
admin token alone (an org key is 403 whatever its role).
"""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from webhooks.api import Caller, _caller, _unauthorized, _uuid
from webhooks.inbound import BadJson, parse_json, read_body, refuse, refuse_unless_json
from worker.access.api_keys import ApiKeyRole
from worker.config import get_settings
from worker.db import transaction
from worker.errors import NotFound
from worker.metrics.report import RANGES, org_metrics, parse_range
from worker.models import Org
from worker.ops.inprocess import EmbeddedWorker
from worker.ops.smoke import DEFAULT_TIMEOUT_S, as_dicts, run_smoke, summary

blueprint = Blueprint("admin", __name__)

SOURCE = "api"
# Longest smoke run a request may ask for per event (seconds): a web worker is held meanwhile.
MAX_SMOKE_TIMEOUT_S = 120.0


def _not_found(what: str, org_id: uuid.UUID | None) -> Response:
    return refuse(SOURCE, 404, "not_found", f"{what} not found", error_type="NotFound", org_id=org_id)


def _bad_request(message: str, org_id: uuid.UUID | None, **extra: Any) -> Response:
    return refuse(SOURCE, 400, "bad_request", message, error_type="BadRequest", org_id=org_id, **extra)


def _lacks_admin_role(caller: Caller) -> Response:
    """403 for an org key without the admin role (said whatever org it asks for: the answer depends
    on the key alone, so it tells nothing about other orgs)."""
    role = caller.role.value if caller.role is not None else None
    return refuse(
        SOURCE,
        403,
        "forbidden",
        f"this API key has the {role!s} role; the admin API needs a key with the admin role "
        f"(make one with `proactive keys create --org {caller.org_id} --name NAME --role admin`) "
        "or the admin token",
        error_type="Forbidden",
        org_id=caller.org_id,
        role=role,
        required_role=ApiKeyRole.ADMIN.value,
    )


@blueprint.get("/api/admin/metrics")
def get_metrics() -> Any:
    """An org's metrics over `range` (7d, 30d or 90d; 7d by default); an org key (admin role) may
    omit `org_id`."""
    caller = _caller()
    if isinstance(caller, str):
        return _unauthorized(caller)
    if not caller.may_administer:
        return _lacks_admin_role(caller)
    given = request.args.get("org_id")
    if given is None and caller.is_admin:
        return _bad_request("give ?org_id=<org id> (the admin token reads any org)", None)
    org_id = caller.org_id if given is None else _uuid(given)
    if org_id is None or (not caller.is_admin and org_id != caller.org_id):
        return _not_found(f"org {str(given)[:60]!r}", caller.org_id)
    name = request.args.get("range")
    try:
        if name is not None and name not in RANGES:  # the document's enum exactly: no `range=` or ` 7d`
            raise ValueError(f"unknown range {name[:20]!r}: use one of {', '.join(RANGES)}")
        range_days = parse_range(name)
    except ValueError as err:
        return _bad_request(str(err), caller.org_id, accepted=list(RANGES))
    try:
        with transaction() as conn:
            return jsonify(org_metrics(conn, org_id, range_days))
    except NotFound:
        return _not_found(f"org {str(org_id)!r}", caller.org_id)


@blueprint.post("/api/admin/smoke")
def post_smoke() -> Any:
    """Run the smoke test; 200 with `{ok, results, summary}` whatever the outcome (`ok` is false
    when an event failed)."""
    caller = _caller()
    if isinstance(caller, str):
        return _unauthorized(caller)
    if not caller.is_admin:
        return refuse(
            SOURCE,
            403,
            "forbidden",
            "the smoke test needs the admin token (an org API key cannot run it, whatever its role)",
            error_type="Forbidden",
            org_id=caller.org_id,
        )
    options = _smoke_options()
    if isinstance(options, Response):
        return options
    org_ref, sequences, timeout_s = options
    org_id = _smoke_org(org_ref)
    if org_id is None:
        return _not_found(f"org {str(org_ref)[:60]!r}" if org_ref else "an org (give org_id; several exist)", None)
    lines = _with_worker(lambda: run_smoke(org_id, sequences=sequences, timeout_s=timeout_s))
    return jsonify(
        {
            "ok": not any(line.outcome == "failed" for line in lines),
            "org_id": str(org_id),
            "results": as_dicts(lines),
            "summary": summary(lines),
        }
    )


def _smoke_options() -> tuple[str | None, list[str] | None, float] | Response:
    """(org id, sequences, timeout) from the optional JSON body, or the 4xx answer."""
    raw = read_body() or b""
    if not raw.strip():
        return None, None, DEFAULT_TIMEOUT_S
    if (not_json := refuse_unless_json(SOURCE)) is not None:
        return not_json
    try:
        body = parse_json(raw)
    except BadJson as err:
        return _bad_request(str(err), None)
    if not isinstance(body, dict):
        return _bad_request("the body must be a JSON object {org_id, sequences, timeout}", None)
    org_ref = body.get("org_id")
    sequences = body.get("sequences")
    timeout_s = body.get("timeout", DEFAULT_TIMEOUT_S)
    if org_ref is not None and not isinstance(org_ref, str):
        return _bad_request("org_id must be a string (an org id)", None)
    if isinstance(sequences, str):
        sequences = [s.strip() for s in sequences.split(",") if s.strip()]
    if sequences is not None and not (isinstance(sequences, list) and all(isinstance(s, str) for s in sequences)):
        return _bad_request("sequences must be a list of event types (or one comma-separated string)", None)
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, int | float)
        or not 0 < timeout_s <= MAX_SMOKE_TIMEOUT_S
    ):
        return _bad_request(f"timeout must be a number of seconds, 0 < timeout <= {MAX_SMOKE_TIMEOUT_S:g}", None)
    return org_ref, sequences or None, float(timeout_s)


def _smoke_org(ref: str | None) -> uuid.UUID | None:
    """The org to smoke: the given id, or the only org; None when unknown or ambiguous."""
    with transaction() as conn:
        if ref is None:
            ids = list(conn.execute(select(Org.id).limit(2)).scalars())
            return ids[0] if len(ids) == 1 else None
        org_id = _uuid(ref)
        if org_id is None:
            return None
        return conn.execute(select(Org.id).where(Org.id == org_id)).scalar()


def _with_worker(run: Any) -> Any:
    """Call `run()`; on the embedded broker inside an in-process worker, as `proactive smoke` does
    (the fleet's workers run the jobs otherwise)."""
    in_process = get_settings().broker_url.startswith("proactive+sqlite")
    with EmbeddedWorker() if in_process else nullcontext():
        return run()
