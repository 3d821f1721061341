"""Every message builder stays within Block Kit limits whatever data it gets, and wires the documented actions."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block as SdkBlock

from blocks import (
    approval_blocks,
    calendar_slots,
    campaign_report,
    coaching_digest,
    email_preview,
    email_sent,
    email_sent_with_undo,
    email_undone,
    meeting_debrief,
    morning_brief,
    option,
    pre_meeting_briefing,
    proposal_review,
    radio_buttons,
    render_text,
    sections,
    stale_deal_reengagement,
)

HUGE = "x" * 10_000
EMOJI_HUGE = "🎉é漢" * 4_000  # 12,000 characters, multi-byte
MIXED_HUGE = ("Acme & <Partners> *bold* _it_ 👩‍💻 |> <!channel> " * 400)[:10_000]
WORST_TEXTS = [HUGE, EMOJI_HUGE, MIXED_HUGE]
MANY = 500
AP = "0b7c1f0e-2f52-4c1e-9a51-3f1f4f0c9d2a"  # a real approval id is a UUID
AT = datetime(2026, 11, 25, 17, 3, 42, tzinfo=UTC)
DASH = "\u2013"  # the en dash that localized time ranges use between start and end

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
    "options": 10,
    "option_text": 75,
    "option_value": 150,
}

# Every action id a message may carry, by prefix (docs/sequences.md).
DOCUMENTED_ACTIONS = {
    "orch": {"approve", "reject", "edit"},
    "prop": {"approve_send", "edit", "share_link", "skip"},
    "cal": {"select_slot", "send_invite", "send_times", "more", "handle"},
    "email": {"send_now", "edit", "send_later", "cancel", "undo"},
    "camp": {"draft_response", "view_thread", "mark_closed", "add_nurture", "apply_suggestion", "keep_testing"},
}
EMAIL_IDS = ["email_send_now", "email_edit", "email_send_later", "email_cancel"]
PROP_IDS = ["prop_approve_send", "prop_edit", "prop_share_link", "prop_skip"]
CAL_IDS = ["cal_select_slot", "cal_send_invite", "cal_send_times", "cal_more", "cal_handle"]
REPLY_IDS = ["camp_draft_response", "camp_view_thread", "camp_mark_closed", "camp_add_nurture"]
CAMPAIGN_IDS = ["camp_apply_suggestion", "camp_keep_testing"]


# --- the checker -----------------------------------------------------------------------------------


def _texts(node: Any) -> Iterator[str]:
    """Every string under a "text" key, at any depth."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def _check_text_object(obj: Mapping[str, Any], limit: int) -> None:
    assert obj["type"] in ("plain_text", "mrkdwn")
    assert 0 < len(obj["text"]) <= limit
    assert obj["text"].strip()


def _check_option(opt: Mapping[str, Any]) -> None:
    assert opt["text"]["type"] == "plain_text"
    _check_text_object(opt["text"], REAL["option_text"])
    assert 0 < len(opt["value"]) <= REAL["option_value"]


def _check_element(element: Mapping[str, Any]) -> None:
    assert 0 < len(element["action_id"]) <= REAL["action_id"]
    prefix, _, verb = element["action_id"].partition("_")
    assert verb in DOCUMENTED_ACTIONS[prefix], element["action_id"]
    if element["type"] == "button":
        assert element["text"]["type"] == "plain_text"
        _check_text_object(element["text"], REAL["button_text"])
        assert 0 < len(element["value"]) <= REAL["button_value"]
        assert element.get("style") in (None, "primary", "danger")
    else:
        assert element["type"] == "radio_buttons"
        options = element["options"]
        assert 0 < len(options) <= REAL["options"]
        for opt in options:
            _check_option(opt)
        values = [o["value"] for o in options]
        assert len(set(values)) == len(values)
        if "initial_option" in element:
            assert element["initial_option"] in options


def assert_valid(message: Mapping[str, Any]) -> None:
    """Fail when any part of a message breaks a real Block Kit limit or slack_sdk's validation."""
    json.dumps(message)  # plain data only
    assert set(message) == {"text", "blocks"}
    assert message["text"].strip()
    assert len(message["text"]) <= 3000
    blocks = message["blocks"]
    assert 0 < len(blocks) <= REAL["blocks"]
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(set(block_ids)) == len(block_ids), "block ids must be unique in a message"
    for block in blocks:
        assert len(block.get("block_id", "")) <= REAL["block_id"]
        kind = block["type"]
        if kind == "header":
            assert block["text"]["type"] == "plain_text"
            _check_text_object(block["text"], REAL["header"])
        elif kind == "section":
            assert "text" in block or block.get("fields")
            if "text" in block:
                _check_text_object(block["text"], REAL["section"])
            fields = block.get("fields", [])
            assert len(fields) <= REAL["fields"]
            for field in fields:
                _check_text_object(field, REAL["field"])
        elif kind == "context":
            assert 0 < len(block["elements"]) <= REAL["context_elements"]
            for element in block["elements"]:
                _check_text_object(element, REAL["context_text"])
        elif kind == "actions":
            assert 0 < len(block["elements"]) <= REAL["actions_elements"]
            ids = [e["action_id"] for e in block["elements"]]
            assert len(set(ids)) == len(ids)
            for element in block["elements"]:
                _check_element(element)
        else:
            assert kind == "divider", kind
        SdkBlock.parse(block).validate_json()  # slack_sdk's own models: a second opinion
    for text in _texts(blocks):
        assert 0 < len(text) <= REAL["section"]


