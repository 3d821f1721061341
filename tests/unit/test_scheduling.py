"""Scheduling (calendar_find_times): reading the request, the freebusy range, finding and scoring
slots - weekend ambiguity, DST weeks, busy days, past windows, the 5-slot cap, non-English text."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sequences.skills.calendar.scheduling import (
    ALLOWED_DURATIONS,
    LEAD_TIME,
    SchedulingRequest,
    find_slots,
    freebusy_window,
    parse_scheduling_request,
)

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
WED = datetime(2026, 11, 25, 10, 0, tzinfo=NY)  # Wednesday 25 Nov 2026, mid-morning in New York
NEXT_MON, NEXT_FRI = date(2026, 11, 30), date(2026, 12, 4)


def parse(text: str, now: datetime = WED, tz: ZoneInfo = NY) -> SchedulingRequest:
    return parse_scheduling_request(text, now, tz)


def window(req: SchedulingRequest) -> tuple[date, date]:
    return req.window_start, req.window_end


def request(start: date, end: date | None = None, *, minutes: int = 30, **extra) -> SchedulingRequest:
    return SchedulingRequest(
        duration_minutes=minutes, window_start=start, window_end=end or start, window_text="test", **extra
    )


def L(label: str) -> str:  # noqa: N802 - reads like the label it builds
    """A slot label written with a hyphen, as the code writes it (an en dash between the times)."""
    return label.replace("-", "\u2013")


def local_wall(slot_time: datetime, tz: ZoneInfo) -> tuple[date, time]:
    moment = slot_time.astimezone(tz)
    return moment.date(), moment.time()


# --------------------------------------------------------------------------- duration


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("Can we grab a quick chat?", 15),
        ("15 min works", 15),
        ("Let's do half an hour", 30),
        ("a half-hour call", 30),
        ("Do you have an hour?", 60),
        ("60 min deep dive", 60),
        ("a one-hour workshop", 60),
        ("90 minutes for the demo", 90),
        ("an hour and a half", 90),
        ("1.5 hours", 90),
        ("1h30 with the team", 90),
        ("1 hour 30 minutes", 90),
        ("2 hours for the workshop", 120),
        ("block three hours", 120),  # nearest allowed
        ("20 minutes", 15),  # nearest: 15 (5 away) rather than 30
        ("25 mins", 30),
        ("40 mins", 45),
        ("75 minutes", 90),  # a tie goes to the longer length
        ("forty-five minutes", 45),
        ("a quick call, say 45 minutes", 45),  # an explicit number beats "quick call"
        ("Let's talk about the $5m deal", 30),  # "5m" is money, not minutes
        ("on se voit à 10h ?", 30),  # "10h" is a clock time
        ("", 30),
    ],
)
def test_duration(text, minutes):
    assert parse(text).duration_minutes == minutes


def test_the_default_request_is_30_minutes_over_the_next_5_working_days():
    req = parse("Let's find a time to talk.")
    assert req.duration_minutes == 30
    assert window(req) == (date(2026, 11, 25), date(2026, 12, 1))  # Wed..Tue, weekend skipped
    assert req.window_text == "next 5 working days"
    assert (req.part_of_day, req.weekdays, req.matched) == (None, None, [])


def test_default_window_starts_tomorrow_after_the_working_day():
    evening = WED.replace(hour=17, minute=30)
    assert window(parse("whenever suits", evening)) == (date(2026, 11, 26), date(2026, 12, 2))


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    ("text", "start", "end", "label"),
    [
        ("Could we meet today?", date(2026, 11, 25), date(2026, 11, 25), "today"),
        ("How about tomorrow", date(2026, 11, 26), date(2026, 11, 26), "tomorrow"),
        ("day after tomorrow", date(2026, 11, 27), date(2026, 11, 27), "the day after tomorrow"),
        ("today or tomorrow", date(2026, 11, 25), date(2026, 11, 26), "today or tomorrow"),
        ("sometime this week", date(2026, 11, 25), date(2026, 11, 27), "this week"),
        ("by end of week please", date(2026, 11, 25), date(2026, 11, 27), "this week"),
        ("Let's talk next week", NEXT_MON, NEXT_FRI, "next week"),
        ("end of the week", date(2026, 11, 26), date(2026, 11, 27), "end of the week"),
        ("early next week", NEXT_MON, date(2026, 12, 1), "early next week"),
        ("end of next week", date(2026, 12, 3), NEXT_FRI, "end of next week"),
        ("this week or next", date(2026, 11, 25), NEXT_FRI, "this week or next"),
        ("the week after next", date(2026, 12, 7), date(2026, 12, 11), "the week after next"),
        ("in the next 3 days", date(2026, 11, 25), date(2026, 11, 27), "next 3 working days"),
        ("within the next couple of days", date(2026, 11, 25), date(2026, 11, 26), "next 2 working days"),
        ("next few business days", date(2026, 11, 25), date(2026, 11, 27), "next 3 working days"),
        ("next 10 days", date(2026, 11, 25), date(2026, 12, 8), "next 10 working days"),
    ],
)
def test_window(text, start, end, label):
    req = parse(text)
    assert (req.window_start, req.window_end, req.window_text) == (start, end, label)
    assert req.matched


def test_next_n_days_counts_working_days_across_the_weekend():
    friday = datetime(2026, 11, 27, 11, 0, tzinfo=NY)
    assert window(parse("next 2 days", friday)) == (date(2026, 11, 27), date(2026, 11, 30))


def test_next_n_days_is_capped():
    req = parse("within the next 400 days")
    assert req.window_text == "next 60 working days"


@pytest.mark.parametrize(
    ("now", "label"),
    [
        (datetime(2026, 11, 28, 11, 0, tzinfo=NY), "saturday"),
        (datetime(2026, 11, 29, 20, 0, tzinfo=NY), "sunday evening"),
        (datetime(2026, 11, 29, 0, 30, tzinfo=NY), "just after midnight on sunday"),
    ],
)
def test_next_week_on_a_weekend_is_the_coming_monday_to_friday(now, label):
    assert window(parse("Can we talk next week?", now)) == (NEXT_MON, NEXT_FRI), label
    # on a weekend "this week" has no working days left: it means the same coming week
    assert window(parse("Can we talk this week?", now)) == (NEXT_MON, NEXT_FRI), label
    assert window(parse("end of the week", now)) == (date(2026, 12, 3), NEXT_FRI), label


def test_the_weekend_is_the_reps_not_utcs():
    # Sunday 21:00 in New York is already Monday 02:00 UTC: "next week" still starts tomorrow
    sunday_night = datetime(2026, 11, 29, 21, 0, tzinfo=NY)
    assert sunday_night.astimezone(UTC).weekday() == 0
    assert window(parse("next week", sunday_night)) == (NEXT_MON, NEXT_FRI)
    # Monday 02:00 in Kolkata is still Sunday in UTC: "next week" is the following week
    monday_kolkata = datetime(2026, 11, 30, 2, 0, tzinfo=KOLKATA)
    assert window(parse("next week", monday_kolkata, KOLKATA)) == (date(2026, 12, 7), date(2026, 12, 11))


def test_this_week_on_friday_evening_rolls_to_next_week():
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=NY)
    assert window(parse("this week", friday)) == (date(2026, 11, 27), date(2026, 11, 27))
    assert window(parse("this week", friday.replace(hour=18))) == (NEXT_MON, NEXT_FRI)


def test_weekday_name_is_its_next_occurrence():
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=NY)
    req = parse("Tuesday works for me", monday)
    assert window(req) == (date(2026, 11, 24), date(2026, 11, 24))
    assert (req.weekdays, req.window_text, req.matched) == ([1], "Tuesday", ["Tuesday"])


def test_next_weekday_name_is_that_day_of_next_week():
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=NY)
    req = parse("How about next Tuesday?", monday)
    assert window(req) == (date(2026, 12, 1), date(2026, 12, 1))  # 8 days away, not tomorrow
    assert req.window_text == "next Tuesday"
    assert window(parse("Tuesday next week", monday)) == (date(2026, 12, 1), date(2026, 12, 1))


def test_todays_weekday_counts_until_the_end_of_the_working_day():
    assert window(parse("Wednesday?", WED)) == (date(2026, 11, 25), date(2026, 11, 25))
    late = WED.replace(hour=17, minute=0)
    assert window(parse("Wednesday?", late)) == (date(2026, 12, 2), date(2026, 12, 2))


def test_several_weekday_names_restrict_the_window_to_those_days():
    req = parse("Tue or Thu afternoon, 45 min")
    assert window(req) == (date(2026, 11, 26), date(2026, 12, 1))
    assert req.weekdays == [1, 3]
    assert req.part_of_day == "afternoon"
    assert req.duration_minutes == 45
    assert req.window_text == "Tuesday or Thursday"
    assert req.matched == ["Tue", "Thu", "afternoon", "45 min"]  # in text order


def test_tomorrow_or_a_weekday_name_offers_both():
    req = parse("tomorrow or Friday")
    assert window(req) == (date(2026, 11, 26), date(2026, 11, 27))
    assert req.weekdays == [3, 4]


def test_lowercase_abbreviations_are_not_weekdays():
    # "tue" is French for "kills", "mon" for "my"
    req = parse("mon ami, ça me tue")
    assert (req.weekdays, req.matched) == (None, [])


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("tomorrow morning", "morning"),
        ("before lunch", "morning"),
        ("Thursday afternoon", "afternoon"),
        ("after lunch", "afternoon"),
        ("an evening call", "evening"),
        ("tonight?", "evening"),
        ("morning or afternoon, whatever suits", None),
        ("any time", None),
    ],
)
def test_part_of_day(text, part):
    assert parse(text).part_of_day == part


def test_this_morning_is_today():
    req = parse("this morning if possible")
    assert window(req) == (date(2026, 11, 25), date(2026, 11, 25))
    assert req.part_of_day == "morning"


@pytest.mark.parametrize(
    "text",
    [
        "¿Podemos hablar la próxima semana por la tarde?",
        "Pouvons-nous nous voir demain matin ?",
        "来週の火曜日に打ち合わせできますか\uff1f",
        "Können wir nächste Woche telefonieren?",
        "Можем созвониться в четверг?",
        "🙂🙂 ???",
    ],
)
def test_non_english_text_gets_the_defaults(text):
    req = parse(text)
    assert req.duration_minutes == 30
    assert window(req) == (date(2026, 11, 25), date(2026, 12, 1))
    assert (req.part_of_day, req.weekdays, req.matched) == (None, None, [])


def test_mixed_language_keeps_what_it_understands():
    req = parse("Können wir next week 30 Minuten sprechen?")
    assert req.duration_minutes == 30
    assert window(req) == (NEXT_MON, NEXT_FRI)
    assert req.matched == ["next week", "30 Minuten"]


def test_parse_needs_an_aware_now():
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_scheduling_request("tomorrow", datetime(2026, 11, 25, 10, 0), NY)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(max_size=200),
    now=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)),
    tz=st.sampled_from([NY, BERLIN, KOLKATA, ZoneInfo("Pacific/Auckland")]),
)
def test_any_text_gives_a_valid_request(text, now, tz):
    req = parse_scheduling_request(text, now, tz)
    assert req.duration_minutes in ALLOWED_DURATIONS
    assert req.window_start <= req.window_end
    assert req.window_end - req.window_start <= timedelta(days=90)


@settings(max_examples=100, deadline=None)
@given(
    phrase=st.sampled_from(["next week", "this week", "end of the week", "Tuesday", "next 3 days", "", "tomorrow"]),
    now=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)),
    tz=st.sampled_from([NY, BERLIN, KOLKATA]),
)
def test_windows_never_start_in_the_past(phrase, now, tz):
    req = parse_scheduling_request(f"30 min {phrase}", now, tz)
    assert req.window_start >= now.astimezone(tz).date()


# --------------------------------------------------------------------------- freebusy range


def test_freebusy_window_is_local_midnight_to_midnight_in_utc():
    req = request(date(2026, 3, 6), date(2026, 3, 9))  # Friday (EST) .. Monday (EDT)
    assert freebusy_window(req, NY) == (datetime(2026, 3, 6, 5, 0, tzinfo=UTC), datetime(2026, 3, 10, 4, 0, tzinfo=UTC))


def test_freebusy_window_widens_by_extra_days():
    req = request(date(2026, 11, 30), date(2026, 12, 4))
    start, end = freebusy_window(req, KOLKATA, extra_days=10)
    assert start == datetime(2026, 11, 29, 18, 30, tzinfo=UTC)
    assert end == datetime(2026, 12, 14, 18, 30, tzinfo=UTC)
    assert start.utcoffset() == timedelta(0)


# --------------------------------------------------------------------------- slots


def test_a_free_week_gives_five_slots_on_five_days_mid_morning():
    req = parse("30 min next week")
    slots = find_slots([], req, NY, WED)
    assert [s.label for s in slots] == [
        L("Mon 30 Nov, 10:00-10:30 EST"),
        L("Tue 1 Dec, 10:00-10:30 EST"),
        L("Wed 2 Dec, 10:00-10:30 EST"),
        L("Thu 3 Dec, 10:00-10:30 EST"),
        L("Fri 4 Dec, 10:00-10:30 EST"),
    ]
    assert slots[0].start == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    assert all(s.start.utcoffset() == timedelta(0) and s.end - s.start == timedelta(minutes=30) for s in slots)
    scores = [s.score for s in slots]
    assert scores == sorted(scores, reverse=True)  # earlier days score higher
    assert scores[0] == 100.0


def test_five_slot_cap_and_at_most_two_a_day():
    req = request(date(2026, 11, 30), date(2026, 12, 1))  # two free days
    slots = find_slots([], req, NY, WED)
    assert len(slots) == 4
    per_day = Counter(s.start.astimezone(NY).date() for s in slots)
    assert set(per_day.values()) == {2}
    # the second slot of a day keeps its distance from the first
    assert [local_wall(s.start, NY)[1] for s in slots] == [time(10), time(13), time(10), time(13)]
    assert len(find_slots([], parse("next 3 weeks"), NY, WED)) == 5
    assert len(find_slots([], parse("next week"), NY, WED, max_slots=3)) == 3
    assert find_slots([], parse("next week"), NY, WED, max_slots=0) == []


def test_a_long_window_spreads_over_the_earliest_days():
    slots = find_slots([], parse("next 10 days"), NY, WED)
    assert len({s.start.astimezone(NY).date() for s in slots}) == 5
    assert slots[0].start.astimezone(NY).date() == date(2026, 11, 25)


def test_results_are_chronological():
    slots = find_slots([], request(date(2026, 11, 30), date(2026, 12, 1)), NY, WED)
    assert [s.start for s in slots] == sorted(s.start for s in slots)


def test_busy_covering_a_whole_day_leaves_it_out():
    # Monday fully busy, given in UTC with overlapping, unsorted pieces
    busy = [
        (datetime(2026, 11, 30, 18, 0, tzinfo=UTC), datetime(2026, 12, 1, 5, 0, tzinfo=UTC)),
        (datetime(2026, 11, 30, 5, 0, tzinfo=UTC), datetime(2026, 11, 30, 19, 0, tzinfo=UTC)),
    ]
    slots = find_slots(busy, request(NEXT_MON, date(2026, 12, 1)), NY, WED)
    assert slots
    assert {s.start.astimezone(NY).date() for s in slots} == {date(2026, 12, 1)}


def test_busy_everywhere_gives_no_slots():
    busy = [(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))]
    assert find_slots(busy, parse("next week"), NY, WED) == []


def test_busy_in_another_zone_is_respected():
    # 15:00-22:00 UTC is 10:00-17:00 EST: only the first hour of Monday is free
    busy = [(datetime(2026, 11, 30, 16, 0, tzinfo=BERLIN), datetime(2026, 11, 30, 23, 0, tzinfo=BERLIN))]
    slots = find_slots(busy, request(NEXT_MON), NY, WED)
    assert [s.label for s in slots] == [L("Mon 30 Nov, 09:00-09:30 EST"), L("Mon 30 Nov, 09:30-10:00 EST")]


def test_touching_a_busy_block_is_allowed_but_scores_lower():
    busy = [(datetime(2026, 11, 30, 10, 0, tzinfo=NY), datetime(2026, 11, 30, 10, 30, tzinfo=NY))]
    slots = find_slots(busy, request(NEXT_MON), NY, WED, max_slots=1)
    assert local_wall(slots[0].start, NY)[1] == time(10, 45)  # not 10:30, right after the meeting
    squeezed = [
        (datetime(2026, 11, 30, 9, 0, tzinfo=NY), datetime(2026, 11, 30, 10, 0, tzinfo=NY)),
        (datetime(2026, 11, 30, 10, 30, tzinfo=NY), datetime(2026, 11, 30, 17, 0, tzinfo=NY)),
    ]
    (only,) = find_slots(squeezed, request(NEXT_MON), NY, WED)
    assert local_wall(only.start, NY)[1] == time(10, 0)
    assert only.score == 100.0 - 12.0  # back-to-back on both sides


def test_window_entirely_in_the_past_gives_no_slots():
    req = request(date(2026, 11, 16), date(2026, 11, 20))
    assert find_slots([], req, NY, WED) == []


def test_slots_start_after_the_lead_time():
    now = datetime(2026, 11, 25, 10, 7, tzinfo=NY)
    slots = find_slots([], parse("today", now), NY, now)
    assert slots
    assert min(s.start for s in slots) >= now + LEAD_TIME
    assert min(local_wall(s.start, NY)[1] for s in slots) == time(10, 45)  # the next quarter after 10:37


def test_today_after_hours_gives_no_slots():
    assert find_slots([], parse("today", WED.replace(hour=16, minute=45)), NY, WED.replace(hour=16, minute=45)) == []


def test_a_weekend_window_gives_no_slots():
    assert find_slots([], request(date(2026, 11, 28), date(2026, 11, 29)), NY, WED) == []


def test_more_options_widens_the_window():
    busy = [(datetime(2026, 11, 30, tzinfo=NY), datetime(2026, 12, 1, tzinfo=NY))]
    req = request(NEXT_MON)
    assert find_slots(busy, req, NY, WED) == []
    slots = find_slots(busy, req, NY, WED, extra_days=10)
    assert len(slots) == 5
    assert all(date(2026, 12, 1) <= s.start.astimezone(NY).date() <= date(2026, 12, 10) for s in slots)


def test_long_meetings_end_within_working_hours():
    slots = find_slots([], request(NEXT_MON, minutes=120, part_of_day="afternoon"), NY, WED, max_slots=10)
    assert slots
    assert all(time(12) <= local_wall(s.start, NY)[1] and local_wall(s.end, NY)[1] <= time(17) for s in slots)


@pytest.mark.parametrize(
    ("part", "opens", "closes"),
    [("morning", time(9), time(12)), ("afternoon", time(12), time(17)), ("evening", time(17), time(19))],
)
def test_part_of_day_restricts_the_hours(part, opens, closes):
    slots = find_slots([], request(NEXT_MON, NEXT_FRI, part_of_day=part), NY, WED, max_slots=10)
    assert slots
    for slot in slots:
        assert opens <= local_wall(slot.start, NY)[1]
        assert local_wall(slot.end, NY)[1] <= closes


def test_evening_only_when_asked():
    slots = find_slots([], request(NEXT_MON, NEXT_FRI), NY, WED, max_slots=10)
    assert all(local_wall(s.end, NY)[1] <= time(17) for s in slots)


def test_weekdays_restrict_the_days():
    req = parse("Tue or Thu")
    slots = find_slots([], req, NY, WED, extra_days=10)
    assert {s.start.astimezone(NY).weekday() for s in slots} == {1, 3}


def test_custom_working_hours():
    slots = find_slots([], request(NEXT_MON), NY, WED, working_hours=(time(8), time(12)), max_slots=10)
    assert {local_wall(s.start, NY)[1] for s in slots} <= {time(h, m) for h in range(8, 12) for m in (0, 15, 30, 45)}
    with pytest.raises(ValueError, match="end after"):
        find_slots([], request(NEXT_MON), NY, WED, working_hours=(time(17), time(9)))


def test_find_slots_needs_aware_datetimes():
    with pytest.raises(ValueError, match="timezone-aware"):
        find_slots([], request(NEXT_MON), NY, datetime(2026, 11, 25, 10, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        find_slots([(datetime(2026, 11, 30, 10), datetime(2026, 11, 30, 11))], request(NEXT_MON), NY, WED)


# --------------------------------------------------------------------------- DST and zones

MORNING_BLOCKED_FROM_0930 = "busy from 09:30 to 12:00 local, so only 09:00-09:30 is free in the morning"


@pytest.mark.parametrize(
    ("tz", "day", "utc_start", "label"),
    [
        # New York, DST ends Sunday 1 Nov 2026: 09:00 EDT on the Friday before, 09:00 EST on the Monday after
        (NY, date(2026, 10, 30), datetime(2026, 10, 30, 13, 0, tzinfo=UTC), L("Fri 30 Oct, 09:00-09:30 EDT")),
        (NY, date(2026, 11, 2), datetime(2026, 11, 2, 14, 0, tzinfo=UTC), L("Mon 2 Nov, 09:00-09:30 EST")),
        # New York, DST starts Sunday 8 Mar 2026
        (NY, date(2026, 3, 6), datetime(2026, 3, 6, 14, 0, tzinfo=UTC), L("Fri 6 Mar, 09:00-09:30 EST")),
        (NY, date(2026, 3, 9), datetime(2026, 3, 9, 13, 0, tzinfo=UTC), L("Mon 9 Mar, 09:00-09:30 EDT")),
        # Berlin, summer time from Sunday 29 Mar 2026 and until Sunday 25 Oct 2026
        (BERLIN, date(2026, 3, 27), datetime(2026, 3, 27, 8, 0, tzinfo=UTC), L("Fri 27 Mar, 09:00-09:30 CET")),
        (BERLIN, date(2026, 3, 30), datetime(2026, 3, 30, 7, 0, tzinfo=UTC), L("Mon 30 Mar, 09:00-09:30 CEST")),
        (BERLIN, date(2026, 10, 26), datetime(2026, 10, 26, 8, 0, tzinfo=UTC), L("Mon 26 Oct, 09:00-09:30 CET")),
        # Kolkata, +05:30 all year
        (KOLKATA, date(2026, 3, 9), datetime(2026, 3, 9, 3, 30, tzinfo=UTC), L("Mon 9 Mar, 09:00-09:30 IST")),
    ],
)
def test_nine_oclock_stays_nine_oclock_local_across_dst(tz, day, utc_start, label):
    now = datetime.combine(day - timedelta(days=7), time(12), tzinfo=tz)
    busy = [(datetime.combine(day, time(9, 30), tzinfo=tz), datetime.combine(day, time(12), tzinfo=tz))]
    slots = find_slots(busy, request(day, part_of_day="morning"), tz, now)
    assert [(s.start, s.label) for s in slots] == [(utc_start, label)], MORNING_BLOCKED_FROM_0930


@pytest.mark.parametrize(
    ("tz", "monday"), [(NY, date(2026, 11, 2)), (NY, date(2026, 3, 9)), (BERLIN, date(2026, 3, 30))]
)
def test_a_dst_week_keeps_every_slot_in_local_working_hours(tz, monday):
    now = datetime.combine(monday - timedelta(days=3), time(12), tzinfo=tz)  # the Friday before
    req = request(monday - timedelta(days=3), monday + timedelta(days=4), minutes=60)
    slots = find_slots([], req, tz, now, max_slots=10)
    assert len(slots) == 10
    for slot in slots:
        start_day, start_time = local_wall(slot.start, tz)
        assert start_day.weekday() < 5
        assert time(9) <= start_time and local_wall(slot.end, tz)[1] <= time(17)
        assert slot.end - slot.start == timedelta(hours=1)


# --------------------------------------------------------------------------- properties

ZONES = [NY, BERLIN, KOLKATA, ZoneInfo("Australia/Sydney"), ZoneInfo("America/Santiago"), ZoneInfo("UTC")]
PART_HOURS = {None: (time(9), time(17)), "morning": (time(9), time(12)), "afternoon": (time(12), time(17))}
PART_HOURS["evening"] = (time(17), time(19))


@st.composite
def scenarios(draw):
    tz = draw(st.sampled_from(ZONES))
    now = draw(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)))
    start = now.astimezone(tz).date() + timedelta(days=draw(st.integers(-5, 10)))
    end = start + timedelta(days=draw(st.integers(0, 12)))
    weekdays = draw(st.none() | st.lists(st.integers(0, 6), min_size=1, max_size=4))
    req = SchedulingRequest(
        duration_minutes=draw(st.sampled_from(ALLOWED_DURATIONS)),
        window_start=start,
        window_end=end,
        window_text="generated",
        part_of_day=draw(st.sampled_from([None, "morning", "afternoon", "evening"])),
        weekdays=weekdays,
    )
    busy = []
    for _ in range(draw(st.integers(0, 25))):
        begin = now + timedelta(minutes=draw(st.integers(-24 * 60, 24 * 60 * 25)))
        length = timedelta(minutes=draw(st.integers(-30, 8 * 60)))  # some empty or reversed: ignored
        busy_tz = draw(st.sampled_from(ZONES))
        busy.append((begin.astimezone(busy_tz), (begin + length).astimezone(busy_tz)))
    return tz, now, req, busy, draw(st.integers(0, 10)), draw(st.integers(1, 8))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_slots_are_free_in_hours_on_weekdays_and_never_overlap(scenario):
    tz, now, req, busy, extra_days, max_slots = scenario
    slots = find_slots(busy, req, tz, now, extra_days=extra_days, max_slots=max_slots)
    opens, closes = PART_HOURS[req.part_of_day]
    assert len(slots) <= max_slots
    assert max(Counter(s.start.astimezone(tz).date() for s in slots).values(), default=0) <= 2
    for slot in slots:
        assert slot.start.utcoffset() == timedelta(0) and slot.end.utcoffset() == timedelta(0)
        assert slot.end - slot.start == timedelta(minutes=req.duration_minutes)
        assert slot.start >= now + LEAD_TIME
        start_day, start_time = local_wall(slot.start, tz)
        end_day, end_time = local_wall(slot.end, tz)
        assert start_day.weekday() < 5
        assert req.weekdays is None or start_day.weekday() in req.weekdays
        assert req.window_start <= start_day <= req.window_end + timedelta(days=extra_days)
        assert opens <= start_time
        assert end_day == start_day and end_time <= closes
        assert 0.0 <= slot.score <= 100.0
        for busy_start, busy_end in busy:  # empty or reversed intervals block nothing
            assert busy_end <= busy_start or not (slot.start < busy_end and busy_start < slot.end), "busy"
    ordered = sorted(slots, key=lambda s: s.start)
    assert ordered == slots
    for earlier, later in pairwise(ordered):
        assert earlier.end <= later.start, "slots overlap"
