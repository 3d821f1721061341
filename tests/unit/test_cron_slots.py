"""Cron slot arithmetic (worker/crons/slots.py): slots, briefing instants across DST, defaults."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from worker.crons import slots as cs

NY, BERLIN, KOLKATA, TOKYO = (ZoneInfo(z) for z in ("America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo"))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def briefs_in(tz: ZoneInfo, when: time, first: date, days: int) -> Counter[date]:
    """Walk every 15-minute UTC slot over `days` days and count each local day's briefs."""
    seen: Counter[date] = Counter()
    start = datetime.combine(first, time(0), tzinfo=UTC) - timedelta(days=1)
    for i in range((days + 2) * 96):
        day = cs.brief_day(when, tz, start + i * cs.MORNING_SLOT)
        if day is not None:
            seen[day] += 1
    return seen


# ---------------------------------------------------------------------------------------- slots


def test_slot_start_floors_to_aligned_utc_slots() -> None:
    assert cs.slot_start(at("2026-11-25 08:14:59"), cs.MORNING_SLOT) == at("2026-11-25 08:00")
    assert cs.slot_start(at("2026-11-25 08:15:00"), cs.MORNING_SLOT) == at("2026-11-25 08:15")
    assert cs.slot_start(at("2026-11-25 08:59:00"), cs.PREP_SLOT) == at("2026-11-25 08:30")
    berlin_noon = datetime(2026, 7, 1, 12, 7, tzinfo=BERLIN)  # 10:07 UTC
    assert cs.slot_start(berlin_noon, cs.HOURLY_SLOT) == at("2026-07-01 10:00")
    assert cs.slot_start(datetime(2026, 7, 1, 10, 7), cs.HOURLY_SLOT) == at("2026-07-01 10:00")  # naive = UTC


def test_slot_length_must_divide_a_day() -> None:
    with pytest.raises(ValueError, match="divide a day"):
        cs.slot_start(at("2026-11-25 08:00"), timedelta(minutes=7))


def test_recent_slots_cover_the_catch_up_window_oldest_first() -> None:
    slots = cs.recent_slots(at("2026-11-25 10:05"), cs.MORNING_SLOT, cs.BRIEF_CATCH_UP)
    assert slots[0] == at("2026-11-25 08:00") and slots[-1] == at("2026-11-25 10:00")
    assert len(slots) == 9 and slots == sorted(slots)


def test_slot_key_names_the_task_the_utc_slot_and_the_parts() -> None:
    key = cs.slot_key("morning-brief", datetime(2026, 11, 25, 9, 15, tzinfo=BERLIN), "org-1")
    assert key == "morning-brief:2026-11-25T08:15Z:org-1"


# ---------------------------------------------------------------------------------------- briefing instants


@pytest.mark.parametrize("tz", [NY, BERLIN, KOLKATA, TOKYO], ids=str)
def test_every_local_day_of_the_year_gets_exactly_one_brief(tz: ZoneInfo) -> None:
    seen = briefs_in(tz, time(8, 0), date(2026, 1, 1), 365)
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    assert [seen[d] for d in days] == [1] * 365


@pytest.mark.parametrize(
    ("tz", "day", "local", "expected_utc"),
    [
        (NY, date(2026, 3, 7), time(8, 0), "2026-03-07 13:00"),  # EST, the day before spring forward
        (NY, date(2026, 3, 8), time(8, 0), "2026-03-08 12:00"),  # EDT from 02:00 that morning
        (NY, date(2026, 11, 1), time(8, 0), "2026-11-01 13:00"),  # EST again (fall back at 02:00)
        (BERLIN, date(2026, 3, 29), time(8, 0), "2026-03-29 06:00"),  # CEST from 02:00 that day
        (BERLIN, date(2026, 10, 25), time(8, 0), "2026-10-25 07:00"),  # CET from 03:00 that day
        (KOLKATA, date(2026, 6, 1), time(8, 0), "2026-06-01 02:30"),  # +05:30, no DST
    ],
)
def test_briefing_instant_follows_the_offset_of_that_day(
    tz: ZoneInfo, day: date, local: time, expected_utc: str
) -> None:
    instant = cs.local_instant(day, local, tz)
    assert instant == at(expected_utc)
    assert cs.brief_day(local, tz, cs.slot_start(instant, cs.MORNING_SLOT)) == day


@pytest.mark.parametrize(
    ("tz", "day", "missing"),
    [(NY, date(2026, 3, 8), time(2, 30)), (BERLIN, date(2026, 3, 29), time(2, 30))],
)
def test_a_briefing_time_that_does_not_exist_is_moved_forward_by_the_gap(
    tz: ZoneInfo, day: date, missing: time
) -> None:
    instant = cs.local_instant(day, missing, tz)
    assert instant.astimezone(tz).time() == time(3, 30)  # one hour later on the wall clock
    seen = briefs_in(tz, missing, day - timedelta(days=2), 5)
    assert [seen[day + timedelta(days=i)] for i in range(-2, 3)] == [1, 1, 1, 1, 1]


@pytest.mark.parametrize(
    ("tz", "day", "twice", "first_utc"),
    [
        (NY, date(2026, 11, 1), time(1, 30), "2026-11-01 05:30"),
        (BERLIN, date(2026, 10, 25), time(2, 30), "2026-10-25 00:30"),
    ],
)
def test_a_briefing_time_that_happens_twice_is_sent_at_its_first_occurrence(
    tz: ZoneInfo, day: date, twice: time, first_utc: str
) -> None:
    assert cs.local_instant(day, twice, tz) == at(first_utc)
    second = at(first_utc) + timedelta(hours=1)  # the same wall time again, after the clocks go back
    assert second.astimezone(tz).time() == twice
    assert cs.brief_day(twice, tz, cs.slot_start(second, cs.MORNING_SLOT)) is None
    seen = briefs_in(tz, twice, day - timedelta(days=2), 5)
    assert [seen[day + timedelta(days=i)] for i in range(-2, 3)] == [1, 1, 1, 1, 1]


