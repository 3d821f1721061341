"""A sequence definition as data, and a runnable Sequence bound back from it (pure, no I/O).

A job runs on the definition it started with (its `definition_hash`), not on whatever a later deploy
registered for its event type. The definition is stored once per hash (worker/engine/pinned.py); this module
turns a Sequence into that JSON and back. Code is named by reference (`module:qualname`); binding looks
each reference up in the running code through a `resolve` function. A reference the deployment no
longer has becomes a stand-in that raises MissingCode when it is used, so planning can fail the job
with an error that names the step, the code and the definition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from worker.engine.dag import ApprovalSpec, DefinitionError, Sequence, Step, definition_digest

# The stored JSON's layout version; bump it (and read the old one) when the layout changes.
FORMAT = 1

# (step name, role, reference) -> the callable in this deployment, or None when it has none.
Resolve = Callable[[str, str, str], Callable[..., Any] | None]

# The roles code plays in a step, as they are named in errors and stored under these keys.
ROLES = {"skill": "skill", "when": "when-condition", "start_after": "start_after function"}


class MissingCode(Exception):
    """A pinned definition names code this deployment does not have (removed or renamed since)."""

    def __init__(self, step: str, role: str, ref: str, definition_hash: str) -> None:
        self.step, self.role, self.ref, self.definition_hash = step, role, ref, definition_hash
        super().__init__(
            f"step {step}: {role} {ref} is not in this deployment (the job started on definition "
            f"{definition_hash[:8]}); it cannot finish here: fire the event again to run the current definition"
        )


class Missing:
    """Stands in for code a stored definition names but this deployment lacks: it keeps the
    reference (so the bound definition hashes the same) and raises MissingCode when called."""

    def __init__(self, error: MissingCode) -> None:
        self.error = error
        self.__module__, _, self.__qualname__ = error.ref.partition(":")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


class Moved:
    """Code a stored definition names by the module path it had when the job started, found at the
    module it lives in now: calls go to that code, the stored reference is kept (so the bound
    definition still hashes to the job's `definition_hash`)."""

    def __init__(self, fn: Callable[..., Any], ref: str) -> None:
        self.fn = fn
        self.__module__, _, self.__qualname__ = ref.partition(":")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def to_json(sequence: Sequence) -> dict[str, Any]:
    """The stored form of `sequence`'s definition (what its `definition_hash` digests, plus layout)."""
    return {"format": FORMAT, "event_type": sequence.event_type, "steps": sequence.definition()}


def bind(
    stored: Mapping[str, Any],
    definition_hash: str,
    resolve: Resolve,
    *,
    payload_model: type | None = None,
    gate: Callable[..., str | None] | None = None,
) -> Sequence:
    """A runnable Sequence from a stored definition, its code looked up with `resolve`.

    Code `resolve` cannot find is bound to a `Missing` stand-in (see `missing`). The result hashes to
    `definition_hash`; DefinitionError when it does not (a corrupt row) or the format is unknown.
    """
    if stored.get("format") != FORMAT:
        raise DefinitionError(
            f"stored definition {definition_hash[:8]} has format {stored.get('format')!r}; this deployment "
            f"reads format {FORMAT}"
        )
    steps = tuple(_step(d, definition_hash, resolve) for d in stored["steps"])
    sequence = Sequence(
        stored["event_type"],
        steps,
        payload_model=payload_model,
        description=f"definition {definition_hash[:8]} (pinned)",
        gate=gate,
    )
    if sequence.definition_hash != definition_hash:
        raise DefinitionError(
            f"stored definition {definition_hash[:8]} does not hash to its key (got "
            f"{sequence.definition_hash[:8]}): the row was changed by hand"
        )
    return sequence


def _step(d: Mapping[str, Any], definition_hash: str, resolve: Resolve) -> Step:
    name = d["name"]

    def code(role: str) -> Callable[..., Any] | None:
        ref = d.get(role)
        if ref is None:
            return None
        found = resolve(name, role, ref)
        return found if found is not None else Missing(MissingCode(name, ROLES[role], ref, definition_hash))

    approval = d.get("approval")
    return Step(
        name,
        code("skill"),  # type: ignore[arg-type]  # a skill is always named
        deps=tuple(d["deps"]),
        critical=d["critical"],
        approval=(
            ApprovalSpec(approval["kind"], approval["expires_working_hours"], dict(approval["rerun_from"]))
            if approval
            else None
        ),
        when=code("when"),
        skip_reason=d["skip_reason"],
        queue=d["queue"],
        timeout_s=d["timeout_s"],
        max_attempts=d["max_attempts"],
        hard_grace_s=d["hard_grace_s"],
        start_after=code("start_after"),
    )


def missing(step: Step) -> MissingCode | None:
    """Why `step` cannot run in this deployment (its skill or start_after is gone), or None.
    A gone `when` raises MissingCode when planning evaluates it."""
    for fn in (step.skill, step.start_after):
        if isinstance(fn, Missing):
            return fn.error
    return None


def digest(stored: Mapping[str, Any]) -> str:
    """The definition hash of a stored definition."""
    return definition_digest(stored["steps"])
