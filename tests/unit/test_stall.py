"""Stalled deals (stale_deal_revival): the stall score's parts and threshold, closed deals,
monotonicity, and the re-engagement draft."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sequences.skills.deals.risk_rules import STAGES
from sequences.skills.deals.stall_rules import (
    REENGAGE_THRESHOLD,
    SIGNAL_POINTS,
    StallAnalysis,
    StallFacts,
    draft_reengagement,
    lost_reason_kind,
    silence_points,
    stage_age_points,
    stall_score,
)


def facts(**overrides) -> StallFacts:
    base = {"days_silent": 0, "stage": "discovery", "days_in_stage": 0}
    return StallFacts(**{**base, **overrides})


def test_threshold_is_50():
    assert REENGAGE_THRESHOLD == 50


def test_a_fresh_deal_scores_zero():
    analysis = stall_score(facts(days_silent=2, days_in_stage=5))
    assert (analysis.score, analysis.reasons, analysis.reengage) == (0, [], False)
    assert analysis.recommendation == "no action: score 0 is below 50"


@pytest.mark.parametrize(
    ("days", "points"), [(0, 0), (6, 0), (7, 15), (8, 16), (14, 22), (30, 38), (37, 45), (38, 45), (400, 45)]
)
def test_silence_points(days, points):
    assert silence_points(days) == points


@pytest.mark.parametrize(
    ("stage", "days", "points"),
    [
        ("discovery", 21, 0),  # exactly the usual length
        ("discovery", 22, 1),
        ("discovery", 42, 25),  # twice the usual length
        ("discovery", 300, 25),
        ("proposal", 21, 12),  # 1.5 x 14 days
        ("Proposal ", 28, 25),
        ("custom stage", 31, 11),  # unknown stages count 21 days
        ("closed_lost", 500, 0),
        ("closed_won", 500, 0),
    ],
)
def test_stage_age_points(stage, days, points):
    assert stage_age_points(stage, days) == points


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (None, None),
        ("   ", None),
        ("Timing - revisit next quarter", "revivable"),
        ("No budget this year", "revivable"),
        ("Went dark after the demo", "revivable"),
        ("Chose a competitor (Gong)", "competitor"),
        ("Went with the incumbent", "competitor"),
        ("Not a fit", "terminal"),
        ("Do not contact", "terminal"),
        ("Duplicate deal", "terminal"),
        ("Price", "other"),
    ],
)
def test_lost_reason_kind(reason, kind):
    assert lost_reason_kind(reason) == kind


def test_a_long_silence_in_an_old_stage_crosses_the_threshold():
    analysis = stall_score(facts(days_silent=30, stage="discovery", days_in_stage=45))
    assert analysis.score == 38 + 25
    assert analysis.reengage
    assert analysis.reasons == ["silent for 30 days (+38)", "45 days in discovery, usually 21 (+25)"]
    assert analysis.recommendation.startswith("re-engage:")


def test_silence_alone_never_reaches_the_threshold():
    assert stall_score(facts(days_silent=10_000)).score == 45
    assert not stall_score(facts(days_silent=10_000)).reengage


def test_threshold_boundary():
    # 22 (14 days silent) + 25 (stage twice its length) = 47; a news signal makes 57
    below = stall_score(facts(days_silent=14, stage="proposal", days_in_stage=28))
    assert (below.score, below.reengage) == (47, False)
    at = stall_score(facts(days_silent=17, stage="proposal", days_in_stage=28))
    assert (at.score, at.reengage) == (50, True)
    above = stall_score(facts(days_silent=14, stage="proposal", days_in_stage=28, signals=["news"]))
    assert (above.score, above.reengage, above.angle) == (57, True, "trigger")


def test_signals_add_up_to_a_cap_and_budget_frozen_subtracts():
    all_positive = ["champion_left", "new_activity", "job_change", "news", "competitor_mentioned"]
    assert stall_score(facts(signals=all_positive)).score == 25
    assert stall_score(facts(signals=["news", "news", "NEWS "])).score == 10  # duplicates count once
    assert stall_score(facts(signals=["made_up", ""])).score == 0  # unknown ones are ignored
    frozen = stall_score(facts(days_silent=30, signals=["budget_frozen"]))
    assert frozen.score == 38 - 15
    assert "signal budget frozen (-15)" in frozen.reasons
    assert stall_score(facts(signals=["budget_frozen"])).score == 0  # never below 0


def test_revivable_lost_reason_adds_points():
    analysis = stall_score(facts(days_silent=40, stage="closed_lost", days_in_stage=60, lost_reason="Timing"))
    assert analysis.score == 45 + 15
    assert (analysis.reengage, analysis.angle) == (True, "timing")


def test_terminal_lost_reason_caps_the_score():
    analysis = stall_score(
        facts(days_silent=90, stage="closed_lost", days_in_stage=90, lost_reason="Not a fit", signals=["news"])
    )
    assert analysis.score == 20
    assert (analysis.reengage, analysis.angle) == (False, "none")
    assert analysis.recommendation == "no action: the deal was lost as 'Not a fit'"


def test_a_won_deal_is_never_revived():
    analysis = stall_score(facts(days_silent=200, stage="Closed_Won", days_in_stage=200, signals=["champion_left"]))
    assert (analysis.score, analysis.reengage, analysis.angle) == (0, False, "none")
    assert analysis.recommendation == "no action: the deal is won"


def test_a_lost_deal_without_reason_scores_on_silence_and_signals():
    analysis = stall_score(facts(days_silent=40, stage="closed_lost", days_in_stage=400, signals=["job_change"]))
    assert analysis.score == 45 + 10
    assert analysis.reengage


@pytest.mark.parametrize(
    ("signals", "lost_reason", "angle"),
    [
        (["champion_left", "news"], None, "new_champion"),
        (["job_change"], None, "trigger"),
        (["competitor_mentioned"], None, "competitor"),
        ([], "Chose a competitor", "competitor"),
        ([], "Budget", "timing"),
        (["budget_frozen"], None, "timing"),
        ([], None, "check_in"),
    ],
)
def test_angle(signals, lost_reason, angle):
    assert stall_score(facts(days_silent=30, signals=signals, lost_reason=lost_reason)).angle == angle


def test_big_deals_get_a_call_as_well():
    base = {"days_silent": 30, "stage": "negotiation", "days_in_stage": 60}
    assert "call as well" in stall_score(facts(**base, value=Decimal(50_000))).recommendation
    assert "call as well" not in stall_score(facts(**base, value=Decimal(49_999))).recommendation
    assert "call as well" not in stall_score(facts(**base)).recommendation
    # the value never changes the score
    assert stall_score(facts(**base, value=Decimal(10**9))).score == stall_score(facts(**base)).score


def test_negative_days_are_rejected():
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        facts(days_silent=-1)


STAGE_NAMES = st.sampled_from([*STAGES, "custom", ""])
SIGNALS = st.lists(st.sampled_from([*SIGNAL_POINTS, "unknown"]), max_size=6)
REASONS = st.sampled_from([None, "Timing", "Not a fit", "Competitor", "Price"])


@given(
    stage=STAGE_NAMES,
    days=st.integers(0, 2_000),
    more=st.integers(0, 2_000),
    in_stage=st.integers(0, 2_000),
    signals=SIGNALS,
    reason=REASONS,
)
def test_score_is_monotone_in_days_silent(stage, days, more, in_stage, signals, reason):
    common = {"stage": stage, "days_in_stage": in_stage, "signals": signals, "lost_reason": reason}
    lower = stall_score(StallFacts(days_silent=days, **common)).score
    higher = stall_score(StallFacts(days_silent=days + more, **common)).score
    assert 0 <= lower <= higher <= 100


@given(
    stage=STAGE_NAMES,
    days=st.integers(0, 2_000),
    more=st.integers(0, 2_000),
    silent=st.integers(0, 2_000),
    signals=SIGNALS,
    reason=REASONS,
)
def test_score_is_monotone_in_days_in_stage(stage, days, more, silent, signals, reason):
    common = {"stage": stage, "days_silent": silent, "signals": signals, "lost_reason": reason}
    lower = stall_score(StallFacts(days_in_stage=days, **common)).score
    higher = stall_score(StallFacts(days_in_stage=days + more, **common)).score
    assert 0 <= lower <= higher <= 100


@given(stage=STAGE_NAMES, silent=st.integers(0, 500), in_stage=st.integers(0, 500), signals=SIGNALS, reason=REASONS)
def test_reengage_matches_the_threshold(stage, silent, in_stage, signals, reason):
    analysis = stall_score(
        StallFacts(days_silent=silent, stage=stage, days_in_stage=in_stage, signals=signals, lost_reason=reason)
    )
    assert analysis.reengage == (analysis.score >= REENGAGE_THRESHOLD)
    assert analysis.recommendation.startswith("re-engage:" if analysis.reengage else "no action:")


# --------------------------------------------------------------------------- the draft


def analysis(angle: str = "check_in", score: int = 63) -> StallAnalysis:
    return StallAnalysis(score=score, reasons=[], recommendation="re-engage: x", reengage=score >= 50, angle=angle)


def test_draft_references_the_first_trigger_event():
    draft = draft_reengagement(
        "Acme onboarding",
        "Dana Reyes",
        "Sam Lee",
        analysis("trigger"),
        ["", "  Acme opened a new office in Berlin.  ", "Acme hired a CRO"],
    )
    assert draft.subject == "Thought of you: Acme opened a new office in Berlin"
    assert draft.body.startswith(
        "Hi Dana,\n\nI came across this and thought of you: Acme opened a new office in Berlin."
    )
    assert "Acme onboarding" in draft.body
    assert "Acme hired a CRO" not in draft.body
    assert draft.body.endswith("Best,\nSam Lee")


def test_draft_without_trigger_follows_the_angle():
    draft = draft_reengagement("Acme onboarding", "Dana", "Sam", analysis("new_champion"), [])
    assert draft.subject == "Who should I talk to about Acme onboarding?"
    assert "the team around Acme onboarding has changed" in draft.body
    assert "came across" not in draft.body
    timing = draft_reengagement("Acme onboarding", "Dana", "Sam", analysis("timing"), [])
    assert timing.subject == "Picking Acme onboarding back up?"
    check_in = draft_reengagement("Acme onboarding", "Dana", "Sam", analysis("check_in"), [])
    assert check_in.subject == "Checking in on Acme onboarding"


def test_draft_with_a_trigger_keeps_a_specific_angle():
    draft = draft_reengagement("Acme onboarding", "Dana", "Sam", analysis("competitor"), ["Acme is reviewing vendors"])
    assert "thought of you: Acme is reviewing vendors." in draft.body
    assert "weighing other options" in draft.body


def test_draft_with_missing_names_and_a_long_trigger():
    long_event = "Acme announced " + "a very long expansion plan " * 20
    draft = draft_reengagement(None, None, "", analysis("none", score=10), [long_event])
    assert draft.body.startswith("Hi there,")
    assert draft.body.endswith("Best,")
    assert "our conversation" in draft.body
    assert len(draft.subject) <= len("Thought of you: ") + 61
    assert "\n" not in draft.subject
    assert "…" in draft.body


def test_draft_is_plain_text_with_a_question():
    draft = draft_reengagement("Deal {x}", "Dana", "Sam", analysis(), [])
    assert "Deal {x}" in draft.body  # braces in names are kept as written
    assert "15-minute call" in draft.body and "?" in draft.body
