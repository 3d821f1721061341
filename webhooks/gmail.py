"""`POST /webhooks/gmail`: Gmail's Pub/Sub push ("something changed in this mailbox").

Verify (the push's OIDC token, `worker.google.pubsub_auth`), parse (strict JSON, `worker.google.push`),
hand over (`accept_push`: one transaction recording the push once per messageId and requesting a
sync of each mailbox), answer 204. Refusals: 401 with one rejected_events row when the token fails.
A verified push that is malformed or names an unknown mailbox is recorded in rejected_events and
still answered 204: Pub/Sub redelivers any other answer for 7 days. A database outage,
or Google's certificates out of reach, is 503 so Pub/Sub redelivers later.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, request

from webhooks.errors import RETRY_AFTER_S, error, safe_headers
from webhooks.inbound import BadJson, parse_json, read_body, refuse
from worker.engine.events import record_rejected
from worker.google.pubsub_auth import CertsUnavailable, PushUnauthenticated, verify_push
from worker.google.push import InvalidPush, PushStatus, accept_push, parse_push

log = logging.getLogger(__name__)

blueprint = Blueprint("gmail", __name__)

SOURCE = "webhook:gmail"


@blueprint.post("/webhooks/gmail")
def gmail_push() -> Any:
    """Record the push and ask for a sync of its mailbox(es) (see the module docstring)."""
    try:
        verify_push(request.headers.get("Authorization"))
    except PushUnauthenticated as err:
        return refuse(SOURCE, 401, "unauthorized", str(err), error_type="BadToken")
    except CertsUnavailable as err:
        log.warning("gmail push not verified: %s", err)
        response = error(503, "unavailable", "Google's certificates are out of reach; retry shortly")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    raw = read_body()
    if raw is None:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return _kept(f"the body is over the {limit}-byte limit", "PayloadTooLarge", None)
    try:
        notice = parse_push(parse_json(raw))
    except (BadJson, InvalidPush) as err:
        return _kept(str(err), type(err).__name__, raw)
    outcome = accept_push(notice)
    if outcome.status is PushStatus.UNKNOWN_MAILBOX:
        return _kept(f"no active Google integration has the address {notice.email_address}", "UnknownMailbox", raw)
    return Response(status=204)


def _kept(reason: str, error_type: str, raw: bytes | None) -> Response:
    """Record a verified push we do nothing with, then acknowledge it (204) so it is not redelivered.
    Unlike a refusal, a failure to record is not swallowed: a 503 makes Pub/Sub try again."""
    body = raw if raw is not None else f"(body not kept: {request.content_length} bytes)"
    record_rejected(SOURCE, f"204 ignored: {reason}", error_type, body=body, headers=safe_headers())
    return Response(status=204)
