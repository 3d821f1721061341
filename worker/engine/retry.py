"""Error classification and the retry decision of a failed step (pure; docs/architecture.md).

`classify()` maps an exception to its error class; `decide_retry()` turns (class, attempt) into a
`RetryDecision` value. The runner only persists and publishes what these return.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError, OperationalError

from worker.errors import RateLimited, StepError

# First retry delay of a transient error (seconds); doubles each attempt.
BASE_DELAY_S = 2.0
# Longest backoff before jitter (seconds); jitter still spreads retries that reach it.
MAX_DELAY_S = 300.0
# Jitter as a fraction of the delay (0.5 -> delay x [1.0, 1.5)) so retries of a burst spread out.
JITTER = 0.5

TRANSIENT_BUILTINS: tuple[type[BaseException], ...] = (
    SoftTimeLimitExceeded,
    TimeoutError,
    ConnectionError,
)


@dataclass(frozen=True)
class RetryDecision:
    """Whether to run the step again, after how long, and the class recorded for the error."""

    retry: bool
    delay_s: float = 0.0
    error_class: str = "unknown"
    reason: str = ""
    counts: bool = True  # False: the failed attempt is given back (a rate limit is not a try)


def classify(error: BaseException) -> str:
    """The error class of `error`: transient, rate_limited, auth_revoked, not_connected, permanent,
    uncertain or unknown."""
    if isinstance(error, StepError):
        return error.error_class
    if isinstance(error, TRANSIENT_BUILTINS):
        return "transient"
    if isinstance(error, OperationalError | DBAPIError) and (
        isinstance(error, OperationalError) or error.connection_invalidated
    ):
        return "transient"  # the database went away or is busy: worth another attempt
    return "unknown"


def decide_retry(
    error: BaseException,
    attempt: int,
    max_attempts: int,
    rng: Callable[[], float] = random.random,
    base_delay_s: float = BASE_DELAY_S,
    *,
    time_left_s: float | None = None,
) -> RetryDecision:
    """Decide what happens after `attempt` (1-based) failed with `error`.

    transient: exponential backoff with jitter while attempts remain; rate_limited: the provider's
    Retry-After; auth_revoked, not_connected, permanent and uncertain: never (the engine parks a Google
    auth_revoked / not_connected step until the user connects); unknown: retried once, then final.

    With `time_left_s` (a job step: the seconds left before its job's deadline) a rate_limited
    failure does not use up an attempt (`counts` False): it is retried after its Retry-After however
    many times it happens, bounded by the deadline instead: a wait that ends past it fails now.
    Without it (Slack delivery) rate_limited retries count like the others.
    """
    error_class = classify(error)
    left = attempt < max_attempts
    if error_class == "rate_limited" and time_left_s is not None:
        assert isinstance(error, RateLimited)
        delay = error.retry_after_s * (1 + 0.1 * rng())
        if delay > time_left_s:
            reason = f"rate limited for {delay:.0f} s, past the job's deadline (in {max(0.0, time_left_s):.0f} s)"
            return RetryDecision(False, 0.0, error_class, reason)
        return RetryDecision(True, delay, error_class, "retry after (attempt not counted)", counts=False)
    if error_class == "rate_limited" and left:
        assert isinstance(error, RateLimited)
        return RetryDecision(True, error.retry_after_s * (1 + 0.1 * rng()), error_class, "retry after")
    if error_class == "transient" and left:
        return RetryDecision(True, backoff_s(attempt, rng, base_delay_s), error_class, "backoff")
    if error_class == "unknown" and attempt == 1 and left:
        return RetryDecision(True, backoff_s(attempt, rng, base_delay_s), error_class, "unknown error, retried once")
    if error_class in ("transient", "rate_limited"):
        return RetryDecision(False, 0.0, error_class, f"gave up after {attempt} attempts")
    return RetryDecision(False, 0.0, error_class, "not retryable")


def backoff_s(attempt: int, rng: Callable[[], float] = random.random, base_delay_s: float = BASE_DELAY_S) -> float:
    """Delay before attempt `attempt + 1`: base x 2^(attempt-1), capped, with jitter."""
    return min(MAX_DELAY_S, base_delay_s * 2 ** min(max(0, attempt - 1), 30)) * (1 + JITTER * rng())
