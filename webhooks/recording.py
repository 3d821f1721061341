"""`POST /webhooks/recording`: a meeting recorder's "recording ready" callback.

Verify (HMAC-SHA256 of `timestamp.body` under RECORDING_WEBHOOK_SECRET, 300 s window), parse
(strict JSON, `worker.recordings.RecordingReady`), hand over (`accept_recording`: one transaction
upserting the meeting and firing meeting_ended when it qualifies), answer:
202 when a job was created, 200 for a duplicate delivery or a meeting stored without a job
(`fired: false` and the reason). Refusals: 401 (signature), 413, 415, 400 (JSON), 422 (fields),
each with one rejected_events row; a database outage is 503 so the recorder retries.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from flask import Blueprint, jsonify, request

from webhooks.errors import record_refusal
from webhooks.inbound import BadJson, parse_json, read_body, refuse, refuse_unless_json
from worker.config import get_settings
from worker.errors import InvalidEvent
from worker.recordings import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    accept_recording,
    parse_recording,
    signature_problem,
)

blueprint = Blueprint("recording", __name__)

SOURCE = "webhook:recording"


@blueprint.post("/webhooks/recording")
def recording_ready() -> Any:
    """Store the recorded meeting and fire its debrief (see the module docstring)."""
    raw = read_body()
    if raw is None:
        return refuse(SOURCE, 413, "payload_too_large", "the body is over 1 MiB", error_type="PayloadTooLarge")
    problem = signature_problem(
        get_settings().recording_webhook_secret,
        request.headers.get(TIMESTAMP_HEADER),
        request.headers.get(SIGNATURE_HEADER),
        raw,
        time.time(),
    )
    if problem:
        return refuse(SOURCE, 401, "unauthorized", problem, error_type="BadSignature")
    if (not_json := refuse_unless_json(SOURCE)) is not None:
        return not_json
    try:
        data = parse_json(raw)
    except BadJson as err:
        return refuse(SOURCE, 400, "bad_request", str(err), error_type="BadJson")
    try:
        outcome = accept_recording(parse_recording(data))
    except InvalidEvent as err:
        org = data.get("org_id") if isinstance(data, dict) else None
        record_refusal(SOURCE, str(err), "InvalidEvent", body=raw, org_id=_uuid_or_none(org))
        raise
    response = jsonify(outcome.as_dict())
    response.status_code = 202 if outcome.new_job else 200
    return response


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
