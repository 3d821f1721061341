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
) -> RetryDecision:
    """Decide what happens after `attempt` (1-based) failed with `error`.

    transient: exponential backoff with jitter while attempts remain; rate_limited: the provider's
    Retry-After; auth_revoked, not_connected, permanent and uncertain: never (the engine parks a Google
    auth_revoked / not_connected step until the user connects); unknown: retried once, then final.
    """
    error_class = classify(error)
    left = attempt < max_attempts
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
