"""worker.engine.dag: definition errors, topological order, definition hash, and plan() (docs/sequences.md)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.engine.dag import (
    DEFAULT_TIMEOUT_S,
    HARD_LIMIT_GRACE_S,
    ApprovalSpec,
    DefinitionError,
    Plan,
    Sequence,
    Step,
    WhenContext,
    plan,
    roots,
    topological_order,
    validate,
)
from worker.engine.states import StepStatus

S = StepStatus
ENDED = (S.SUCCEEDED, S.FAILED, S.SKIPPED)


def noop(ctx, inputs):
    return None


def other_skill(ctx, inputs):
    return None


def never_called(ctx):
    raise AssertionError("the when predicate must not be evaluated here")


def seq(*steps: Step, event_type: str = "test") -> Sequence:
    return Sequence(event_type, steps)


def diamond(**crit: bool) -> Sequence:
    """a -> (b, c) -> d; `crit` overrides the critical flag per step."""
    return seq(
        Step("a", noop, critical=crit.get("a", True)),
        Step("b", noop, deps=("a",), critical=crit.get("b", True)),
        Step("c", noop, deps=("a",), critical=crit.get("c", True)),
        Step("d", noop, deps=("b", "c"), critical=crit.get("d", True)),
    )


# --------------------------------------------------------------------------- validation


def test_empty_sequence_is_refused():
    with pytest.raises(DefinitionError, match="no steps"):
        Sequence("test", ())


def test_duplicate_step_names_are_refused():
    with pytest.raises(DefinitionError, match="duplicate step name 'a'"):
        seq(Step("a", noop), Step("b", noop), Step("a", other_skill))


def test_unknown_dependency_is_refused():
    with pytest.raises(DefinitionError, match="'b' depends on unknown 'nope'"):
        seq(Step("a", noop), Step("b", noop, deps=("a", "nope")))


def test_self_dependency_is_refused():
    with pytest.raises(DefinitionError, match="'a' depends on itself"):
        seq(Step("a", noop, deps=("a",)))


def test_two_step_cycle_is_refused():
    with pytest.raises(DefinitionError, match="cycle among a, b"):
        seq(Step("a", noop, deps=("b",)), Step("b", noop, deps=("a",)))


def test_three_step_cycle_is_refused_and_names_only_the_unresolvable_steps():
    with pytest.raises(DefinitionError, match=r"cycle among x, y, z$"):
        seq(
            Step("root", noop),
            Step("x", noop, deps=("root", "z")),
            Step("y", noop, deps=("x",)),
            Step("z", noop, deps=("y",)),
        )


def test_rerun_target_must_be_a_step_of_the_sequence():
    with pytest.raises(DefinitionError, match="re-runs unknown step 'gone'"):
        seq(
            Step("prepare", noop),
            Step(
                "review", noop, deps=("prepare",), approval=ApprovalSpec("calendar_slots", rerun_from={"more": "gone"})
            ),
        )


def test_rerun_target_that_exists_is_accepted():
    s = seq(
        Step("prepare", noop),
        Step(
            "review", noop, deps=("prepare",), approval=ApprovalSpec("calendar_slots", rerun_from={"more": "prepare"})
        ),
    )
    assert s.step("review").approval.rerun_from == {"more": "prepare"}


def test_validate_is_usable_without_building_a_sequence():
    validate("test", [Step("a", noop), Step("b", noop, deps=("a",))])
    with pytest.raises(DefinitionError):
        validate("test", [])


@pytest.mark.parametrize("queue", ["default", "", "STEPS"])
def test_unknown_queue_is_refused(queue):
    with pytest.raises(DefinitionError, match="unknown queue"):
        Step("a", noop, queue=queue)


@pytest.mark.parametrize("queue", ["steps", "slow", "edge", "beat"])
def test_the_four_queues_are_accepted(queue):
    assert Step("a", noop, queue=queue).queue == queue


@pytest.mark.parametrize("kwargs", [{"timeout_s": 0}, {"timeout_s": -1.0}, {"max_attempts": 0}])
def test_bad_timeout_or_attempts_are_refused(kwargs):
    with pytest.raises(DefinitionError, match="timeout_s must be > 0"):
        Step("a", noop, **kwargs)


def test_step_defaults_and_hard_limit():
    step = Step("a", noop)
    assert (step.critical, step.queue, step.max_attempts) == (True, "steps", 3)
    assert step.timeout_s == DEFAULT_TIMEOUT_S == 60.0
    assert step.hard_limit_s == DEFAULT_TIMEOUT_S + HARD_LIMIT_GRACE_S == 75.0
    assert Step("b", noop, timeout_s=3, hard_grace_s=1).hard_limit_s == 4


def test_deps_given_as_list_or_string_are_normalised_to_a_tuple():
    assert Step("b", noop, deps=["a", "x"]).deps == ("a", "x")
    assert Step("b", noop, deps="a").deps == ("a",)


def test_unknown_step_lookup_raises_key_error():
    with pytest.raises(KeyError):
        diamond().step("zz")


# --------------------------------------------------------------------------- approvals


def test_approval_outcomes():
    spec = ApprovalSpec("calendar_slots", rerun_from={"more": "prepare"})
    assert spec.outcome("more") == "rerun"
    assert spec.outcome("send_invite") == "proceed"
    assert spec.outcome("approve") == "proceed"
    assert spec.outcome("edit") == "proceed"
    assert spec.outcome("handle") == "stop"
    assert spec.outcome("reject") == "stop"
    with pytest.raises(KeyError):
        spec.outcome("explode")


def test_more_is_only_a_rerun_where_declared():
    with pytest.raises(KeyError):
        ApprovalSpec("email_preview").outcome("more")


# --------------------------------------------------------------------------- order


def test_order_follows_declaration_when_declaration_is_topological():
    s = seq(Step("a", noop), Step("x", noop), Step("b", noop, deps=("a",)), Step("c", noop, deps=("b", "x")))
    assert s.order == ("a", "x", "b", "c")


def test_order_puts_dependencies_first_whatever_the_declaration():
    s = seq(
        Step("d", noop, deps=("b", "c")), Step("c", noop, deps=("a",)), Step("b", noop, deps=("a",)), Step("a", noop)
    )
    assert s.order == ("a", "c", "b", "d")  # c and b tie: declaration order


def test_order_is_stable_across_builds_and_among_independent_roots():
    steps = [Step(n, noop) for n in ("zeta", "alpha", "mid")]
    assert topological_order(steps) == ("zeta", "alpha", "mid")
    assert seq(*steps).order == seq(*steps).order


def test_duplicate_dependency_entries_do_not_block_the_order():
    s = seq(Step("a", noop), Step("b", noop, deps=("a", "a")))
    assert s.order == ("a", "b")


def test_roots_and_dependents():
    s = seq(Step("a", noop), Step("x", noop), Step("b", noop, deps=("a",)), Step("c", noop, deps=("a", "x")))
    assert roots(s) == ("a", "x")
    assert s.dependents("a") == ("b", "c")
    assert s.dependents("c") == ()


def test_downstream_is_every_reachable_step_in_order():
    s = seq(
        Step("a", noop),
        Step("b", noop, deps=("a",)),
        Step("c", noop, deps=("a",)),
        Step("d", noop, deps=("b", "c")),
        Step("e", noop),
        Step("f", noop, deps=("e",)),
    )
    assert s.downstream("a") == ["a", "b", "c", "d"]
    assert s.downstream("b") == ["b", "d"]
    assert s.downstream("d") == ["d"]
    assert s.downstream("e") == ["e", "f"]


# --------------------------------------------------------------------------- definition hash


def test_definition_hash_is_stable():
    assert diamond().definition_hash == diamond().definition_hash
    assert len(diamond().definition_hash) == 64
    int(diamond().definition_hash, 16)


def test_definition_hash_ignores_description_and_event_type_label():
    base = diamond()
    again = Sequence("other", base.steps, description="words")
    assert again.definition_hash == base.definition_hash


def test_definition_hash_changes_when_a_dependency_changes():
    a = seq(Step("a", noop), Step("b", noop), Step("c", noop, deps=("a",)))
    b = seq(Step("a", noop), Step("b", noop), Step("c", noop, deps=("a", "b")))
    assert a.definition_hash != b.definition_hash


def test_definition_hash_changes_when_a_critical_flag_changes():
    assert diamond().definition_hash != diamond(c=False).definition_hash


@pytest.mark.parametrize(
    "changed",
    [
        {"skill": other_skill},
        {"queue": "slow"},
        {"timeout_s": 30.0},
        {"max_attempts": 5},
        {"approval": ApprovalSpec("email_preview")},
        {"when": lambda w: True},
    ],
)
def test_definition_hash_changes_with_behaviour(changed):
    base = seq(Step("a", noop), Step("b", noop, deps=("a",)))
    kwargs = {"skill": noop, "deps": ("a",), **changed}
    other = seq(Step("a", noop), Step("b", **kwargs))
    assert other.definition_hash != base.definition_hash


# --------------------------------------------------------------------------- plan


def test_roots_are_queued_first():
    s = seq(Step("a", noop), Step("x", noop), Step("b", noop, deps=("a", "x")))
    p = plan(s, {})
    assert p == Plan(queue=("a", "x"))
    assert not p.finished


def test_nothing_new_while_a_root_runs():
    p = plan(diamond(), {"a": S.RUNNING})
    assert p.queue == ()
    assert p.skip == ()
    assert not p.finished
    assert not p.waiting


def test_both_branches_queued_after_the_fork():
    assert plan(diamond(), {"a": S.SUCCEEDED}).queue == ("b", "c")


@pytest.mark.parametrize("open_status", [S.QUEUED, S.RUNNING])
def test_join_waits_for_both_branches(open_status):
    p = plan(diamond(), {"a": S.SUCCEEDED, "b": S.SUCCEEDED, "c": open_status})
    assert p.queue == ()
    assert not p.finished


def test_join_runs_when_both_branches_succeeded():
    p = plan(diamond(), {"a": S.SUCCEEDED, "b": S.SUCCEEDED, "c": S.SUCCEEDED})
    assert p.queue == ("d",)
    assert not p.finished


def test_steps_that_have_a_row_are_never_queued_again():
    p = plan(diamond(), {"a": S.SUCCEEDED, "b": S.QUEUED, "c": S.SUCCEEDED})
    assert p.queue == ()


def test_plan_does_not_mutate_the_statuses_it_is_given():
    statuses = {"a": S.SUCCEEDED}
    plan(diamond(), statuses)
    assert statuses == {"a": S.SUCCEEDED}


@pytest.mark.parametrize("open_status", [S.QUEUED, S.RUNNING])
def test_critical_failure_fails_the_job_once_the_other_branch_stops(open_status):
    s = diamond()
    p = plan(s, {"a": S.SUCCEEDED, "b": S.FAILED, "c": open_status})
    assert p.failed_step == "b"
    assert p.queue == ()
    assert not p.finished
    p = plan(s, {"a": S.SUCCEEDED, "b": S.FAILED, "c": S.SUCCEEDED})
    assert p == Plan(finished=True, failed_step="b")  # d is never queued


def test_critical_failure_reports_the_first_failed_step_in_order():
    p = plan(diamond(), {"a": S.SUCCEEDED, "b": S.FAILED, "c": S.FAILED})
    assert p.failed_step == "b"
    assert p.finished


def test_critical_failure_of_a_root_queues_nothing_else():
    s = seq(Step("a", noop), Step("x", noop), Step("b", noop, deps=("x",)))
    p = plan(s, {"a": S.FAILED, "x": S.SUCCEEDED})
    assert p == Plan(finished=True, failed_step="a")


def test_best_effort_failure_lets_dependents_run():
    s = diamond(b=False)
    p = plan(s, {"a": S.SUCCEEDED, "b": S.FAILED, "c": S.SUCCEEDED})
    assert p.failed_step is None
    assert p.queue == ("d",)


def test_best_effort_root_failure_still_runs_its_chain():
    s = seq(Step("optional", noop, critical=False), Step("needs", noop, deps=("optional",)))
    assert plan(s, {"optional": S.FAILED}).queue == ("needs",)


def test_cancelled_dependency_never_makes_its_dependents_ready():
    p = plan(diamond(), {"a": S.SUCCEEDED, "b": S.CANCELLED, "c": S.SUCCEEDED})
    assert p.queue == ()
    assert p.skip == ()


# --------------------------------------------------------------------------- when / skipped


def intent_is(intent: str):
    return lambda w: w.output("classify", "intent") == intent


def branch() -> Sequence:
    """email_received's shape: classify -> (draft -> review) | book -> wrap-up."""
    return seq(
        Step("classify", noop),
        Step("draft-reply", noop, deps=("classify",), when=intent_is("reply"), skip_reason="not_reply"),
        Step("review-reply", noop, deps=("draft-reply",)),
        Step("send-reply", noop, deps=("review-reply",)),
        Step("book", noop, deps=("classify",), when=intent_is("book"), skip_reason="not_booking"),
        Step("wrap-up", noop, deps=("send-reply", "book")),
    )


