"""worker.worktime: working hours in the rep's zone, the next working morning, zone fallbacks
(approvals expire after 24 working hours in the approver's tz; both DST edges)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.worktime import next_working_morning, working_hours_after, zone

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
ZONES = [NY, BERLIN, KOLKATA]
ZONE_IDS = [z.key for z in ZONES]


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)


def wall(instant: datetime, tz: ZoneInfo) -> tuple:
    """The local wall clock of `instant` in `tz`, as comparable plain values."""
    t = instant.astimezone(tz)
    return (t.year, t.month, t.day, t.hour, t.minute, t.strftime("%a"))


# --------------------------------------------------------------------------- working_hours_after


@pytest.mark.parametrize("tz", ZONES, ids=ZONE_IDS)
def test_monday_morning_plus_24h_is_tuesday_morning(tz):
    start = local(tz, 2026, 1, 5, 10, 0)  # Monday
    end = working_hours_after(start, tz, 24)
    assert wall(end, tz) == (2026, 1, 6, 10, 0, "Tue")
    assert end - start == timedelta(hours=24)


@pytest.mark.parametrize("tz", ZONES, ids=ZONE_IDS)
def test_friday_afternoon_plus_24h_skips_the_weekend(tz):
    start = local(tz, 2026, 1, 9, 15, 0)  # Friday
    end = working_hours_after(start, tz, 24)
    assert wall(end, tz) == (2026, 1, 12, 15, 0, "Mon")
    assert end - start == timedelta(hours=72)


def test_the_weekend_is_the_approvers_not_utcs():
    # Friday 23:00 in New York is already Saturday 04:00 UTC: the New York clock still runs
    start = local(NY, 2026, 1, 9, 23, 0)
    assert wall(working_hours_after(start, NY, 0.5), NY) == (2026, 1, 9, 23, 30, "Fri")
    # Monday 02:00 in Kolkata is still Sunday in UTC: the Kolkata clock runs
    start = local(KOLKATA, 2026, 1, 12, 2, 0)
    assert wall(working_hours_after(start, KOLKATA, 1), KOLKATA) == (2026, 1, 12, 3, 0, "Mon")


def test_result_is_utc_and_independent_of_the_starts_zone():
    start = local(BERLIN, 2026, 1, 9, 15, 0)
    end = working_hours_after(start, BERLIN, 24)
    assert end.tzinfo is UTC
    assert working_hours_after(start.astimezone(UTC), BERLIN, 24) == end
    assert working_hours_after(start.astimezone(NY), BERLIN, 24) == end


@pytest.mark.parametrize(
    ("tz", "friday", "spring"),
    [
        (NY, (2026, 3, 6), True),  # DST starts Sunday 8 March
        (NY, (2026, 10, 30), False),  # DST ends Sunday 1 November
        (BERLIN, (2026, 3, 27), True),  # DST starts Sunday 29 March
        (BERLIN, (2026, 10, 23), False),  # DST ends Sunday 25 October
    ],
    ids=["ny-march", "ny-november", "berlin-march", "berlin-october"],
)
def test_friday_to_monday_across_dst_is_24_wall_hours(tz, friday, spring):
    start = local(tz, *friday, 15, 0)
    end = working_hours_after(start, tz, 24)
    monday = datetime(*friday) + timedelta(days=3)
    assert wall(end, tz) == (monday.year, monday.month, monday.day, 15, 0, "Mon")
    # the weekend in between was one hour shorter (spring) or longer (autumn)
    assert end - start == timedelta(hours=71 if spring else 73)


@pytest.mark.parametrize(
    ("tz", "thursday"),
    [
        (NY, (2026, 3, 5)),
        (NY, (2026, 10, 29)),
        (BERLIN, (2026, 3, 26)),
        (BERLIN, (2026, 10, 22)),
    ],
)
def test_48_working_hours_across_dst_lands_on_the_same_wall_time(tz, thursday):
    start = local(tz, *thursday, 10, 0)
    end = working_hours_after(start, tz, 48)
    monday = datetime(*thursday) + timedelta(days=4)
    assert wall(end, tz) == (monday.year, monday.month, monday.day, 10, 0, "Mon")


@pytest.mark.parametrize("tz", ZONES, ids=ZONE_IDS)
def test_starting_on_saturday_counts_from_monday_midnight(tz):
    start = local(tz, 2026, 1, 10, 13, 0)  # Saturday
    assert wall(working_hours_after(start, tz, 24), tz) == (2026, 1, 13, 0, 0, "Tue")
    assert wall(working_hours_after(start, tz, 0), tz) == (2026, 1, 12, 0, 0, "Mon")


def test_starting_late_on_sunday_counts_from_monday_midnight():
    start = local(BERLIN, 2026, 1, 11, 23, 59)
    assert wall(working_hours_after(start, BERLIN, 24), BERLIN) == (2026, 1, 13, 0, 0, "Tue")


def test_reminder_after_4_working_hours():
    assert wall(working_hours_after(local(NY, 2026, 1, 9, 15, 0), NY, 4), NY) == (2026, 1, 9, 19, 0, "Fri")
    assert wall(working_hours_after(local(NY, 2026, 1, 9, 22, 0), NY, 4), NY) == (2026, 1, 12, 2, 0, "Mon")


def test_fractional_and_zero_hours_on_a_weekday():
    start = local(BERLIN, 2026, 1, 6, 10, 0)
    assert working_hours_after(start, BERLIN, 0) == start
    assert wall(working_hours_after(start, BERLIN, 1.5), BERLIN) == (2026, 1, 6, 11, 30, "Tue")


def test_a_full_working_week_ends_on_the_next_monday():
    start = local(KOLKATA, 2026, 1, 5, 9, 0)
    assert wall(working_hours_after(start, KOLKATA, 5 * 24), KOLKATA) == (2026, 1, 12, 9, 0, "Mon")


def test_naive_start_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        working_hours_after(datetime(2026, 1, 5, 10, 0), NY, 24)


PROPERTY_ZONES = [NY, BERLIN, KOLKATA, ZoneInfo("Australia/Sydney"), ZoneInfo("America/Sao_Paulo"), ZoneInfo("UTC")]
starts = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC))
quarter_hours = st.integers(0, 4 * 24 * 10).map(lambda q: q / 4)


@given(start=starts, a=quarter_hours, b=quarter_hours, tz=st.sampled_from(PROPERTY_ZONES))
def test_working_hours_add_up(start, a, b, tz):
    once = working_hours_after(start, tz, a + b)
    assert working_hours_after(working_hours_after(start, tz, a), tz, b) == once
    assert once - start >= timedelta(hours=a + b)  # weekends only ever add time
    assert working_hours_after(start, tz, a) <= once


# --------------------------------------------------------------------------- next_working_morning


def test_friday_evening_snoozes_to_monday_morning():
    now = local(NY, 2026, 1, 9, 18, 0)
    got = next_working_morning(now, NY)
    assert wall(got, NY) == (2026, 1, 12, 9, 0, "Mon")
    assert got.tzinfo is UTC
    assert got == datetime(2026, 1, 12, 14, 0, tzinfo=UTC)


def snooze(tz: ZoneInfo, *args: int) -> tuple:
    """next_working_morning from local time `args` in `tz`, as a local wall clock."""
    return wall(next_working_morning(local(tz, *args), tz), tz)


def test_weekday_before_nine_snoozes_to_the_same_morning():
    assert snooze(BERLIN, 2026, 1, 6, 7, 30) == (2026, 1, 6, 9, 0, "Tue")
    assert snooze(BERLIN, 2026, 1, 6, 0, 0) == (2026, 1, 6, 9, 0, "Tue")


def test_weekday_at_or_after_nine_snoozes_to_the_next_morning():
    assert snooze(BERLIN, 2026, 1, 6, 9, 0) == (2026, 1, 7, 9, 0, "Wed")
    assert snooze(BERLIN, 2026, 1, 6, 12, 0) == (2026, 1, 7, 9, 0, "Wed")


def test_saturday_and_sunday_snooze_to_monday():
    assert snooze(KOLKATA, 2026, 1, 10, 6, 0) == (2026, 1, 12, 9, 0, "Mon")
    assert snooze(KOLKATA, 2026, 1, 11, 23, 0) == (2026, 1, 12, 9, 0, "Mon")


def test_the_morning_is_local_to_the_rep_not_to_utc():
    # Monday 03:00 UTC is still Sunday 22:00 in New York: the next NY morning is Monday 09:00 NY
    got = next_working_morning(datetime(2026, 1, 12, 3, 0, tzinfo=UTC), NY)
    assert got == datetime(2026, 1, 12, 14, 0, tzinfo=UTC)


def test_next_morning_across_the_spring_dst_edge():
    got = next_working_morning(local(NY, 2026, 3, 6, 18, 0), NY)
    assert got == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # 09:00 EDT


def test_next_morning_at_a_custom_time():
    got = next_working_morning(local(BERLIN, 2026, 1, 6, 8, 0), BERLIN, at=time(8, 30))
    assert wall(got, BERLIN) == (2026, 1, 6, 8, 30, "Tue")


@given(now=starts, tz=st.sampled_from(PROPERTY_ZONES[:-1]))
def test_next_morning_is_a_weekday_nine_within_four_days(now, tz):
    got = next_working_morning(now, tz)
    assert now < got <= now + timedelta(days=4)
    t = got.astimezone(tz)
    assert (t.hour, t.minute) == (9, 0)
    assert t.weekday() < 5


# --------------------------------------------------------------------------- zone


@pytest.mark.parametrize("name", [None, "", "Not/AZone", "America", "../etc/passwd", "berlin"])
def test_zone_falls_back_to_utc(name):
    assert zone(name) == ZoneInfo("UTC")


def test_zone_uses_the_fallback_before_utc():
    assert zone(None, fallback="Europe/Berlin") == BERLIN
    assert zone("Mars/Olympus", fallback="Asia/Kolkata") == KOLKATA
    assert zone("Mars/Olympus", fallback="Also/Bad") == ZoneInfo("UTC")


def test_zone_returns_the_named_zone():
    assert zone("America/New_York") == NY
    assert zone("America/New_York", fallback="Europe/Berlin").key == "America/New_York"
