"""HTTP error handling shared by the clients: the error family of a status, Retry-After parsing,
and the human message inside an API's error body."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from worker.errors import AuthRevoked, PermanentError, RateLimited, StepError, TransientError

DEFAULT_RETRY_AFTER_S = 1.0  # seconds to wait on a 429 that names no delay
MAX_ERROR_MESSAGE_CHARS = 500  # an API error message longer than this is cut in our errors


def parse_retry_after(
    value: str | None, *, default_s: float = DEFAULT_RETRY_AFTER_S, now: datetime | None = None
) -> float:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date; `default_s` if absent/bad."""
    if value is None or not value.strip():
        return default_s
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return default_s
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str,
    retry_after: str | None = None,
    auth_statuses: tuple[int, ...] = (401, 403),
    integration_id: Any = None,
) -> StepError:
    """The error family for a failed HTTP answer (a value: the caller raises it)."""
    detail = message.strip()[:MAX_ERROR_MESSAGE_CHARS]
    text = f"{provider} HTTP {status}: {detail}" if detail else f"{provider} HTTP {status}"
    if status == 429:
        return RateLimited(text, retry_after_s=parse_retry_after(retry_after))
    if status == 408 or status >= 500:
        return TransientError(text)
    if status in auth_statuses:
        return AuthRevoked(text, provider=provider, integration_id=integration_id)
    return PermanentError(text)


def api_error_message(body: bytes | str) -> str:
    """The human message inside an API error body (OpenAI, Google, Instantly shapes), else the text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:MAX_ERROR_MESSAGE_CHARS]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        for key in ("message", "error_description", "detail", "error"):
            if isinstance(data.get(key), str) and data[key]:
                return data[key]
    return text.strip()[:MAX_ERROR_MESSAGE_CHARS]
