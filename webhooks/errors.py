"""Request ids, JSON error bodies, and the record of refused input (shared by every blueprint).

Every response carries `X-Request-Id` (the caller's, or a new one) and `X-Trace-Id` (the trace id of
a W3C `traceparent` header, or a new one: worker/logs.py). Errors are JSON
`{"error": code, "message": text, "request_id": id}` with a snake_case code (`invalid_event`,
`not_found`): our user-facing errors keep their status (400/401/403/404/409/410/422), an unreachable
database is 503 with Retry-After (the sender retries), anything unexpected is a 500 without details
(logged with the request id).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Flask, Response, g, jsonify, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from worker import logs
from worker.engine.events import record_rejected
from worker.errors import ProactiveError, UserError

log = logging.getLogger(__name__)

# Headers never stored with a refused request (they carry credentials).
SECRET_HEADERS = frozenset({"authorization", "cookie", "x-slack-signature", "x-recording-signature"})
# Seconds a sender is asked to wait when the database is unreachable.
RETRY_AFTER_S = 5


def request_id() -> str:
    """This request's id (set before the request by `install`)."""
    return getattr(g, "request_id", "-")


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    """A JSON error response."""
    response = jsonify(error=code, message=message, request_id=request_id(), **extra)
    response.status_code = status
    return response


def error_code(err: Exception) -> str:
    """The snake_case code of one of our errors, as every JSON error spells it: `InvalidEvent` ->
    `invalid_event` (the class name stays the `error_type` of its rejected_events row)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(err).__name__).lower()


def safe_headers() -> dict[str, str]:
    """The request's headers without credentials (what a rejected_events row keeps)."""
    return {k: v for k, v in request.headers.items() if k.lower() not in SECRET_HEADERS}


class LazySafeHeaders(Mapping[str, str]):
    """`safe_headers()` of the current request, read only if a refusal records them (most requests
    are accepted and never look); use it inside the request."""

    def __init__(self) -> None:
        self._headers: dict[str, str] | None = None

    def _read(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = safe_headers()
        return self._headers

    def __getitem__(self, name: str) -> str:
        return self._read()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


def record_refusal(
    source: str, reason: str, error_type: str, *, body: bytes | str | None = None, org_id: uuid.UUID | None = None
) -> None:
    """Keep refused input in rejected_events (never a silent drop); a failure to record is logged,
    never turned into a 500 for the sender."""
    try:
        raw = request.get_data(cache=True) if body is None else body
        record_rejected(source, reason, error_type, body=raw, headers=safe_headers(), org_id=org_id)
    except Exception:
        log.exception("could not record a refused %s request (%s)", source, reason)


def install(app: Flask) -> None:
    """Request ids and the error handlers."""

    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex
        # The caller's W3C trace id, or a new one: on every log line of this request and the job it fires.
        logs.start_trace(logs.trace_id_from_traceparent(request.headers.get("traceparent")))

    @app.after_request
    def _tag(response: Response) -> Response:
        response.headers["X-Request-Id"] = request_id()
        trace_id = logs.current_trace_id()
        if trace_id:
            response.headers["X-Trace-Id"] = trace_id
        return response

    @app.errorhandler(UserError)
    def _user_error(err: UserError) -> Response:
        return error(
            err.http_status,
            error_code(err),
            str(err),
            **({"errors": err.errors} if getattr(err, "errors", None) else {}),
        )

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    def _database_down(err: Exception) -> Response:
        log.warning("database unavailable (request %s): %s", request_id(), err)
        response = error(503, "unavailable", "the database is unavailable; retry shortly")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException) -> Response:
        return error(err.code or 500, (err.name or "error").lower().replace(" ", "_"), err.description or "")

    @app.errorhandler(ProactiveError)
    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        log.exception("unexpected error (request %s)", request_id())
        return error(500, "internal_error", "something went wrong; the request id helps us find it")
