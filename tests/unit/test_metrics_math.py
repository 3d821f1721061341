"""The arithmetic of the org metrics: percentiles, rates, local days across DST, zero-filled rows."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.metrics import maths as mm

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def test_percentile_interpolates_between_closest_ranks_like_percentile_cont():
    values = [10, 20, 30, 40]
    assert mm.percentile(values, 0.5) == 25
    assert mm.percentile(values, 0.95) == pytest.approx(38.5)
    assert mm.percentile(values, 0) == 10 and mm.percentile(values, 1) == 40
    assert mm.percentile([7], 0.9) == 7
    assert mm.percentile([], 0.5) is None
    assert mm.percentile([3, 1, 2], 0.5) == 2  # order of the input does not matter


def test_percentile_refuses_a_q_outside_0_to_1():
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        mm.percentile([1], 95)


@given(st.lists(st.floats(min_value=0, max_value=1e9), min_size=1, max_size=50), st.floats(min_value=0, max_value=1))
def test_percentile_lies_between_min_and_max_and_grows_with_q(values, q):
    p = mm.percentile(values, q)
    assert p is not None and min(values) <= p <= max(values)
    assert mm.percentile(values, min(1.0, q + 0.1)) >= p - 1e-6


def test_success_rate_counts_finished_jobs_only():
    assert mm.success_rate(3, 1, 0) == 0.75
    assert mm.success_rate(1, 1, 1) == 0.3333
    assert mm.success_rate(0, 0, 0) is None
    assert mm.rate(0, 5) == 0.0


def test_window_days_end_today_in_the_zone():
    late_evening_utc = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)  # already the 11th in Berlin
    days = mm.window_days(late_evening_utc, BERLIN, 3)
    assert days == [date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 11)]
    assert mm.window_days(late_evening_utc, NEW_YORK, 1) == [date(2026, 3, 10)]
    with pytest.raises(ValueError, match="at least 1"):
        mm.window_days(late_evening_utc, BERLIN, 0)


def test_day_bounds_are_23_and_25_hours_long_across_dst():
    spring = mm.day_bounds([date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)], BERLIN)
    assert [b - a for a, b in itertools.pairwise(spring)] == [
        timedelta(hours=24),
        timedelta(hours=23),
        timedelta(hours=24),
    ]
    assert spring[1] == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    autumn = mm.day_bounds([date(2026, 10, 25)], BERLIN)
    assert autumn[1] - autumn[0] == timedelta(hours=25)
    assert mm.day_bounds([], BERLIN) == []


def test_daily_rows_zero_fill_and_count_timeouts_as_failed():
    days = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)]
    rows = mm.daily_rows(days, {0: {"completed": 2, "failed": 1, "skipped": 1}, 2: {"timeout": 1}})
    assert rows == [
        {"date": "2026-01-01", "total": 4, "completed": 2, "failed": 1},
        {"date": "2026-01-02", "total": 0, "completed": 0, "failed": 0},
        {"date": "2026-01-03", "total": 1, "completed": 0, "failed": 1},
    ]


def test_top_orders_by_count_then_name():
    assert list(mm.top({"b": 2, "a": 2, "c": 5})) == ["c", "a", "b"]
    assert mm.top({"b": 2, "a": 2, "c": 5}, limit=1) == {"c": 5}


def test_elapsed_ms_subtracts_the_pause_and_never_goes_negative():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert mm.elapsed_ms(t0, t0 + timedelta(seconds=10), paused_ms=4000) == 6000
    assert mm.elapsed_ms(t0, t0 + timedelta(seconds=1), paused_ms=5000) == 0
