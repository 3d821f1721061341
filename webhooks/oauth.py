"""`/oauth/google/start` and `/oauth/google/callback`: a person connecting their Google account.

`start?token=` checks the connect link (worker.google.oauth) and redirects to Google's consent
screen, leaving the state's nonce in a short-lived cookie; `callback?code&state` hands the code to
`google_oauth.complete` and shows a small page naming the connected mailbox. Google's
`?error=access_denied` (the person said no) shows a "cancelled" page. Every refusal is one
rejected_events row (connect tokens and codes are redacted, they are credentials) and a JSON error:
400 (missing input), 403 (altered or expired token, another browser), 404 (user gone), 502 (Google
unreachable), 503 (OAuth not configured).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import Any

from flask import Blueprint, Response, redirect, request

from webhooks.errors import error, record_refusal
from worker.config import get_settings
from worker.crypto import EncryptionKeyError
from worker.errors import TransientError, UserError
from worker.google import links
from worker.google import oauth as google_oauth

blueprint = Blueprint("oauth", __name__)

SOURCE = "oauth:google"
REDACTED_PARAMS = frozenset({"token", "code"})  # bearer credentials: never stored in rejected_events


@blueprint.get(links.START_PATH)
def start() -> Any:
    """Verify the connect link and send the browser to Google's consent screen."""
    token = request.args.get("token", "")
    if not token:
        return _refuse(400, "bad_request", "the link has no token: open the connect link from Slack", "MissingToken")
    nonce = google_oauth.new_nonce()
    try:
        grant = google_oauth.read_connect_token(token, datetime.now(UTC))
        url = google_oauth.authorization_url(grant.org_id, grant.user_id, nonce=nonce)
    except google_oauth.OAuthNotConfigured as err:
        return _refuse(503, "not_configured", str(err), type(err).__name__)
    except UserError as err:
        return _refuse(err.http_status, "refused", str(err), type(err).__name__, org_id=getattr(err, "org_id", None))
    response = redirect(url, code=302)
    response.set_cookie(
        google_oauth.NONCE_COOKIE,
        nonce,
        max_age=int(google_oauth.STATE_MAX_AGE.total_seconds()),
        path="/oauth/google",
        secure=get_settings().app_url.startswith("https://"),
        httponly=True,
        samesite="Lax",  # sent on Google's top-level redirect back to the callback
    )
    return response


@blueprint.get(google_oauth.CALLBACK_PATH)
def callback() -> Any:
    """Store the connected account (or say why not) and show the result."""
    if google_error := request.args.get("error"):
        record_refusal(SOURCE, f"Google answered error={google_error}", "ConsentDenied", body=_redacted_query())
        if google_error == "access_denied":
            return _page(200, "Google connection cancelled", "Nothing was connected. Open your link again to retry.")
        return _page(400, "Google connection failed", f"Google answered: {google_error}. Open your link again.")
    code, state = request.args.get("code", ""), request.args.get("state", "")
    if not code or not state:
        return _refuse(400, "bad_request", "the callback needs both code and state", "MissingParameter")
    try:
        connected = google_oauth.complete(
            code, state, datetime.now(UTC), nonce=request.cookies.get(google_oauth.NONCE_COOKIE, "")
        )
    except (google_oauth.OAuthNotConfigured, EncryptionKeyError) as err:
        return _refuse(503, "not_configured", str(err), type(err).__name__)
    except TransientError as err:
        return _refuse(502, "google_unavailable", str(err), type(err).__name__)
    except UserError as err:
        return _refuse(err.http_status, "refused", str(err), type(err).__name__, org_id=getattr(err, "org_id", None))
    watch = connected.watch
    synced = "Proactive now sees new mail." if watch.ok else f"Inbox sync is not set up yet: {watch.error}"
    response = _page(200, "Google connected", f"Connected {connected.account}. {synced}")
    response.delete_cookie(google_oauth.NONCE_COOKIE, path="/oauth/google")
    return response


def _redacted_query() -> str:
    """The query string as JSON, credentials replaced (what a rejected_events row keeps)."""
    query = {k: "(redacted)" if k in REDACTED_PARAMS else v for k, v in request.args.items()}
    return json.dumps({"path": request.path, "query": query})


def _refuse(status: int, code: str, message: str, error_type: str, *, org_id: Any = None) -> Response:
    record_refusal(SOURCE, f"{status} {code}: {message}", error_type, body=_redacted_query(), org_id=org_id)
    return error(status, code, message)


def _page(status: int, title: str, text: str) -> Response:
    """A minimal HTML page for the person in the browser."""
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1><p>{escape(text)}</p></body></html>"
    )
    return Response(html, status=status, mimetype="text/html")
