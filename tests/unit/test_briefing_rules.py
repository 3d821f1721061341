"""Briefing rules (pre_meeting_90min, the morning brief): briefings, the morning brief, quiet hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sequences.skills.briefing.rules import (
    HISTORY_MAX,
    MORNING_LIST_CAP,
    QUESTIONS_MAX,
    TALKING_POINTS_MAX,
    AttendeeInfo,
    BriefApproval,
    BriefMeeting,
    BriefRisk,
    BriefTask,
    CompanyInfo,
    DealInfo,
    HistoryItem,
    briefing,
    in_quiet_hours,
    local_label,
    morning_brief,
    quiet_window,
    should_deliver_now,
    zone,
)

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
QUIET = {"start": "20:00", "end": "07:00"}
NEXT_STEP = "What would be a good next step after today?"

# Tue 2 Dec 2025, 10:30 in New York.
START = datetime(2025, 12, 2, 15, 30, tzinfo=UTC)
JANE = AttendeeInfo(email="jane@acme.com", name="Jane Roe", title="CFO", company="Acme")
BOB = AttendeeInfo(email="bob@acme.com", name="Bob Li", title="Ops Manager", company="Acme")
ME = AttendeeInfo(email="ana@vendor.com", name="Ana Lima", internal=True)
ACME = CompanyInfo(name="Acme", domain="acme.com", industry="Retail", employees=1200)


def deal(**values: object) -> DealInfo:
    base: dict[str, object] = {
        "name": "Acme expansion",
        "stage": "proposal",
        "value": 45_000,
        "currency": "USD",
        "risk_score": 20,
        "risk_level": "low",
        "close_date": date(2026, 3, 31),
    }
    base.update(values)
    return DealInfo(**base)


def touch(days_before: float, kind: str = "email", subject: str | None = "Re: pricing") -> HistoryItem:
    return HistoryItem(kind=kind, occurred_at=START - timedelta(days=days_before), subject=subject)


# --------------------------------------------------------------------------------------------------
# Pre-meeting briefing


def test_start_local_reads_like_the_rep_speaks():
    brief = briefing("Pricing review", START, NY, [JANE], ACME, [touch(2)], [], deal(), [])
    assert brief.start_local == "Tue 2 Dec, 10:30 EST"
    assert brief.start == START
    assert local_label(datetime(2025, 7, 1, 14, 5, tzinfo=UTC), "Europe/Berlin") == "Tue 1 Jul, 16:05 CEST"


def test_history_is_newest_first_one_line_each_and_capped():
    items = [touch(d, subject=f"Note {d}") for d in range(1, 12)]
    items.append(HistoryItem(kind="meeting", occurred_at=START, subject="This meeting"))  # not history yet
    items.append(HistoryItem(kind="call_note", occurred_at=START - timedelta(days=400), subject="Old\ncall"))
    items.append(HistoryItem(kind="note", occurred_at=None, subject=None))
    brief = briefing("Sync", START, NY, [JANE, BOB], ACME, items, [], deal(), [])
    assert len(brief.history) == HISTORY_MAX
    assert brief.history[0] == "1 Dec · email · Note 1"
    assert brief.history[1] == "30 Nov · email · Note 2"
    assert all("This meeting" not in line for line in brief.history)


def test_history_shows_the_year_when_it_differs_and_handles_missing_parts():
    items = [
        HistoryItem(kind="call_note", occurred_at=START - timedelta(days=400), subject="Old\n  call"),
        HistoryItem(kind="", occurred_at=None, subject=None),
    ]
    brief = briefing("Sync", START, NY, [JANE, BOB], ACME, items, [], deal(), [])
    assert brief.history == ["28 Oct 2024 · call note · Old call", "undated · activity · (no subject)"]


def test_full_briefing_for_a_risky_proposal():
    risky = deal(
        risk_score=65,
        risk_level=None,
        close_date=date(2025, 12, 10),
        risk_factors=["no activity for 29 days", "single-threaded: a single contact engaged in 30 days"],
    )
    brief = briefing(
        "Pricing review",
        START,
        NY,
        [ME, JANE],
        "Acme",
        [touch(29), touch(60, "meeting", "Discovery call")],
        ["Acme raised a Series C", "acme raised a series c", "  "],
        risky,
        ["Send the security questionnaire", "Share the ROI model", "Intro to support lead"],
    )
    assert [a.email for a in brief.attendees] == ["jane@acme.com", "ana@vendor.com"]  # external first
    assert brief.company == CompanyInfo(name="Acme")
    assert brief.news == ["Acme raised a Series C"]
    assert brief.talking_points == [
        "Proposal: walk through scope and pricing and surface objections early",
        "Deal risk 65/100 (high): address no activity for 29 days and single-threaded: a single contact engaged "
        "in 30 days",
        "Close date 10 Dec is 8 days away: confirm the path to signature",
        "Last contact was 29 days ago: recap where you left off",
        "Senior attendee: Jane Roe (CFO); lead with business outcomes",
        "Close the loop on: Send the security questionnaire",
    ]
    assert brief.questions == [
        "Is 10 Dec still realistic, and what could move it?",
        "What has changed on your side since we last spoke?",
        "Who else is involved in the decision, and should they join the next call?",
        "Does the proposal match what you need?",
        NEXT_STEP,
    ]


def test_passed_close_date_and_medium_risk_from_the_score():
    brief = briefing(
        "Check-in",
        START,
        NY,
        [JANE, BOB],
        ACME,
        [touch(3)],
        [],
        deal(risk_score=45, risk_level=None, close_date=date(2025, 11, 15), stage="Negotiation"),
        [],
    )
    assert brief.talking_points[0].startswith("Negotiation:")
    assert "Deal risk 45/100 (medium)" in brief.talking_points
    assert "Close date 15 Nov has passed: agree a new, realistic date" in brief.talking_points
    assert brief.questions[0] == "The close date was 15 Nov: what is the realistic timeline now?"


def test_low_risk_recent_contact_and_two_externals_keep_it_short():
    brief = briefing("Demo", START, NY, [JANE, BOB, ME], ACME, [touch(3)], [], deal(stage="demo"), [])
    assert brief.talking_points == [
        "Demo: show only the workflows tied to the pains found in discovery",
        "Senior attendee: Jane Roe (CFO); lead with business outcomes",
    ]
    assert brief.questions == [
        "Which of these workflows matters most to your team?",
        "What would you need to see to move forward?",
        NEXT_STEP,
    ]


def test_closed_deals_do_not_talk_about_the_close_date():
    brief = briefing(
        "QBR", START, NY, [JANE, BOB], ACME, [touch(3)], [], deal(stage="closed_won", close_date=date(2025, 1, 1)), []
    )
    assert brief.talking_points[0].startswith("Customer:")
    assert not any("Close date" in p for p in brief.talking_points)


def test_missing_company_and_deal_data():
    brief = briefing(
        "Intro call", START, "America/New_York", [AttendeeInfo(email="x@gmail.com")], None, [], [], None, []
    )
    assert brief.company is None and brief.deal is None
    assert brief.talking_points == [
        "No open deal: qualify the opportunity before pitching",
        "No earlier contact on record: open with context and a clear agenda",
    ]
    assert "Can you tell me about your role and your team's priorities?" in brief.questions
    assert brief.questions[-1] == NEXT_STEP


def test_deal_without_stage_reads_as_discovery():
    brief = briefing("Call", START, NY, [JANE, BOB], ACME, [touch(1)], [], DealInfo(), [])
    assert brief.talking_points[0].startswith("Discovery:")


def test_nothing_at_all_never_raises():
    brief = briefing(None, None, None)
    assert brief.meeting_title == "Untitled meeting"
    assert brief.start is None and brief.start_local == "time unknown"
    assert brief.attendees == [] and brief.history == [] and brief.news == []
    assert brief.questions[-1] == NEXT_STEP
    assert len(brief.talking_points) <= TALKING_POINTS_MAX and len(brief.questions) <= QUESTIONS_MAX


def test_naive_start_is_utc_and_an_unknown_zone_is_utc():
    brief = briefing("Call", datetime(2025, 12, 2, 15, 30), "Mars/Olympus_Mons")
    assert brief.start == START
    assert brief.start_local == "Tue 2 Dec, 15:30 UTC"
    assert zone(None) == zone("") == ZoneInfo("UTC")


def test_many_tasks_are_summarised():
    tasks = [f"Task {i}" for i in range(5)]
    brief = briefing("Call", START, NY, [JANE, BOB], ACME, [touch(1)], [], deal(stage="discovery"), tasks)
    assert "Close the loop on: Task 0" in brief.talking_points
    assert "Close the loop on: Task 1" in brief.talking_points
    assert "3 more open tasks on this account" in brief.talking_points


@given(
    title=st.none() | st.text(max_size=50),
    tz=st.none() | st.sampled_from(["America/New_York", "Asia/Kolkata", "nonsense", ""]),
    start=st.none() | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    stage=st.none() | st.text(max_size=15) | st.sampled_from(["proposal", "closed_lost", "demo"]),
    score=st.none() | st.integers(0, 100),
    close=st.none() | st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    subjects=st.lists(st.none() | st.text(max_size=30), max_size=12),
    news=st.lists(st.text(max_size=30), max_size=8),
    tasks=st.lists(st.text(max_size=30), max_size=8),
)
def test_briefing_never_raises(title, tz, start, stage, score, close, subjects, news, tasks):
    history = [
        HistoryItem(
            kind="email", occurred_at=None if i % 3 == 0 else datetime(2020, 1, 1 + i % 28, tzinfo=UTC), subject=s
        )
        for i, s in enumerate(subjects)
    ]
    deal_info = DealInfo(stage=stage, risk_score=score, close_date=close) if stage is not None else None
    brief = briefing(title, start, tz, [JANE], None, history, news, deal_info, tasks)
    assert len(brief.history) <= HISTORY_MAX
    assert len(brief.talking_points) <= TALKING_POINTS_MAX
    assert 0 < len(brief.questions) <= QUESTIONS_MAX
    assert all("\n" not in line for line in brief.history)


# --------------------------------------------------------------------------------------------------
# Morning brief

NOW = datetime(2025, 12, 2, 13, 0, tzinfo=UTC)  # Tue 2 Dec 2025, 08:00 in New York


def test_morning_brief_sorts_formats_and_counts():
    brief = morning_brief(
        "Ana",
        NOW,
        NY,
        [
            BriefMeeting(title="Acme demo", start=datetime(2025, 12, 2, 19, 0, tzinfo=UTC), attendees_count=4),
            BriefMeeting(title="Globex intro", start=datetime(2025, 12, 2, 15, 30, tzinfo=UTC), attendees_count=2),
            BriefMeeting(title="Late sync", start=datetime(2025, 12, 3, 2, 0, tzinfo=UTC), attendees_count=3),
        ],
        [
            BriefTask(title="No date"),
            BriefTask(title="Send deck", due=datetime(2025, 12, 2, 22, 0, tzinfo=UTC)),
            BriefTask(title="Call back", due=datetime(2025, 12, 2, 14, 0, tzinfo=UTC)),
            BriefTask(title="Whole day", due=date(2025, 12, 2)),
            BriefTask(title="Was due", due=date(2025, 11, 28)),
            BriefTask(title="Missed this morning", due=datetime(2025, 12, 2, 12, 0, tzinfo=UTC)),
            BriefTask(title="Tomorrow", due=datetime(2025, 12, 3, 15, 0, tzinfo=UTC)),
        ],
        [
            BriefRisk(name="Initech", score=62),
            BriefRisk(name="Acme", score=88, level="HIGH"),
            BriefRisk(name="Hooli", score=45),
        ],
        [
            BriefApproval(
                kind="email_preview", title="Follow-up to Acme", created_at=NOW - timedelta(hours=3, minutes=50)
            ),
            BriefApproval(kind="proposal", title=None, created_at=NOW - timedelta(hours=26)),
        ],
    )
    assert brief.date_local == "Tue 2 Dec 2025"
    assert brief.day == date(2025, 12, 2)
    assert [(m.title, m.start_local, m.attendees_count) for m in brief.meetings] == [
        ("Globex intro", "10:30", 2),
        ("Acme demo", "14:00", 4),
        ("Late sync", "21:00", 3),  # 02:00 UTC the next day is still today in New York
    ]
    assert [(t.title, t.due_local, t.overdue) for t in brief.tasks_due] == [
        ("Was due", "overdue since 28 Nov", True),
        ("Missed this morning", "overdue since 07:00", True),
        ("Call back", "today 09:00", False),
        ("Send deck", "today 17:00", False),
        ("Whole day", "today", False),
        ("Tomorrow", "Wed 3 Dec 10:00", False),
        ("No date", "no due date", False),
    ]
    assert [(r.name, r.score, r.level) for r in brief.deals_at_risk] == [
        ("Acme", 88, "high"),
        ("Initech", 62, "high"),
        ("Hooli", 45, "medium"),
    ]
    assert [(a.kind, a.title, a.age_h) for a in brief.approvals_waiting] == [
        ("proposal", "proposal", 26),
        ("email_preview", "Follow-up to Acme", 3),
    ]
    assert brief.empty is False
    assert (brief.meetings_more, brief.tasks_due_more, brief.deals_at_risk_more, brief.approvals_waiting_more) == (
        0,
        0,
        0,
        0,
    )


def test_morning_brief_caps_each_list_at_ten():
    meetings = [BriefMeeting(title=f"M{i:02d}", start=NOW + timedelta(minutes=10 * i)) for i in range(13)]
    risks = [BriefRisk(name=f"D{i}", score=i) for i in range(11)]
    brief = morning_brief("Ana", NOW, NY, meetings, [], risks, [])
    assert len(brief.meetings) == MORNING_LIST_CAP and brief.meetings_more == 3
    assert brief.meetings[0].title == "M00"
    assert len(brief.deals_at_risk) == MORNING_LIST_CAP and brief.deals_at_risk_more == 1
    assert brief.deals_at_risk[0].score == 10


def test_empty_morning_brief():
    brief = morning_brief("Ana", NOW, "Europe/Berlin", [], [], [], [])
    assert brief.empty is True
    assert brief.date_local == "Tue 2 Dec 2025"
    assert brief.meetings == [] and brief.meetings_more == 0


def test_morning_brief_meeting_on_another_day_shows_its_date():
    brief = morning_brief("Ana", NOW, NY, [BriefMeeting(title="x", start=NOW + timedelta(days=1))], [], [], [])
    assert brief.meetings[0].start_local == "Wed 3 Dec, 08:00"


def test_morning_brief_local_date_differs_from_utc():
    late_utc = datetime(2025, 12, 2, 23, 30, tzinfo=UTC)  # already Wed 3 Dec in Berlin
    assert morning_brief("Ana", late_utc, BERLIN, [], [], [], []).date_local == "Wed 3 Dec 2025"


# --------------------------------------------------------------------------------------------------
# Quiet hours


def ny_at(hour: int, minute: int = 0, day: int = 2, month: int = 12, year: int = 2025) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


def test_no_quiet_hours_always_delivers():
    assert should_deliver_now(ny_at(23), NY, None, None) == (True, None)
    assert should_deliver_now(ny_at(23), NY, {}, None) == (True, None)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (ny_at(19, 59), (True, None)),
        (ny_at(20, 0), (False, ny_at(7, 0, day=3))),  # the start is inside
        (ny_at(23, 30), (False, ny_at(7, 0, day=3))),
        (ny_at(0, 0, day=3), (False, ny_at(7, 0, day=3))),  # after midnight, same window
        (ny_at(6, 59), (False, ny_at(7, 0))),
        (ny_at(7, 0), (True, None)),  # the end is outside
        (ny_at(12, 0), (True, None)),
    ],
)
def test_quiet_hours_wrapping_midnight(local, expected):
    ok, until = should_deliver_now(local, NY, QUIET, None)
    assert (ok, until) == expected
    if until is not None:
        assert until.tzinfo is UTC


def test_quiet_hours_within_a_day():
    lunch = {"start": "12:00", "end": "13:30"}
    assert should_deliver_now(ny_at(12, 15), NY, lunch, None) == (False, ny_at(13, 30))
    assert should_deliver_now(ny_at(11, 59), NY, lunch, None) == (True, None)
    assert should_deliver_now(ny_at(13, 30), NY, lunch, None) == (True, None)


def test_a_meeting_within_two_hours_overrides_quiet_hours():
    now = ny_at(6, 0)
    assert should_deliver_now(now, NY, QUIET, now + timedelta(minutes=90)) == (True, None)
    assert should_deliver_now(now, NY, QUIET, now + timedelta(hours=2)) == (True, None)  # boundary included
    assert should_deliver_now(now, NY, QUIET, now - timedelta(minutes=5)) == (True, None)  # already started


def test_a_later_meeting_waits_for_the_sooner_of_quiet_end_and_two_hours_before():
    now = ny_at(5, 0)
    assert should_deliver_now(now, NY, QUIET, ny_at(7, 30)) == (False, ny_at(5, 30))  # 2 h before: sooner
    assert should_deliver_now(now, NY, QUIET, ny_at(10, 0)) == (False, ny_at(7, 0))  # quiet end: sooner


@pytest.mark.parametrize(
    "quiet",
    [
        {"start": "20:00", "end": "20:00"},  # empty window
        {"start": "25:00", "end": "07:00"},
        {"start": "8pm", "end": "7am"},
        {"start": "20:00"},
        {"start": None, "end": "07:00"},
        "20:00-07:00",
    ],
)
def test_unreadable_or_empty_quiet_hours_mean_none(quiet):
    assert quiet_window(quiet) is None
    assert should_deliver_now(ny_at(23), NY, quiet, None) == (True, None)


def test_quiet_hour_formats():
    assert quiet_window({"start": "7:00", "end": "24:00"}) == (time(7, 0), time(0, 0))
    assert quiet_window({"start": time(21, 30), "end": "06:45:00"}) == (time(21, 30), time(6, 45))


def test_quiet_end_skipped_by_spring_forward_is_the_jump():
    # 8 Mar 2026 in New York: 02:00 EST jumps to 03:00 EDT (07:00 UTC); 02:30 never happens.
    quiet = {"start": "01:30", "end": "02:30"}
    now = datetime(2026, 3, 8, 6, 45, tzinfo=UTC)  # 01:45 EST
    assert should_deliver_now(now, NY, quiet, None) == (False, datetime(2026, 3, 8, 7, 0, tzinfo=UTC))


def test_fall_back_takes_the_clock_out_of_the_window():
    # 1 Nov 2026 in New York: 02:00 EDT goes back to 01:00 EST (06:00 UTC), before the 01:30 start.
    quiet = {"start": "01:30", "end": "07:00"}
    now = datetime(2026, 11, 1, 5, 45, tzinfo=UTC)  # 01:45 EDT
    assert should_deliver_now(now, NY, quiet, None) == (False, datetime(2026, 11, 1, 6, 0, tzinfo=UTC))
    # At 01:30 EST (06:30 UTC) the window starts again and ends at 07:00 EST.
    again = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert should_deliver_now(again, NY, quiet, None) == (False, datetime(2026, 11, 1, 12, 0, tzinfo=UTC))


def test_naive_now_is_utc_and_zone_names_work():
    assert should_deliver_now(datetime(2025, 12, 2, 2, 0), "America/New_York", QUIET, None) == (
        False,
        datetime(2025, 12, 2, 12, 0, tzinfo=UTC),
    )


ZONES = [
    "UTC",
    "America/New_York",
    "America/Santiago",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/Havana",
]
clock = st.builds(lambda m: f"{m // 60:02d}:{m % 60:02d}", st.integers(0, 24 * 60 - 1))


@given(
    now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2045, 1, 1), timezones=st.just(UTC)),
    tz=st.sampled_from(ZONES),
    start=clock,
    end=clock,
    meeting_in=st.none() | st.timedeltas(min_value=timedelta(hours=-3), max_value=timedelta(hours=30)),
)
def test_quiet_hours_decisions_are_consistent(now, tz, start, end, meeting_in):
    quiet = {"start": start, "end": end}
    meeting = None if meeting_in is None else now + meeting_in
    ok, until = should_deliver_now(now, tz, quiet, meeting)
    urgent = meeting is not None and meeting - now <= timedelta(hours=2)
    assert ok == (urgent or not in_quiet_hours(now, tz, quiet))
    if ok:
        assert until is None
        return
    assert until is not None and until > now
    assert until - now <= timedelta(days=1)
    assert should_deliver_now(until, tz, quiet, meeting) == (True, None)  # allowed at the instant returned
    before = until - timedelta(minutes=1)
    if before > now:
        assert should_deliver_now(before, tz, quiet, meeting)[0] is False  # and not a minute earlier


@given(
    moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2045, 1, 1), timezones=st.just(UTC)),
    tz=st.sampled_from(ZONES),
    start=clock,
    end=clock,
)
def test_a_window_and_its_complement_split_the_day(moment, tz, start, end):
    inside = in_quiet_hours(moment, tz, {"start": start, "end": end})
    outside = in_quiet_hours(moment, tz, {"start": end, "end": start})
    if start == end:
        assert not inside and not outside
    else:
        assert inside != outside
