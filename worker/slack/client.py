"""Thin adapter over slack_sdk's WebClient: one client factory, the calls we make, one error mapping.

Retries are ours (Celery re-publishes), so the WebClient gets no retry handlers and a
short timeout. Every SlackApiError or network failure becomes one of our error families, each
carrying Slack's error code in `.code`:

- HTTP 429 / `ratelimited`                          -> SlackRateLimited (RateLimited, Retry-After)
- HTTP 5xx, network errors, timeouts               -> SlackServerError (TransientError)
- `token_revoked` / `invalid_auth` / `account_inactive` -> SlackAuthRevoked (AuthRevoked, provider "slack")
- anything else (`channel_not_found`, ...)          -> SlackCallFailed (PermanentError)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from http.client import HTTPException
from typing import Any, TypeVar
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from worker.clients.http import parse_retry_after
from worker.config import get_settings
from worker.errors import AuthRevoked, PermanentError, RateLimited, TransientError

T = TypeVar("T")

# Seconds a Slack call may take before it counts as a transient failure (Slack answers in < 1 s).
TIMEOUT_S = 10
# Wait when a 429 comes without a Retry-After header (seconds): cautious, Slack always sends one.
DEFAULT_RETRY_AFTER_S = 5.0
# Slack error codes that mean the token is dead: no retry, the workspace must reconnect.
AUTH_ERRORS = frozenset({"token_revoked", "invalid_auth", "account_inactive", "not_authed", "token_expired"})
# Slack error codes that mean "slow down" (the docs use both spellings).
RATE_LIMIT_ERRORS = frozenset({"ratelimited", "rate_limited"})


class SlackCallFailed(PermanentError):
    """Slack refused the call for a reason a retry will not fix (`channel_not_found`,
    `not_in_channel`, `too_many_attachments`, ...): fix the data or the app's access."""

    def __init__(self, code: str, method: str = "") -> None:
        super().__init__(f"Slack {method or 'call'} failed: {code}")
        self.code = code


class SlackRateLimited(RateLimited):
    """Slack answered 429: call again after `retry_after_s` (its Retry-After header)."""

    def __init__(self, retry_after_s: float, method: str = "") -> None:
        super().__init__(f"Slack {method or 'call'} rate limited", retry_after_s=retry_after_s)
        self.code = "ratelimited"


class SlackServerError(TransientError):
    """Slack answered 5xx, timed out or could not be reached: retried with backoff."""

    def __init__(self, code: str, method: str = "") -> None:
        super().__init__(f"Slack {method or 'call'} failed transiently: {code}")
        self.code = code


class SlackAuthRevoked(AuthRevoked):
    """The bot token was revoked or is invalid: nothing will work until the workspace reconnects."""

    def __init__(self, code: str, method: str = "") -> None:
        super().__init__(f"Slack {method or 'call'} refused the token: {code}", provider="slack")
        self.code = code


def slack_client(token: str | None = None) -> WebClient:
    """A WebClient on SLACK_API_URL with `token` (default SLACK_BOT_TOKEN), 10 s timeout, no retries."""
    settings = get_settings()
    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    return WebClient(
        token=token if token is not None else settings.slack_bot_token or None,
        base_url=base_url,
        timeout=TIMEOUT_S,
        retry_handlers=[],
    )


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list | tuple) else value)
    return None


def _retry_after_s(headers: Mapping[str, Any] | None) -> float:
    return parse_retry_after(_header(headers, "retry-after"), default_s=DEFAULT_RETRY_AFTER_S)


def map_error(err: SlackApiError, method: str = "") -> Exception:
    """Our error family for a SlackApiError (see the module docstring)."""
    response = err.response
    status = getattr(response, "status_code", 200) or 200
    data = getattr(response, "data", None)
    code = str(data.get("error") or "") if isinstance(data, Mapping) else ""
    if status == 429 or code in RATE_LIMIT_ERRORS:
        return SlackRateLimited(_retry_after_s(getattr(response, "headers", None)), method)
    if status >= 500:
        return SlackServerError(code if code and " " not in code else f"http_{status}", method)
    if code in AUTH_ERRORS:
        return SlackAuthRevoked(code, method)
    return SlackCallFailed(code or f"http_{status}", method)


