"""worker.engine.retry: error classes and the retry decision (docs/architecture.md)."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from hypothesis import given
from hypothesis import strategies as st

from worker.engine.retry import (
    BASE_DELAY_S,
    JITTER,
    MAX_DELAY_S,
    RetryDecision,
    backoff_s,
    classify,
    decide_retry,
)
from worker.errors import AuthRevoked, PermanentError, RateLimited, StepError, TransientError


def rng(value: float):
    return lambda: value


NO_JITTER = rng(0.0)
MAX_JITTER = rng(0.999999)


# --------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (TransientError("503"), "transient"),
        (RateLimited("slow down", retry_after_s=5), "rate_limited"),
        (AuthRevoked("invalid_grant", provider="google"), "auth_revoked"),
        (PermanentError("bad data"), "permanent"),
        (StepError("a skill failed somehow"), "unknown"),
        (TimeoutError(), "transient"),
        (ConnectionError(), "transient"),
        (ConnectionResetError(), "transient"),
        (ConnectionRefusedError(), "transient"),
        (SoftTimeLimitExceeded(), "transient"),
        (ValueError("x"), "unknown"),
        (KeyError("x"), "unknown"),
        (OSError("disk"), "unknown"),
        (RuntimeError(), "unknown"),
    ],
)
def test_classify(error, expected):
    assert classify(error) == expected


def test_rate_limited_is_a_transient_error_with_its_own_class():
    err = RateLimited(retry_after_s=-3)
    assert isinstance(err, TransientError)
    assert err.retry_after_s == 0.0
    assert RateLimited(retry_after_s="7").retry_after_s == 7.0


# --------------------------------------------------------------------------- transient


def test_transient_is_retried_while_attempts_remain_with_doubling_delays():
    d1 = decide_retry(TransientError("x"), 1, 3, rng=NO_JITTER)
    d2 = decide_retry(TransientError("x"), 2, 3, rng=NO_JITTER)
    assert d1 == RetryDecision(True, BASE_DELAY_S, "transient", "backoff")
    assert d2 == RetryDecision(True, 2 * BASE_DELAY_S, "transient", "backoff")


def test_transient_gives_up_at_max_attempts():
    d = decide_retry(TransientError("x"), 3, 3, rng=NO_JITTER)
    assert d == RetryDecision(False, 0.0, "transient", "gave up after 3 attempts")


@pytest.mark.parametrize("error", [TimeoutError(), ConnectionError(), SoftTimeLimitExceeded()])
def test_transient_builtins_are_retried(error):
    d = decide_retry(error, 2, 3, rng=NO_JITTER)
    assert d.retry
    assert d.error_class == "transient"
    assert not decide_retry(error, 3, 3).retry


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6])
def test_backoff_is_exponential_with_jitter_bounds(attempt):
    expected = BASE_DELAY_S * 2 ** (attempt - 1)
    assert backoff_s(attempt, NO_JITTER) == expected
    assert backoff_s(attempt, rng(0.5)) == expected * (1 + JITTER * 0.5)
    high = backoff_s(attempt, MAX_JITTER)
    assert expected < high < expected * (1 + JITTER)


def test_jitter_uses_the_given_rng_in_the_decision():
    low = decide_retry(TransientError("x"), 2, 5, rng=NO_JITTER).delay_s
    high = decide_retry(TransientError("x"), 2, 5, rng=MAX_JITTER).delay_s
    assert low == 2 * BASE_DELAY_S
    assert low < high < low * 1.5


def test_base_delay_is_configurable():
    d = decide_retry(TransientError("x"), 3, 5, rng=NO_JITTER, base_delay_s=0.1)
    assert d.delay_s == pytest.approx(0.4)
    assert backoff_s(1, NO_JITTER, base_delay_s=10) == 10


def test_backoff_before_the_first_attempt_is_the_base_delay():
    assert backoff_s(0, NO_JITTER) == BASE_DELAY_S


def test_backoff_is_capped():
    assert backoff_s(30, NO_JITTER) == MAX_DELAY_S
    assert backoff_s(9, NO_JITTER) == MAX_DELAY_S  # 2 * 2^8 = 512 > 300
    assert backoff_s(8, NO_JITTER) == BASE_DELAY_S * 2**7  # 256, under the cap
    # jitter is applied after the cap, so it still spreads retries that hit the cap
    assert MAX_DELAY_S < backoff_s(30, MAX_JITTER) < MAX_DELAY_S * (1 + JITTER)


@given(attempt=st.integers(1, 200), r=st.floats(0.0, 1.0, exclude_max=True))
def test_backoff_never_exceeds_the_jittered_cap(attempt, r):
    delay = backoff_s(attempt, rng(r))
    assert BASE_DELAY_S <= delay <= MAX_DELAY_S * (1 + JITTER)
    assert backoff_s(attempt + 1, rng(r)) >= delay  # never shrinks with the attempt


# --------------------------------------------------------------------------- rate limited


def test_rate_limited_waits_for_retry_after():
    d = decide_retry(RateLimited(retry_after_s=30), 1, 3, rng=NO_JITTER)
    assert d == RetryDecision(True, 30.0, "rate_limited", "retry after")
    high = decide_retry(RateLimited(retry_after_s=30), 2, 3, rng=MAX_JITTER).delay_s
    assert 30.0 < high < 33.0


def test_rate_limited_does_not_use_exponential_backoff():
    assert decide_retry(RateLimited(retry_after_s=1), 2, 5, rng=NO_JITTER).delay_s == 1.0


def test_rate_limited_gives_up_at_max_attempts():
    d = decide_retry(RateLimited(retry_after_s=1), 3, 3)
    assert d == RetryDecision(False, 0.0, "rate_limited", "gave up after 3 attempts")


# --------------------------------------------------------------------------- never retried


@pytest.mark.parametrize("error", [AuthRevoked("token_revoked", provider="slack"), PermanentError("bad")])
@pytest.mark.parametrize("attempt", [1, 2])
def test_auth_revoked_and_permanent_are_never_retried(error, attempt):
    d = decide_retry(error, attempt, 5, rng=NO_JITTER)
    assert d == RetryDecision(False, 0.0, error.error_class, "not retryable")


# --------------------------------------------------------------------------- unknown


def test_unknown_error_is_retried_once_then_final():
    first = decide_retry(ValueError("boom"), 1, 3, rng=NO_JITTER)
    assert first == RetryDecision(True, BASE_DELAY_S, "unknown", "unknown error, retried once")
    second = decide_retry(ValueError("boom"), 2, 3, rng=NO_JITTER)
    assert second == RetryDecision(False, 0.0, "unknown", "not retryable")


def test_unknown_error_is_not_retried_without_a_second_attempt():
    assert not decide_retry(ValueError("boom"), 1, 1).retry


def test_plain_step_error_counts_as_unknown():
    assert decide_retry(StepError("?"), 1, 3, rng=NO_JITTER).retry
    assert not decide_retry(StepError("?"), 2, 3, rng=NO_JITTER).retry


@pytest.mark.parametrize("error", [TransientError("x"), RateLimited(retry_after_s=1), ValueError()])
def test_nothing_is_retried_when_the_step_allows_one_attempt(error):
    assert not decide_retry(error, 1, 1).retry
