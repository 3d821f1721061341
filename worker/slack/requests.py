"""What a verified Slack request's body must be before anything reads it (pure; shared by the web
edge, webhooks/slack.py, and `proactive replay`, worker/ops/replay.py, so a stored body is parsed again
exactly as it was when it arrived)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

FORM = "application/x-www-form-urlencoded"
JSON_BODY = "application/json"
# Fields bolt reads without checking: objects when present (Slack sends "team": null from org-wide apps).
OBJECT_FIELDS = ("view", "event", "state", "container")
NULLABLE_OBJECT_FIELDS = ("team", "user", "channel", "message", "enterprise")


def body_problem(body: bytes, mimetype: str, expected: str) -> tuple[int, str] | None:
    """(status, reason) when a verified body is not what Slack sends to this endpoint, else None."""
    return parse_body(body, mimetype, expected)[0]


def parse_body(body: bytes, mimetype: str, expected: str) -> tuple[tuple[int, str] | None, dict[str, Any]]:
    """(problem, payload): the (status, reason) of a body that is not what Slack sends to this
    endpoint and an empty payload, or None and the payload it carries (parsed once, for the caller)."""
    if mimetype != expected:
        return (415, f"expected {expected}, got {mimetype or 'no content type'}"), {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return (400, "the body is not UTF-8"), {}
    if expected == FORM:
        if text.startswith("{"):
            return (400, "a form body must not start with '{'"), {}
        values = parse_qs(text, keep_blank_values=True).get("payload") or []
        if len(values) != 1:
            return (400, "expected exactly one payload= field"), {}
        text = values[0]
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return (400, "the payload is not valid JSON"), {}
    problem = _shape_problem(data)
    return (problem, {}) if problem is not None else (None, data)


def _shape_problem(data: Any) -> tuple[int, str] | None:
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return 400, "the payload is not a Slack payload (a JSON object with a type)"
    for key in OBJECT_FIELDS:
        if key in data and not isinstance(data[key], dict):
            return 400, f"the payload's {key!r} is not a JSON object"
    for key in NULLABLE_OBJECT_FIELDS:
        if data.get(key) is not None and not isinstance(data[key], dict):
            return 400, f"the payload's {key!r} is not a JSON object or null"
    actions = data.get("actions", [])
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        return 400, "the payload's 'actions' is not a list of JSON objects"
    return None
