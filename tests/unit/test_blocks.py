"""Block Kit builders stay within Slack's limits whatever data they are given, and render as text."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block as SdkBlock

from blocks import (
    approval_message,
    cap_blocks,
    deal_risk_alerts,
    decided_message,
    expired_message,
    format_utc,
    render_text,
)
from blocks.limits import (
    ACTION_ID_MAX,
    BUTTON_TEXT_MAX,
    BUTTON_VALUE_MAX,
    ELLIPSIS,
    actions,
    button,
    context,
    divider,
    escape,
    header,
    section,
    truncate,
)

HUGE = "x" * 10_000
EMOJI_HUGE = "🎉é漢" * 4_000  # 12,000 characters, multi-byte
MIXED_HUGE = ("Acme & <Partners> *bold* _it_ 👩‍💻 " * 400)[:10_000]
WORST_TEXTS = [HUGE, EMOJI_HUGE, MIXED_HUGE]

# The real Block Kit limits (Slack's reference), written out independently of
# blocks.limits so a wrong constant there cannot make these tests pass.
REAL = {
    "blocks": 50,
    "header": 150,
    "section": 3000,
    "fields": 10,
    "field": 2000,
    "context_elements": 10,
    "context_text": 3000,
    "actions_elements": 25,
    "button_text": 75,
    "button_value": 2000,
    "action_id": 255,
    "block_id": 255,
}


def _all_texts(node: Any) -> Iterator[str]:
    """Every string under a "text" key, at any depth."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from _all_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _all_texts(item)


def _check_element(element: Mapping[str, Any]) -> None:
    assert len(element["action_id"]) <= REAL["action_id"]
    if element["type"] == "button":
        assert 0 < len(element["text"]["text"]) <= REAL["button_text"]
        assert len(element.get("value", "")) <= REAL["button_value"]
        assert element.get("style") in (None, "primary", "danger")


def assert_within_limits(message: Mapping[str, Any]) -> None:
    """Fail when any part of a message breaks a real Block Kit limit."""
    blocks = message["blocks"]
    assert 0 < len(blocks) <= REAL["blocks"]
    assert message["text"].strip()
    for block in blocks:
        assert len(block.get("block_id", "")) <= REAL["block_id"]
        kind = block["type"]
        if kind == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < len(block["text"]["text"]) <= REAL["header"]
        elif kind == "section":
            assert "text" in block or block.get("fields")
            if "text" in block:
                assert 0 < len(block["text"]["text"]) <= REAL["section"]
            fields = block.get("fields", [])
            assert len(fields) <= REAL["fields"]
            for field in fields:
                assert 0 < len(field["text"]) <= REAL["field"]
        elif kind == "context":
            assert 0 < len(block["elements"]) <= REAL["context_elements"]
            for element in block["elements"]:
                assert 0 < len(element["text"]) <= REAL["context_text"]
        elif kind == "actions":
            assert 0 < len(block["elements"]) <= REAL["actions_elements"]
            for element in block["elements"]:
                _check_element(element)
        else:
            assert kind == "divider", kind
        # slack_sdk's own models know the limits too: a second opinion.
        SdkBlock.parse(block).validate_json()
    for text in _all_texts(blocks):
        assert 0 < len(text) <= REAL["section"]