def test_when_false_skips_with_the_steps_reason_and_true_queues():
    s = branch()
    p = plan(s, {"classify": S.SUCCEEDED}, outputs={"classify": {"intent": "reply"}})
    assert p.queue == ("draft-reply",)
    assert p.skip == (("book", "not_booking"),)
    assert not p.finished


def test_when_sees_the_payload():
    s = seq(Step("a", noop), Step("b", noop, deps=("a",), when=lambda w: w.payload.get("go") is True))
    assert plan(s, {"a": S.SUCCEEDED}, payload={"go": True}).queue == ("b",)
    assert plan(s, {"a": S.SUCCEEDED}, payload={"go": False}).skip == (("b", "condition_false"),)


def test_when_on_a_root_is_evaluated_immediately():
    s = seq(Step("a", noop, when=lambda w: False, skip_reason="off"), Step("b", noop))
    p = plan(s, {})
    assert p.queue == ("b",)
    assert p.skip == (("a", "off"),)


def test_when_is_not_evaluated_before_the_dependencies_end():
    s = seq(Step("a", noop), Step("b", noop, deps=("a",), when=never_called))
    assert plan(s, {"a": S.RUNNING}).queue == ()


def test_skip_cascades_transitively_with_upstream_reasons():
    # skips come in topological order, declaration order first
    s = branch()
    p = plan(s, {"classify": S.SUCCEEDED}, outputs={"classify": {"intent": "fyi"}})
    assert p.queue == ()
    assert p.skip == (
        ("draft-reply", "not_reply"),
        ("review-reply", "upstream_skipped:draft-reply"),
        ("send-reply", "upstream_skipped:review-reply"),
        ("book", "not_booking"),
        ("wrap-up", "upstream_skipped:send-reply"),
    )
    assert p.finished


