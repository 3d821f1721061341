"""The deterministic Message-ID of an email sent as a side effect: the same for every attempt of one
effect, another for another effect, in the sender's domain, and the one the built message carries."""

from __future__ import annotations

import base64
import email
import hashlib

from worker.google.gmail_send import build_mime, message_id_for


def _header(raw: str, name: str) -> str | None:
    return email.message_from_bytes(base64.urlsafe_b64decode(raw))[name]


def test_the_message_id_is_derived_from_the_effect_key_in_the_senders_domain():
    key = "3f6c:send:0:send-email"
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    assert message_id_for(key, "Rep <rep@acme.test>") == f"<{digest}@proactive.acme.test>"
    assert message_id_for(key, "rep@acme.test") == message_id_for(key, "rep@acme.test")  # every attempt
    assert message_id_for("3f6c:send:1:send-email", "rep@acme.test") != message_id_for(key, "rep@acme.test")
    assert message_id_for(key, "") == f"<{digest}@proactive>"  # no address: no domain


def test_build_mime_carries_the_given_message_id_else_a_fresh_one():
    given = message_id_for("k", "rep@acme.test")
    assert _header(build_mime("rep@acme.test", ["a@x.test"], "Hi", "b", message_id=given), "Message-ID") == given
    first, second = (_header(build_mime("rep@acme.test", ["a@x.test"], "Hi", "b"), "Message-ID") for _ in range(2))
    assert first != second and first.endswith("@acme.test>")
