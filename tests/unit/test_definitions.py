"""Sequence definitions as data: serialisation, the round trip back to a runnable Sequence bound to
this deployment's code, and what a definition naming code that is gone turns into."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from worker.engine import definitions, registry
from worker.engine.dag import ApprovalSpec, DefinitionError, Sequence, Step, WhenContext, callable_ref, plan
from worker.engine.definitions import Missing, MissingCode, bind, to_json
from worker.engine.pinned import MOVED_MODULES, resolver


def prepare(ctx: Any, inputs: Any) -> dict[str, Any]:
    return {}


def review(ctx: Any, inputs: Any) -> dict[str, Any]:
    return {}


def send(ctx: Any, inputs: Any) -> dict[str, Any]:
    return {}


def is_sales(w: WhenContext) -> bool:
    return bool(w.payload.get("sales"))


def later(w: WhenContext) -> None:
    return None


def intent_is(name: str) -> Any:
    def pred(w: WhenContext) -> bool:
        return w.payload.get("intent") == name

    return pred


def full() -> Sequence:
    """Every field a step can carry, closures included."""
    return Sequence(
        "meeting_ended",
        (
            Step("prepare", prepare, critical=False, queue="slow", timeout_s=30.0, max_attempts=5),
            Step(
                "review",
                review,
                deps=("prepare",),
                approval=ApprovalSpec("email_preview", expires_working_hours=8.0, rerun_from={"more": "prepare"}),
                when=is_sales,
                skip_reason="not_sales",
            ),
            Step("send", send, deps=("review",), start_after=later, hard_grace_s=5.0, timeout_s=90),
            Step("reply", send, deps=("prepare",), critical=False, when=intent_is("reply_required")),
        ),
    )


def stored(sequence: Sequence) -> dict[str, Any]:
    """What a database row gives back: the JSON, through text."""
    return json.loads(json.dumps(to_json(sequence)))


def test_the_definition_names_code_by_module_and_qualified_name():
    steps = {d["name"]: d for d in full().definition()}
    assert steps["prepare"]["skill"] == f"{__name__}:prepare"
    assert steps["review"]["when"] == f"{__name__}:is_sales"
    assert steps["review"]["approval"] == {
        "kind": "email_preview",
        "expires_working_hours": 8.0,
        "rerun_from": {"more": "prepare"},
    }
    assert steps["send"]["start_after"] == f"{__name__}:later"
    assert steps["reply"]["when"] == f"{__name__}:intent_is.<locals>.pred"
    assert to_json(full())["event_type"] == "meeting_ended" and to_json(full())["format"] == definitions.FORMAT


def test_the_hash_is_the_digest_of_the_stored_steps():
    assert definitions.digest(stored(full())) == full().definition_hash


def test_round_trip_binds_the_same_code_and_hashes_the_same():
    current = full()
    bound = bind(stored(current), current.definition_hash, resolver(current))
    assert bound.definition_hash == current.definition_hash
    assert bound.definition() == current.definition()
    assert bound.order == current.order
    for name in current.order:
        a, b = current.step(name), bound.step(name)
        assert (b.skill, b.when, b.start_after) == (a.skill, a.when, a.start_after)
        assert definitions.missing(b) is None
    assert bound.step("send").timeout_s == 90 and bound.step("review").approval.rerun_from == {"more": "prepare"}


def test_round_trip_without_the_registered_sequence_finds_module_functions():
    """A sequence no longer registered: named functions are found in their loaded module, the closure
    (no name to find it by) is missing."""
    seq = full()
    bound = bind(stored(seq), seq.definition_hash, resolver(None))
    assert bound.step("prepare").skill is prepare and bound.step("review").when is is_sales
    assert isinstance(bound.step("reply").when, Missing)
    assert bound.definition_hash == seq.definition_hash  # the stand-in keeps the reference


def test_a_removed_skill_binds_to_a_stand_in_that_says_what_is_missing():
    v1 = full()
    gone = stored(v1)
    gone["steps"][2]["skill"] = "sequences.skills.nowhere:send_it"
    digest = definitions.digest(gone)
    bound = bind(gone, digest, resolver(v1))
    err = definitions.missing(bound.step("send"))
    assert isinstance(err, MissingCode)
    assert str(err).startswith(
        f"step send: skill sequences.skills.nowhere:send_it is not in this deployment "
        f"(the job started on definition {digest[:8]})"
    )
    with pytest.raises(MissingCode):
        bound.step("send").skill(None, {})
    assert bound.definition_hash == digest


def test_a_removed_when_condition_fails_planning_when_it_is_evaluated():
    seq = full()
    gone = stored(seq)
    gone["steps"][1]["when"] = f"{__name__}:was_sales"
    digest = definitions.digest(gone)
    bound = bind(gone, digest, resolver(seq))
    assert definitions.missing(bound.step("review")) is None  # only evaluating it fails
    assert plan(bound, {}).queue == ("prepare",)
    with pytest.raises(MissingCode, match=r"step review: when-condition .*:was_sales is not in this deployment"):
        plan(bound, {"prepare": "succeeded", "reply": "skipped"}, {"sales": True}, {})


def test_a_closure_is_found_only_through_the_step_of_the_same_name():
    v1 = full()
    renamed = Sequence(
        "meeting_ended", (*v1.steps[:3], Step("answer", send, deps=("prepare",), when=v1.step("reply").when))
    )
    bound = bind(stored(v1), v1.definition_hash, resolver(renamed))
    assert isinstance(bound.step("reply").when, Missing)
    assert bound.step("review").when is is_sales


def test_the_resolver_never_imports_a_module():
    name = "tests.unit.never_imported_module_for_definitions"
    assert resolver(None)("x", "skill", f"{name}:f") is None
    assert name not in sys.modules


def test_a_reference_to_something_else_than_the_named_function_is_not_bound():
    alias = sys.modules[__name__]
    alias.prepare_alias = prepare  # same object under another name: its own reference differs
    try:
        assert resolver(None)("x", "skill", f"{__name__}:prepare_alias") is None
    finally:
        delattr(alias, "prepare_alias")


def test_a_changed_when_condition_changes_the_hash():
    a = Sequence("meeting_ended", (Step("a", prepare), Step("b", send, deps=("a",), when=is_sales)))
    b = Sequence("meeting_ended", (Step("a", prepare), Step("b", send, deps=("a",), when=later)))  # type: ignore[arg-type]
    assert a.definition_hash != b.definition_hash
    assert callable_ref(is_sales) == f"{__name__}:is_sales"


def test_an_unknown_format_or_a_changed_row_is_refused():
    seq = full()
    with pytest.raises(DefinitionError, match="has format 99; this deployment reads format 1"):
        bind({**stored(seq), "format": 99}, seq.definition_hash, resolver(seq))
    tampered = stored(seq)
    tampered["steps"][0]["max_attempts"] = 9
    with pytest.raises(DefinitionError, match="does not hash to its key"):
        bind(tampered, seq.definition_hash, resolver(seq))


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_a_definition_stored_before_its_skills_moved_binds_to_the_moved_code(old):
    """A job that started before a module of skills was renamed names the old path; it finishes on
    the same code at the new path, and its definition still hashes to the stored hash."""
    new = MOVED_MODULES[old]
    registry.load()
    moved = [
        (seq, step)
        for seq in registry.registered().values()
        for step in seq.steps
        if callable_ref(step.skill).startswith(f"{new}:")
    ]
    assert moved, f"no registered skill lives in {new}"
    seq, step = moved[0]
    stored = json.loads(json.dumps(to_json(seq)).replace(f'"{new}:', f'"{old}:'))
    stored_hash = definitions.digest(stored)
    assert stored_hash != seq.definition_hash  # the stored references really are the old paths

    bound = bind(stored, stored_hash, resolver(seq))
    assert bound.definition_hash == stored_hash
    assert definitions.missing(bound.step(step.name)) is None
    skill = bound.step(step.name).skill
    assert isinstance(skill, definitions.Moved) and skill.fn is step.skill
