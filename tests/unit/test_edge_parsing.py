"""Pure parts of the web edge: the recorder's signature check, strict JSON bodies, the recording
body's rules, API key material and the events limit's batches (no services)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from webhooks.api import ALLOWANCE_MAX, allowance_batch
from webhooks.inbound import MAX_JSON_DEPTH, BadJson, parse_json
from worker.access.api_keys import KEY_PREFIX, generate_key, hash_key
from worker.errors import InvalidEvent
from worker.recorder.callback import SIGNATURE_WINDOW_S, parse_recording, sign, signature_problem

NOW = 1_800_000_000
BODY = b'{"external_id": "m-1"}'


def signed(ts: int = NOW, secret: str = "s") -> tuple[str, str]:
    return str(ts), "sha256=" + hmac.new(secret.encode(), f"{ts}.".encode() + BODY, hashlib.sha256).hexdigest()


def test_a_fresh_correct_signature_passes_at_both_edges_of_the_window():
    for skew in (-SIGNATURE_WINDOW_S, 0, SIGNATURE_WINDOW_S):
        ts, sig = signed(NOW + skew)
        assert signature_problem("s", ts, sig, BODY, NOW) is None
    assert sign("s", NOW, BODY) == signed()[1]


@pytest.mark.parametrize(
    ("secret", "ts", "sig", "body", "expected"),
    [
        ("", *signed(), BODY, "not configured"),
        ("s", None, signed()[1], BODY, "missing"),
        ("s", signed()[0], "", BODY, "missing"),
        ("s", "17e8", signed()[1], BODY, "unix seconds"),
        ("s", "-5", signed()[1], BODY, "unix seconds"),
        ("s", "١٢٣", signed()[1], BODY, "unix seconds"),  # non-ASCII digits
        ("s", "9" * 40, signed()[1], BODY, "unix seconds"),
        ("s", *signed(NOW - SIGNATURE_WINDOW_S - 1), BODY, "from now"),
        ("s", *signed(NOW + SIGNATURE_WINDOW_S + 1), BODY, "from now"),
        ("s", *signed(secret="other"), BODY, "mismatch"),
        ("s", *signed(), BODY + b" ", "mismatch"),
        ("s", signed()[0], signed()[1].removeprefix("sha256="), BODY, "mismatch"),
    ],
)
def test_every_bad_signature_is_named(secret, ts, sig, body, expected):
    problem = signature_problem(secret, ts, sig, body, NOW)
    assert problem is not None and expected in problem


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "invalid JSON"),
        (b'{"a": NaN}', "not a JSON number"),
        (b"[Infinity]", "not a JSON number"),
        (b'{"a": "x\\u0000"}', "NUL"),
        (b'{"\\u0000": 1}', "NUL"),
        (b'["\\udc00"]', "surrogate"),
        (b"\xff", "not UTF-8"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "deeper"),
        (b"[" * 100_000 + b"]" * 100_000, "deeper"),
    ],
)
def test_parse_json_refuses_what_would_break_later(raw, reason):
    with pytest.raises(BadJson, match=reason):
        parse_json(raw)


def test_parse_json_accepts_ordinary_json():
    deep = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert parse_json(deep) is not None
    assert parse_json('{"name": "Zoë 😀", "n": 1.5}'.encode()) == {"name": "Zoë 😀", "n": 1.5}
    assert parse_json(b'"\\ud83d\\ude00"') == "😀"  # a surrogate pair is one character


def recording(**changes):
    return {
        "org_id": "00000000-0000-0000-0000-000000000001",
        "external_id": "m-1",
        "title": "Call",
        "start": "2026-03-02T15:00:00Z",
        **changes,
    }


def test_attendees_count_people_not_rows():
    rec = parse_recording(
        recording(
            attendees=[
                {"name": "Ann", "email": "ann@x.test"},
                {"name": "Ann again", "email": "ANN@x.test"},
                {"name": "Bob"},
                {"name": "Bob"},
                {"email": "cy@x.test"},
            ]
        )
    )
    assert rec.attendees_count == 3


def test_recording_times_are_aware_ordered_and_stored_in_utc():
    rec = parse_recording(recording(start="2026-03-02T16:00:00+01:00", end="2026-03-02T15:30:00Z"))
    assert rec.start.isoformat() == "2026-03-02T15:00:00+00:00"
    with pytest.raises(InvalidEvent) as err:
        parse_recording(recording(start="2026-03-02T15:00:00", end="2026-03-02T14:00:00Z"))
    assert [e["field"] for e in err.value.errors] == ["start"]
    with pytest.raises(InvalidEvent, match="end is before start"):
        parse_recording(recording(end="2026-03-02T14:00:00Z"))


def test_keys_are_random_prefixed_and_stored_as_sha256():
    one, two = generate_key(), generate_key()
    assert one != two and one.startswith(KEY_PREFIX) and len(one) > 40
    assert hash_key(one) == hashlib.sha256(one.encode()).hexdigest() and len(hash_key(one)) == 64


def test_the_events_limit_takes_tokens_in_batches_only_where_they_are_small_against_the_bucket():
    assert allowance_batch(20, 100) == 10  # the defaults: half a second of the rate, a tenth of the burst
    assert allowance_batch(20, 30) == 3
    assert allowance_batch(0.2, 3) == 1  # a small bucket: one token per event, exactly as before
    assert allowance_batch(1, 1000) == 1
    assert allowance_batch(1_000_000, 1_000_000) == ALLOWANCE_MAX
