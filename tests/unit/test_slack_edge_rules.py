"""The Slack edge's decisions without I/O: signature and body checks, action ids, payload parsing,
the Edit modal, and the response_url rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

import blocks
from tests.support.slack import click, sample, signature, slot_state, submission
from webhooks.slack import sign, signature_problem
from worker.errors import AlreadyDecided
from worker.slack.action_registry import parse_action_id
from worker.slack.answers import already_text
from worker.slack.clicks import VERBS, ActionRef, Click, Submission
from worker.slack.modals import EditorState, editable_draft
from worker.slack.replace import response_url_usable, trusted_response_url
from worker.slack.requests import FORM, JSON_BODY, body_problem

NOW = 1_800_000_000.0
SECRET = "shhh-secret"


# --------------------------------------------------------------------------- signatures


def test_sign_reproduces_slacks_published_vector():
    vector = sample("signing_vector.json")
    body = vector["body"].encode()
    assert sign(vector["signing_secret"], vector["timestamp"], body) == vector["expected_signature"]
    at = float(vector["sdk_test_clock_now"])
    assert (
        signature_problem(vector["signing_secret"], body, vector["timestamp"], vector["expected_signature"], at) is None
    )
    assert (
        signature_problem(
            vector["signing_secret"], body + b"------", vector["timestamp"], vector["expected_signature"], at
        )
        == "X-Slack-Signature does not match the body"
    )


@pytest.mark.parametrize(
    ("secret", "timestamp", "sig", "expected"),
    [
        ("", "1800000000", "v0=x", "SLACK_SIGNING_SECRET is not configured"),
        (SECRET, None, "v0=x", "missing X-Slack-Request-Timestamp"),
        (SECRET, "", "v0=x", "missing X-Slack-Request-Timestamp"),
        (SECRET, "18000000ab", "v0=x", "not a number"),
        (SECRET, "-1800000000", "v0=x", "not a number"),
        (SECRET, "1_800_000_000", "v0=x", "not a number"),
        (SECRET, "\uff11" * 10, "v0=x", "not a number"),  # full-width digits: str.isdigit() is True
        (SECRET, "9" * 40, "v0=x", "not a number"),
        (SECRET, "1799999699", "v0=x", "more than 300 s"),
        (SECRET, "1800000301", "v0=x", "more than 300 s"),
        (SECRET, "1800000000", None, "missing X-Slack-Signature"),
        (SECRET, "1800000000", "v0=ünïcode", "does not match"),
    ],
)
def test_what_is_not_signed_by_slack_is_named(secret, timestamp, sig, expected):
    assert expected in (signature_problem(secret, b"payload=%7B%7D", timestamp, sig, NOW) or "")


def test_the_edges_of_the_300_s_window_are_accepted():
    for ts in ("1799999700", "1800000300"):
        assert signature_problem(SECRET, b"x", ts, sign(SECRET, ts, b"x"), NOW) is None


@given(body=st.binary(max_size=2000), secret=st.text(min_size=1, max_size=40), flip=st.integers(min_value=0))
def test_any_change_to_a_signed_body_is_refused(body, secret, flip):
    ts = str(int(NOW))
    good = sign(secret, ts, body)
    assert good == signature(secret, ts, body)
    assert signature_problem(secret, body, ts, good, NOW) is None
    tampered = bytearray(body + b"\0")
    tampered[flip % len(tampered)] ^= 0x01
    assert signature_problem(secret, bytes(tampered), ts, good, NOW) is not None


# --------------------------------------------------------------------------- bodies


def test_bodies_slack_sends_pass_and_others_get_a_precise_status():
    form = ("payload=" + quote(json.dumps(sample("block_actions_button.json")))).encode()
    assert body_problem(form, FORM, FORM) is None
    assert body_problem(json.dumps(sample("url_verification.json")).encode(), JSON_BODY, JSON_BODY) is None
    assert body_problem(form, JSON_BODY, FORM) == (415, f"expected {FORM}, got {JSON_BODY}")
    assert body_problem(form, "", FORM) == (415, f"expected {FORM}, got no content type")
    assert body_problem(b"payload=%7Bnope", FORM, FORM) == (400, "the payload is not valid JSON")
    assert body_problem(b"payload=1&payload=2", FORM, FORM) == (400, "expected exactly one payload= field")
    assert body_problem(b"other=1", FORM, FORM) == (400, "expected exactly one payload= field")
    assert body_problem(b'{"payload": 1}', FORM, FORM) == (400, "a form body must not start with '{'")
    assert body_problem(b"payload=%5B1%5D", FORM, FORM)[0] == 400  # a list, not an object
    assert body_problem(b'{"no": "type"}', JSON_BODY, JSON_BODY)[0] == 400
    assert body_problem(b"\xff\xfe", JSON_BODY, JSON_BODY) == (400, "the body is not UTF-8")
    assert body_problem(b"[" * 100_000, JSON_BODY, JSON_BODY) == (400, "the payload is not valid JSON")


# --------------------------------------------------------------------------- action ids


@pytest.mark.parametrize(
    ("action_id", "expected"),
    [
        ("orch_approve", ActionRef("orch", "approve")),
        ("orch_reject", ActionRef("orch", "reject")),
        ("prop_approve_send", ActionRef("prop", "approve_send")),
        ("prop_share_link", ActionRef("prop", "share_link")),
        ("cal_select_slot", ActionRef("cal", "select_slot")),
        ("cal_more", ActionRef("cal", "more")),
        ("email_send_later", ActionRef("email", "send_later")),
        ("email_undo", ActionRef("email", "undo")),
        ("camp_add_nurture", ActionRef("camp", "add_nurture")),
        ("orch_approve_send", None),  # a verb of another prefix
        ("prop_", None),
        ("approve", None),
        ("", None),
        ("email_send_now ", None),
    ],
)
def test_action_ids_name_a_prefix_and_one_of_its_verbs(action_id, expected):
    assert parse_action_id(action_id) == expected


def test_every_button_we_render_is_an_action_we_handle():
    rendered = [
        *(a for _label, a in blocks.DEFAULT_DECISIONS),
        *(a for _label, a, _style in blocks.email.EMAIL_DECISIONS),
        *(a for _label, a, _style in blocks.proposals.PROPOSAL_DECISIONS),
        *(a for _label, a, _style in blocks.calendar.SLOT_DECISIONS),
        blocks.calendar.SLOT_ACTION_ID,
        *(a for _label, a, _style in blocks.campaigns.CAMPAIGN_DECISIONS),
        *(a for _label, a, _style in blocks.campaigns.REPLY_DECISIONS),
        "email_undo",
    ]
    assert [a for a in rendered if parse_action_id(a) is None] == []
    handled = {f"{prefix}_{verb}" for prefix, verbs in VERBS.items() for verb in verbs}
    assert handled - set(rendered) == {"orch_edit"}  # a documented button, on no message we build yet


# --------------------------------------------------------------------------- payloads


def test_a_click_is_read_from_the_vendor_sample_positions():
    payload = click(
        "cal_send_invite",
        "a1",
        user="U0ALICE",
        response_url="https://hooks.slack.com/actions/T/1/x",
        channel="D42",
        state=slot_state("a1", "2026-12-01T15:00:00+00:00"),
    )
    parsed = Click.from_payload(payload, payload["actions"][0])
    assert (parsed.action_id, parsed.value, parsed.block_id) == ("cal_send_invite", "a1", "approval:a1")
    assert (parsed.team_id, parsed.slack_user_id, parsed.channel_id) == ("T0DEMO0001", "U0ALICE", "D42")
    assert parsed.response_url == "https://hooks.slack.com/actions/T/1/x"
    assert parsed.selected_slot == "2026-12-01T15:00:00+00:00" and parsed.trigger_id == "111.222.valid"
    assert parsed.clicked_at == float(payload["actions"][0]["action_ts"])
    assert json.loads(parsed.raw) == payload


def test_a_click_with_odd_fields_is_still_read():
    odd = {"team": None, "user": {"id": 7, "team_id": "T9"}, "state": "nope", "container": {"channel_id": "C1"}}
    parsed = Click.from_payload(odd, {"action_id": "prop_skip", "value": None, "action_ts": "soon"})
    assert (parsed.team_id, parsed.slack_user_id, parsed.value, parsed.channel_id) == ("T9", None, "", "C1")
    assert (parsed.clicked_at, parsed.selected_slot, parsed.response_url) == (None, None, None)


def test_a_submission_is_read_from_the_vendor_sample_positions():
    view = blocks.edit_modal(EditorState("a1", "email_edit").dump(), "Edit", "Hello", "Body")
    parsed = Submission.from_payload(submission(view, user="U0ALICE", subject="New", body="Text"))
    assert (parsed.callback_id, parsed.subject, parsed.body) == ("approval_edit", "New", "Text")
    assert (parsed.team_id, parsed.slack_user_id) == ("T0DEMO0001", "U0ALICE")
    assert EditorState.load(parsed.private_metadata) == EditorState("a1", "email_edit")


@pytest.mark.parametrize("metadata", ["", "not json", "[]", '{"approval_id": "a"}', '{"action_id": "x"}'])
def test_metadata_we_did_not_write_is_not_an_editor_state(metadata):
    assert EditorState.load(metadata) is None


# --------------------------------------------------------------------------- the Edit modal


def test_the_modal_is_prefilled_and_bounded():
    view = blocks.edit_modal("m" * 3000, "A title far longer than a modal allows", "S" * 300, "B" * 3500, "note")
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert len(view["title"]["text"]) == 24 and view["callback_id"] == blocks.EDIT_CALLBACK_ID
    assert inputs["subject"]["initial_value"] == "S" * 250 and inputs["body"]["initial_value"] == "B" * 3000
    assert view["blocks"][0]["type"] == "context"
    with pytest.raises(ValueError, match="private_metadata"):
        blocks.edit_modal("m" * 3001, "t", "s", "b")
    empty = blocks.edit_modal("m", "t", "", "")
    assert all("initial_value" not in b["element"] for b in empty["blocks"] if b["type"] == "input")


@pytest.mark.parametrize(
    ("subject", "body", "errors"),
    [
        ("Hi", "Body", {}),
        ("", "Body", {"subject": "The subject cannot be empty."}),
        ("  ", None, {"subject": "The subject cannot be empty.", "body": "The message cannot be empty."}),
        ("Line\nbreak", "Body", {"subject": "Keep the subject to one line of at most 250 characters."}),
        ("s" * 251, "Body", {"subject": "Keep the subject to one line of at most 250 characters."}),
        ("Hi", "b" * 3001, {"body": "Keep the message to at most 3000 characters."}),
        ("Hi", "b" * 3000, {}),
    ],
)
def test_an_edit_is_validated_per_block(subject, body, errors):
    assert blocks.validate_edit(subject, body) == errors


def test_the_draft_of_an_email_is_its_subject_and_body_and_of_a_proposal_its_cover_email():
    assert editable_draft("email_preview", {"subject": "Re: x", "body": "Hi"}) == ("Re: x", "Hi")
    subject, body = editable_draft(
        "proposal_review",
        {"title": "Proposal: Initech", "contact_name": "Bill Lumbergh", "deal_name": "Platform", "link": "https://p/1"},
        "Alice Moreau",
    )
    assert subject == "Proposal: Initech"
    assert body == (
        "Hi Bill,\n\nAs promised, here is our proposal for Platform: https://p/1\n\n"
        "Happy to walk you through it.\n\nAlice\n"
    )


# --------------------------------------------------------------------------- answers and response_urls


def test_the_loser_is_told_who_decided_what_and_when():
    at = datetime(2026, 11, 25, 17, 3, tzinfo=UTC)
    text = already_text(AlreadyDecided("approve_send", "Alice Moreau", at))
    assert "already approved and sent by Alice Moreau at 2026-11-25 17:03 UTC" in text
    assert "already fancy thing by" in already_text(AlreadyDecided("fancy_thing", "x", at))


def test_a_response_url_takes_five_posts_within_thirty_minutes():
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert response_url_usable(0, now, now)
    assert response_url_usable(4, now - timedelta(minutes=29, seconds=59), now)
    assert not response_url_usable(5, now, now)
    assert not response_url_usable(0, now - timedelta(minutes=30), now)
    assert not response_url_usable(0, None, now)


def test_only_slacks_hooks_host_or_the_configured_api_host_is_posted_to():
    assert trusted_response_url("https://hooks.slack.com/actions/T1/2/abc")
    assert not trusted_response_url("http://hooks.slack.com/actions/T1/2/abc")
    assert not trusted_response_url("https://hooks.slack.com.evil.example/actions")
    assert not trusted_response_url("https://169.254.169.254/latest/meta-data")
    assert trusted_response_url("https://slack.com/api/whatever")  # the default SLACK_API_URL host
    assert not trusted_response_url("not a url")
