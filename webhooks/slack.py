"""Slack's two endpoints: `POST /slack/interactive` (buttons, modals) and `POST /slack/events`.

This module verifies, parses (once), hands over to `worker/slack/` and answers. A button click goes
straight to its handler; everything else (modals, the `*_edit` clicks, events) is routed by a
slack-bolt `App` behind its Flask adapter:

1. verify: `v0=HMAC-SHA256(SLACK_SIGNING_SECRET, "v0:{timestamp}:{raw body}")` and a numeric
   timestamp within 300 s of now. Bolt checks the signature again, but it answers a non-numeric
   timestamp with a 500 and parses the body (raising on bad JSON) before it verifies, so the same
   check runs here first: every refusal is a 401 and a rejected_events row, nothing else happens.
2. parse: the content type (form-encoded `payload=` for interactivity, JSON for events) and a JSON
   object with a `type`; a signed but malformed request is a 415 / 400, recorded.
3. hand over: a click is `route.handle_click` (a decision is one conditional UPDATE; every Slack
   call is queued on `edge`) without bolt (whose dispatch parsed and checked the body a second
   time), a modal submission `modals.submit_edit`, an event
   `dedupe.first_delivery` (retries of an event already seen are ignored). An `*_edit` click
   is acknowledged first and its modal opened right after (a bolt lazy listener): `views.open` needs
   the trigger id, which dies 3 s after the click, so it cannot wait in a queue.
4. answer: 200 with an empty body (Slack shows nothing), the modal's `response_action: errors`,
   the `url_verification` challenge, or 503 when the database is down (the sender may retry).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, request
from slack_bolt import Ack, App, BoltRequest, BoltResponse
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import RequestEntityTooLarge

import blocks
from webhooks.errors import RETRY_AFTER_S, error, record_refusal
from worker.config import get_settings
from worker.slack.clicks import Click, Submission
from worker.slack.dedupe import first_delivery
from worker.slack.modals import open_editor, submit_edit
from worker.slack.requests import FORM, JSON_BODY, parse_body
from worker.slack.route import handle_click

log = logging.getLogger(__name__)
# Bolt's own logger: errors only. Its warnings are about what this module already handles: the
# SLACK_BOT_TOKEN it finds in the environment while `authorize` gives the token, and requests no
# listener matches (answered 200 and recorded in rejected_events below).
bolt_log = logging.getLogger(f"{__name__}.bolt")
bolt_log.setLevel(logging.ERROR)
_build_lock = threading.Lock()

blueprint = Blueprint("slack", __name__)

ACTION_SOURCE = "slack:action"
EVENTS_SOURCE = "slack:events"
MAX_AGE_S = 300  # a signed request older (or newer) than this is a replay (Slack's own rule)
TIMESTAMP_DIGITS_MAX = 12  # epoch seconds have 10 digits until the year 2286
API_TIMEOUT_S = 2  # bolt's Web API client: views.open must be done within the trigger's 3 s
EDIT_ACTIONS = re.compile(r"^(orch|prop|email)_edit$")
ANY = re.compile(r".*", re.DOTALL)


# --------------------------------------------------------------------------- verify and parse (pure)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's signature of a request: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    return "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def signature_problem(secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float) -> str | None:
    """Why this request is not from Slack, or None when its signature and timestamp hold."""
    if not secret:
        return "SLACK_SIGNING_SECRET is not configured: no request can be verified"
    if not timestamp:
        return "missing X-Slack-Request-Timestamp"
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > TIMESTAMP_DIGITS_MAX:
        return "X-Slack-Request-Timestamp is not a number of seconds"
    if abs(now - int(timestamp)) > MAX_AGE_S:
        return f"X-Slack-Request-Timestamp is more than {MAX_AGE_S} s from now (a replay?)"
    if not signature:
        return "missing X-Slack-Signature"
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.encode("utf-8", "replace")):
        return "X-Slack-Signature does not match the body"
    return None


# --------------------------------------------------------------------------- the bolt app


def _authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
    """Every workspace gets the bot token of the settings; which org and user clicked is decided
    by the click's routing (worker/slack/route.py: an unknown team is refused there, with an answer)."""
    token = get_settings().slack_bot_token or None
    return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=token)


