"""Deal risk rules (deal_risk_scan): each rule at its boundaries, the cap, levels, alerting."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sequences.skills.deals.risk_rules import (
    LATE_STAGES,
    OPEN_STAGES,
    STAGES,
    DealFacts,
    Factor,
    RiskLevel,
    days_inactive,
    risk_level,
    risk_score,
    score_from_factors,
    should_alert,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
ENGAGEMENT_RULES = {"inactive_14d", "inactive_7d", "no_emails_30d", "few_emails_30d"}
PRIMARY_RULES = {"primary_contact_silent", "primary_contact_one_email"}
CLOSE_RULES = {"close_date_passed", "closing_soon_early_stage"}

# A healthy deal: no rule fires.
HEALTHY = DealFacts(
    deal_id="deal-1",
    stage="discovery",
    value=Decimal(5000),
    close_date=None,
    last_activity_at=NOW - timedelta(days=1),
    created_at=NOW - timedelta(days=90),
    emails_30d=5,
    primary_contact_emails_30d=3,
    meetings_30d=1,
    contacts_engaged_30d=3,
)


def facts(**changes: Any) -> DealFacts:
    return replace(HEALTHY, **changes)


def rules(deal: DealFacts, now: datetime = NOW) -> dict[str, int]:
    return {f.rule: f.points for f in risk_score(deal, now).factors}


def test_stage_constants():
    assert set(STAGES) == OPEN_STAGES | {"closed_won", "closed_lost"}
    assert frozenset({"proposal", "negotiation"}) == LATE_STAGES
    assert LATE_STAGES <= OPEN_STAGES


def test_healthy_deal_scores_zero():
    result = risk_score(HEALTHY, NOW)
    assert (result.score, result.level, result.factors) == (0, RiskLevel.LOW, ())


# --- engagement group: first match, at most 25 -----------------------------------------------------


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (6, {}),
        (7, {"inactive_7d": 15}),
        (13, {"inactive_7d": 15}),
        (14, {"inactive_14d": 25}),
        (40, {"inactive_14d": 25}),
    ],
)
def test_inactivity_boundaries(days, expected):
    deal = facts(last_activity_at=NOW - timedelta(days=days), meetings_30d=1)
    assert rules(deal) == expected


def test_inactivity_counts_whole_days():
    deal = facts(last_activity_at=NOW - timedelta(days=7) + timedelta(seconds=1))
    assert days_inactive(deal, NOW) == 6
    assert rules(deal) == {}


def test_never_active_deal_counts_from_creation():
    deal = facts(last_activity_at=None, created_at=NOW - timedelta(days=8))
    assert rules(deal) == {"inactive_7d": 15}


def test_activity_in_the_future_counts_as_today():
    assert days_inactive(facts(last_activity_at=NOW + timedelta(hours=5)), NOW) == 0


@pytest.mark.parametrize(
    ("emails", "expected"),
    [(0, {"no_emails_30d": 25}), (1, {"few_emails_30d": 10}), (2, {"few_emails_30d": 10}), (3, {})],
)
def test_email_boundaries(emails, expected):
    assert rules(facts(emails_30d=emails)) == expected


def test_engagement_group_takes_the_first_match_not_the_max():
    # 8 days inactive matches before "no emails" (25): the group adds 15 only.
    assert rules(facts(last_activity_at=NOW - timedelta(days=8), emails_30d=0)) == {"inactive_7d": 15}


def test_engagement_group_adds_at_most_25():
    deal = facts(last_activity_at=NOW - timedelta(days=30), emails_30d=0, meetings_30d=1)
    assert rules(deal) == {"inactive_14d": 25}


# --- primary contact -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("emails", "expected"),
    [
        (None, {}),
        (0, {"primary_contact_silent": 20}),
        (1, {"primary_contact_one_email": 10}),
        (2, {}),
    ],
)
def test_primary_contact(emails, expected):
    assert rules(facts(primary_contact_emails_30d=emails)) == expected


# --- close date ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset_days", "stage", "expected"),
    [
        (-1, "discovery", {"close_date_passed": 15}),
        (-1, "negotiation", {"close_date_passed": 15}),
        (0, "discovery", {"closing_soon_early_stage": 10}),
        (7, "demo", {"closing_soon_early_stage": 10}),
        (8, "demo", {}),
        (0, "proposal", {}),
        (3, "negotiation", {}),
        (7, "qualification", {"closing_soon_early_stage": 10}),
    ],
)
def test_close_date_boundaries(offset_days, stage, expected):
    deal = facts(close_date=TODAY + timedelta(days=offset_days), stage=stage)
    assert rules(deal) == expected


def test_today_is_the_utc_date_of_now():
    late_evening = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
    deal = facts(close_date=date(2026, 11, 25), last_activity_at=late_evening - timedelta(days=1))
    assert rules(deal, late_evening) == {"closing_soon_early_stage": 10}
    assert rules(deal, late_evening + timedelta(hours=1)) == {"close_date_passed": 15}


def test_stage_is_compared_case_insensitively():
    assert rules(facts(close_date=TODAY, stage=" Proposal ")) == {}


# --- single-threaded -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "contacts", "expected"),
    [
        (Decimal(10_000), 1, {"single_threaded": 10}),
        (Decimal("10000.01"), 1, {"single_threaded": 15}),
        (10_000.0, 1, {"single_threaded": 10}),
        (10_000.01, 1, {"single_threaded": 15}),
        (Decimal(50_000), 0, {"single_threaded": 15}),
        (Decimal(50_000), 2, {}),
    ],
)
def test_single_threaded(value, contacts, expected):
    assert rules(facts(value=value, contacts_engaged_30d=contacts)) == expected


# --- no meetings and silent ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meetings", "days", "expected"),
    [
        (0, 14, {"inactive_14d": 25, "no_meetings_silent": 5}),
        (0, 13, {"inactive_7d": 15}),
        (1, 14, {"inactive_14d": 25}),
    ],
)
def test_no_meetings_and_silent(meetings, days, expected):
    deal = facts(meetings_30d=meetings, last_activity_at=NOW - timedelta(days=days))
    assert rules(deal) == expected


# --- totals, cap, levels ---------------------------------------------------------------------------


def test_every_rule_at_once_adds_up():
    deal = facts(
        last_activity_at=NOW - timedelta(days=30),
        emails_30d=0,
        primary_contact_emails_30d=0,
        close_date=TODAY - timedelta(days=3),
        value=Decimal(20_000),
        contacts_engaged_30d=1,
        meetings_30d=0,
    )
    result = risk_score(deal, NOW)
    assert result.score == 25 + 20 + 15 + 15 + 5
    assert result.level == RiskLevel.HIGH
    assert [f.rule for f in result.factors] == [
        "inactive_14d",
        "primary_contact_silent",
        "close_date_passed",
        "single_threaded",
        "no_meetings_silent",
    ]
    assert all(f.detail for f in result.factors)


def test_score_is_capped_at_100():
    result = score_from_factors([Factor("a", 60, "a"), Factor("b", 60, "b")])
    assert result.score == 100
    assert result.level == RiskLevel.HIGH
    assert len(result.factors) == 2


def test_score_never_goes_below_zero():
    assert score_from_factors([Factor("a", -5, "a")]).score == 0


@pytest.mark.parametrize(
    ("score", "level"),
    [(0, "low"), (39, "low"), (40, "medium"), (59, "medium"), (60, "high"), (100, "high")],
)
def test_levels(score, level):
    assert risk_level(score) == level
    assert score_from_factors([Factor("x", score, "x")]).level == level


def test_closed_deals_carry_no_risk():
    deal = facts(stage="closed_lost", last_activity_at=NOW - timedelta(days=60), emails_30d=0)
    assert risk_score(deal, NOW).score == 0


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        risk_score(HEALTHY, NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="last_activity_at"):
        risk_score(facts(last_activity_at=datetime(2026, 11, 1)), NOW)


deal_facts = st.builds(
    DealFacts,
    deal_id=st.just("d"),
    stage=st.sampled_from(STAGES),
    value=st.one_of(
        st.decimals(min_value=0, max_value=10**9, allow_nan=False, places=2),
        st.floats(min_value=0, max_value=1e9, allow_nan=False),
    ),
    close_date=st.one_of(st.none(), st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31))),
    last_activity_at=st.one_of(
        st.none(),
        st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
    ),
    created_at=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 11, 25), timezones=st.just(UTC)),
    emails_30d=st.integers(min_value=0, max_value=50),
    primary_contact_emails_30d=st.one_of(st.none(), st.integers(min_value=0, max_value=10)),
    meetings_30d=st.integers(min_value=0, max_value=10),
    contacts_engaged_30d=st.integers(min_value=0, max_value=10),
)


@given(deal_facts)
def test_score_is_the_capped_sum_of_its_factors(deal):
    result = risk_score(deal, NOW)
    names = [f.rule for f in result.factors]
    assert 0 <= result.score <= 100
    assert result.score == min(100, sum(f.points for f in result.factors))
    assert result.level == risk_level(result.score)
    assert len(names) == len(set(names))
    for group in (ENGAGEMENT_RULES, PRIMARY_RULES, CLOSE_RULES):
        assert len(group.intersection(names)) <= 1
    assert all(f.points > 0 and f.detail for f in result.factors)


# --- should_alert ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "previous", "expected"),
    [
        (60, None, True),
        (59, None, False),
        (59, 48, True),  # up by 11
        (59, 49, False),  # up by 10 only
        (30, 19, True),
        (70, 90, True),  # high even though falling
        (20, 30, False),
    ],
)
def test_should_alert_on_score(score, previous, expected):
    assert should_alert(score, previous, None, NOW) is expected


@pytest.mark.parametrize(
    ("ago", "expected"),
    [
        (timedelta(days=7), True),
        (timedelta(days=7) - timedelta(seconds=1), False),
        (timedelta(days=6), False),
        (timedelta(days=8), True),
        (timedelta(0), False),
        (-timedelta(hours=1), False),  # clock skew: alerted "in the future" counts as recent
    ],
)
def test_should_alert_waits_seven_days(ago, expected):
    assert should_alert(80, 70, NOW - ago, NOW) is expected


def test_should_alert_never_when_not_risky_even_long_after():
    assert should_alert(30, 30, NOW - timedelta(days=30), NOW) is False


def test_should_alert_refuses_naive_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        should_alert(80, None, None, NOW.replace(tzinfo=None))