def test_a_local_monday_that_is_still_sunday_in_utc() -> None:
    monday = date(2026, 11, 30)
    slot = at("2026-11-29 23:00")  # Sunday in UTC, Monday 08:00 in Tokyo
    assert slot.weekday() == 6
    day = cs.brief_day(time(8, 0), TOKYO, slot)
    assert day == monday and day.weekday() == cs.MONDAY
    assert cs.iso_week(day) == "2026-W49"


def test_half_hour_zone_briefs_fall_on_the_half_hour_slot() -> None:
    assert cs.brief_day(time(8, 0), KOLKATA, at("2026-11-25 02:30")) == date(2026, 11, 25)
    assert cs.brief_day(time(8, 0), KOLKATA, at("2026-11-25 02:15")) is None
    assert cs.brief_day(time(8, 0), ZoneInfo("Asia/Kathmandu"), at("2026-11-25 02:15")) == date(2026, 11, 25)


def test_a_briefing_time_between_slot_boundaries_belongs_to_the_slot_that_contains_it() -> None:
    assert cs.brief_day(time(8, 7), ZoneInfo("UTC"), at("2026-11-25 08:00")) == date(2026, 11, 25)
    assert cs.brief_day(time(8, 7), ZoneInfo("UTC"), at("2026-11-25 08:15")) is None


# ---------------------------------------------------------------------------------------- defaults and problems


def test_a_user_without_a_zone_uses_the_org_zone_without_a_problem() -> None:
    sched = cs.user_schedule(None, "Europe/Berlin", "07:30")
    assert (sched.tz, sched.at, sched.problems) == (BERLIN, time(7, 30), ())


def test_unreadable_zone_and_time_fall_back_and_say_why() -> None:
    sched = cs.user_schedule("Mars/Olympus", "America/New_York", "25:99")
    assert sched.tz == NY and sched.at == cs.DEFAULT_BRIEFING
    assert sched.problems == ("invalid time zone 'Mars/Olympus'", "invalid briefing time '25:99'")
    nothing = cs.user_schedule("", "nonsense", None)
    assert nothing.tz == ZoneInfo("UTC") and nothing.problems == ("invalid org time zone 'nonsense'",)


@pytest.mark.parametrize(("value", "expected"), [("08:00", time(8)), ("7:05", time(7, 5)), (" 23:59 ", time(23, 59))])
def test_parse_hhmm_reads_24_hour_times(value: str, expected: time) -> None:
    assert cs.parse_hhmm(value) == expected


@pytest.mark.parametrize("value", ["24:00", "8", "08:60", "8am", "", None, "08:00:00x"])
def test_parse_hhmm_refuses_anything_else(value: str | None) -> None:
    assert cs.parse_hhmm(value) is None


def test_due_pairs_selects_pairs_not_users() -> None:
    pairs = [("America/New_York", "08:00"), ("Europe/Berlin", "08:00"), (None, "09:00"), ("Bad/Zone", "08:00")]
    due = cs.due_pairs(pairs, "UTC", at("2026-11-25 13:00"), cs.MORNING_SLOT)  # 08:00 in New York
    assert due == {("America/New_York", "08:00"): date(2026, 11, 25)}
    due_utc = cs.due_pairs(pairs, "UTC", at("2026-11-25 08:00"), cs.MORNING_SLOT)  # bad zone -> org zone UTC
    assert due_utc == {("Bad/Zone", "08:00"): date(2026, 11, 25)}


# ---------------------------------------------------------------------------------------- catch-up, scans, windows


def test_a_brief_more_than_two_hours_late_is_skipped() -> None:
    due = at("2026-11-25 08:00")
    assert not cs.brief_late(due, due + timedelta(hours=2))
    assert cs.brief_late(due, due + timedelta(hours=2, seconds=1))


def test_stale_scan_is_due_from_the_org_hour_until_local_midnight_across_dst() -> None:
    assert cs.stale_scan_day(at("2026-03-08 12:59"), NY) is None  # 08:59 EDT
    assert cs.stale_scan_day(at("2026-03-08 13:00"), NY) == date(2026, 3, 8)  # 09:00 EDT
    assert cs.stale_scan_day(at("2026-03-07 14:00"), NY) == date(2026, 3, 7)  # 09:00 EST
    assert cs.stale_scan_day(at("2026-03-09 03:30"), NY) == date(2026, 3, 8)  # 23:30 EDT, still that day
    assert cs.stale_scan_day(at("2026-03-09 04:00"), NY) is None  # midnight: the new day's hour not reached


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, (9, None)),
        (7, (7, None)),
        ("10:00", (10, None)),
        (24, (9, "invalid stale_deals_hour '24'")),
        ("x", (9, "invalid stale_deals_hour 'x'")),
        (True, (9, "invalid stale_deals_hour 'True'")),
    ],
)
def test_scan_hour_setting(value: object, expected: tuple[int, str | None]) -> None:
    assert cs.scan_hour(value) == expected


def test_days_inactive_setting() -> None:
    assert cs.days_inactive(None) == (7, None)
    assert cs.days_inactive(14) == (14, None)
    assert cs.days_inactive(0) == (7, "invalid days_inactive '0'")
    assert cs.days_inactive("7") == (7, "invalid days_inactive '7'")


def test_prep_window_is_30_to_120_minutes_ahead() -> None:
    assert cs.prep_window(at("2026-11-25 08:00")) == (at("2026-11-25 08:30"), at("2026-11-25 10:00"))
