"""worker.engine.states: the status enums and their transition tables (docs/architecture.md#states)."""

from __future__ import annotations

from itertools import product

import pytest

from worker.engine.states import (
    APPROVAL_TRANSITIONS,
    JOB_ACTIVE,
    JOB_FINAL,
    JOB_TRANSITIONS,
    STEP_DONE,
    STEP_OPEN,
    STEP_TRANSITIONS,
    ApprovalStatus,
    IllegalTransition,
    JobStatus,
    StepStatus,
    check_transition,
    predecessors,
)

J, S, A = JobStatus, StepStatus, ApprovalStatus
TABLES = [
    pytest.param(JOB_TRANSITIONS, JobStatus, id="job"),
    pytest.param(STEP_TRANSITIONS, StepStatus, id="step"),
    pytest.param(APPROVAL_TRANSITIONS, ApprovalStatus, id="approval"),
]


def test_values_are_the_stored_strings():
    assert [s.value for s in JobStatus] == [
        "queued",
        "running",
        "awaiting_approval",
        "completed",
        "failed",
        "cancelled",
        "expired",
        "timeout",
        "skipped",
    ]
    assert [s.value for s in StepStatus] == [
        "queued",
        "running",
        "succeeded",
        "failed",
        "skipped",
        "awaiting_approval",
        "cancelled",
    ]
    assert [s.value for s in ApprovalStatus] == [
        "pending",
        "approved",
        "rejected",
        "expired",
        "superseded",
        "cancelled",
    ]


def test_statuses_compare_and_format_as_plain_strings():
    assert J.COMPLETED == "completed"
    assert str(S.AWAITING_APPROVAL) == "awaiting_approval"
    assert f"{A.PENDING}" == "pending"
    assert JobStatus("timeout") is J.TIMEOUT


def test_job_statuses_are_either_active_or_final():
    assert set(JobStatus) == JOB_ACTIVE | JOB_FINAL
    assert not JOB_ACTIVE & JOB_FINAL


def test_step_statuses_are_either_open_or_done():
    assert set(StepStatus) == STEP_OPEN | STEP_DONE
    assert not STEP_OPEN & STEP_DONE


def test_only_active_statuses_have_outgoing_transitions():
    assert set(JOB_TRANSITIONS) == JOB_ACTIVE
    assert set(STEP_TRANSITIONS) == STEP_OPEN
    assert set(APPROVAL_TRANSITIONS) == {A.PENDING}


@pytest.mark.parametrize(
    ("table", "final"),
    [
        *[(JOB_TRANSITIONS, s) for s in sorted(JOB_FINAL)],
        *[(STEP_TRANSITIONS, s) for s in sorted(STEP_DONE)],
        *[(APPROVAL_TRANSITIONS, s) for s in ApprovalStatus if s != A.PENDING],
    ],
)
def test_final_states_have_no_way_out(table, final):
    enum = type(final)
    for new in enum:
        with pytest.raises(IllegalTransition, match=f"{final} -> {new} is not allowed"):
            check_transition(table, final, new)


@pytest.mark.parametrize(("table", "enum"), TABLES)
def test_check_transition_agrees_with_the_table_for_every_pair(table, enum):
    for old, new in product(enum, enum):
        if new in table.get(old, ()):
            assert check_transition(table, old, new) is None
        else:
            with pytest.raises(IllegalTransition):
                check_transition(table, old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (J.QUEUED, J.RUNNING),
        (J.RUNNING, J.AWAITING_APPROVAL),
        (J.AWAITING_APPROVAL, J.RUNNING),  # resume after the click
        (J.RUNNING, J.COMPLETED),
        (J.AWAITING_APPROVAL, J.EXPIRED),
        (J.RUNNING, J.TIMEOUT),
        (J.QUEUED, J.CANCELLED),
    ],
)
def test_legal_job_transitions(old, new):
    check_transition(JOB_TRANSITIONS, old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (J.COMPLETED, J.RUNNING),
        (J.FAILED, J.QUEUED),
        (J.QUEUED, J.EXPIRED),  # only an open approval expires
        (J.RUNNING, J.SKIPPED),  # skipped is a creation state only
        (J.RUNNING, J.QUEUED),
        (J.SKIPPED, J.RUNNING),
    ],
)
def test_illegal_job_transitions(old, new):
    with pytest.raises(IllegalTransition):
        check_transition(JOB_TRANSITIONS, old, new)


@pytest.mark.parametrize(
    ("old", "new", "legal"),
    [
        (S.QUEUED, S.RUNNING, True),
        (S.RUNNING, S.QUEUED, True),  # a retry puts the step back in the queue
        (S.RUNNING, S.RUNNING, True),  # an expired lease is claimed again
        (S.RUNNING, S.AWAITING_APPROVAL, True),
        (S.AWAITING_APPROVAL, S.SUCCEEDED, True),
        (S.QUEUED, S.FAILED, True),  # poison: claimed past max_attempts
        (S.QUEUED, S.SUCCEEDED, False),  # must run first
        (S.AWAITING_APPROVAL, S.RUNNING, False),
        (S.SUCCEEDED, S.QUEUED, False),
        (S.FAILED, S.RUNNING, False),
    ],
)
def test_step_transitions(old, new, legal):
    if legal:
        check_transition(STEP_TRANSITIONS, old, new)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(STEP_TRANSITIONS, old, new)


def test_an_approval_is_decided_once():
    for decided in (A.APPROVED, A.REJECTED, A.EXPIRED, A.SUPERSEDED, A.CANCELLED):
        check_transition(APPROVAL_TRANSITIONS, A.PENDING, decided)
        for again in ApprovalStatus:
            with pytest.raises(IllegalTransition):
                check_transition(APPROVAL_TRANSITIONS, decided, again)


def test_predecessors():
    assert predecessors(JOB_TRANSITIONS, J.COMPLETED) == {J.QUEUED, J.RUNNING, J.AWAITING_APPROVAL}
    assert predecessors(JOB_TRANSITIONS, J.EXPIRED) == {J.RUNNING, J.AWAITING_APPROVAL}
    assert predecessors(JOB_TRANSITIONS, J.RUNNING) == {J.QUEUED, J.AWAITING_APPROVAL}
    assert predecessors(STEP_TRANSITIONS, S.QUEUED) == {S.RUNNING}
    assert predecessors(STEP_TRANSITIONS, S.RUNNING) == {S.QUEUED, S.RUNNING}
    assert predecessors(APPROVAL_TRANSITIONS, A.APPROVED) == {A.PENDING}


@pytest.mark.parametrize(
    ("table", "new"),
    [
        (JOB_TRANSITIONS, J.QUEUED),
        (JOB_TRANSITIONS, J.SKIPPED),
        (APPROVAL_TRANSITIONS, A.PENDING),
    ],
)
def test_predecessors_of_a_creation_only_state_raise(table, new):
    with pytest.raises(IllegalTransition, match=f"nothing may move to {new}"):
        predecessors(table, new)


@pytest.mark.parametrize(("table", "enum"), TABLES)
def test_predecessors_inverts_the_table(table, enum):
    for new in enum:
        expected = {old for old, targets in table.items() if new in targets}
        if expected:
            assert predecessors(table, new) == expected
        else:
            with pytest.raises(IllegalTransition):
                predecessors(table, new)


def test_every_final_job_status_but_skipped_is_reachable():
    for final in JOB_FINAL - {J.SKIPPED}:
        assert predecessors(JOB_TRANSITIONS, final)
