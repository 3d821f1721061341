"""Coaching rules (coaching_weekly): ISO weeks across DST and time zones, aggregation, win/loss, digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from sequences.skills.coaching.rules import (
    CoachingDigest,
    DealOutcome,
    MeetingStats,
    Outcome,
    WeeklyMetrics,
    aggregate_week,
    coaching_digest,
    correlate_win_loss,
    iso_week_bounds,
    iso_week_of,
    meeting_score,
    parse_iso_week,
    previous_iso_week,
)

NY = ZoneInfo("America/New_York")
AUCKLAND = ZoneInfo("Pacific/Auckland")
ZONES = [
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/Santiago",
    "Europe/Berlin",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
]


def meeting(
    meeting_id: str,
    start: datetime,
    talk: float = 0.45,
    questions: int = 10,
    monologue_s: float = 80.0,
    clarity: float = 0.8,
    is_sales: bool = True,
    deal_id: str | None = None,
) -> MeetingStats:
    return MeetingStats(
        meeting_id=meeting_id,
        start=start,
        talk_ratio=talk,
        question_count=questions,
        longest_monologue_s=monologue_s,
        next_step_clarity=clarity,
        is_sales=is_sales,
        deal_id=deal_id,
    )


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


# --------------------------------------------------------------------------------------------------
# ISO weeks


def test_week_bounds_are_local_mondays_in_utc():
    start, end = iso_week_bounds("2026-W48", NY)
    assert start == datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
    assert start.tzinfo is UTC and end.tzinfo is UTC


def test_week_with_the_autumn_dst_change_is_169_hours():
    # New York falls back on Sunday 1 Nov 2026, the last day of 2026-W44.
    start, end = iso_week_bounds("2026-W44", NY)
    assert start == datetime(2026, 10, 26, 4, 0, tzinfo=UTC)  # Monday 00:00 EDT
    assert end == datetime(2026, 11, 2, 5, 0, tzinfo=UTC)  # Monday 00:00 EST
    assert end - start == timedelta(hours=169)


def test_first_week_after_the_dst_change_starts_on_standard_time():
    start, end = iso_week_bounds("2026-W45", "America/New_York")
    assert start == datetime(2026, 11, 2, 5, 0, tzinfo=UTC)
    assert end - start == timedelta(hours=168)
    assert iso_week_bounds("2026-W44", NY)[1] == start  # weeks tile: no gap, no overlap


def test_week_with_the_spring_dst_change_is_167_hours():
    start, end = iso_week_bounds("2026-W10", NY)  # clocks go forward on Sunday 8 Mar 2026
    assert end - start == timedelta(hours=167)


def test_monday_that_is_still_sunday_in_utc():
    monday_morning = datetime(2026, 11, 23, 8, 0, tzinfo=AUCKLAND)  # Sunday 19:00 UTC
    assert monday_morning.astimezone(UTC).weekday() == 6
    assert iso_week_of(monday_morning, AUCKLAND) == "2026-W48"
    assert iso_week_of(monday_morning, "UTC") == "2026-W47"
    start, _ = iso_week_bounds("2026-W48", AUCKLAND)
    assert start == datetime(2026, 11, 22, 11, 0, tzinfo=UTC)  # Monday 00:00 NZDT


def test_sunday_evening_that_is_already_monday_in_utc():
    sunday_evening = ny(2026, 11, 29, 21, 0)  # Monday 02:00 UTC
    assert iso_week_of(sunday_evening, NY) == "2026-W48"
    assert iso_week_of(sunday_evening, "UTC") == "2026-W49"


def test_iso_week_across_the_new_year():
    assert iso_week_of(datetime(2027, 1, 1, 12, tzinfo=UTC), "UTC") == "2026-W53"  # 2026 has 53 weeks
    assert iso_week_of(datetime(2025, 12, 29, 12, tzinfo=UTC), "UTC") == "2026-W01"
    start, end = iso_week_bounds("2026-W53", "UTC")
    assert (start.date().isoformat(), end.date().isoformat()) == ("2026-12-28", "2027-01-04")


@pytest.mark.parametrize("week", ["2026-48", "2026-W4", "W48", "2025-W53", "2026-W00", "2026-W54", "", "2026-w48x"])
def test_malformed_weeks_are_refused(week):
    with pytest.raises(ValueError, match="week"):
        parse_iso_week(week)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        iso_week_of(datetime(2026, 11, 23, 8, 0), NY)
    with pytest.raises(ValidationError):
        meeting("m", datetime(2026, 11, 23, 8, 0))


def test_previous_week_is_what_the_monday_digest_covers():
    assert previous_iso_week(ny(2026, 11, 30, 8, 0), NY) == "2026-W48"
    assert previous_iso_week(datetime(2027, 1, 4, 8, 0, tzinfo=AUCKLAND), AUCKLAND) == "2026-W53"
    # Monday 08:00 in Auckland is Sunday in UTC: the local week decides.
    assert previous_iso_week(datetime(2026, 11, 30, 8, 0, tzinfo=AUCKLAND), AUCKLAND) == "2026-W48"


@given(
    moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2060, 12, 31), timezones=st.just(UTC)),
    zone=st.sampled_from(ZONES),
)
def test_a_moment_lies_inside_the_bounds_of_its_own_week(moment, zone):
    week = iso_week_of(moment, zone)
    start, end = iso_week_bounds(week, zone)
    assert start <= moment < end
    assert timedelta(hours=166) <= end - start <= timedelta(hours=170)
    assert iso_week_of(start, zone) == week
    assert iso_week_of(end, zone) != week


# --------------------------------------------------------------------------------------------------
# Aggregation


def test_empty_week():
    metrics = aggregate_week([], "2026-W48", NY)
    assert metrics == WeeklyMetrics(week="2026-W48", meetings=0, sales_meetings=0)
    assert metrics.talk_ratio is None and metrics.best_meeting_id is None


def test_week_with_only_internal_meetings_has_no_metrics():
    metrics = aggregate_week([meeting("standup", ny(2026, 11, 24, 9, 0), is_sales=False)], "2026-W48", NY)
    assert (metrics.meetings, metrics.sales_meetings, metrics.talk_ratio) == (1, 0, None)


def test_metrics_are_over_the_weeks_sales_meetings():
    meetings = [
        meeting("disc", ny(2026, 11, 24, 10, 0), talk=0.40, questions=14, monologue_s=60, clarity=0.9),
        meeting("demo", ny(2026, 11, 25, 14, 0), talk=0.70, questions=3, monologue_s=260, clarity=0.2),
        meeting("neg", ny(2026, 11, 27, 11, 0), talk=0.50, questions=7, monologue_s=95, clarity=0.7),
        meeting("1on1", ny(2026, 11, 26, 9, 0), talk=0.90, questions=0, monologue_s=900, is_sales=False),
        meeting("last-week", ny(2026, 11, 20, 10, 0), talk=1.0, questions=0, monologue_s=999),
    ]
    metrics = aggregate_week(meetings, "2026-W48", NY)
    assert metrics.meetings == 4
    assert metrics.sales_meetings == 3
    assert metrics.talk_ratio == pytest.approx(0.533, abs=1e-3)
    assert metrics.questions_per_meeting == 8.0
    assert metrics.longest_monologue_s == 260.0
    assert metrics.next_step_clarity == 0.6
    assert metrics.best_meeting_id == "disc"
    assert metrics.worst_meeting_id == "demo"


def test_single_sales_meeting_has_no_worst():
    metrics = aggregate_week([meeting("only", ny(2026, 11, 24, 10, 0))], "2026-W48", NY)
    assert (metrics.best_meeting_id, metrics.worst_meeting_id) == ("only", None)


def test_week_edges_monday_midnight_in_next_monday_out():
    inside = meeting("first", ny(2026, 11, 23, 0, 0))
    outside = meeting("next", ny(2026, 11, 30, 0, 0))
    late_sunday = meeting("late", ny(2026, 11, 29, 23, 59))
    metrics = aggregate_week([inside, outside, late_sunday], "2026-W48", NY)
    assert metrics.meetings == 2


def test_meeting_on_local_monday_counts_in_the_local_week_only():
    monday_nz = meeting("nz", datetime(2026, 11, 23, 8, 0, tzinfo=AUCKLAND))  # Sunday in UTC
    assert aggregate_week([monday_nz], "2026-W48", AUCKLAND).meetings == 1
    assert aggregate_week([monday_nz], "2026-W48", "UTC").meetings == 0


def test_dst_week_counts_the_extra_hour():
    # 2026-W44 in New York ends at Monday 2 Nov 00:00 EST = 05:00 UTC; 04:30 UTC is Sunday 23:30 EST.
    late = meeting("late", datetime(2026, 11, 2, 4, 30, tzinfo=UTC))
    assert aggregate_week([late], "2026-W44", NY).meetings == 1
    assert aggregate_week([late], "2026-W45", NY).meetings == 0


def test_meeting_score_targets():
    ideal = meeting("ideal", ny(2026, 11, 24), talk=0.45, questions=12, monologue_s=60, clarity=1.0)
    assert meeting_score(ideal) == 1.0
    worst = meeting("worst", ny(2026, 11, 24), talk=0.95, questions=0, monologue_s=600, clarity=0.0)
    assert meeting_score(worst) == 0.0
    talky = meeting("talky", ny(2026, 11, 24), talk=0.65, questions=12, monologue_s=60, clarity=1.0)
    assert meeting_score(talky) == pytest.approx(0.85)
    silent = meeting("silent", ny(2026, 11, 24), talk=0.0, questions=12, monologue_s=60, clarity=1.0)
    assert meeting_score(silent) == pytest.approx(0.7)


@given(
    st.lists(
        st.builds(
            meeting,
            meeting_id=st.text(min_size=1, max_size=5),
            start=st.datetimes(
                min_value=datetime(2026, 11, 20), max_value=datetime(2026, 12, 2), timezones=st.just(UTC)
            ),
            talk=st.floats(0, 1),
            questions=st.integers(0, 40),
            monologue_s=st.floats(0, 3_600),
            clarity=st.floats(0, 1),
            is_sales=st.booleans(),
        ),
        max_size=12,
    ),
    st.sampled_from(ZONES),
)
def test_aggregates_stay_within_their_inputs(meetings, zone):
    metrics = aggregate_week(meetings, "2026-W48", zone)
    start, end = iso_week_bounds("2026-W48", zone)
    sales = [m for m in meetings if m.is_sales and start <= m.start < end]
    assert metrics.sales_meetings == len(sales) <= metrics.meetings <= len(meetings)
    if not sales:
        assert metrics.talk_ratio is None and metrics.best_meeting_id is None
        return
    assert min(m.talk_ratio for m in sales) - 1e-3 <= metrics.talk_ratio <= max(m.talk_ratio for m in sales) + 1e-3
    assert 0.0 <= metrics.next_step_clarity <= 1.0
    assert metrics.longest_monologue_s == round(max(m.longest_monologue_s for m in sales), 1)
    assert metrics.best_meeting_id in {m.meeting_id for m in sales}
    assert (metrics.worst_meeting_id is None) == (len(sales) < 2)


# --------------------------------------------------------------------------------------------------
# Win / loss


def deal(deal_id: str, outcome: str, *talks: float, questions: int = 8, clarity: float = 0.7) -> DealOutcome:
    return DealOutcome(
        deal_id=deal_id,
        outcome=outcome,
        meetings=[
            meeting(f"{deal_id}-{i}", ny(2026, 10, 1 + i), talk=t, questions=questions, clarity=clarity)
            for i, t in enumerate(talks)
        ],
    )


def test_no_deals():
    result = correlate_win_loss([])
    assert (result.won, result.lost) == (0, 0)
    assert result.notes == ["No closed deals yet: nothing to compare."]
    assert result.won_stats.talk_ratio is None


def test_only_won_deals():
    result = correlate_win_loss([deal("a", "won", 0.4), deal("b", "won", 0.5)])
    assert (result.won, result.lost) == (2, 0)
    assert result.notes == ["No recorded meetings on lost deals yet: nothing to compare."]


def test_won_deals_talk_less():
    deals = [
        deal("w1", "won", 0.38, 0.42, questions=12, clarity=0.9),
        deal("w2", "won", 0.43, questions=11, clarity=0.8),
        deal("w3", "won", 0.40, questions=12, clarity=0.85),
        deal("l1", "lost", 0.70, 0.66, questions=4, clarity=0.3),
        deal("l2", "lost", 0.68, questions=5, clarity=0.4),
        deal("l3", "closed_lost", 0.68, questions=5, clarity=0.4),
        deal("l4", "lost"),  # no recorded meeting: counted, not averaged
    ]
    result = correlate_win_loss(deals)
    assert (result.won, result.lost) == (3, 4)
    assert result.lost_stats.deals_with_meetings == 3
    assert result.won_stats.talk_ratio == pytest.approx(0.41, abs=1e-3)  # per deal first: (0.40 + 0.43 + 0.40) / 3
    assert result.notes[0] == "Won deals averaged 41 % talk ratio vs 68 % in lost ones."
    assert "Won deals averaged 11.7 questions per meeting vs 4.7 in lost ones." in result.notes
    assert "Next-step clarity was 85 % in won deals vs 37 % in lost ones." in result.notes
    assert not any("Small sample" in n for n in result.notes)


def test_similar_deals_and_small_samples_are_said_so():
    result = correlate_win_loss([deal("w", "won", 0.45), deal("l", "lost", 0.47)])
    assert result.notes == [
        "Won and lost deals look alike on these metrics.",
        "Small sample (1 won deal, 1 lost deal): treat as a hint.",
    ]


def test_stage_names_are_accepted_as_outcomes():
    assert DealOutcome(deal_id="d", outcome="closed_won").outcome is Outcome.WON
    with pytest.raises(ValidationError):
        DealOutcome(deal_id="d", outcome="open")


# --------------------------------------------------------------------------------------------------
# Digest


def weekly(**values: object) -> WeeklyMetrics:
    base: dict[str, object] = {
        "week": "2026-W48",
        "meetings": 6,
        "sales_meetings": 5,
        "talk_ratio": 0.55,
        "questions_per_meeting": 8.0,
        "longest_monologue_s": 120.0,
        "next_step_clarity": 0.6,
        "best_meeting_id": "m-3",
        "worst_meeting_id": "m-5",
    }
    base.update(values)
    return WeeklyMetrics(**base)


def test_digest_with_deltas_highlights_and_suggestions():
    previous = weekly(
        week="2026-W47",
        meetings=4,
        talk_ratio=0.68,
        questions_per_meeting=5.0,
        longest_monologue_s=200.0,
        next_step_clarity=0.45,
    )
    current = weekly(talk_ratio=0.62, questions_per_meeting=7.5, longest_monologue_s=160.0, next_step_clarity=0.7)
    win_loss = correlate_win_loss(
        [
            deal("w", "won", 0.41),
            deal("w2", "won", 0.41),
            deal("w3", "won", 0.41),
            deal("l", "lost", 0.68),
            deal("l2", "lost", 0.68),
            deal("l3", "lost", 0.68),
        ]
    )
    digest = coaching_digest("Ana", current, previous, win_loss)
    assert isinstance(digest, CoachingDigest)
    assert digest.week == "2026-W48"
    assert digest.highlights == [
        "Talk ratio down from 68 % to 62 %: more listening.",
        "More discovery: 7.5 questions per meeting, up from 5.0.",
        "Shorter monologues: longest 2 min 40 s, down from 3 min 20 s.",
        "Clearer next steps: 70 %, up from 45 %.",
    ]
    assert digest.suggestions[0] == (
        "You talked 62 % of the time: aim for under 50 % with open questions and pauses. Your won deals averaged 41 %."
    )
    assert any("longest monologue ran 2 min 40 s" in s for s in digest.suggestions)
    assert "Talk ratio: 62 % (-6 pts vs last week)" in digest.text
    assert "Questions per meeting: 7.5 (+2.5 vs last week)" in digest.text
    assert "Meetings: 6 (5 sales) (+2 vs last week)" in digest.text
    assert "Best meeting: m-3 · needs work: m-5" in digest.text
    assert "Won deals averaged 41 % talk ratio vs 68 % in lost ones." in digest.text


def test_digest_dumps_flat_metrics_for_the_slack_digest():
    dumped = coaching_digest("Ana", weekly(), None, None).model_dump(mode="json")
    for key in (
        "rep_name",
        "week",
        "meetings",
        "talk_ratio",
        "questions_per_meeting",
        "longest_monologue_s",
        "next_step_clarity",
        "previous",
        "highlights",
        "suggestions",
        "win_loss",
    ):
        assert key in dumped
    assert dumped["talk_ratio"] == 0.55


def test_digest_on_target_week_without_previous():
    current = weekly(talk_ratio=0.42, questions_per_meeting=12.0, longest_monologue_s=70.0, next_step_clarity=0.8)
    digest = coaching_digest("Ana", current, None, None)
    assert digest.suggestions == []
    assert digest.highlights == [
        "Balanced talk ratio (42 %): prospects talked at least as much as you.",
        "Strong discovery: 12.0 questions per meeting (target 11).",
        "Kept it a dialogue: no monologue longer than 1 min 10 s.",
        "Meetings ended on clear next steps (80 %).",
    ]
    assert "vs last week" not in digest.text


def test_digest_suggestions_are_capped_and_ordered():
    current = weekly(talk_ratio=0.75, questions_per_meeting=3.0, longest_monologue_s=400.0, next_step_clarity=0.2)
    digest = coaching_digest("Ana", current, None, None)
    assert len(digest.suggestions) == 3
    assert digest.suggestions[0].startswith("You talked 75 %")
    assert digest.suggestions[1].startswith("Next steps were unclear (20 %)")
    assert (
        digest.suggestions[2]
        == "Ask more discovery questions: 3.0 per meeting (target 11); prepare them before each call."
    )


def test_empty_week_digest():
    empty = WeeklyMetrics(week="2026-W48", meetings=0, sales_meetings=0)
    digest = coaching_digest("", empty, weekly(week="2026-W47"), correlate_win_loss([]))
    assert digest.highlights == [] and digest.suggestions == []
    assert digest.text.splitlines()[0] == "Coaching digest, week 2026-W48"
    assert "No recorded sales meetings in 2026-W48" in digest.text
    assert "No closed deals yet" in digest.text
