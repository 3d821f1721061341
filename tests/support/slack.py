"""Requests as Slack sends them: bodies built from the real payload samples, signed as Slack signs.

The templates are vendor samples (tests/fixtures/real-payloads/slack/, see SOURCES.md): `block_actions_button.json`
for a click and `view_submission.json` for a modal submission; only the ids and values that name
our workspace, users, approvals and message are substituted. A click body is form-encoded
`payload=<json>`, an Events API body is raw JSON; both carry `X-Slack-Request-Timestamp` and
`X-Slack-Signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")`.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "real-payloads" / "slack"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5-tests"
TEAM = "T0DEMO0001"  # the demo org's workspace (worker/ops/seed.py)
FORM = "application/x-www-form-urlencoded"


@cache
def sample(name: str) -> Any:
    """A vendor sample, parsed (callers get a deep copy)."""
    return json.loads((SAMPLES / name).read_text())


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature (docs.slack.dev/authentication/verifying-requests-from-slack)."""
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | str | None = None, content_type: str = FORM
) -> dict[str, str]:
    """Headers of a request Slack signed now (or at `timestamp`)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature(secret, ts, body),
    }


def form_body(payload: dict[str, Any]) -> bytes:
    """`payload=<urlencoded JSON>`, as Slack posts interactivity."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def click(
    action_id: str,
    value: str,
    *,
    user: str,
    team: str = TEAM,
    response_url: str = "https://hooks.slack.com/actions/T0DEMO0001/1/unused",
    channel: str = "D00000001",
    message_ts: str = "1700000000.000100",
    block_id: str | None = None,
    state: dict[str, Any] | None = None,
    trigger_id: str = "111.222.valid",
) -> dict[str, Any]:
    """A block_actions payload (block_actions_button.json) for a click on one of our buttons."""
    payload = copy.deepcopy(sample("block_actions_button.json"))
    payload["team"].update(id=team, domain="northwind")
    payload["user"].update(id=user, username=user.lower(), name=user.lower(), team_id=team)
    payload["container"].update(channel_id=channel, message_ts=message_ts, is_ephemeral=False)
    payload["channel"].update(id=channel, name="directmessage")
    payload["response_url"] = response_url
    payload["trigger_id"] = trigger_id
    action = payload["actions"][0]
    action.update(
        action_id=action_id, value=value, block_id=block_id or f"approval:{value}", action_ts=f"{time.time():.6f}"
    )
    if state is not None:
        payload["state"] = {"values": state}
    return payload


def slot_state(approval_id: str, slot: str) -> dict[str, Any]:
    """`state.values` of a calendar message whose radio has `slot` selected."""
    return {
        f"approval:{approval_id}": {
            "cal_select_slot": {
                "type": "radio_buttons",
                "selected_option": {"text": {"type": "plain_text", "text": slot, "emoji": True}, "value": slot},
            }
        }
    }


def submission(view: dict[str, Any], *, user: str, subject: str, body: str, team: str = TEAM) -> dict[str, Any]:
    """A view_submission payload (view_submission.json) of the modal `view` (as views.open got it)."""
    payload = copy.deepcopy(sample("view_submission.json"))
    payload["team"].update(id=team, domain="northwind")
    payload["user"].update(id=user, username=user.lower(), name=user.lower(), team_id=team)
    submitted = payload["view"]
    submitted.update(
        callback_id=view["callback_id"],
        private_metadata=view["private_metadata"],
        blocks=view["blocks"],
        title=view["title"],
    )
    submitted["state"] = {
        "values": {
            "subject": {"subject": {"type": "plain_text_input", "value": subject}},
            "body": {"body": {"type": "plain_text_input", "value": body}},
        }
    }
    return payload