def test_upstream_skip_reaches_a_fixpoint_even_when_declared_out_of_order():
    s = seq(
        Step("c", noop, deps=("b",)),
        Step("b", noop, deps=("a",), when=lambda w: False, skip_reason="no"),
        Step("a", noop),
    )
    p = plan(s, {"a": S.SUCCEEDED})
    assert p.skip == (("b", "no"), ("c", "upstream_skipped:b"))
    assert p.finished


def test_upstream_skip_names_the_first_declared_dependency():
    s = seq(Step("x", noop), Step("y", noop), Step("z", noop, deps=("y", "x")))
    assert plan(s, {"x": S.SKIPPED, "y": S.SKIPPED}).skip == (("z", "upstream_skipped:y"),)


def test_upstream_skip_wins_over_the_steps_own_predicate():
    s = seq(Step("a", noop), Step("b", noop, deps=("a",), when=never_called, skip_reason="mine"))
    assert plan(s, {"a": S.SKIPPED}).skip == (("b", "upstream_skipped:a"),)


def test_taken_branch_joins_with_the_skipped_one():
    s = branch()
    statuses = {
        "classify": S.SUCCEEDED,
        "draft-reply": S.SUCCEEDED,
        "review-reply": S.SUCCEEDED,
        "send-reply": S.SUCCEEDED,
        "book": S.SKIPPED,
    }
    p = plan(s, statuses, outputs={"classify": {"intent": "reply"}})
    assert p.queue == ("wrap-up",)


