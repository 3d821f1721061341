"""The pure rules behind replay and recorder secrets: what a stored Slack body keeps, `--since`,
which check `--force` skips, a recording's org, and the rotation of an org's recorder secrets."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode

import pytest

from worker.errors import InvalidEvent
from worker.ops.rejected import parse_since
from worker.ops.replay import NotReplayable, forced_check, mimetype, stored_json
from worker.recorder import secrets as rs
from worker.recorder.callback import parse_recording, secrets_problem, sign
from worker.slack.redaction import REDACTED, redact_slack_body

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
HOOK = "https://hooks.slack.com/actions/T1/2/abcdef"


# --------------------------------------------------------------------------- redaction


def test_a_click_keeps_everything_but_its_response_url_and_token():
    payload = {"type": "block_actions", "token": "legacy", "response_url": HOOK, "actions": [{"value": "x"}]}
    stored = json.loads(redact_slack_body(json.dumps(payload)))
    assert stored == {**payload, "token": REDACTED, "response_url": REDACTED}


def test_a_form_body_is_redacted_inside_its_payload_field():
    body = urlencode({"payload": json.dumps({"type": "block_actions", "response_url": HOOK})})
    stored = redact_slack_body(body)
    [payload] = parse_qs(stored)["payload"]
    assert json.loads(payload)["response_url"] == REDACTED and "hooks.slack.com" not in stored


def test_a_submission_loses_its_response_urls_and_the_click_url_in_private_metadata():
    metadata = json.dumps({"approval_id": "a", "response_url": "https://slack.example/api/resp"})
    payload = {
        "type": "view_submission",
        "view": {"private_metadata": metadata},
        "response_urls": [{"response_url": HOOK, "channel_id": "C1"}],
    }
    stored = json.loads(redact_slack_body(json.dumps(payload)))
    assert json.loads(stored["view"]["private_metadata"]) == {"approval_id": "a", "response_url": REDACTED}
    assert stored["response_urls"] == [{"response_url": REDACTED, "channel_id": "C1"}]


def test_nothing_to_redact_leaves_the_body_byte_for_byte():
    body = '{"type":"event_callback",  "event": {"text": "hi"}}'
    assert redact_slack_body(body) == body
    assert redact_slack_body("payload=%7Bnot+json") == "payload=%7Bnot+json"


def test_a_body_that_does_not_parse_still_loses_slack_urls():
    cut = '{"response_url": "' + HOOK + '", "actions": [{"val'  # cut at 64 KB
    assert HOOK not in redact_slack_body(cut)
    encoded = "payload=%7B%22response_url%22%3A%22https%3A%2F%2Fhooks.slack.com%2Factions%2FT%2F1%2Fx%22"
    assert "hooks.slack.com" not in redact_slack_body(encoded)


# --------------------------------------------------------------------------- rejected / replay


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("1h", NOW - timedelta(hours=1)),
        ("1D", NOW - timedelta(days=1)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T09:30+02:00", datetime(2026, 12, 1, 7, 30, tzinfo=UTC)),
    ],
)
def test_since(text, expected):
    assert parse_since(text, NOW) == expected


def test_since_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("yesterday", NOW)


def test_force_skips_only_the_check_that_refused_it():
    assert forced_check("InvalidEvent", force=True) is None
    assert forced_check("InvalidEvent", force=False) is None
    assert forced_check("BadSignature", force=True) == "BadSignature"
    with pytest.raises(NotReplayable, match="--force"):
        forced_check("BadToken", force=False)
    with pytest.raises(NotReplayable, match="Content-Type"):
        forced_check("UnsupportedMediaType", force=False)


def test_stored_bodies_and_headers():
    assert mimetype({"content-type": "Application/JSON; charset=utf-8"}) == "application/json"
    assert mimetype(None) == ""
    assert stored_json('{"a": 1}') == {"a": 1}
    for body in (None, "", '{"a": NaN}', '{"cut'):
        with pytest.raises(NotReplayable):
            stored_json(body)


# --------------------------------------------------------------------------- recordings


def test_a_recording_on_an_org_path_belongs_to_that_org():
    org = uuid.uuid4()
    body = {"external_id": "m1", "title": "Call", "start": "2026-03-02T15:00:00Z"}
    assert parse_recording(body, org_id=org).org_id == org
    assert parse_recording({**body, "org_id": str(org).upper()}, org_id=org).org_id == org
    with pytest.raises(InvalidEvent) as err:
        parse_recording({**body, "org_id": str(uuid.uuid4())}, org_id=org)
    assert err.value.errors == [{"field": "org_id", "message": "not the org whose secret signed the request"}]
    with pytest.raises(InvalidEvent, match="org_id"):
        parse_recording(body)  # the single-tenant path needs the body's org


def test_any_of_the_orgs_secrets_verifies():
    body, ts = b'{"x": 1}', "1700000000"
    for secret in ("new", "old"):
        assert secrets_problem(["new", "old"], ts, sign(secret, ts, body), body, 1700000000.0) is None
    assert secrets_problem(["new"], ts, sign("old", ts, body), body, 1700000000.0) == "signature mismatch"
    assert secrets_problem([], ts, sign("old", ts, body), body, 1700000000.0) == "no recorder secret is configured"


# --------------------------------------------------------------------------- recorder secrets


def test_rotation_keeps_the_previous_secret_for_its_grace_then_drops_it():
    first = rs.rotated([], "s1", NOW, rs.DEFAULT_GRACE)
    assert rs.usable(first, NOW) == ["s1"] and rs.previous_expiry(first, NOW) is None
    second = rs.rotated(first, "s2", NOW, timedelta(days=7))
    assert rs.usable(second, NOW) == ["s2", "s1"]
    assert rs.previous_expiry(second, NOW) == NOW + timedelta(days=7)
    assert rs.usable(second, NOW + timedelta(days=7)) == ["s2"]
    third = rs.rotated(second, "s3", NOW + timedelta(days=1), timedelta(days=7))
    assert rs.usable(third, NOW + timedelta(days=1)) == ["s3", "s2"]  # s1 is gone: two at most
    assert rs.finished(third) == [third[0]] and rs.usable(rs.finished(third), NOW) == ["s3"]


def test_new_secrets_are_long_and_distinct():
    made = {rs.new_secret() for _ in range(50)}
    assert len(made) == 50 and all(s.startswith("rs_") and len(s) >= 40 for s in made)
