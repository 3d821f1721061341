"""Every transition table, spelled out: each legal move is accepted, a few illegal ones raise.

The tables: jobs, step runs, approvals and effects (worker/engine/states.py), Slack deliveries
(worker/slack/delivery.py), cron runs (worker/crons/tasks.py), integrations (worker/integrations.py).
A change to a table must change the moves written here too: the stored strings are the contract.
"""

from __future__ import annotations

from enum import StrEnum
from itertools import product

import pytest

from worker.crons.tasks import RUN_TRANSITIONS, RunStatus
from worker.engine.states import (
    APPROVAL_TRANSITIONS,
    EFFECT_TRANSITIONS,
    JOB_TRANSITIONS,
    STEP_TRANSITIONS,
    ApprovalStatus,
    EffectStatus,
    IllegalTransition,
    JobStatus,
    StepStatus,
    check_transition,
    predecessors,
)
from worker.integrations import INTEGRATION_TRANSITIONS, IntegrationStatus
from worker.slack.delivery import DELIVERY_TRANSITIONS, DeliveryStatus


def moves(text: str) -> set[tuple[str, str]]:
    """`"a -> b c; d -> e"` as {(a, b), (a, c), (d, e)}."""
    out = set()
    for clause in text.split(";"):
        old, targets = clause.split("->")
        out |= {(old.strip(), new) for new in targets.split()}
    return out


LEGAL = {
    "job": (
        JOB_TRANSITIONS,
        JobStatus,
        moves(
            "queued -> running awaiting_approval completed failed cancelled timeout;"
            "running -> awaiting_approval completed failed cancelled expired timeout;"
            "awaiting_approval -> running completed failed cancelled expired timeout"
        ),
    ),
    "step": (
        STEP_TRANSITIONS,
        StepStatus,
        moves(
            "queued -> running skipped cancelled failed;"
            "running -> running queued succeeded failed skipped awaiting_approval cancelled;"
            "awaiting_approval -> succeeded skipped cancelled failed"
        ),
    ),
    "approval": (
        APPROVAL_TRANSITIONS,
        ApprovalStatus,
        moves("pending -> approved rejected expired superseded cancelled"),
    ),
    "effect": (EFFECT_TRANSITIONS, EffectStatus, moves("started -> started done failed; failed -> started")),
    "delivery": (DELIVERY_TRANSITIONS, DeliveryStatus, moves("pending -> sent failed console; sent -> pending")),
    "cron_run": (RUN_TRANSITIONS, RunStatus, moves("running -> running done failed; failed -> running")),
    "integration": (INTEGRATION_TRANSITIONS, IntegrationStatus, moves("active -> revoked; revoked -> active")),
}

ILLEGAL = [
    ("job", "completed", "running"),
    ("job", "queued", "expired"),
    ("job", "cancelled", "cancelled"),
    ("step", "succeeded", "queued"),
    ("step", "queued", "succeeded"),
    ("approval", "approved", "rejected"),
    ("approval", "expired", "pending"),
    ("effect", "done", "started"),
    ("effect", "done", "failed"),
    ("effect", "failed", "done"),
    ("delivery", "failed", "pending"),
    ("delivery", "console", "sent"),
    ("delivery", "pending", "pending"),
    ("cron_run", "done", "running"),
    ("cron_run", "failed", "done"),
    ("integration", "revoked", "revoked"),
]


@pytest.mark.parametrize("name", LEGAL)
def test_the_table_is_exactly_these_moves(name: str) -> None:
    table, _enum, legal = LEGAL[name]
    assert {(old.value, new.value) for old, targets in table.items() for new in targets} == legal


@pytest.mark.parametrize("name", LEGAL)
def test_every_legal_move_is_accepted(name: str) -> None:
    table, enum, legal = LEGAL[name]
    for old, new in legal:
        assert check_transition(table, enum(old), enum(new)) is None
        assert check_transition(table, old, enum(new)) is None  # the stored string, as read from a row
        assert enum(old) in predecessors(table, enum(new))


@pytest.mark.parametrize("name", LEGAL)
def test_every_other_pair_raises(name: str) -> None:
    table, enum, legal = LEGAL[name]
    for old, new in product(enum, enum):
        if (old.value, new.value) not in legal:
            with pytest.raises(IllegalTransition, match=f"{old} -> {new} is not allowed"):
                check_transition(table, old, new)


@pytest.mark.parametrize(("name", "old", "new"), ILLEGAL)
def test_illegal_moves_raise(name: str, old: str, new: str) -> None:
    table, enum, _legal = LEGAL[name]
    with pytest.raises(IllegalTransition):
        check_transition(table, enum(old), enum(new))


@pytest.mark.parametrize("name", LEGAL)
def test_statuses_store_as_their_plain_strings(name: str) -> None:
    _table, enum, _legal = LEGAL[name]
    assert issubclass(enum, StrEnum)
    for status in enum:
        assert status == status.value and f"{status}" == status.value


def test_stored_strings_are_unchanged() -> None:
    assert [s.value for s in EffectStatus] == ["started", "done", "failed"]
    assert [s.value for s in DeliveryStatus] == ["pending", "sent", "console", "failed"]
    assert [s.value for s in RunStatus] == ["running", "done", "failed"]
    assert [s.value for s in IntegrationStatus] == ["active", "revoked"]