def test_mixed_skipped_and_failed_best_effort_dependencies_still_run():
    s = seq(Step("x", noop, critical=False), Step("y", noop), Step("z", noop, deps=("x", "y")))
    assert plan(s, {"x": S.FAILED, "y": S.SKIPPED}).queue == ("z",)


def test_when_context_output_defaults():
    w = WhenContext(payload={}, outputs={"a": {"k": 1}, "b": None, "c": "text"})
    assert w.output("a", "k") == 1
    assert w.output("a", "missing", "d") == "d"
    assert w.output("b", "k", 0) == 0
    assert w.output("c", "k") is None
    assert w.output("nope", "k") is None


# --------------------------------------------------------------------------- approvals and finishing


def approval_chain() -> Sequence:
    return seq(
        Step("prepare", noop),
        Step("review", noop, deps=("prepare",), approval=ApprovalSpec("email_preview")),
        Step("send", noop, deps=("review",)),
        Step("side", noop),
    )


def test_awaiting_approval_waits_and_is_not_finished():
    s = approval_chain()
    p = plan(s, {"prepare": S.SUCCEEDED, "review": S.AWAITING_APPROVAL, "side": S.SUCCEEDED})
    assert p.waiting
    assert not p.finished
    assert p.queue == ()


def test_awaiting_approval_with_work_still_running_is_not_waiting():
    s = approval_chain()
    p = plan(s, {"prepare": S.SUCCEEDED, "review": S.AWAITING_APPROVAL, "side": S.RUNNING})
    assert not p.waiting
    assert not p.finished