def _click(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
    take_click(body, action)
    ack()


def take_click(body: dict[str, Any], action: dict[str, Any]) -> None:
    """Hand one click over to worker/slack/route.py and log what it led to."""
    click = Click.from_payload(body, action)
    outcome = handle_click(click)
    # under the job's trace id once the approval was found (worker/logs.py join_trace), the request's as origin
    log.info("Slack click %s on %s: %s", str(action.get("action_id"))[:64], click.value[:64], outcome)


def plain_click(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The clicked action of a `block_actions` payload that needs no bolt (no modal to open after
    the ack), or None: a button click is handled here directly, everything else goes to bolt."""
    if payload.get("type") != "block_actions":
        return None
    actions = payload.get("actions") or []
    action_id = actions[0].get("action_id") if actions else None
    if not isinstance(action_id, str) or EDIT_ACTIONS.match(action_id):
        return None
    return actions[0]


def _answer_click(source: str, payload: dict[str, Any], action: dict[str, Any]) -> Response:
    """A button click without bolt: handled, then acknowledged with an empty 200 (bolt's `ack()`)."""
    try:
        take_click(payload, action)
    except (OperationalError, DBAPIError):
        raise  # 503 (webhooks.errors)
    except Exception:  # a signed payload with fields of types we cannot read
        log.exception("could not handle a signed Slack click")
        record_refusal(source, "signed Slack payload with fields of unexpected types", "InvalidPayload")
        return error(400, "invalid_payload", "the Slack payload could not be read")
    return Response(status=200)


def _ack(ack: Ack) -> None:
    ack()


def _open_editor(body: dict[str, Any], action: dict[str, Any]) -> None:
    """Runs after the ack, in bolt's executor thread."""
    open_editor(Click.from_payload(body, action))


def _submit_edit(ack: Ack, body: dict[str, Any]) -> None:
    errors = submit_edit(Submission.from_payload(body))
    if errors:
        ack(response_action="errors", errors=errors)
    else:
        ack()


def _other_view(ack: Ack, body: dict[str, Any]) -> None:
    callback_id = (body.get("view") or {}).get("callback_id")
    record_refusal(ACTION_SOURCE, f"unknown modal {str(callback_id)[:100]!r}", "UnknownAction")
    ack()


def _event(ack: Ack, body: dict[str, Any], request: BoltRequest) -> None:
    if not first_delivery(body.get("event_id"), body.get("team_id")):
        retry = (request.headers.get("x-slack-retry-num") or ["-"])[0]
        log.info("Slack event %s delivered again (retry %s): ignored", body.get("event_id"), retry)
    ack()


def _error(error: Exception, response: BoltResponse | None) -> BoltResponse:
    """Handling failed: 503 when the database is down (Slack may retry); otherwise the signed
    payload had a shape neither bolt nor we could read: logged, recorded, 400."""
    if isinstance(error, OperationalError | DBAPIError):
        log.warning("database unavailable while handling a Slack request: %s", error)
        body = json.dumps({"error": "unavailable", "message": "the database is unavailable; retry shortly"})
        return BoltResponse(
            status=503, body=body, headers={"content-type": JSON_BODY, "retry-after": str(RETRY_AFTER_S)}
        )
    log.error("could not handle a signed Slack request", exc_info=error)
    source = ACTION_SOURCE if request.path.endswith("/interactive") else EVENTS_SOURCE
    record_refusal(source, f"signed Slack payload that could not be read ({type(error).__name__})", "InvalidPayload")
    body = json.dumps({"error": "invalid_payload", "message": "the Slack payload could not be read"})
    return BoltResponse(status=400, body=body, headers={"content-type": JSON_BODY})


def bolt_app(signing_secret: str, bot_token: str, api_url: str) -> App:
    """The bolt App for these settings (one per process and settings, built on first use)."""
    with _build_lock:
        return _bolt_app(signing_secret, bot_token, api_url)


@lru_cache(maxsize=4)
def _bolt_app(signing_secret: str, bot_token: str, api_url: str) -> App:
    app = App(
        signing_secret=signing_secret,
        client=WebClient(token=bot_token or None, base_url=api_url, timeout=API_TIMEOUT_S, retry_handlers=[]),
        authorize=_authorize,
        process_before_response=True,
        token_verification_enabled=False,
        logger=bolt_log,
    )
    app.action(EDIT_ACTIONS)(ack=_ack, lazy=[_open_editor])
    app.action(ANY)(_click)
    app.view(blocks.EDIT_CALLBACK_ID)(_submit_edit)
    app.view(ANY)(_other_view)
    app.event(ANY)(_event)
    app.error(_error)
    return app


# --------------------------------------------------------------------------- the endpoints


@blueprint.post("/slack/interactive")
def interactive() -> Response:
    """Buttons and modal submissions."""
    return _handle(ACTION_SOURCE, FORM)


@blueprint.post("/slack/events")
def events() -> Response:
    """The Events API: url_verification, and event deliveries (retries of a seen event ignored)."""
    return _handle(EVENTS_SOURCE, JSON_BODY)


def _handle(source: str, expected: str) -> Response:
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        record_refusal(source, "body larger than the 1 MiB limit", "PayloadTooLarge", body=b"")
        raise
    settings = get_settings()
    problem = signature_problem(
        settings.slack_signing_secret,
        raw,
        request.headers.get("X-Slack-Request-Timestamp"),
        request.headers.get("X-Slack-Signature"),
        time.time(),
    )
    if problem is not None:
        record_refusal(source, problem, "InvalidSignature")
        return error(401, "invalid_signature", problem)
    bad, payload = parse_body(raw, request.mimetype, expected)
    if bad is not None:
        status, reason = bad
        record_refusal(source, reason, "InvalidPayload")
        return error(status, "invalid_payload", reason)
    action = plain_click(payload) if source == ACTION_SOURCE else None
    if action is not None:
        return _answer_click(source, payload, action)
    api_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    app = bolt_app(settings.slack_signing_secret, settings.slack_bot_token, api_url)
    try:
        response = SlackRequestHandler(app).handle(request)
    except (OperationalError, DBAPIError):
        raise  # 503 (webhooks.errors)
    except Exception:  # a signed payload bolt cannot read (odd shapes in its fields)
        log.exception("could not handle a signed Slack request")
        record_refusal(source, "signed Slack payload with fields of unexpected types", "InvalidPayload")
        return error(400, "invalid_payload", "the Slack payload could not be read")
    if response.status_code == 404:  # no listener for this kind of request (e.g. a shortcut we do not offer)
        record_refusal(source, "no handler for this kind of Slack request", "UnsupportedRequest")
        return Response(status=200)
    return response
