"""The pure parts of the rate limits: a token bucket's shape, and the retry decision of a rate-limited
job step (attempts not counted, bounded by the job's deadline)."""

from __future__ import annotations

import pytest

from worker.engine.retry import RetryDecision, decide_retry
from worker.errors import RateLimited, TransientError
from worker.ratelimit import bucket


def no_jitter() -> float:
    return 0.0


def test_bucket_shape_from_a_rate_and_a_burst():
    assert bucket(20.0, 100) == (0.05, pytest.approx(5.0))
    assert bucket(0.5, 3) == (2.0, 6.0)
    assert bucket(2.0, 0) == (0.5, 0.5)  # never less than one token


def test_a_rate_limited_step_is_retried_without_counting_the_attempt_past_max_attempts():
    d = decide_retry(RateLimited(retry_after_s=30), 7, 3, rng=no_jitter, time_left_s=600)
    assert d == RetryDecision(True, 30.0, "rate_limited", "retry after (attempt not counted)", counts=False)


def test_a_rate_limited_wait_past_the_deadline_fails_now():
    d = decide_retry(RateLimited(retry_after_s=3600), 1, 3, rng=no_jitter, time_left_s=600)
    assert (d.retry, d.error_class, d.counts) == (False, "rate_limited", True)
    assert d.reason == "rate limited for 3600 s, past the job's deadline (in 600 s)"


def test_without_a_deadline_rate_limited_retries_count_as_before():
    """Slack delivery passes no deadline and caps its rate-limited tries itself."""
    assert decide_retry(RateLimited(retry_after_s=1), 3, 3, rng=no_jitter).retry is False
    assert decide_retry(RateLimited(retry_after_s=1), 1, 3, rng=no_jitter).counts is True


def test_other_errors_still_count_with_a_deadline():
    d = decide_retry(TransientError("x"), 1, 3, rng=no_jitter, time_left_s=600)
    assert d.retry and d.counts
    assert decide_retry(TransientError("x"), 3, 3, rng=no_jitter, time_left_s=600).retry is False
