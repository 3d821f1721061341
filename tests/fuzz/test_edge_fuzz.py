"""Fuzzing every endpoint of the web edge (hypothesis) through the real app on PostgreSQL + Redis.

Random bodies (bytes, JSON of any shape, form-encoded payloads, other text encodings, deeply nested
and over-limit JSON) and random headers. Two properties:

- unsigned or unauthenticated input is never accepted: a 4xx, exactly one rejected_events row, and
  no job, step, approval, outbox message, meeting or API key added;
- correctly signed or authenticated garbage never makes a 5xx (a precise 4xx, or Slack's 200
  with the refusal recorded), and never decides an approval.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.fuzz.budget import fuzz_settings
from tests.fuzz.conftest import ADMIN_TOKEN, RECORDING_SECRET
from tests.support.edge import db_counts, refusal_delta
from tests.support.slack import SIGNING_SECRET, signed_headers
from webhooks import MAX_BODY_BYTES
from worker.db import transaction
from worker.models import approvals
from worker.recorder.callback import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

pytestmark = [pytest.mark.postgres]

POSTS = ("/slack/interactive", "/slack/events", "/webhooks/recording", "/webhooks/gmail", "/api/events")
FUZZ = fuzz_settings(ci=50)

# ----------------------------------------------------------------------------------- strategies

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=30,
)
# Objects shaped a little like what each endpoint expects, so parsing goes past the first check.
slackish = st.fixed_dictionaries(
    {"type": st.sampled_from(["block_actions", "view_submission", "event_callback", "url_verification", "shortcut"])},
    optional={
        "team": st.one_of(json_values, st.fixed_dictionaries({"id": st.text(max_size=12)})),
        "user": st.one_of(json_values, st.fixed_dictionaries({"id": st.text(max_size=12)})),
        "actions": st.one_of(
            json_values,
            st.lists(
                st.fixed_dictionaries(
                    {"action_id": st.sampled_from(["orch_approve", "prop_edit", "cal_more", "email_undo", "x"])},
                    optional={"value": json_values, "block_id": json_values, "selected_option": json_values},
                ),
                max_size=3,
            ),
        ),
        "view": json_values,
        "event": json_values,
        "event_id": json_values,
        "challenge": json_values,
        "response_url": json_values,
        "trigger_id": json_values,
    },
)
envelopeish = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.sampled_from(["meeting_ended", "deal_risk_scan", "email_received"]), json_values),
        "source": st.one_of(st.just("api"), json_values),  # refused: the server sets it
        "depth": json_values,  # refused: follow-ups only
        "delay_minutes": st.one_of(st.floats(allow_nan=True, allow_infinity=True), json_values),
        "replace": st.one_of(st.booleans(), json_values),
        "org_id": st.one_of(st.uuids().map(str), json_values),
        "user_id": st.one_of(st.uuids().map(str), json_values),
        "payload": json_values,
        "idempotency_key": st.one_of(st.text(max_size=400), json_values),
        "meeting_id": json_values,
        "attendees": json_values,
        "transcript": json_values,
    },
)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _encoded(value: Any, encoding: str) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode(encoding, "replace")


bodies = st.one_of(
    st.binary(max_size=512),
    st.builds(_encoded, json_values, st.sampled_from(["utf-8", "utf-16", "latin-1", "utf-32"])),
    st.builds(_encoded, slackish, st.just("utf-8")),
    st.builds(_encoded, envelopeish, st.just("utf-8")),
    slackish.map(lambda p: urlencode({"payload": json.dumps(p)}).encode()),
    st.text(max_size=200).map(lambda t: urlencode({"payload": t}).encode()),
    st.integers(min_value=1, max_value=200_000).map(_nested),
)
_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-16",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "text/plain",
        "multipart/form-data; boundary=x",
        "",
        "application/json; charset=\x00",
    ]
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.one_of(content_types, _header_text),
        "Content-Encoding": st.sampled_from(["gzip", "deflate", "br", "identity", "x"]),
        "X-Slack-Request-Timestamp": st.one_of(st.integers(-(2**40), 2**40).map(str), _header_text),
        "X-Slack-Signature": st.one_of(st.just("v0=" + "0" * 64), _header_text),
        "X-Slack-Retry-Num": _header_text,
        TIMESTAMP_HEADER: st.one_of(st.integers(-(2**40), 2**40).map(str), _header_text),
        SIGNATURE_HEADER: st.one_of(st.just("sha256=" + "0" * 64), _header_text),
        "Authorization": st.one_of(st.just("Bearer "), _header_text.map(lambda t: "Bearer " + t), _header_text),
        "X-Request-Id": _header_text,
    },
)
HUGE = b'{"payload": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'

# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def edge(edge_app: Flask) -> FlaskClient:
    """A client of the real app (tests/fuzz/conftest.py: every secret set, the demo org seeded)."""
    return edge_app.test_client()


def _decided() -> int:
    with transaction() as conn:
        return conn.execute(select(func.count()).where(approvals.c.status != "pending")).scalar_one()


def _no_5xx(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:500])


# ----------------------------------------------------------------------------------- unsigned


@FUZZ
@given(path=st.sampled_from(POSTS), body=bodies, hdrs=headers)
@example(path="/slack/interactive", body=HUGE, hdrs={"Content-Type": "application/x-www-form-urlencoded"})
@example(path="/slack/events", body=HUGE, hdrs={"Content-Type": "application/json"})
@example(path="/webhooks/recording", body=HUGE, hdrs={"Content-Type": "application/json"})
@example(path="/webhooks/gmail", body=HUGE, hdrs={"Content-Type": "application/json", "Authorization": "Bearer x"})
@example(path="/api/events", body=HUGE, hdrs={"Content-Type": "application/json", "Authorization": "Bearer x"})
@example(path="/slack/events", body=_nested(100_000), hdrs={"Content-Type": "application/json"})
def test_unsigned_requests_are_refused_recorded_and_change_nothing(edge, path, body, hdrs):
    before = db_counts()
    response = edge.post(path, data=body, headers=hdrs)
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.get_json()["error"]
    assert refusal_delta(before) == {"rejected": 1}


# ----------------------------------------------------------------------------------- signed garbage


def _slack_signed(body: bytes, content_type: str) -> dict[str, str]:
    return signed_headers(body, secret=SIGNING_SECRET, content_type=content_type)


def _recording_signed(body: bytes, content_type: str) -> dict[str, str]:
    ts = str(int(time.time()))
    return {"Content-Type": content_type, TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(RECORDING_SECRET, ts, body)}


@FUZZ
@given(
    path=st.sampled_from(["/slack/interactive", "/slack/events", "/webhooks/recording"]),
    body=bodies,
    content_type=content_types,
    retry=st.one_of(st.none(), _header_text),
)
@example(path="/slack/interactive", body=_nested(50_000), content_type="application/x-www-form-urlencoded", retry=None)
@example(path="/slack/events", body=_nested(50_000), content_type="application/json", retry=None)
@example(path="/webhooks/recording", body=_nested(50_000), content_type="application/json", retry=None)
def test_signed_garbage_never_makes_a_5xx_or_a_decision(edge, path, body, content_type, retry):
    decided = _decided()
    signer = _recording_signed if path == "/webhooks/recording" else _slack_signed
    hdrs = signer(body, content_type)
    if retry is not None:
        hdrs["X-Slack-Retry-Num"] = retry
    response = edge.post(path, data=body, headers=hdrs)
    _no_5xx(response)
    assert _decided() == decided


@FUZZ
@given(body=bodies, content_type=content_types, wait=st.one_of(st.none(), _header_text))
def test_authenticated_garbage_events_never_make_a_5xx(edge, org_key, body, content_type, wait):
    query = "" if wait is None else "?" + urlencode({"wait": wait})
    response = edge.post(
        f"/api/events{query}",
        data=body,
        headers={"Content-Type": content_type, "Authorization": f"Bearer {org_key}"},
    )
    _no_5xx(response)


@FUZZ
@given(job=st.one_of(st.uuids().map(str), _header_text.filter(lambda t: not set(t) & set("/?#"))))
def test_job_lookups_by_any_id_never_make_a_5xx(edge, org_key, job):
    for token in (org_key, ADMIN_TOKEN, "wrong"):
        response = edge.get(f"/api/jobs/{job}", headers={"Authorization": f"Bearer {token}"})
        _no_5xx(response)
        assert response.status_code in (200, 400, 401, 404)


@FUZZ
@given(path=st.sampled_from(["/healthz", "/readyz", "/metrics", "/api/openapi.json"]), hdrs=headers)
def test_read_only_endpoints_answer_whatever_the_headers(edge, path, hdrs):
    response = edge.get(path, headers=hdrs)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
