"""Which ready steps join the inline one (worker/engine/durations.py): pure rules, no I/O."""

from __future__ import annotations

import os

import pytest

from worker.engine.durations import Durations, JoinBudget


def test_the_running_average_starts_at_the_first_run_and_leans_to_the_newest():
    d = Durations(weight=0.5)
    key = ("proposal_generation", "left")
    assert d.expected(key) is None
    d.observe(key, 10.0)
    assert d.expected(key) == 10.0
    d.observe(key, 20.0)
    assert d.expected(key) == 15.0
    assert d.expected(("proposal_generation", "right")) is None


def test_steps_join_while_all_of_them_fit_in_the_cap():
    budget = JoinBudget(cap_ms=25.0)
    budget.start(5.0)
    assert [budget.admits(ms) for ms in (8.0, 8.0, 8.0, 4.0)] == [True, True, False, True]
    assert budget.total_ms == 25.0


@pytest.mark.parametrize(
    ("cap_ms", "first_ms", "other_ms"),
    [
        (25.0, None, 1.0),  # the inline step never ran here: nothing is known of the task's length
        (25.0, 1.0, None),  # this one never ran here: it may wait on an outside call
        (0.0, 1.0, 1.0),  # joins turned off (PROACTIVE_INLINE_JOIN_MS=0)
        (25.0, 1.0, 30.0),  # too slow to wait behind the inline step
    ],
)
def test_a_step_of_unknown_or_too_long_duration_is_published(cap_ms, first_ms, other_ms):
    budget = JoinBudget(cap_ms)
    budget.start(first_ms)
    assert budget.admits(other_ms) is False
    assert budget.total_ms == first_ms  # nothing counted for it


def test_what_one_forked_process_measured_the_others_read():
    """The table is made before the fork (as a prefork worker imports the engine before its pool)."""
    d = Durations()
    key = ("proposal_generation", "right")
    pid = os.fork()
    if pid == 0:  # the pool process that ran `right`
        d.observe(key, 3.0)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert d.expected(key) == 3.0


def test_a_full_neighbourhood_measures_no_more_and_forgets_nothing():
    d = Durations(slots=4)
    keys = [("s", str(i)) for i in range(40)]
    for k in keys:
        d.observe(k, 1.0)
    known = [k for k in keys if d.expected(k) is not None]
    assert len(known) == 4  # every slot taken once, by the first keys that reached it
    for k in known:
        d.observe(k, 3.0)
        assert d.expected(k) == pytest.approx(1.4)
