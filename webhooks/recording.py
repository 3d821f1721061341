"""`POST /webhooks/recording/<org_id>` and `POST /webhooks/recording`: a meeting recorder's
"recording ready" callback.

Verify (HMAC-SHA256 of `timestamp.body`, 300 s window) under the org's recorder secrets when the
path names an org (worker/recorder/secrets.py: the current one and, during a rotation, the previous
one; the path only says which secrets to try, the signature decides, and the recording is that org's
whatever the body says), or under RECORDING_WEBHOOK_SECRET on the single-tenant path (the body's
`org_id` names the org). Parse (strict JSON, `worker.recorder.callback.parse_recording`), hand over
(`accept_recording`: one transaction upserting the meeting and firing meeting_ended when it
qualifies), answer: 202 when a job was created, 200 for a duplicate delivery or a meeting stored
without a job (`fired: false` and the reason). Refusals: 401 (signature), 413, 415, 400 (JSON), 422
(fields, another org in the body), each with one rejected_events row (the path's org on it); a
database outage, or recorder secrets this server cannot decrypt (ENCRYPTION_KEYS), is 503 so the
recorder retries.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request

from webhooks.errors import RETRY_AFTER_S, error, record_refusal
from webhooks.inbound import BadJson, parse_json, read_body, refuse, refuse_unless_json
from worker.config import get_settings
from worker.crypto import DecryptionError, EncryptionKeyError
from worker.db import transaction
from worker.errors import InvalidEvent
from worker.recorder.callback import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    accept_recording,
    parse_recording,
    secrets_problem,
    signature_problem,
)
from worker.recorder.secrets import valid_secrets

log = logging.getLogger(__name__)

blueprint = Blueprint("recording", __name__)

SOURCE = "webhook:recording"


@blueprint.post("/webhooks/recording")
def recording_ready() -> Any:
    """Single-tenant: signed with RECORDING_WEBHOOK_SECRET, the org named by the body."""
    return _handle(None)


@blueprint.post("/webhooks/recording/<uuid:org_id>")
def org_recording_ready(org_id: uuid.UUID) -> Any:
    """Signed with this org's recorder secret; the recording is this org's."""
    return _handle(org_id)


def _handle(org_id: uuid.UUID | None) -> Any:
    """Store the recorded meeting and fire its debrief (see the module docstring)."""
    raw = read_body()
    if raw is None:
        return refuse(
            SOURCE, 413, "payload_too_large", "the body is over 1 MiB", error_type="PayloadTooLarge", org_id=org_id
        )
    timestamp, signature = request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER)
    if org_id is None:
        problem = signature_problem(get_settings().recording_webhook_secret, timestamp, signature, raw, time.time())
    else:
        try:
            with transaction() as conn:
                secrets = valid_secrets(conn, org_id)
        except (EncryptionKeyError, DecryptionError) as err:
            log.error("recorder secrets of org %s cannot be read: %s", org_id, err)
            response = error(503, "unavailable", "this server cannot read the org's recorder secrets; retry shortly")
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        if secrets:
            problem = secrets_problem(secrets, timestamp, signature, raw, time.time())
        else:
            problem = f"org {org_id} has no recorder secret (proactive recorder secret --org {org_id})"
    if problem:
        return refuse(SOURCE, 401, "unauthorized", problem, error_type="BadSignature", org_id=org_id)
    if (not_json := refuse_unless_json(SOURCE, org_id)) is not None:
        return not_json
    try:
        data = parse_json(raw)
    except BadJson as err:
        return refuse(SOURCE, 400, "bad_request", str(err), error_type="BadJson", org_id=org_id)
    try:
        outcome = accept_recording(parse_recording(data, org_id=org_id))
    except InvalidEvent as err:
        claimed = data.get("org_id") if isinstance(data, dict) else None
        record_refusal(SOURCE, str(err), "InvalidEvent", body=raw, org_id=org_id or _uuid_or_none(claimed))
        raise
    response: Response = jsonify(outcome.as_dict())
    response.status_code = 202 if outcome.new_job else 200
    return response


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