def _actions(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [b for b in message["blocks"] if b["type"] == "actions"]


def _elements(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [e for b in _actions(message) for e in b["elements"]]


def _ids(message: Mapping[str, Any]) -> list[str]:
    return [e["action_id"] for e in _elements(message)]


def _assert_approval_wiring(message: Mapping[str, Any], action_ids: list[str], approval_id: str = AP) -> None:
    """One actions block ``approval:{id}``, last, holding exactly ``action_ids``, buttons valued with the id."""
    assert [b["block_id"] for b in _actions(message)] == [f"approval:{approval_id}"]
    assert message["blocks"][-1]["type"] == "actions"
    assert _ids(message) == action_ids
    assert {e["value"] for e in _elements(message) if e["type"] == "button"} == {approval_id}


# --- realistic data --------------------------------------------------------------------------------


def debrief_data() -> dict[str, Any]:
    return {
        "meeting_title": "Discovery call with Globex",
        "meeting_start": "2026-11-25T15:00:00+00:00",
        "call_type": "discovery",
        "summary": "Globex wants to replace their spreadsheet pipeline before Q1. Budget is approved.",
        "action_items": [
            {"text": "Send the pricing sheet", "owner": "rep", "due": "2026-11-28", "speaker": "Ann Lee"},
            {"text": "Share the security questionnaire", "owner": "prospect", "due": None, "speaker": "Unknown"},
            {"text": "Send the depot list", "owner": "prospect", "speaker": "Hank Scorpio", "assignee": "Lena Ortiz"},
        ],
        "intents": {
            "buying_signals": ["Budget approved for Q1", "Asked about SSO pricing"],
            "commitments": ["I'll send a proposal by Friday"],
            "follow_ups": ["Schedule a demo with their CTO"],
        },
        "coaching_tip": "You asked 4 questions; aim for 8 in discovery calls.",
        "next_actions": ["Loop in a solutions engineer"],
        "failed_steps": ["draft-followup-email", "update-crm-from-meeting"],
    }


def email_data() -> dict[str, Any]:
    return {
        "to": "bob@globex.com",
        "subject": "Next steps after today's call",
        "body": "Hi Bob,\n\nThanks for the time today & the <great> questions.\n\nBest,\nAnn",
        "title": "Follow-up to Bob Lee",
        "context": "Follow-up to Discovery call with Globex",
        "thread": True,
    }


def proposal_data() -> dict[str, Any]:
    return {
        "title": "Globex — Annual plan proposal",
        "deal_name": "Globex annual",
        "company": "Globex",
        "value": 48000,
        "currency": "USD",
        "template": "Enterprise (annual)",
        "sections": [
            {"heading": "Executive summary", "body": "Globex will replace spreadsheets with one pipeline."},
            {"heading": "Pricing", "body": "48,000 USD per year, 50 seats."},
        ],
        "link": "https://app.example.com/p/abc123?x=1&y=2",
        "contact_name": "Bob Lee",
        "contact_email": "bob@globex.com",
    }


def calendar_data() -> dict[str, Any]:
    return {
        "title": "Demo with Globex",
        "contact_name": "Bob Lee",
        "contact_email": "bob@globex.com",
        "duration_minutes": 30,
        "timezone": "America/New_York",
        "window_text": "next week",
        "slots": [
            {
                "start": "2026-12-02T15:00:00+00:00",
                "end": "2026-12-02T15:30:00+00:00",
                "label": f"Tue 2 Dec, 10:00{DASH}10:30 EST",
                "score": 0.92,
            },
            {
                "start": "2026-12-03T19:00:00+00:00",
                "end": "2026-12-03T19:30:00+00:00",
                "label": f"Wed 3 Dec, 14:00{DASH}14:30 EST",
                "score": 0.81,
            },
        ],
    }


def stale_data() -> dict[str, Any]:
    return {
        "deal_name": "Initech renewal",
        "company": "Initech",
        "days_silent": 23,
        "stall_score": 78,
        "stall_reasons": ["No reply for 23 days", "Stage unchanged for 40 days"],
        "trigger_events": ["Initech hired a new VP Sales"],
        "to": "peter@initech.com",
        "subject": "Congrats on the new VP Sales",
        "body": "Hi Peter, saw the news about Initech's new VP Sales...",
    }


def campaign_data() -> dict[str, Any]:
    return {
        "date": "2026-11-25",
        "campaigns": [
            {
                "campaign_id": "camp-1",
                "name": "Q4 CFO outreach",
                "sent": 1200,
                "opened": 420,
                "replied": 37,
                "bounced": 14,
                "open_rate": 35.0,
                "reply_rate": 3.08,
                "bounce_rate": 1.17,
                "status": "healthy",
                "suggestions": [],
            },
            {
                "campaign_id": "camp-2",
                "name": "EMEA expansion",
                "sent": 800,
                "opened": 120,
                "replied": 8,
                "bounced": 56,
                "open_rate": 15.0,
                "reply_rate": 1.0,
                "bounce_rate": 7.0,
                "status": "underperforming",
                "suggestions": ["Clean the list: bounce rate 7.0 % is above 5 %", "Test a shorter subject line"],
            },
        ],
        "replies": [
            {
                "reply_id": "rep-3",
                "campaign_name": "Q4 CFO outreach",
                "from_email": "ooo@hooli.com",
                "from_name": "Gavin",
                "snippet": "I am out of office until Monday",
                "classification": "out_of_office",
            },
            {
                "reply_id": "rep-1",
                "campaign_name": "Q4 CFO outreach",
                "from_email": "cfo@globex.com",
                "from_name": "Hank Scorpio",
                "snippet": "Sounds interesting, can we talk Thursday?",
                "classification": "positive",
            },
        ],
    }


def coaching_data() -> dict[str, Any]:
    return {
        "rep_name": "Ann",
        "week": "2026-W48",
        "meetings": 12,
        "talk_ratio": 0.46,
        "questions_per_meeting": 7.5,
        "longest_monologue_s": 150,
        "next_step_clarity": 0.8,
        "previous": {
            "meetings": 9,
            "talk_ratio": 0.52,
            "questions_per_meeting": 6.0,
            "longest_monologue_s": 190,
            "next_step_clarity": 0.8,
        },
        "win_loss": {"won": 3, "lost": 1, "notes": ["Won deals had 2x more questions"]},
        "highlights": ["Best discovery call: Globex"],
        "suggestions": ["Summarise next steps before hanging up"],
    }


def briefing_data() -> dict[str, Any]:
    return {
        "meeting_title": "Demo with Globex",
        "start": "2026-11-26T15:00:00+00:00",
        "start_local": "Thu 26 Nov, 10:00 EST",
        "attendees": [
            {"name": "Bob Lee", "email": "bob@globex.com", "title": "VP Operations", "company": "Globex"},
            {"name": "Hank Scorpio", "email": "hank@globex.com", "title": None, "company": None},
        ],
        "company": {"name": "Globex", "industry": "Manufacturing", "employees": 5200, "notes": "Uses spreadsheets"},
        "history": ["2026-11-20 Discovery call: budget approved"],
        "news": ["Globex opens a new plant in Ohio"],
        "deal": {
            "name": "Globex annual",
            "stage": "proposal",
            "value": 48000,
            "currency": "USD",
            "risk_score": 65,
            "risk_level": "high",
        },
        "talking_points": ["SSO and audit log"],
        "questions": ["Who signs off on the budget?"],
    }


def morning_data() -> dict[str, Any]:
    return {
        "rep_name": "Ann",
        "date_local": "Wed 25 Nov",
        "meetings": [{"title": "Demo with Globex", "start_local": "10:00", "attendees_count": 3}],
        "tasks_due": [{"title": "Send the pricing sheet", "due_local": "17:00"}],
        "deals_at_risk": [{"name": "Initech renewal", "score": 72, "level": "high"}],
        "approvals_waiting": [{"kind": "email_preview", "title": "Follow-up to Bob Lee", "age_h": 5.2}],
    }


# --- meeting debrief -------------------------------------------------------------------------------


def test_meeting_debrief_shows_everything_and_has_no_buttons():
    message = meeting_debrief(debrief_data())
    assert_valid(message)
    assert not _actions(message)
    text = render_text(message)
    assert text.startswith("Debrief: Discovery call with Globex")
    for fact in (
        "2026-11-25 15:00 UTC",
        "Call type: discovery",
        "Budget is approved.",
        "• Send the pricing sheet by Sat 28 Nov — owner: Ann",
        "• Share the security questionnaire — owner: the prospect",
        "• Send the depot list — owner: Lena",
        "• Budget approved for Q1",
        "• I'll send a proposal by Friday",
        "• Schedule a demo with their CTO",
        "aim for 8 in discovery calls",
        "• Loop in a solutions engineer",
        "What failed",
        "draft-followup-email, update-crm-from-meeting",
    ):
        assert fact in text, fact
    assert "<!date^" in message["blocks"][1]["elements"][0]["text"]  # each reader sees their own tz
    assert message["text"] == "Debrief: Discovery call with Globex · 3 action items"


def test_meeting_debrief_without_failures_has_no_failure_line():
    data = debrief_data()
    data["failed_steps"] = []
    assert "What failed" not in render_text(meeting_debrief(data))


def test_meeting_debrief_of_nothing():
    message = meeting_debrief({})
    assert_valid(message)
    text = render_text(message)
    assert "No summary available." in text
    assert "No action items found." in text
    assert "Time unknown" in text


# --- email -----------------------------------------------------------------------------------------


def test_email_preview_buttons_and_content():
    message = email_preview(AP, email_data())
    assert_valid(message)
    _assert_approval_wiring(message, EMAIL_IDS)
    styles = {e["action_id"]: e.get("style") for e in _elements(message)}
    assert styles == {
        "email_send_now": "primary",
        "email_edit": None,
        "email_send_later": None,
        "email_cancel": "danger",
    }
    text = render_text(message)
    for fact in (
        "Follow-up to Bob Lee",
        "To: bob@globex.com",
        "Subject: Next steps after today's call",
        "Thanks for the time today & the <great> questions.",
        "Follow-up to Discovery call with Globex",
        "Replies in the thread",
        "[Send now] [Edit] [Send later] [Cancel]",
    ):
        assert fact in text, fact
    assert "&lt;great&gt;" in json.dumps(message)  # user text is escaped in mrkdwn
    assert message["text"] == "Review email to bob@globex.com: Next steps after today's call"


def test_email_preview_minimal_and_list_of_recipients():
    message = email_preview(AP, {"to": ["a@x.com", "b@x.com"], "subject": "Hi", "body": "Hello"})
    assert_valid(message)
    text = render_text(message)
    assert "To: a@x.com, b@x.com" in text
    assert "Replies in the thread" not in text
    assert text.startswith("Email to a@x.com, b@x.com")


def test_email_preview_long_body_is_split_not_lost():
    body = "\n".join(f"Paragraph {i}: " + "words " * 40 for i in range(40))  # ~10,000 characters
    message = email_preview(AP, {"to": "a@x.com", "subject": "S", "body": body})
    assert_valid(message)
    text = render_text(message)
    assert "Paragraph 0:" in text
    assert "Paragraph 39:" in text
    assert "not shown" not in text


def test_email_preview_too_long_body_says_what_was_left_out():
    message = email_preview(AP, {"to": "a@x.com", "subject": "S", "body": "word " * 10_000})
    assert_valid(message)
    assert "more characters not shown" in render_text(message).splitlines()[-2]


def test_email_sent_with_undo():
    message = email_sent_with_undo(AP, "bob@globex.com", "Next steps", AT)
    assert_valid(message)
    _assert_approval_wiring(message, ["email_undo"])
    text = render_text(message)
    assert "Sending Next steps to bob@globex.com at 17:03:42 UTC" in text
    assert "[Undo]" in text
    assert f"<!date^{int(AT.timestamp())}^" in message["blocks"][0]["text"]["text"]


def test_email_sent_and_undone_replace_the_buttons():
    sent = email_sent("bob@globex.com", "Next steps", AT)
    undone = email_undone("bob@globex.com", "Next steps", "ann", AT)
    for message in (sent, undone):
        assert_valid(message)
        assert not _actions(message)
    assert "Sent Next steps to bob@globex.com" in render_text(sent)
    assert "Sent 2026-11-25 17:03 UTC" in render_text(sent)
    assert "Undone by @ann 2026-11-25 17:03 UTC, nothing was sent" in render_text(undone)
    assert sent["text"] == "Email sent to bob@globex.com"
    assert undone["text"] == "Email to bob@globex.com not sent (undone)"


@pytest.mark.parametrize("text", WORST_TEXTS)
def test_email_messages_worst_case(text):
    preview = {"to": [text] * MANY, "subject": text, "body": text * 5, "title": text, "context": text, "thread": True}
    assert_valid(email_preview(AP, preview))
    assert_valid(email_sent_with_undo(AP, text, text, AT))
    assert_valid(email_sent(text, text, AT))
    assert_valid(email_undone(text, text, text, AT))


# --- stale deal ------------------------------------------------------------------------------------


def test_stale_deal_reengagement():
    message = stale_deal_reengagement(AP, stale_data())
    assert_valid(message)
    _assert_approval_wiring(message, EMAIL_IDS)
    text = render_text(message)
    for fact in (
        "Re-engage Initech renewal",
        "Company: Initech",
        "Silent for: 23 days",
        "Stall score: :red_circle: 78/100",
        "• No reply for 23 days",
        "• Initech hired a new VP Sales",
        "To: peter@initech.com",
        "Subject: Congrats on the new VP Sales",
        "saw the news about Initech's new VP Sales",
    ):
        assert fact in text, fact


def test_stale_deal_reengagement_of_nothing_but_the_score():
    message = stale_deal_reengagement(AP, {"stall_score": "n/a"})
    assert_valid(message)
    text = render_text(message)
    assert "Stall score: :large_orange_circle: —" in text
    assert "No new activity found" in text


# --- proposal --------------------------------------------------------------------------------------


def test_proposal_review():
    message = proposal_review(AP, proposal_data())
    assert_valid(message)
    _assert_approval_wiring(message, PROP_IDS)
    assert _elements(message)[0]["style"] == "primary"
    text = render_text(message)
    for fact in (
        "Globex — Annual plan proposal",
        "Deal: Globex annual",
        "Value: USD 48,000",
        "Template: Enterprise (annual)",
        "Send to: Bob Lee (bob@globex.com)",
        "Open the full proposal (https://app.example.com/p/abc123?x=1&y=2)",
        "Executive summary",
        "48,000 USD per year, 50 seats.",
        "[Approve & send] [Edit] [Share link] [Skip]",
    ):
        assert fact in text, fact
    assert "<https://app.example.com/p/abc123?x=1&amp;y=2|Open the full proposal>" in json.dumps(message)


@pytest.mark.parametrize("link", [None, "", "javascript:alert(1)", "https://x.test/" + "a" * 5000, "https://a|b>c"])
def test_proposal_review_odd_links_are_not_links(link):
    message = proposal_review(AP, {**proposal_data(), "link": link})
    assert_valid(message)
    assert "|Open the full proposal>" not in json.dumps(message)


def test_proposal_review_many_sections_keeps_the_buttons():
    sections_ = [{"heading": f"Section {i}", "body": HUGE} for i in range(MANY)]
    message = proposal_review(AP, {**proposal_data(), "sections": sections_})
    assert_valid(message)
    assert len(message["blocks"]) >= 45
    _assert_approval_wiring(message, PROP_IDS)
    assert "more sections not shown" in render_text(message)


# --- calendar --------------------------------------------------------------------------------------


def test_calendar_slots_radio_and_buttons():
    message = calendar_slots(AP, calendar_data())
    assert_valid(message)
    _assert_approval_wiring(message, CAL_IDS)
    radio = _elements(message)[0]
    assert radio["type"] == "radio_buttons"
    assert [o["value"] for o in radio["options"]] == ["2026-12-02T15:00:00+00:00", "2026-12-03T19:00:00+00:00"]
    assert radio["initial_option"] == radio["options"][0]
    assert _elements(message)[1]["style"] == "primary"
    text = render_text(message)
    for fact in (
        "Demo with Globex",
        "30 min with Bob Lee (bob@globex.com)",
        "next week",
        "America/New_York",
        f"(•) Tue 2 Dec, 10:00{DASH}10:30 EST  ( ) Wed 3 Dec, 14:00{DASH}14:30 EST",
        "[Send invite] [Send times by email] [More options] [I'll handle it]",
    ):
        assert fact in text, fact


def test_calendar_without_slots_offers_more_options_or_handover():
    message = calendar_slots(AP, {**calendar_data(), "slots": []})
    assert_valid(message)
    _assert_approval_wiring(message, ["cal_more", "cal_handle"])
    assert "No free slot was found next week." in render_text(message)
    assert message["text"].startswith("No free slot found")


def test_calendar_slots_skips_slots_that_cannot_be_chosen():
    slots = [
        {"start": "", "label": "blank"},
        {"start": "s" * 151, "label": "too long a value"},
        {"start": "2026-12-02T15:00:00+00:00", "label": "first"},
        {"start": "2026-12-02T15:00:00+00:00", "label": "duplicate"},
        {"start": "2026-12-04T15:00:00+00:00"},  # no label: the start is shown
        "not a slot",
    ]
    message = calendar_slots(AP, {**calendar_data(), "slots": slots})
    assert_valid(message)
    radio = _elements(message)[0]
    assert [o["text"]["text"] for o in radio["options"]] == ["first", "2026-12-04T15:00:00+00:00"]


def test_calendar_many_slots_show_ten_and_say_so():
    slots = [{"start": f"2026-12-02T{i // 60:02d}:{i % 60:02d}:00+00:00", "label": EMOJI_HUGE} for i in range(MANY)]
    message = calendar_slots(AP, {**calendar_data(), "slots": slots})
    assert_valid(message)
    assert len(_elements(message)[0]["options"]) == 10
    assert "…and 490 more times not shown" in render_text(message)


# --- campaigns -------------------------------------------------------------------------------------


def test_campaign_report():
    message = campaign_report(campaign_data())
    assert_valid(message)
    actions = {b["block_id"]: b["elements"] for b in _actions(message)}
    assert list(actions) == ["campaign:camp-2", "reply:rep-1"]  # healthy campaign: no suggestion; OOO: no buttons
    assert [(e["action_id"], e["value"]) for e in actions["campaign:camp-2"]] == [(i, "camp-2") for i in CAMPAIGN_IDS]
    assert [(e["action_id"], e["value"]) for e in actions["reply:rep-1"]] == [(i, "rep-1") for i in REPLY_IDS]
    text = render_text(message)
    lines = text.splitlines()
    assert lines[0] == ":bar_chart: Campaign report · 2026-11-25"
    assert "2 active campaigns (1 underperforming, 1 healthy) · 1 reply to answer" in lines[2]
    emea, q4 = (
        lines.index(":red_circle: EMEA expansion · underperforming"),
        lines.index(":large_green_circle: Q4 CFO outreach · healthy"),
    )
    assert emea < q4  # worst first
    for fact in (
        "Sent: 1,200",
        "Opened: 35.0 % (420)",
        "Replied: 3.1 % (37)",
        "Bounced: 7.0 % (56)",
        "Clean the list: bounce rate 7.0 % is above 5 %",
        "Hank Scorpio (cfo@globex.com) · Q4 CFO outreach · :star: positive",
        "Sounds interesting, can we talk Thursday?",
        "Gavin (ooo@hooli.com) · Q4 CFO outreach · out of office",
        "[Draft response] [View thread] [Mark closed] [Add to nurture]",
    ):
        assert fact in text, fact
    assert text.index("Hank Scorpio") < text.index("Gavin")  # replies to answer first


def test_campaign_report_other_and_unknown_classes_get_buttons_others_do_not():
    replies = [
        {"reply_id": f"r-{kind}", "classification": kind, "snippet": "hi"}
        for kind in ("positive", "negative", "out_of_office", "unsubscribe", "other", "weird", None)
    ]
    message = campaign_report({"replies": replies})
    assert_valid(message)
    assert [b["block_id"] for b in _actions(message)] == [
        "reply:r-positive",
        "reply:r-other",
        "reply:r-weird",
        "reply:r-None",
    ]


def test_campaign_report_duplicate_and_unusable_ids_get_no_buttons():
    replies = [
        {"reply_id": "r-1", "classification": "positive"},
        {"reply_id": "r-1", "classification": "positive"},
        {"reply_id": "r" * 300, "classification": "positive"},
        {"classification": "positive"},
    ]
    campaigns = [{"campaign_id": "c-1", "suggestions": ["x"]}, {"campaign_id": "c-1", "suggestions": ["y"]}]
    message = campaign_report({"replies": replies, "campaigns": campaigns})
    assert_valid(message)
    assert [b["block_id"] for b in _actions(message)] == ["campaign:c-1", "reply:r-1"]


def test_campaign_report_empty():
    message = campaign_report({"date": "2026-11-25"})
    assert_valid(message)
    text = render_text(message)
    assert "No active campaigns" in text
    assert "No new replies" in text
    assert message["text"] == "Campaign report · 2026-11-25: 0 active campaigns · 0 replies to answer"


@pytest.mark.parametrize(("n_campaigns", "n_replies"), [(MANY, MANY), (MANY, 0), (0, MANY), (MANY, 2), (2, MANY)])
def test_campaign_report_many_fits_and_says_how_many_more(n_campaigns, n_replies):
    data = campaign_data()
    campaign, reply = data["campaigns"][1], data["replies"][1]
    data["campaigns"] = [{**campaign, "campaign_id": f"c{i}", "name": MIXED_HUGE} for i in range(n_campaigns)]
    data["replies"] = [{**reply, "reply_id": f"r{i}", "snippet": EMOJI_HUGE} for i in range(n_replies)]
    message = campaign_report(data)
    assert_valid(message)
    text = render_text(message)
    if n_campaigns == MANY:
        assert "more campaigns not shown" in text
        assert _ids(message).count("camp_apply_suggestion") >= 5
    if n_replies == MANY:
        assert "more replies not shown" in text
        assert _ids(message).count("camp_draft_response") >= 5
    if n_replies == 2:
        assert _ids(message).count("camp_draft_response") == 2  # the few replies are never crowded out
    if n_campaigns == 2:
        assert _ids(message).count("camp_apply_suggestion") == 2


# --- coaching --------------------------------------------------------------------------------------


def test_coaching_digest():
    message = coaching_digest(coaching_data())
    assert_valid(message)
    assert not _actions(message)
    text = render_text(message)
    for fact in (
        "Coaching digest · 2026-W48",
        "For Ann",
        "Meetings: 12 (↑ 3)",
        "Talk ratio: 46 % (↓ 6 pts)",
        "Questions per meeting: 7.5 (↑ 1.5)",
        "Longest monologue: 2 min 30 s (↓ 40 s)",
        "Next-step clarity: 80 % (= last week)",
        "Won 3 · Lost 1",
        "• Won deals had 2x more questions",
        "• Best discovery call: Globex",
        "• Summarise next steps before hanging up",
    ):
        assert fact in text, fact
    assert message["text"] == "Coaching digest · 2026-W48 for Ann"


def test_coaching_digest_without_previous_week_or_metrics():
    message = coaching_digest({"rep_name": "Ann", "talk_ratio": math.nan, "meetings": "7", "previous": None})
    assert_valid(message)
    text = render_text(message)
    assert "Meetings: 7" in text
    assert "Talk ratio: —" in text
    assert "↑" not in text
    assert "↓" not in text


# --- briefs ----------------------------------------------------------------------------------------


def test_pre_meeting_briefing():
    message = pre_meeting_briefing(briefing_data())
    assert_valid(message)
    assert not _actions(message)
    text = render_text(message)
    for fact in (
        "Brief: Demo with Globex",
        "Thu 26 Nov, 10:00 EST · 2 attendees",
        "• Bob Lee (bob@globex.com), VP Operations at Globex",
        "• Hank Scorpio (hank@globex.com)",
        "Globex",
        "Uses spreadsheets",
        "Industry: Manufacturing",
        "Employees: 5,200",
        "Deal: Globex annual",
        "Stage: Proposal",
        "Value: USD 48,000",
        "Risk: :red_circle: 65/100 (high)",
        "• 2026-11-20 Discovery call: budget approved",
        "• Globex opens a new plant in Ohio",
        "• SSO and audit log",
        "• Who signs off on the budget?",
    ):
        assert fact in text, fact
    assert message["text"] == "Brief for Demo with Globex with Globex"


def test_pre_meeting_briefing_without_deal_or_local_time():
    data = {**briefing_data(), "deal": None, "start_local": None}
    message = pre_meeting_briefing(data)
    assert_valid(message)
    text = render_text(message)
    assert "No open deal with this company" in text
    assert "2026-11-26 15:00 UTC · 2 attendees" in text


def test_morning_brief():
    message = morning_brief(morning_data())
    assert_valid(message)
    assert not _actions(message)
    text = render_text(message)
    for fact in (
        "Good morning, Ann",
        "Wed 25 Nov · 1 meeting · 1 task due · 1 deal at risk · 1 waiting",
        "• 10:00 Demo with Globex (3 attendees)",
        "• Send the pricing sheet · due 17:00",
        "• :red_circle: Initech renewal (72/100, high)",
        "• Follow-up to Bob Lee · email preview · waiting 5 h",
    ):
        assert fact in text, fact
    assert "Nothing today" not in text


def test_morning_brief_empty_sections_say_nothing_today():
    message = morning_brief({"rep_name": "Ann", "date_local": "Wed 25 Nov"})
    assert_valid(message)
    assert render_text(message).count("Nothing today") == 4


# --- dispatcher ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "preview", "expected_ids", "first_line"),
    [
        ("email_preview", email_data(), EMAIL_IDS, "Follow-up to Bob Lee"),
        ("email_preview", stale_data(), EMAIL_IDS, "Re-engage Initech renewal"),
        ("proposal_review", proposal_data(), PROP_IDS, "Globex — Annual plan proposal"),
        ("calendar_slots", calendar_data(), CAL_IDS, ":calendar: Demo with Globex"),
        (
            "something_new",
            {"title": "Approve discount", "fields": {"Discount": "15 %"}},
            ["orch_approve", "orch_reject"],
            "Approve discount",
        ),
    ],
)
def test_approval_blocks_picks_the_message_for_the_kind(kind, preview, expected_ids, first_line):
    message = approval_blocks(kind, AP, preview)
    assert_valid(message)
    _assert_approval_wiring(message, expected_ids)
    assert render_text(message).splitlines()[0] == first_line


def test_approval_blocks_generic_summary_lists_the_preview():
    message = approval_blocks("discount_request", AP, {"amount": 1500, "approver_user_ids": ["u1"], "fields": "odd"})
    assert_valid(message)
    text = render_text(message)
    assert text.splitlines()[0] == "Discount request"
    assert "amount: 1500" in text
    assert "approver_user_ids" not in text
    assert approval_blocks("x", AP, {"summary": "Check this"})["blocks"][1]["text"]["text"] == "Check this"
    assert "Please review." in render_text(approval_blocks("x", AP, {}))


@pytest.mark.parametrize("kind", ["email_preview", "proposal_review", "calendar_slots", "unknown", ""])
def test_approval_blocks_with_an_empty_preview(kind):
    assert_valid(approval_blocks(kind, AP, {}))


# --- worst cases for every builder -----------------------------------------------------------------


def _worst(text: str) -> dict[str, Callable[[], dict[str, Any]]]:
    """Every builder fed ``text`` in every text and 500 items in every list."""
    many = [text] * MANY
    huge_number = 10**30
    return {
        "debrief": lambda: meeting_debrief(
            {
                "meeting_title": text,
                "meeting_start": text,
                "call_type": text,
                "summary": text * 3,
                "action_items": [{"text": text, "owner": text, "due": text}] * MANY,
                "intents": {"buying_signals": many, "commitments": many, "follow_ups": many},
                "coaching_tip": text,
                "next_actions": many,
                "failed_steps": many,
            }
        ),
        "email": lambda: email_preview(AP, {"to": text, "subject": text, "body": text * 10, "context": text}),
        "stale": lambda: stale_deal_reengagement(
            AP,
            {
                "deal_name": text,
                "company": text,
                "days_silent": huge_number,
                "stall_score": text,
                "stall_reasons": many,
                "trigger_events": many,
                "to": many,
                "subject": text,
                "body": text * 10,
            },
        ),
        "proposal": lambda: proposal_review(
            AP,
            {
                "title": text,
                "deal_name": text,
                "company": text,
                "value": huge_number,
                "currency": text,
                "template": text,
                "sections": [{"heading": text, "body": text}] * MANY,
                "link": text,
                "contact_name": text,
                "contact_email": text,
            },
        ),
        "calendar": lambda: calendar_slots(
            AP,
            {
                "title": text,
                "contact_name": text,
                "contact_email": text,
                "duration_minutes": text,
                "timezone": text,
                "window_text": text,
                "slots": [
                    {"start": f"{i}{text}"[:150], "end": text, "label": text, "score": text} for i in range(MANY)
                ],
            },
        ),
        "campaigns": lambda: campaign_report(
            {
                "date": text,
                "campaigns": [
                    {
                        "campaign_id": f"{i}{text}"[:200],
                        "name": text,
                        "sent": huge_number,
                        "opened": text,
                        "open_rate": math.inf,
                        "status": text,
                        "suggestions": many,
                    }
                    for i in range(MANY)
                ],
                "replies": [
                    {
                        "reply_id": f"{i}{text}"[:200],
                        "campaign_name": text,
                        "from_email": text,
                        "from_name": text,
                        "snippet": text,
                        "classification": text,
                    }
                    for i in range(MANY)
                ],
            }
        ),
        "coaching": lambda: coaching_digest(
            {
                "rep_name": text,
                "week": text,
                "meetings": huge_number,
                "talk_ratio": 1e17,
                "questions_per_meeting": -1e17,
                "longest_monologue_s": 10**17,
                "next_step_clarity": text,
                "previous": {"meetings": -(10**17), "talk_ratio": -1e17},
                "win_loss": {"won": text, "lost": 10**17, "notes": many},
                "highlights": many,
                "suggestions": many,
            }
        ),
        "briefing": lambda: pre_meeting_briefing(
            {
                "meeting_title": text,
                "start": text,
                "start_local": text,
                "attendees": [{"name": text, "email": text, "title": text, "company": text}] * MANY,
                "company": {"name": text, "industry": text, "employees": text, "notes": text},
                "history": many,
                "news": many,
                "deal": {"name": text, "stage": text, "value": text, "currency": text, "risk_score": text},
                "talking_points": many,
                "questions": many,
            }
        ),
        "morning": lambda: morning_brief(
            {
                "rep_name": text,
                "date_local": text,
                "meetings": [{"title": text, "start_local": text, "attendees_count": text}] * MANY,
                "tasks_due": [{"title": text, "due_local": text}] * MANY,
                "deals_at_risk": [{"name": text, "score": text, "level": text}] * MANY,
                "approvals_waiting": [{"kind": text, "title": text, "age_h": huge_number}] * MANY,
            }
        ),
    }


WORST_CASES = [(name, text) for text in WORST_TEXTS for name in _worst(text)]


@pytest.mark.parametrize(("name", "text"), WORST_CASES, ids=[f"{n}-{i // 9}" for i, (n, _) in enumerate(WORST_CASES)])
def test_every_builder_worst_case(name, text):
    message = _worst(text)[name]()
    assert_valid(message)
    rendered = render_text(message)
    assert rendered.strip()
    if name in ("debrief", "briefing", "morning"):
        assert "more" in rendered  # long lists say how many were left out


MISSING_OR_ODD = [{}, {"slots": "x", "sections": None, "campaigns": 5, "replies": {"a": 1}, "attendees": "bob"}]
ALL_BUILDERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "debrief": meeting_debrief,
    "email": lambda d: email_preview(AP, d),
    "stale": lambda d: stale_deal_reengagement(AP, d),
    "proposal": lambda d: proposal_review(AP, d),
    "calendar": lambda d: calendar_slots(AP, d),
    "campaigns": campaign_report,
    "coaching": coaching_digest,
    "briefing": pre_meeting_briefing,
    "morning": morning_brief,
}