def test_after_the_decision_the_next_step_is_queued():
    s = approval_chain()
    p = plan(s, {"prepare": S.SUCCEEDED, "review": S.SUCCEEDED, "side": S.SUCCEEDED})
    assert p.queue == ("send",)
    assert not p.waiting


def test_finished_when_every_step_ended():
    s = diamond(b=False)
    p = plan(s, {"a": S.SUCCEEDED, "b": S.FAILED, "c": S.SKIPPED, "d": S.SUCCEEDED})
    assert p == Plan(finished=True)


def test_uses_when():
    assert branch().uses_when
    assert not diamond().uses_when


# --------------------------------------------------------------------------- property: random DAGs


@st.composite
def random_dags(draw):
    """Acyclic by construction: step i may only depend on steps declared before it."""
    n = draw(st.integers(1, 10))
    steps = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        when_value = draw(st.sampled_from([None, True, False]))
        steps.append(
            Step(
                f"s{i}",
                noop,
                deps=tuple(f"s{d}" for d in deps),
                critical=draw(st.booleans()),
                when=None if when_value is None else (lambda w, v=when_value: v),
                skip_reason=f"cond{i}",
            )
        )
    # shuffle the declaration so the planner cannot rely on it being topological
    order = draw(st.permutations(range(n)))
    return Sequence("test", tuple(steps[i] for i in order))


OUTCOMES = [S.SUCCEEDED, S.SUCCEEDED, S.FAILED, S.SKIPPED, S.AWAITING_APPROVAL]


