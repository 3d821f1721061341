"""Reading and refusing inbound requests, the same way on every endpoint.

- `read_body()`: the raw bytes, or None when they exceed the app's 1 MiB limit (so a refusal can
  still be recorded for an oversized request);
- `parse_json()`: strict JSON (UTF-8, no NaN/Infinity, no NUL or lone surrogates, bounded nesting), as
  anything PostgreSQL or an encoder would choke on later must be a 400 now, never a 5xx;
- `refuse()`: one `rejected_events` row and the JSON error answer.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from webhooks.errors import error, record_refusal

# Deepest JSON accepted (levels of objects/arrays): envelopes and recordings need 4; deeper input
# is refused before it reaches pydantic, the JSON encoder or the database.
MAX_JSON_DEPTH = 32

JSON_MIMETYPE = "application/json"


class BadJson(ValueError):
    """The body is not acceptable JSON; the message says why."""


def read_body() -> bytes | None:
    """The raw body (cached for later reads), or None when it is over the size limit."""
    try:
        return request.get_data(cache=True)
    except RequestEntityTooLarge:
        return None


def _refuse_constant(name: str) -> Any:
    raise BadJson(f"{name} is not a JSON number")


def _check(value: Any, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise BadJson(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise BadJson("NUL characters (\\u0000) are not accepted")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadJson("lone surrogate escapes (\\ud800-\\udfff) are not accepted") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


def parse_json(raw: bytes) -> Any:
    """Decode a JSON body strictly; BadJson with the reason otherwise."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise BadJson("the body is not UTF-8") from None
    except RecursionError:
        raise BadJson(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except BadJson:
        raise
    except ValueError as err:
        raise BadJson(f"invalid JSON: {err}") from None
    _check(value, 1)
    return value


def is_json_request() -> bool:
    """True when the Content-Type is application/json (parameters such as charset allowed)."""
    return request.mimetype == JSON_MIMETYPE


def refuse_unless_json(source: str, org_id: uuid.UUID | None = None) -> Response | None:
    """The recorded 415 answer when the request does not say it is JSON; None when it does."""
    if is_json_request():
        return None
    return refuse(
        source,
        415,
        "unsupported_media_type",
        "send Content-Type: application/json",
        error_type="UnsupportedMediaType",
        org_id=org_id,
    )


def refuse(
    source: str,
    status: int,
    code: str,
    message: str,
    *,
    error_type: str,
    org_id: uuid.UUID | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Record the refused request once (body included, up to 64 KB) and answer the JSON error."""
    raw = read_body()
    if raw is None:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        body: bytes | str = f"(body not kept: {request.content_length} bytes, over the {limit}-byte limit)"
    else:
        body = raw
    record_refusal(source, f"{status} {code}: {message}", error_type, body=body, org_id=org_id)
    response = error(status, code, message, **extra)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
