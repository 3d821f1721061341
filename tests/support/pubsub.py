"""Pub/Sub push helpers for tests: Gmail's notification in Pub/Sub's envelope, posted with an OIDC
token signed by the fake Google certs (tests/fakes/google_certs.py)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from flask.testing import FlaskClient

from tests.fakes.google_certs import FakeGoogleCerts

AUDIENCE = "https://proactive.test/webhooks/gmail"
SERVICE_ACCOUNT = "gmail-push@proactive-test.iam.gserviceaccount.com"


def good_claims(**changes: Any) -> dict[str, Any]:
    return {"aud": AUDIENCE, "email": SERVICE_ACCOUNT, **changes}


def push_body(email: str, *, message_id: str | None = None, history_id: str = "9876543210") -> dict[str, Any]:
    """Pub/Sub's envelope around Gmail's notification (as in pubsub_push_gmail.json)."""
    data = json.dumps({"emailAddress": email, "historyId": history_id}).encode()
    return {
        "message": {
            "data": base64.urlsafe_b64encode(data).decode(),
            "messageId": message_id or str(uuid.uuid4().int)[:16],
            "publishTime": "2026-11-25T09:13:55.749Z",
        },
        "subscription": "projects/proactive-test/subscriptions/gmail-push",
    }


def deliver(
    client: FlaskClient,
    certs: FakeGoogleCerts,
    body: Any,
    *,
    token: str | None = None,
    authorization: str | None = None,
    raw: bytes | None = None,
) -> Any:
    """POST a push as Pub/Sub does: JSON body, `Authorization: Bearer <OIDC JWT>`."""
    headers = {"Content-Type": "application/json"}
    if authorization is None:
        authorization = "Bearer " + (token or certs.token(good_claims()))
    if authorization:
        headers["Authorization"] = authorization
    return client.post("/webhooks/gmail", data=raw if raw is not None else json.dumps(body), headers=headers)
