"""Status values of jobs, steps, approvals and effects, and the one table of legal transitions for each.

Statuses are `StrEnum`s so they store as plain strings and compare with them. Job, step and approval
state moves only in `worker/engine/jobstore.py`: its UPDATEs only ever move a row from one of
`predecessors(new)` to `new`, so an illegal transition is refused by the database itself rather than
by a check that can race, and a caller that says which status it moves from gets `IllegalTransition`
before any SQL when the table forbids the move. A guarded UPDATE that matches no row (another process
moved it first) is not an error: the function returns that as a value.

The statuses that are not the engine's keep their enum and table next to the code that writes them,
with the same `check_transition` / `predecessors`: `worker/slack/delivery.py` (DeliveryStatus),
`worker/crons/tasks.py` (RunStatus), `worker/integrations.py` (IntegrationStatus).
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"  # refused by a gate; created in this state, never moved


class StepStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    AWAITING_APPROVAL = "awaiting_approval"
    CANCELLED = "cancelled"


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"


class EffectStatus(StrEnum):
    """Values of effects.status (worker/engine/effects.py): an external side effect run at most once."""

    STARTED = "started"  # committed before the call: a crash leaves it here (ambiguous)
    DONE = "done"  # the call returned; its result is stored
    FAILED = "failed"  # the call raised: nothing was sent, a later attempt may try again


J, S, A, E = JobStatus, StepStatus, ApprovalStatus, EffectStatus

JOB_FINAL = frozenset({J.COMPLETED, J.FAILED, J.CANCELLED, J.EXPIRED, J.TIMEOUT, J.SKIPPED})
JOB_ACTIVE = frozenset({J.QUEUED, J.RUNNING, J.AWAITING_APPROVAL})
STEP_DONE = frozenset({S.SUCCEEDED, S.FAILED, S.SKIPPED, S.CANCELLED})
STEP_OPEN = frozenset({S.QUEUED, S.RUNNING, S.AWAITING_APPROVAL})

JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    J.QUEUED: frozenset({J.RUNNING, J.AWAITING_APPROVAL, J.COMPLETED, J.FAILED, J.CANCELLED, J.TIMEOUT}),
    J.RUNNING: frozenset({J.AWAITING_APPROVAL, J.COMPLETED, J.FAILED, J.CANCELLED, J.EXPIRED, J.TIMEOUT}),
    J.AWAITING_APPROVAL: frozenset({J.RUNNING, J.COMPLETED, J.FAILED, J.CANCELLED, J.EXPIRED, J.TIMEOUT}),
}

STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    S.QUEUED: frozenset({S.RUNNING, S.SKIPPED, S.CANCELLED, S.FAILED}),
    S.RUNNING: frozenset({S.RUNNING, S.QUEUED, S.SUCCEEDED, S.FAILED, S.SKIPPED, S.AWAITING_APPROVAL, S.CANCELLED}),
    S.AWAITING_APPROVAL: frozenset({S.SUCCEEDED, S.SKIPPED, S.CANCELLED, S.FAILED}),
}

APPROVAL_TRANSITIONS: dict[ApprovalStatus, frozenset[ApprovalStatus]] = {
    A.PENDING: frozenset({A.APPROVED, A.REJECTED, A.EXPIRED, A.SUPERSEDED, A.CANCELLED}),
}


EFFECT_TRANSITIONS: dict[EffectStatus, frozenset[EffectStatus]] = {
    # started -> started: a retry_safe effect whose attempt crashed is started again by the next attempt
    E.STARTED: frozenset({E.STARTED, E.DONE, E.FAILED}),
    E.FAILED: frozenset({E.STARTED}),
}


class IllegalTransition(Exception):
    """A status change the state machine does not allow (a bug in the caller, never user input)."""


def predecessors(table: dict, new: StrEnum) -> frozenset:
    """Every status from which `new` may be reached according to `table`."""
    found = frozenset(old for old, targets in table.items() if new in targets)
    if not found:
        raise IllegalTransition(f"nothing may move to {new!s}")
    return found


def check_transition(table: dict, old: StrEnum | str, new: StrEnum) -> None:
    """Raise IllegalTransition unless `old -> new` is in `table` (`old` may be the stored string)."""
    if new not in table.get(old, frozenset()):
        raise IllegalTransition(f"{old!s} -> {new!s} is not allowed")
