"""Every error Proactive raises on purpose, in families the retry policy and the edges act on.

Step failures (raised by skills and clients) tell the runner what to do next:
`TransientError` retry with backoff, `RateLimited` retry after the provider's delay,
`AuthRevoked` stop and ask for a reconnect (`GoogleNotConnected`: ask for a first connect),
`PermanentError` stop (`EffectUncertain`: a send may have happened, so it is not repeated).
`SkipStep` is not a failure: the skill had nothing to do and the step ends `skipped`.

User-facing errors (`InvalidEvent`, `NotFound`, `NotAuthorized`, `AlreadyDecided`,
`ApprovalExpired`) carry a message a CLI or an HTTP handler prints unchanged, plus the HTTP status
and the CLI exit code that go with them. Never match on error strings: match on the class.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


class ProactiveError(Exception):
    """Base of every deliberate Proactive error."""

    http_status = 500
    exit_code = 1


# --------------------------------------------------------------------------- step failures


class StepError(ProactiveError):
    """A skill or client failed; the subclass decides whether the step is retried."""

    error_class = "unknown"


class TransientError(StepError):
    """Network error, 5xx or timeout: retried with exponential backoff and jitter."""

    error_class = "transient"


class RateLimited(TransientError):
    """The provider asked us to slow down: retried after its Retry-After."""

    error_class = "rate_limited"

    def __init__(self, message: str = "rate limited", retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = max(0.0, float(retry_after_s))


class AnswerLost(TransientError):
    """A write reached the provider and the connection closed before its answer: it may have acted.
    Retried like any transient error; an effect's row stays `started`, so the retry asks the provider
    before acting again (worker/engine/effects.py)."""


class AuthRevoked(StepError):
    """The user's credentials were revoked (`invalid_grant`, `token_revoked`): no retry."""

    error_class = "auth_revoked"

    def __init__(self, message: str, provider: str = "", integration_id: Any = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.integration_id = integration_id


class GoogleNotConnected(AuthRevoked):
    """The rep has no active Google connection (never connected, or access revoked) and a step must act
    as them: the step waits for them to connect, exactly like revoked Google credentials."""

    error_class = "not_connected"

    def __init__(self, message: str, *, user_id: Any = None) -> None:
        super().__init__(message, provider="google")
        self.user_id = user_id


class PermanentError(StepError):
    """Bad data or a refused request that will fail the same way again: no retry."""

    error_class = "permanent"


class EffectUncertain(PermanentError):
    """A send was interrupted mid-call: the provider may have acted, so it is not repeated; a person
    must check (the Sent folder, the calendar) before doing it again."""

    error_class = "uncertain"


class StepFailed(ProactiveError):
    """Steps failed for good while a task ran them (already recorded on the job). The task raises it
    after everything is committed so that Celery, and so Flower, count the task as failed."""


class SkipStep(ProactiveError):
    """Raised by a skill that has nothing to do: the step ends `skipped` with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- user-facing


class UserError(ProactiveError):
    """Bad input from a person or a caller: printed as is, exit code 2, HTTP 4xx."""

    http_status = 400
    exit_code = 2


class InvalidEvent(UserError):
    """An event envelope that cannot be accepted (schema, unknown org/user, unknown type)."""

    http_status = 422

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class NotFound(UserError):
    """A job, approval or record that does not exist in this org."""

    http_status = 404


class NotAuthorized(UserError):
    """The user may not do this (not an approver, not the deal owner, not an org admin)."""

    http_status = 403


# What a decision (or an approval's final status) did, in the past tense: "already <words> by X".
DONE_WORDS: dict[str, str] = {
    "approve": "approved",
    "approved": "approved",
    "approve_send": "approved and sent",
    "reject": "rejected",
    "rejected": "rejected",
    "edit": "edited and sent",
    "send_now": "sent",
    "send_later": "scheduled for later",
    "cancel": "cancelled",
    "cancelled": "closed",
    "skip": "skipped",
    "share_link": "answered with a link",
    "send_invite": "answered with an invite",
    "send_times": "answered with times by email",
    "more": "sent back for more options",
    "handle": "taken over",
    "expired": "expired",
    "superseded": "sent back for more options",
}


def done_words(decision: str) -> str:
    """A decision in the past tense ("approve" -> "approved"; an unknown one with its _ as spaces)."""
    return DONE_WORDS.get(decision, decision.replace("_", " "))


class AlreadyDecided(UserError):
    """Someone else decided this approval first: a refusal (exit 1, HTTP 409), not bad input."""

    http_status = 409
    exit_code = 1

    def __init__(self, decision: str, by: str, at: datetime) -> None:
        super().__init__(f"already {done_words(decision)} by {by} at {at:%Y-%m-%d %H:%M:%S} UTC")
        self.decision = decision
        self.by = by
        self.at = at


class ApprovalExpired(UserError):
    """The approval expired before this decision arrived."""

    http_status = 410

    def __init__(self, expired_at: datetime) -> None:
        super().__init__(f"this approval expired at {expired_at:%Y-%m-%d %H:%M:%S} UTC")
        self.expired_at = expired_at


class InvalidDecision(UserError):
    """A decision this approval kind does not offer."""

    http_status = 422


class TooLate(UserError):
    """The action's window has passed (e.g. Undo after the email was sent)."""

    http_status = 409