@settings(max_examples=300, deadline=None)
@given(sequence=random_dags(), data=st.data())
def test_random_dags_run_to_completion(sequence, data):
    statuses: dict[str, StepStatus] = {}
    ended_once: list[str] = []
    critical_failure = None
    for _round in range(2 * len(sequence.steps) + 2):
        p = plan(sequence, statuses)
        assert plan(sequence, statuses) == p  # deterministic

        for name, reason in p.skip:
            step = sequence.step(name)
            assert name not in statuses, f"{name} skipped twice"
            assert all(statuses.get(d) in ENDED for d in step.deps)
            if step.deps and all(statuses[d] == S.SKIPPED for d in step.deps):
                assert reason == f"upstream_skipped:{step.deps[0]}"
            else:
                assert step.when is not None
                assert reason == step.skip_reason
            statuses[name] = S.SKIPPED
            ended_once.append(name)
        for name in p.queue:
            assert name not in statuses, f"{name} queued twice"
            step = sequence.step(name)
            assert all(statuses.get(d) in ENDED for d in step.deps), f"{name} queued too early"
            all_skipped = bool(step.deps) and all(statuses[d] == S.SKIPPED for d in step.deps)
            assert not all_skipped, f"{name} runs after its dependencies were all skipped"
            assert step.when is None or step.when(WhenContext({}, {})), f"{name} runs despite its condition"

        if critical_failure:
            assert p.failed_step == first_critical_failure(sequence, statuses)
            assert p.queue == ()
            assert p.skip == ()
        if p.finished:
            break

        open_approvals = [n for n, st_ in statuses.items() if st_ == S.AWAITING_APPROVAL]
        assert p.waiting == (bool(open_approvals) and not p.queue)
        assert p.queue or open_approvals, "not finished but nothing can move"

        # decide open approvals, then run what was queued
        for name in open_approvals:
            statuses[name] = data.draw(st.sampled_from([S.SUCCEEDED, S.SKIPPED]))
            ended_once.append(name)
        for name in p.queue:
            outcome = data.draw(st.sampled_from(OUTCOMES))
            if outcome == S.FAILED and sequence.step(name).critical:
                critical_failure = name
            statuses[name] = outcome
            if outcome != S.AWAITING_APPROVAL:
                ended_once.append(name)
    else:
        pytest.fail("the simulation did not terminate")

    assert len(ended_once) == len(set(ended_once)), "a step ended twice"
    if critical_failure is None:
        assert p.failed_step is None
        assert not p.waiting
        assert set(statuses) == {s.name for s in sequence.steps}
        assert all(st_ in ENDED for st_ in statuses.values())
    else:
        # a critical failure ends the job as soon as nothing is queued or running (an open
        # approval elsewhere does not hold it: the engine cancels it)
        assert p.failed_step == first_critical_failure(sequence, statuses)
        assert all(st_ in (*ENDED, S.AWAITING_APPROVAL) for st_ in statuses.values())


def first_critical_failure(sequence, statuses):
    return next(n for n in sequence.order if statuses.get(n) == S.FAILED and sequence.step(n).critical)


def test_topological_order_keeps_declaration_order_where_dependencies_allow():
    s = seq(Step("a", noop), Step("b", noop, deps=("a",)), Step("c", noop), Step("d", noop, deps=("b", "c")))
    assert s.order == ("a", "b", "c", "d")


def test_alone_holds_for_a_chain_and_the_ends_of_a_fan_out_but_not_its_branches():
    chain = Sequence("chain", (Step("a", noop), Step("b", noop, deps=("a",)), Step("c", noop, deps=("b",))))
    assert [chain.alone(n) for n in "abc"] == [True, True, True]
    fan = Sequence(
        "fan",
        (
            Step("a", noop),
            Step("b", noop, deps=("a",)),
            Step("c", noop, deps=("a",)),
            Step("d", noop, deps=("b", "c")),
        ),
    )
    # b and c may run together; a ends before either starts, d starts after both end
    assert {n: fan.alone(n) for n in "abcd"} == {"a": True, "b": False, "c": False, "d": True}
    two_roots = Sequence("roots", (Step("a", noop), Step("b", noop), Step("c", noop, deps=("a", "b"))))
    assert {n: two_roots.alone(n) for n in "abc"} == {"a": False, "b": False, "c": True}
