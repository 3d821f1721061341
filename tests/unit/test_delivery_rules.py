"""worker.slack.delivery rules (quiet hours, hourly budget, urgency) and worker.slack.client's error
mapping: plain values in, decisions out."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from worker.errors import AuthRevoked, PermanentError, RateLimited, TransientError
from worker.slack.client import (
    DEFAULT_RETRY_AFTER_S,
    SlackAuthRevoked,
    SlackCallFailed,
    SlackRateLimited,
    SlackServerError,
    map_error,
)
from worker.slack.delivery import (
    URGENT_KINDS,
    Hold,
    delivery_hold,
    hourly_budget_exceeded,
    in_quiet_hours,
    is_urgent,
)

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
NIGHT = {"start": "20:00", "end": "07:00"}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- quiet hours


def test_inside_a_window_that_wraps_midnight_before_midnight_resumes_next_morning():
    assert in_quiet_hours(utc(2026, 11, 25, 21, 30), UTC, NIGHT) == utc(2026, 11, 26, 7, 0)


def test_inside_a_window_that_wraps_midnight_after_midnight_resumes_the_same_morning():
    assert in_quiet_hours(utc(2026, 11, 26, 3, 0), UTC, NIGHT) == utc(2026, 11, 26, 7, 0)


@pytest.mark.parametrize("hour_minute", [(7, 0), (12, 0), (19, 59)])
def test_outside_the_window_means_deliver_now(hour_minute):
    assert in_quiet_hours(utc(2026, 11, 26, *hour_minute), UTC, NIGHT) is None


def test_the_window_start_is_inside_and_its_end_is_outside():
    assert in_quiet_hours(utc(2026, 11, 26, 20, 0), UTC, NIGHT) == utc(2026, 11, 27, 7, 0)
    assert in_quiet_hours(utc(2026, 11, 26, 7, 0), UTC, NIGHT) is None


def test_a_daytime_window_does_not_wrap():
    lunch = {"start": "12:00", "end": "13:30"}
    assert in_quiet_hours(utc(2026, 11, 26, 12, 45), UTC, lunch) == utc(2026, 11, 26, 13, 30)
    assert in_quiet_hours(utc(2026, 11, 26, 23, 0), UTC, lunch) is None


@pytest.mark.parametrize(
    "quiet_hours",
    [
        None,
        {},
        {"start": "20:00"},
        {"start": "8pm", "end": "7am"},
        {"start": "25:00", "end": "07:00"},
        NIGHT | {"end": "20:00"},
    ],
)
def test_missing_malformed_or_empty_windows_never_block_delivery(quiet_hours):
    assert in_quiet_hours(utc(2026, 11, 26, 22, 0), UTC, quiet_hours) is None


def test_the_window_is_in_the_recipients_zone():
    # 02:00 UTC is 21:00 in New York (quiet) and 03:00 in Berlin (quiet) but 07:30 in Kolkata (not).
    now = utc(2026, 11, 26, 2, 0)
    assert in_quiet_hours(now, NY, NIGHT) == datetime(2026, 11, 26, 7, 0, tzinfo=NY).astimezone(UTC)
    assert in_quiet_hours(now, BERLIN, NIGHT) == utc(2026, 11, 26, 6, 0)
    assert in_quiet_hours(now, KOLKATA, NIGHT) is None


def test_resume_time_across_the_spring_forward_night():
    # New York springs forward on 2026-03-08: 22:00 EST -> 07:00 EDT is 8 hours later, not 9.
    now = utc(2026, 3, 8, 3, 0)  # 22:00 EST on the 7th
    assert in_quiet_hours(now, NY, {"start": "22:00", "end": "07:00"}) == utc(2026, 3, 8, 11, 0)


def test_resume_time_across_the_fall_back_night():
    # New York falls back on 2026-11-01: 23:00 EDT -> 07:00 EST is 9 hours later.
    now = utc(2026, 11, 1, 3, 0)  # 23:00 EDT on Oct 31
    assert in_quiet_hours(now, NY, {"start": "22:00", "end": "07:00"}) == utc(2026, 11, 1, 12, 0)


def test_an_end_in_the_repeated_hour_resumes_at_its_second_occurrence():
    now = utc(2026, 11, 1, 6, 10)  # 01:10 EST, the second 01:10 of the night; quiet until 01:30
    assert in_quiet_hours(now, NY, {"start": "22:00", "end": "01:30"}) == utc(2026, 11, 1, 6, 30)


def test_an_end_inside_the_skipped_hour_still_resumes_in_the_future():
    now = utc(2026, 3, 8, 5, 0)  # 00:00 EST, quiet until 02:30, which does not exist that night
    resume = in_quiet_hours(now, NY, {"start": "22:00", "end": "02:30"})
    assert resume is not None and now < resume <= now + timedelta(hours=4)


minutes = st.integers(min_value=0, max_value=24 * 60 - 1)


@given(
    now=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
    tz=st.sampled_from([UTC, NY, BERLIN, KOLKATA]),
    start=minutes,
    end=minutes,
)
def test_held_exactly_when_the_local_time_is_in_the_window_and_resume_is_in_the_future(now, tz, start, end):
    window = {"start": f"{start // 60:02d}:{start % 60:02d}", "end": f"{end // 60:02d}:{end % 60:02d}"}
    resume = in_quiet_hours(now, tz, window)
    local = now.astimezone(tz).time().replace(tzinfo=None)
    s, e = time(start // 60, start % 60), time(end // 60, end % 60)
    inside = s != e and ((s <= local < e) if s < e else (local >= s or local < e))
    assert (resume is not None) == inside
    if resume is not None:
        assert now < resume <= now + timedelta(hours=25)
        assert resume.tzinfo is not None


# --------------------------------------------------------------------------- hourly budget and urgency


@pytest.mark.parametrize(
    ("sent", "limit", "exceeded"),
    [(0, 10, False), (9, 10, False), (10, 10, True), (11, 10, True), (50, 0, False), (3, -1, False)],
)
def test_hourly_budget(sent, limit, exceeded):
    assert hourly_budget_exceeded(sent, limit) is exceeded


def test_urgent_kinds_are_the_documented_ones():
    assert {"approval", "reconnect"} == URGENT_KINDS
    assert is_urgent("approval") and is_urgent("reconnect")
    assert not is_urgent("approval_reminder")
    assert not is_urgent("deal_risk_alerts")
    assert not is_urgent("pre_meeting_briefing")
    assert is_urgent("pre_meeting_briefing", urgent=True)  # the caller: meeting within 2 h


def _hold(now: datetime, **overrides: object) -> Hold | None:
    args = {
        "urgent": False,
        "tz": UTC,
        "quiet_hours": NIGHT,
        "sent_last_hour": 0,
        "max_per_hour": 10,
        "oldest_in_window": None,
    }
    args.update(overrides)
    return delivery_hold(now, **args)  # type: ignore[arg-type]


def test_a_non_urgent_message_in_quiet_hours_is_held_until_they_end():
    assert _hold(utc(2026, 11, 25, 23, 0)) == Hold(utc(2026, 11, 26, 7, 0), "quiet_hours")


def test_an_urgent_message_skips_quiet_hours_and_the_budget():
    assert _hold(utc(2026, 11, 25, 23, 0), urgent=True, sent_last_hour=99) is None


def test_over_budget_waits_until_the_oldest_message_leaves_the_window():
    now = utc(2026, 11, 26, 12, 0)
    hold = _hold(now, sent_last_hour=10, oldest_in_window=now - timedelta(minutes=45))
    assert hold is not None and hold.reason == "hourly_budget"
    assert now + timedelta(minutes=15) <= hold.until < now + timedelta(minutes=15, seconds=1)


def test_under_budget_outside_quiet_hours_goes_now():
    assert _hold(utc(2026, 11, 26, 12, 0), sent_last_hour=9) is None


def test_quiet_hours_win_over_the_budget():
    hold = _hold(utc(2026, 11, 26, 1, 0), sent_last_hour=10, oldest_in_window=utc(2026, 11, 26, 0, 30))
    assert hold == Hold(utc(2026, 11, 26, 7, 0), "quiet_hours")


# --------------------------------------------------------------------------- Slack error mapping


def _api_error(status: int, body: dict | str, headers: dict | None = None) -> SlackApiError:
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="http://fake/api/chat.postMessage",
        req_args={},
        data=body,  # type: ignore[arg-type]
        headers=headers or {},
        status_code=status,
    )
    return SlackApiError("failed", response)


def test_429_is_rate_limited_with_the_retry_after_header():
    err = map_error(_api_error(429, {"ok": False, "error": "ratelimited"}, {"retry-after": "3"}))
    assert isinstance(err, SlackRateLimited) and isinstance(err, RateLimited)
    assert err.retry_after_s == 3.0 and err.code == "ratelimited"


def test_429_without_retry_after_waits_a_cautious_default():
    err = map_error(_api_error(429, {"ok": False, "error": "ratelimited"}))
    assert isinstance(err, RateLimited) and err.retry_after_s == DEFAULT_RETRY_AFTER_S


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient(status):
    err = map_error(_api_error(status, {"ok": False, "error": "Received a response in a non-JSON format: <html>"}))
    assert isinstance(err, SlackServerError) and isinstance(err, TransientError)
    assert err.code == f"http_{status}"


@pytest.mark.parametrize("code", ["token_revoked", "invalid_auth", "account_inactive"])
def test_dead_tokens_are_auth_revoked_for_slack(code):
    err = map_error(_api_error(200, {"ok": False, "error": code}))
    assert isinstance(err, SlackAuthRevoked) and isinstance(err, AuthRevoked)
    assert err.provider == "slack" and err.code == code


@pytest.mark.parametrize("code", ["channel_not_found", "not_in_channel", "too_many_attachments", "cant_update_message"])
def test_other_refusals_are_permanent_and_keep_slacks_code(code):
    err = map_error(_api_error(200, {"ok": False, "error": code}))
    assert isinstance(err, SlackCallFailed) and isinstance(err, PermanentError)
    assert err.code == code