@pytest.mark.parametrize("name", ALL_BUILDERS)
@pytest.mark.parametrize("data", MISSING_OR_ODD)
def test_every_builder_tolerates_missing_and_odd_keys(name, data):
    assert_valid(ALL_BUILDERS[name](data))


_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=20), inner, max_size=6)),
    max_leaves=30,
)
_KEYS = sorted(
    {key for data in (debrief_data(), email_data(), proposal_data(), calendar_data(), stale_data()) for key in data}
    | {key for data in (campaign_data(), coaching_data(), briefing_data(), morning_data()) for key in data}
    | {"start", "end", "label", "text", "owner", "due", "heading", "body", "reply_id", "classification", "name"}
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(ALL_BUILDERS)), st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=12))
def test_every_builder_property_any_json(name, data):
    assert_valid(ALL_BUILDERS[name](data))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.fixed_dictionaries({"start": st.text(max_size=160), "label": st.text(max_size=120)}), max_size=15))
def test_calendar_property_slots(slots):
    message = calendar_slots(AP, {"slots": slots})
    assert_valid(message)
    assert _ids(message)[-2:] == ["cal_more", "cal_handle"]


# --- primitives added for these messages -----------------------------------------------------------


def test_radio_buttons_and_option_limits():
    opts = [option("🎉" * 100, "v1"), option("b", "v2")]
    element = radio_buttons("cal_select_slot", opts, "v2")
    assert len(element["options"][0]["text"]["text"]) == 75
    assert element["initial_option"] == opts[1]
    assert "initial_option" not in radio_buttons("cal_select_slot", opts)
    with pytest.raises(ValueError, match="option value"):
        option("a", "v" * 151)
    with pytest.raises(ValueError, match="option value"):
        option("a", "")
    with pytest.raises(ValueError, match="at least one"):
        radio_buttons("a", [])
    with pytest.raises(ValueError, match="maximum 10"):
        radio_buttons("a", [option("x", str(i)) for i in range(11)])
    with pytest.raises(ValueError, match="duplicate"):
        radio_buttons("a", [option("x", "1"), option("y", "1")])
    with pytest.raises(ValueError, match="not one of"):
        radio_buttons("a", opts, "v3")


def test_sections_split_long_text_at_line_breaks():
    text = "\n".join(["a" * 1000] * 7)
    blocks = sections(text, 5)
    assert [len(b["text"]["text"]) for b in blocks] == [2001, 2001, 2001, 1000]  # two lines fit, the third would not
    assert sections("", 3) == [{"type": "section", "text": {"type": "mrkdwn", "text": "—"}}]
    with pytest.raises(ValueError, match="at least 2"):
        sections("x", 1)


def test_sections_never_split_an_entity_and_count_what_is_left_out():
    text = "x" + "&amp;" * 3000  # 15,001 characters, no break points, the 3,000th inside an entity
    blocks = sections(text, 3)
    assert [len(b["text"]["text"]) for b in blocks[:2]] == [2996, 3000]
    for block in blocks[:2]:
        assert block["text"]["text"].endswith("&amp;")
    assert blocks[2]["elements"][0]["text"] == "…and 9,005 more characters not shown"


@given(st.text(max_size=20_000), st.integers(min_value=2, max_value=6))
@settings(max_examples=100, deadline=None)
def test_sections_property(text, max_blocks):
    blocks = sections(text, max_blocks)
    assert 0 < len(blocks) <= max_blocks
    assert_valid({"text": "t", "blocks": blocks})
