"""What a refused Slack request may keep: its body without the credentials Slack puts in it (pure).

A click's payload carries `response_url` (anyone holding it can post into the clicker's
conversation for 30 minutes), a modal's may carry `response_urls` and, in our Edit modal's
`private_metadata`, the click's `response_url` again; every interactivity payload carries Slack's
legacy verification `token`. `redact_slack_body()` replaces those values with `REDACTED` in a
JSON body, in a form body's `payload=` field, and in a `private_metadata` string that holds JSON;
any `hooks.slack.com` URL left (a body that does not parse, or is cut at 64 KB) is replaced too.
A body with nothing to redact is returned unchanged, byte for byte.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

REDACTED = "(redacted)"
# Keys whose string values are credentials, wherever they appear in a payload.
SECRET_KEYS = frozenset({"response_url"})
# Keys that are credentials at the top of a payload only (Slack's legacy verification token).
TOP_LEVEL_SECRET_KEYS = frozenset({"token"})
# A Slack webhook URL written plainly, JSON-escaped (`\/`) or percent-encoded.
_HOOK_URL = re.compile(r"https?(?::|%3A)(?:\\?/|%2F){2}hooks\.slack\.com[^\s\"'&<>]*", re.IGNORECASE)


def _redact(value: Any, top: bool = False) -> tuple[Any, bool]:
    """`value` with credentials replaced, and whether anything was."""
    changed = False
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, str) and (key in SECRET_KEYS or (top and key in TOP_LEVEL_SECRET_KEYS)):
                out[key], changed = REDACTED, changed or item != REDACTED
            elif key == "private_metadata" and isinstance(item, str):
                out[key], did = _redact_json_text(item)
                changed = changed or did
            else:
                out[key], did = _redact(item)
                changed = changed or did
        return out, changed
    if isinstance(value, list):
        items = []
        for item in value:
            new, did = _redact(item)
            items.append(new)
            changed = changed or did
        return items, changed
    return value, False


def _redact_json_text(text: str, top: bool = False) -> tuple[str, bool]:
    """A JSON text with its credentials replaced (unchanged when it is not JSON or holds none)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return text, False
    new, changed = _redact(data, top)
    return (json.dumps(new) if changed else text), changed


def redact_slack_body(text: str) -> str:
    """`text` (a Slack request body: JSON, or form-encoded with `payload=`) without its credentials."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        text, _ = _redact_json_text(text, top=True)
    elif "payload=" in text:
        pairs = parse_qsl(text, keep_blank_values=True)
        changed = False
        redacted = []
        for key, value in pairs:
            if key == "payload":
                value, did = _redact_json_text(value, top=True)
                changed = changed or did
            redacted.append((key, value))
        if changed:
            text = urlencode(redacted)
    return _HOOK_URL.sub(REDACTED, text)