def _call(method: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except SlackApiError as err:
        raise map_error(err, method) from err
    except (TimeoutError, ConnectionError, URLError, HTTPException, json.JSONDecodeError) as err:
        raise SlackServerError(type(err).__name__, method) from err
    except SlackClientError as err:  # malformed request built by us: retrying will not help
        raise SlackCallFailed("client_error", method) from err


def post_message(
    client: WebClient,
    channel: str,
    text: str,
    blocks: Sequence[Mapping[str, Any]] | None,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """chat.postMessage (with message `metadata` when given); returns (channel id, ts) of the posted message."""
    resp = _call(
        "chat.postMessage",
        lambda: client.chat_postMessage(
            channel=channel, text=text, blocks=blocks or None, metadata=dict(metadata) if metadata else None
        ),
    )
    return str(resp["channel"]), str(resp["ts"])


def update_message(
    client: WebClient, channel: str, ts: str, text: str, blocks: Sequence[Mapping[str, Any]] | None
) -> str:
    """chat.update of the message at (channel, ts); returns its ts. Empty `blocks` removes the old ones."""
    resp = _call(
        "chat.update", lambda: client.chat_update(channel=channel, ts=ts, text=text, blocks=list(blocks or []))
    )
    return str(resp.get("ts") or ts)


def find_message(
    client: WebClient,
    channel: str,
    oldest: float,
    match: Callable[[Mapping[str, Any]], bool],
    *,
    max_pages: int,
    page_size: int,
) -> tuple[Mapping[str, Any] | None, bool]:
    """Look through `channel`'s history since `oldest` (epoch seconds), newest first, for a message
    `match` accepts (each message with its metadata: `include_all_metadata`).

    Returns (the message, True) when found, (None, True) when the whole window was read without it, and
    (None, False) when `max_pages` pages of `page_size` did not reach the window's start. Needs the
    history scope of the conversation's kind (`channels:history`, `groups:history`, `im:history`,
    `mpim:history`); without it Slack answers `missing_scope` (SlackCallFailed).
    """
    cursor: str | None = None
    for _ in range(max_pages):

        def page(cursor: str | None = cursor) -> Any:
            return client.conversations_history(
                channel=channel, oldest=f"{oldest:.6f}", limit=page_size, include_all_metadata=True, cursor=cursor
            )

        resp = _call("conversations.history", page)
        for message in resp.get("messages") or []:
            if isinstance(message, Mapping) and match(message):
                return message, True
        cursor = str((resp.get("response_metadata") or {}).get("next_cursor") or "") or None
        if not resp.get("has_more") or cursor is None:
            return None, True
    return None, False


def open_dm(client: WebClient, slack_user_id: str) -> str:
    """conversations.open with one user; returns the DM channel id."""
    resp = _call("conversations.open", lambda: client.conversations_open(users=slack_user_id))
    channel = resp.get("channel") or {}
    return str(channel["id"])


def post_ephemeral(client: WebClient, channel: str, slack_user_id: str, text: str) -> None:
    """chat.postEphemeral: a message only `slack_user_id` sees in `channel`."""
    _call("chat.postEphemeral", lambda: client.chat_postEphemeral(channel=channel, user=slack_user_id, text=text))


def open_view(client: WebClient, trigger_id: str, view: Mapping[str, Any]) -> str:
    """views.open with a click's trigger id (valid for 3 s); returns the view id."""
    resp = _call("views.open", lambda: client.views_open(trigger_id=trigger_id, view=dict(view)))
    return str((resp.get("view") or {}).get("id") or "")


def post_to_response_url(url: str, message: Mapping[str, Any]) -> None:
    """POST `message` to a click's response_url (no token: the URL is the credential).

    Raises SlackServerError on a network error or a 5xx, SlackCallFailed on any other refusal
    (Slack answers 404 once the URL is used up or expired).
    """
    try:
        resp = WebhookClient(url, timeout=TIMEOUT_S, retry_handlers=[]).send_dict(dict(message))
    except (ValueError, SlackClientError) as err:  # not an http(s) URL: retrying will not help
        raise SlackCallFailed("invalid_url", "response_url") from err
    except (OSError, HTTPException) as err:  # URLError, timeouts, refused connections
        raise SlackServerError(type(err).__name__, "response_url") from err
    if resp.status_code >= 500:
        raise SlackServerError(f"http_{resp.status_code}", "response_url")
    if resp.status_code != 200:
        raise SlackCallFailed(_webhook_error(resp.body) or f"http_{resp.status_code}", "response_url")


def _webhook_error(body: str) -> str:
    try:
        data = json.loads(body or "")
    except ValueError:
        return (body or "").strip()[:64]
    return str(data.get("error") or "") if isinstance(data, Mapping) else ""
