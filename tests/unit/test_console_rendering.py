"""The console inbox's view of a decided approval: the request as the rep saw it, then the outcome."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from blocks import (
    approval_blocks,
    calendar_slots,
    decided_message,
    decision_label,
    decision_line,
    email_preview,
    email_sent,
    email_sent_with_undo,
    proposal_review,
    render_decided,
    stale_deal_reengagement,
)

AT = datetime(2026, 12, 5, 18, 22, tzinfo=UTC)
FOLLOW_UP = {
    "title": "Follow-up email: Discovery call — Globex dispatch",
    "context": "Follow-up to Discovery call — Globex dispatch with Hank Scorpio",
    "to": "hank@globex.example",
    "subject": "Follow-up: Discovery call — Globex dispatch",
    "body": (
        "Hi Hank,\n\nThanks for your time today.\n\nNext steps on our side:\n"
        "- Send the proposal by Friday\n\nBest,\nAlice"
    ),
}
SLOTS = {
    "title": "Times to meet Bill Lumbergh",
    "contact_name": "Bill Lumbergh",
    "contact_email": "bill@initech.example",
    "duration_minutes": 60,
    "timezone": "America/New_York",
    "window_text": "next week",
    "slots": [
        {
            "start": "2026-12-07T13:00:00-05:00",
            "end": "2026-12-07T14:00:00-05:00",
            "label": "Mon 7 Dec, 13:00-14:00 EST",
        },
        {
            "start": "2026-12-08T13:00:00-05:00",
            "end": "2026-12-08T14:00:00-05:00",
            "label": "Tue 8 Dec, 13:00-14:00 EST",
        },
    ],
}
STALE = {
    "title": "Re-engagement email for Store rollout, phase 1",
    "deal_name": "Store rollout, phase 1",
    "company": "Hooli Retail",
    "days_silent": 21,
    "stall_score": 54,
    "stall_reasons": ["silent for 21 days (+29)"],
    "trigger_events": [],
    "to": "gavin@hooli.example",
    "subject": "Checking in on Store rollout, phase 1",
    "body": "Hi Gavin,\n\nWould a 15-minute call next week be useful?\n\nBest,\nBruno",
}
PROPOSAL = {
    "title": "Proposal for Initech Software: Platform licence renewal",
    "deal_name": "Platform licence renewal",
    "company": "Initech Software",
    "value": 42000,
    "currency": "USD",
    "template": "standard",
    "contact_name": "Bill Lumbergh",
    "contact_email": "bill@initech.example",
    "sections": [{"heading": "Investment", "body": "$42,000 for the first year."}],
}


def test_a_sent_follow_up_shows_the_draft_then_who_sent_it_without_buttons():
    request = email_preview("ap-1", FOLLOW_UP)
    outcome = email_sent(FOLLOW_UP["to"], FOLLOW_UP["subject"], AT, by_name="Alice Moreau", edited=True)
    text = render_decided(request, outcome)
    assert "Follow-up email: Discovery call — Globex dispatch" in text
    assert "Next steps on our side:\n- Send the proposal by Friday" in text
    assert "Sent Follow-up: Discovery call — Globex dispatch to hank@globex.example" in text
    assert "edited and approved by @Alice Moreau" in text
    assert "[Send now]" not in text and "[Cancel]" not in text
    assert text.index("Thanks for your time today") < text.index("Sent Follow-up")


def test_the_undo_message_keeps_its_undo_button_while_the_email_waits():
    text = render_decided(
        email_preview("ap-1", FOLLOW_UP), email_sent_with_undo("ap-1", "hank@globex.example", "Hi", AT)
    )
    assert text.count("[Undo]") == 1 and "[Edit]" not in text


def test_offered_times_stay_listed_one_per_line_above_the_chosen_one():
    request = calendar_slots("ap-2", SLOTS)
    outcome = decided_message(SLOTS["title"], "send_invite", "Alice Moreau", AT, "for Tue 8 Dec, 13:00-14:00 EST")
    text = render_decided(request, outcome)
    assert "  • Mon 7 Dec, 13:00-14:00 EST\n  • Tue 8 Dec, 13:00-14:00 EST" in text
    assert text.endswith("Invite sent by @Alice Moreau at 2026-12-05 18:22 UTC · for Tue 8 Dec, 13:00-14:00 EST")
    assert "[Send invite]" not in text and "(•)" not in text
    assert text.count("Times to meet Bill Lumbergh") == 1  # the outcome's repeated title is left out


def test_asking_for_more_times_reads_as_replaced_by_newer_options():
    text = render_decided(calendar_slots("ap-2", SLOTS), decided_message(SLOTS["title"], "more", "Alice Moreau", AT))
    assert text.splitlines()[-1] == (
        ":repeat: Replaced by newer options (@Alice Moreau asked for more at 2026-12-05 18:22 UTC)"
    )


def test_a_cancelled_re_engagement_shows_the_stall_the_draft_and_who_cancelled():
    request = stale_deal_reengagement("ap-3", STALE)
    outcome = decided_message(STALE["title"], "cancel", "Bruno Keller", AT)
    text = render_decided(request, outcome)
    assert text.startswith("Re-engagement email for Store rollout, phase 1\n")
    assert "Stall score: :large_orange_circle: 54/100" in text and "Would a 15-minute call" in text
    assert text.splitlines()[-1] == ":x: Cancelled by @Bruno Keller at 2026-12-05 18:22 UTC"


def test_an_approved_proposal_shows_its_sections_then_the_decision():
    text = render_decided(
        proposal_review("ap-4", PROPOSAL), decided_message(PROPOSAL["title"], "approve_send", "Alice Moreau", AT)
    )
    assert "Investment\n$42,000 for the first year." in text
    assert text.splitlines()[-1] == ":white_check_mark: Approved and sent by @Alice Moreau at 2026-12-05 18:22 UTC"
    assert "[Approve & send]" not in text


def test_a_generic_approval_uses_the_kinds_words_not_identifiers():
    request = approval_blocks("discount_approval", "ap-5", {"title": "Discount for Globex", "summary": "15 % off"})
    text = render_decided(request, decided_message("Discount for Globex", "approve", "Maya Chen", AT))
    assert "Needs your decision · discount approval" in text
    assert "Approved by @Maya Chen" in text


@pytest.mark.parametrize(
    "decision",
    [
        "approve",
        "reject",
        "approve_send",
        "edit",
        "send_now",
        "send_later",
        "cancel",
        "skip",
        "share_link",
        "send_invite",
        "send_times",
        "more",
        "handle",
        "cancelled",
    ],
)
def test_no_decision_line_shows_an_identifier(decision):
    line = decision_line(decision, "Alice Moreau", AT)
    assert not re.search(r"[a-z]+_[a-z]+", line), line
    assert not re.search(r"\b(\w+) \1\b", line, re.IGNORECASE), line
    assert "_" not in decision_label(decision)


def test_the_coaching_digest_shows_the_question_target_next_to_the_count():
    from blocks import coaching_digest, render_text

    data = {
        "rep_name": "Alice Moreau",
        "week": "2026-W49",
        "meetings": 3,
        "talk_ratio": 0.46,
        "questions_per_meeting": 2.5,
        "question_target": 3.0,
        "longest_monologue_s": 16,
        "next_step_clarity": 1.0,
        "previous": {"questions_per_meeting": 1.5},
    }
    text = render_text(coaching_digest(data))
    assert "Questions per meeting: 2.5 (aim for 3+) (↑ 1.0)" in text