def _buttons(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


# --- truncate / escape -----------------------------------------------------------------------------


def test_truncate_keeps_text_that_fits():
    assert truncate("hello", 5) == "hello"
    assert truncate("", 1) == ""


def test_truncate_cuts_to_exactly_the_limit_with_an_ellipsis():
    result = truncate("hello world", 8)
    assert result == "hello w…"
    assert len(result) == 8


def test_truncate_counts_characters_not_bytes():
    result = truncate("🎉" * 200, 150)
    assert len(result) == 150
    assert result == "🎉" * 149 + ELLIPSIS


def test_truncate_to_one_character_is_the_ellipsis():
    assert truncate("hello", 1) == ELLIPSIS


def test_truncate_rejects_a_limit_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        truncate("hello", 0)


def test_truncate_never_leaves_half_an_entity():
    assert truncate(escape("a & b"), 6) == "a…"
    assert truncate("a &amp; b", 9) == "a &amp; b"


def test_escape_covers_slack_control_characters():
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"


@given(st.text(), st.integers(min_value=1, max_value=5000))
def test_truncate_property(text, limit):
    result = truncate(text, limit)
    assert len(result) <= limit
    if len(text) <= limit:
        assert result == text
    else:
        assert result.endswith(ELLIPSIS)
        assert text.startswith(result[: -len(ELLIPSIS)])


# --- primitives ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", WORST_TEXTS)
def test_header_truncates_long_text(text):
    block = header(text)
    assert REAL["header"] - 5 <= len(block["text"]["text"]) <= REAL["header"]
    assert block["text"]["text"].endswith(ELLIPSIS)


def test_header_replaces_blank_text():
    assert header("   ")["text"]["text"].strip()


@pytest.mark.parametrize("text", WORST_TEXTS)
def test_section_truncates_text_and_fields(text):
    block = section(text, [text] * 25)
    assert REAL["section"] - 5 <= len(block["text"]["text"]) <= REAL["section"]
    assert block["text"]["text"].endswith(ELLIPSIS)
    assert len(block["fields"]) == REAL["fields"]
    assert all(len(f["text"]) <= REAL["field"] for f in block["fields"])
    assert block["fields"][-1]["text"] == "…and 16 more"
    assert_within_limits({"text": "t", "blocks": [block]})


def test_section_without_text_keeps_fields_only():
    block = section("", ["*a*\nb"])
    assert "text" not in block
    assert block["fields"] == [{"type": "mrkdwn", "text": "*a*\nb"}]


def test_section_without_anything_is_still_valid():
    assert section(None)["text"]["text"].strip()


@settings(max_examples=200)
@given(
    st.one_of(st.none(), st.text(max_size=4000)),
    st.one_of(st.none(), st.lists(st.text(max_size=2500), max_size=15)),
)
def test_section_property(text, fields):
    assert_within_limits({"text": "t", "blocks": [section(text, fields)]})


def test_context_keeps_at_most_ten_elements():
    block = context([HUGE] * 15)
    assert len(block["elements"]) == REAL["context_elements"]
    assert_within_limits({"text": "t", "blocks": [block]})


def test_context_of_nothing_is_still_valid():
    assert_within_limits({"text": "t", "blocks": [context(["", "  "])]})


def test_divider():
    assert divider() == {"type": "divider"}


def test_button_truncates_its_label_only():
    element = button(EMOJI_HUGE, "a" * ACTION_ID_MAX, "v" * BUTTON_VALUE_MAX, "primary")
    assert len(element["text"]["text"]) == BUTTON_TEXT_MAX
    _check_element(element)


@pytest.mark.parametrize(
    ("action_id", "value", "style", "message"),
    [
        ("a" * (ACTION_ID_MAX + 1), "v", None, "action_id"),
        ("", "v", None, "action_id"),
        ("ok", "v" * (BUTTON_VALUE_MAX + 1), None, "value"),
        ("ok", "v", "green", "style"),
    ],
)
def test_button_rejects_programming_errors(action_id, value, style, message):
    with pytest.raises(ValueError, match=message):
        button("Go", action_id, value, style)


def test_actions_checks_block_id_and_elements():
    ok = actions("b" * 255, [button("A", "x_a", "1"), button("B", "x_b", "1")])
    assert ok["block_id"] == "b" * 255
    with pytest.raises(ValueError, match="block_id"):
        actions("b" * 256, [button("A", "x_a", "1")])
    with pytest.raises(ValueError, match="at least one"):
        actions("b", [])
    with pytest.raises(ValueError, match="maximum 25"):
        actions("b", [button("A", f"x_{i}", "1") for i in range(26)])
    with pytest.raises(ValueError, match="duplicate"):
        actions("b", [button("A", "x_a", "1"), button("B", "x_a", "1")])


def test_cap_blocks_leaves_short_lists_alone():
    blocks = [section(str(i)) for i in range(50)]
    assert cap_blocks(blocks) == blocks


def test_cap_blocks_says_how_many_were_left_out():
    capped = cap_blocks([section(str(i)) for i in range(60)])
    assert len(capped) == 50
    assert capped[48]["text"]["text"] == "48"
    assert capped[-1] == context(["…and 11 more items not shown"])


def test_cap_blocks_keeps_groups_whole():
    groups = [[section(f"deal {i}"), context(["why"]), divider()] for i in range(20)]
    capped = cap_blocks([header("Deals"), *groups], noun="deal")
    assert len(capped) == 50  # header + 16 whole deals (48 blocks) + the notice
    assert capped[-2] == divider()
    assert capped[-4] == section("deal 15")
    assert capped[-1]["elements"][0]["text"] == "…and 4 more deals not shown"


def test_cap_blocks_counts_entries_and_pluralises():
    capped = cap_blocks([section(str(i)) for i in range(50)] + [[divider()]], noun="deal")
    assert capped[-1]["elements"][0]["text"] == "…and 2 more deals not shown"
    capped = cap_blocks([section("a"), [section("b"), divider()]], noun="deal", limit=2)
    assert capped == [section("a"), context(["…and 1 more deal not shown"])]
    capped = cap_blocks([section("a"), section("b"), section("c")], noun="deal", limit=2)
    assert capped == [section("a"), context(["…and 2 more deals not shown"])]
    capped = cap_blocks([section("a"), section("b")], noun="deal", limit=1)
    assert capped == [context(["…and 2 more deals not shown"])]


# --- approval --------------------------------------------------------------------------------------

AT = datetime(2026, 11, 25, 17, 3, 42, tzinfo=UTC)


def test_approval_message_default_buttons():
    message = approval_message("ap-1", "email_send", "Send follow-up", "Hi Bob", {"To": "bob@acme.com"})
    buttons = _buttons(message)
    assert [(b["text"]["text"], b["action_id"], b["value"]) for b in buttons] == [
        ("Approve", "orch_approve", "ap-1"),
        ("Reject", "orch_reject", "ap-1"),
    ]
    assert [b.get("style") for b in buttons] == ["primary", "danger"]
    assert message["blocks"][-1]["block_id"] == "approval:ap-1"
    assert message["text"] == "Approval needed: Send follow-up"
    assert_within_limits(message)


def test_approval_message_custom_decisions():
    decisions = [("Approve & send", "prop_approve_send"), ("Edit", "prop_edit"), ("Skip", "prop_skip")]
    message = approval_message("ap-2", "proposal", "Proposal for Acme", "Ready", None, decisions)
    buttons = _buttons(message)
    assert [b["action_id"] for b in buttons] == ["prop_approve_send", "prop_edit", "prop_skip"]
    assert {b["value"] for b in buttons} == {"ap-2"}
    assert [b.get("style") for b in buttons] == ["primary", None, None]
    assert_within_limits(message)


@pytest.mark.parametrize("text", WORST_TEXTS)
def test_approval_message_worst_case(text):
    fields = {f"{text}{i}": text for i in range(30)}
    decisions = [(text, f"orch_{i}") for i in range(5)]
    message = approval_message("0" * 36, text, text, text, fields, decisions)
    assert_within_limits(message)
    assert len(message["text"]) <= 3000


def test_approval_message_escapes_user_text():
    message = approval_message("ap-3", "email_send", "T", "<!channel> hi & bye", {"<@U1>": "<x>"})
    body = message["blocks"][1]
    assert body["text"]["text"] == "&lt;!channel&gt; hi &amp; bye"
    assert body["fields"][0]["text"] == "*&lt;@U1&gt;*\n&lt;x&gt;"


def test_approval_message_rejects_an_id_too_long_for_block_id():
    with pytest.raises(ValueError, match="block_id"):
        approval_message("a" * 250, "k", "T", "S", None)


def test_format_utc_converts_and_assumes_utc_for_naive():
    paris = timezone(timedelta(hours=1))
    assert format_utc(datetime(2026, 11, 25, 18, 3, tzinfo=paris)) == "2026-11-25 17:03 UTC"
    assert format_utc(datetime(2026, 11, 25, 17, 3)) == "2026-11-25 17:03 UTC"


@pytest.mark.parametrize(
    ("decision", "by", "expected"),
    [
        ("approved", "ann", "Approved by @ann at 2026-11-25 17:03 UTC"),
        ("approve", "@ann", "Approved by @ann at 2026-11-25 17:03 UTC"),
        ("rejected", "bob", "Rejected by @bob at 2026-11-25 17:03 UTC"),
        ("send_later", "bob", "Scheduled to send later by @bob at 2026-11-25 17:03 UTC"),
        ("cancel", "Bruno Keller", "Cancelled by @Bruno Keller at 2026-11-25 17:03 UTC"),
        ("more", "ann", "Replaced by newer options (@ann asked for more at 2026-11-25 17:03 UTC)"),
        ("approve_send", "ann", "Approved and sent by @ann at 2026-11-25 17:03 UTC"),
        ("send_invite", "ann", "Invite sent by @ann at 2026-11-25 17:03 UTC"),
        ("handle", "ann", "Taken over by @ann at 2026-11-25 17:03 UTC: no invite was sent"),
        ("escalate_to_vp", "ann", "Escalate to vp chosen by @ann at 2026-11-25 17:03 UTC"),
    ],
)
def test_decided_message(decision, by, expected):
    message = decided_message("Send follow-up", decision, by, AT)
    assert not _buttons(message)
    assert expected in render_text(message)
    assert message["text"] == f"Send follow-up: {expected}"
    assert_within_limits(message)


@pytest.mark.parametrize("text", WORST_TEXTS)
def test_decided_and_expired_worst_case(text):
    assert_within_limits(decided_message(text, text, text, AT))
    assert_within_limits(expired_message(text, AT))


def test_expired_message():
    message = expired_message("Send follow-up", AT)
    assert not _buttons(message)
    assert message["text"] == "Send follow-up: Expired"
    assert "Expired at 2026-11-25 17:03 UTC" in render_text(message)
    assert_within_limits(message)


# --- deal risk -------------------------------------------------------------------------------------


def _alert(i: int, **overrides: Any) -> dict[str, Any]:
    alert = {
        "deal_id": f"deal-{i}",
        "deal_name": f"Deal {i}",
        "company": f"Company {i}",
        "value": 12_500,
        "currency": "USD",
        "stage": "proposal",
        "score": 50,
        "level": "medium",
        "previous_score": None,
        "factors": [],
    }
    alert.update(overrides)
    return alert


def test_deal_risk_alerts_orders_and_describes_deals():
    alerts = [
        _alert(1, score=45, level="medium", previous_score=50, company=None),
        _alert(
            2,
            score=80,
            level="high",
            previous_score=65,
            factors=[
                {"rule": "few_emails_30d", "points": 10, "detail": "only 2 emails in 30 days"},
                {"rule": "inactive_14d", "points": 25, "detail": "no activity for 16 days"},
                {"rule": "primary_contact_silent", "points": 20, "detail": "primary contact silent"},
                {"rule": "no_meetings_silent", "points": 5, "detail": "no meetings"},
            ],
        ),
        _alert(3, score=62, level="high", previous_score=62, value=1234567.891, currency="EUR"),
    ]
    message = deal_risk_alerts("Ann", alerts)
    assert_within_limits(message)
    text = render_text(message)
    lines = text.splitlines()
    assert lines[0] == ":warning: 3 deals at risk for Ann"
    assert "2 high, 1 medium" in lines[2]
    assert [line for line in lines if line.startswith(":")][1:] == [
        ":red_circle: Deal 2 · Company 2",
        ":red_circle: Deal 3 · Company 3",
        ":large_orange_circle: Deal 1",
    ]
    assert "Score 80/100 (high) · ↑ +15 since last scan · Proposal · USD 12,500" in lines
    assert "Score 62/100 (high) · unchanged since last scan · Proposal · EUR 1,234,568" in lines
    assert "Score 45/100 (medium) · ↓ -5 since last scan · Proposal · USD 12,500" in lines
    assert (
        "• no activity for 16 days (+25)  • primary contact silent (+20)  • only 2 emails in 30 days (+10)  +1 more"
    ) in lines
    assert "No risk factors recorded" in lines
    assert message["text"] == "3 deals at risk for Ann (2 high, 1 medium)"


def test_deal_risk_alerts_new_deal_and_duplicates():
    message = deal_risk_alerts("Ann", [_alert(1, score=70, level="high"), _alert(1, score=20, level="low")])
    text = render_text(message)
    assert "Score 70/100 (high) · new" in text
    assert "Score 20" not in text
    assert message["text"].startswith("1 deal at risk")


def test_deal_risk_alerts_with_no_alerts_is_valid():
    message = deal_risk_alerts("Ann", [])
    assert_within_limits(message)
    assert "No deals at risk" in render_text(message)


@pytest.mark.parametrize("text", WORST_TEXTS)
def test_deal_risk_alerts_500_worst_case_deals(text):
    alerts = [
        _alert(
            i,
            deal_name=text,
            company=text,
            stage=text,
            currency=text,
            value=10**15 + i,
            score=i % 101,
            level=("high", "medium", "low", text)[i % 4],
            previous_score=(i * 7) % 101,
            factors=[{"rule": text, "points": p, "detail": text} for p in range(12)],
        )
        for i in range(500)
    ]
    message = deal_risk_alerts(text, alerts)
    assert_within_limits(message)
    assert len(message["blocks"]) <= 50
    shown = sum(1 for b in message["blocks"] if b["type"] == "section")
    assert shown >= 10
    notice = message["blocks"][-1]["elements"][0]["text"]
    assert notice == f"…and {500 - shown} more deals not shown"
    assert "Score *100*/100" in message["blocks"][2]["text"]["text"]


# --- render_text -----------------------------------------------------------------------------------


def test_render_text_approval():
    message = approval_message(
        "ap-1", "email_send", "Send follow-up", "Draft for <https://x.test|Bob>", {"To": "bob@acme.com"}
    )
    message["blocks"][1]["text"]["text"] += " <https://acme.test|the thread> <@U123> *now*"
    lines = render_text(message).splitlines()
    assert lines[0] == "Send follow-up"
    assert lines[1] == "=" * len("Send follow-up")
    assert "Draft for &lt;https://x.test|Bob&gt;" not in lines
    assert lines[2] == "Draft for <https://x.test|Bob> the thread (https://acme.test) @U123 now"
    assert "To: bob@acme.com" in lines
    assert "Needs your decision · email send" in lines
    assert lines[-1] == "[Approve] [Reject]"


def test_render_text_divider_context_and_fallback():
    message = {"text": "fallback", "blocks": [divider(), context(["one", "two"]), section(None, ["plain"])]}
    assert render_text(message).splitlines() == ["-" * 40, "one  two", "plain"]
    assert render_text({"text": "only &amp; text"}) == "only & text"
    assert render_text({"text": "x", "blocks": []}) == "x"


def test_render_text_other_elements():
    message = {
        "text": "t",
        "blocks": [
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "radio_buttons",
                        "action_id": "cal_select_slot",
                        "options": [
                            {"text": {"type": "plain_text", "text": "Mon 10:00"}, "value": "1"},
                            {"text": {"type": "plain_text", "text": "Tue 14:00"}, "value": "2"},
                        ],
                    },
                    {"type": "static_select", "placeholder": {"type": "plain_text", "text": "Pick"}},
                ],
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "<!here> hi"},
                "accessory": button("Go", "a", "v"),
            },
            {"type": "header", "text": {"type": "plain_text", "text": "*literal*"}},
        ],
    }
    assert render_text(message).splitlines() == [
        "( ) Mon 10:00  ( ) Tue 14:00 [Pick ▾]",
        "@here hi",
        "[Go]",
        "*literal*",
        "=" * 9,
    ]
