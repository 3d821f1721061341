"""Sequences as declared DAGs of steps, and the pure planning that moves a job forward.

Nothing here does I/O. `plan()` takes the statuses (and, for `when` predicates, the outputs) of a
job's steps and returns what to do next: steps to queue, steps to skip, and whether the job is
finished. The runner persists that decision; tests exercise it with plain values.

Rules (docs/sequences.md):
- A step is ready when every dependency has ended (succeeded, failed, skipped).
- A critical step that fails fails the job: nothing new is queued.
- A best-effort step that fails is recorded; its dependents still run.
- A step whose `when` predicate is false is skipped with its `skip_reason`.
- A step all of whose dependencies were skipped is skipped too ("upstream skipped"), so an
  untaken branch or an expired best-effort approval never runs the steps behind it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worker.engine.states import StepStatus

S = StepStatus

# Default soft time limit of one step (seconds); the hard limit adds HARD_LIMIT_GRACE_S.
DEFAULT_TIMEOUT_S = 60.0
# Seconds between the soft and the hard time limit (hard = soft + 15 s).
HARD_LIMIT_GRACE_S = 15.0
QUEUES = ("steps", "slow", "edge", "beat")

# Decisions an approval can carry, and what each does to the job (docs/sequences.md).
PROCEED = frozenset(
    {"approve", "approved", "approve_send", "edit", "send_now", "send_later", "share_link", "send_invite", "send_times"}
)
STOP = frozenset({"reject", "rejected", "skip", "cancel", "handle"})
RERUN = frozenset({"more"})


class DefinitionError(Exception):
    """A sequence definition is wrong (unknown dependency, cycle, duplicate name...)."""


Skill = Callable[..., Any]
WhenPredicate = Callable[["WhenContext"], bool]
StartAfter = Callable[["WhenContext"], "datetime | None"]


@dataclass(frozen=True)
class WhenContext:
    """What a `when` predicate may look at: the event payload and earlier steps' outputs."""

    payload: Mapping[str, Any]
    outputs: Mapping[str, Any]

    def output(self, step: str, key: str, default: Any = None) -> Any:
        """`outputs[step][key]`, or `default` when the step has no output (skipped/failed)."""
        out = self.outputs.get(step)
        return out.get(key, default) if isinstance(out, Mapping) else default


@dataclass(frozen=True)
class ApprovalSpec:
    """An approval step: its kind (Block Kit message), the decisions it offers, and expiry."""

    kind: str
    expires_working_hours: float = 24.0
    # decision -> name of the step to run again (the "more options" loop)
    rerun_from: Mapping[str, str] = field(default_factory=dict)

    def outcome(self, decision: str) -> str:
        """'proceed', 'stop' or 'rerun' for `decision`; raises KeyError when not offered."""
        if decision in self.rerun_from:
            return "rerun"
        if decision in PROCEED:
            return "proceed"
        if decision in STOP:
            return "stop"
        raise KeyError(decision)


@dataclass(frozen=True)
class Step:
    """One node of a sequence: the skill it calls and how it is scheduled."""

    name: str
    skill: Skill
    deps: tuple[str, ...] = ()
    critical: bool = True
    approval: ApprovalSpec | None = None
    when: WhenPredicate | None = None
    skip_reason: str = "condition_false"
    queue: str = "steps"
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_attempts: int = 3
    hard_grace_s: float = HARD_LIMIT_GRACE_S
    # When set, the step is queued but not started before the instant it returns (an undo window,
    # "send later"); None or a past instant means at once.
    start_after: StartAfter | None = None

    def __post_init__(self) -> None:
        if isinstance(self.deps, list | str):
            object.__setattr__(self, "deps", (self.deps,) if isinstance(self.deps, str) else tuple(self.deps))
        if self.queue not in QUEUES:
            raise DefinitionError(f"step {self.name!r}: unknown queue {self.queue!r} (one of {QUEUES})")
        if self.timeout_s <= 0 or self.max_attempts < 1:
            raise DefinitionError(f"step {self.name!r}: timeout_s must be > 0 and max_attempts >= 1")

    @property
    def hard_limit_s(self) -> float:
        """The hard time limit: soft limit plus grace."""
        return self.timeout_s + self.hard_grace_s

    def definition(self) -> dict[str, Any]:
        """The step as data: everything that decides how it runs, its code named by reference
        (`module:qualname`). The definition hash covers it, and a job's definition is stored as a list
        of these (worker/engine/definitions.py) so the job finishes on the DAG it started with."""
        return {
            "name": self.name,
            "skill": callable_ref(self.skill),
            "deps": list(self.deps),
            "critical": self.critical,
            "approval": (
                {
                    "kind": self.approval.kind,
                    "expires_working_hours": self.approval.expires_working_hours,
                    "rerun_from": dict(self.approval.rerun_from),
                }
                if self.approval
                else None
            ),
            "when": callable_ref(self.when) if self.when else None,
            "skip_reason": self.skip_reason,
            "start_after": callable_ref(self.start_after) if self.start_after else None,
            "queue": self.queue,
            "timeout_s": self.timeout_s,
            "max_attempts": self.max_attempts,
            "hard_grace_s": self.hard_grace_s,
        }


def callable_ref(fn: Callable[..., Any]) -> str:
    """`module:qualname` of a skill or predicate: how a stored definition names code."""
    return f"{getattr(fn, '__module__', None) or '?'}:{getattr(fn, '__qualname__', None) or '?'}"


def definition_digest(definition: Iterable[Mapping[str, Any]]) -> str:
    """The definition hash of a list of step definitions (sha256 of their canonical JSON)."""
    return hashlib.sha256(json.dumps(list(definition), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Sequence:
    """A validated DAG of steps run for one event type."""

    event_type: str
    steps: tuple[Step, ...]
    payload_model: type | None = None
    description: str = ""
    # A sequence-specific gate run inside fire_event's transaction: (conn, event, payload) -> the
    # reason to skip the job, or None to run it (e.g. meeting_ended needs more than one attendee).
    gate: Callable[..., str | None] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        validate(self.event_type, self.steps)
        object.__setattr__(self, "_by_name", {s.name: s for s in self.steps})
        object.__setattr__(self, "_order", topological_order(self.steps))
        dependents: dict[str, list[str]] = {s.name: [] for s in self.steps}
        for s in self.steps:
            for d in s.deps:
                dependents[d].append(s.name)
        object.__setattr__(self, "_dependents", {k: tuple(v) for k, v in dependents.items()})
        object.__setattr__(self, "definition_hash", definition_digest(self.definition()))

    definition_hash: str = field(init=False, default="")

    def definition(self) -> list[dict[str, Any]]:
        """The steps as data, in declaration order (what `definition_hash` digests)."""
        return [s.definition() for s in self.steps]

    def step(self, name: str) -> Step:
        """The step called `name` (KeyError when the sequence has none)."""
        return self._by_name[name]  # type: ignore[attr-defined]

    @property
    def order(self) -> tuple[str, ...]:
        """Step names in a topological order (declaration order among independent steps)."""
        return self._order  # type: ignore[attr-defined]

    def dependents(self, name: str) -> tuple[str, ...]:
        """Steps that list `name` among their dependencies."""
        return self._dependents[name]  # type: ignore[attr-defined]

    def ancestors(self, name: str) -> tuple[str, ...]:
        """Every step `name` transitively depends on (its inputs come from all of them)."""
        cache = self.__dict__.setdefault("_ancestors", {})
        if name not in cache:
            found: set[str] = set()
            todo = list(self.step(name).deps)
            while todo:
                dep = todo.pop()
                if dep not in found:
                    found.add(dep)
                    todo.extend(self.step(dep).deps)
            cache[name] = tuple(n for n in self.order if n in found)
        return cache[name]

    def downstream(self, name: str) -> list[str]:
        """Every step reachable from `name` (itself included), in topological order."""
        seen = {name}
        for n in self.order:
            if any(d in seen for d in self.step(n).deps):
                seen.add(n)
        return [n for n in self.order if n in seen]

    def alone(self, name: str) -> bool:
        """True when no other step of a job can be open while `name` runs: every other step is
        upstream of it (ended before it started) or downstream (starts after it ends). Such a
        step's completion can plan from the states its claim knew, not read them again under the
        job's lock (worker/engine/executor.py, the guarded completion)."""
        cache = self.__dict__.setdefault("_alone", {})
        if name not in cache:
            related = {*self.ancestors(name), *self.downstream(name)}
            cache[name] = related >= set(self._by_name)  # type: ignore[attr-defined]
        return cache[name]

    @property
    def uses_when(self) -> bool:
        """True when some step has a `when` predicate or a `start_after` (they read outputs)."""
        return any(s.when or s.start_after for s in self.steps)


def validate(event_type: str, steps: Iterable[Step]) -> None:
    """Raise DefinitionError for duplicate names, unknown dependencies, cycles or an empty DAG."""
    steps = list(steps)
    if not steps:
        raise DefinitionError(f"sequence {event_type!r} has no steps")
    names: set[str] = set()
    for s in steps:
        if s.name in names:
            raise DefinitionError(f"sequence {event_type!r}: duplicate step name {s.name!r}")
        names.add(s.name)
    for s in steps:
        for d in s.deps:
            if d not in names:
                raise DefinitionError(f"sequence {event_type!r}: step {s.name!r} depends on unknown {d!r}")
            if d == s.name:
                raise DefinitionError(f"sequence {event_type!r}: step {s.name!r} depends on itself")
        if s.approval:
            for target in s.approval.rerun_from.values():
                if target not in names:
                    raise DefinitionError(f"sequence {event_type!r}: step {s.name!r} re-runs unknown step {target!r}")
    topological_order(steps, event_type)


def topological_order(steps: Iterable[Step], event_type: str = "?") -> tuple[str, ...]:
    """A topological order that keeps declaration order wherever the dependencies allow it
    (the earliest-declared ready step goes next); DefinitionError on a cycle."""
    remaining = list(steps)
    placed: set[str] = set()
    out: list[str] = []
    while remaining:
        nxt = next((s for s in remaining if all(d in placed for d in s.deps)), None)
        if nxt is None:
            cycle = ", ".join(sorted(s.name for s in remaining))
            raise DefinitionError(f"sequence {event_type!r}: dependency cycle among {cycle}")
        out.append(nxt.name)
        placed.add(nxt.name)
        remaining.remove(nxt)
    return tuple(out)


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Plan:
    """What the runner must do after a change in a job's steps."""

    queue: tuple[str, ...] = ()
    skip: tuple[tuple[str, str], ...] = ()  # (step, reason)
    finished: bool = False
    failed_step: str | None = None  # a critical step that failed: the job fails
    waiting: bool = False  # nothing runs; an approval is open


def plan(
    sequence: Sequence,
    statuses: Mapping[str, str],
    payload: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
) -> Plan:
    """Decide which steps to queue or skip next, and whether the job is done.

    `statuses` maps step name -> current StepStatus for the steps that have a row; steps without
    one have not started. `outputs` (needed only when some step has a `when`) maps succeeded steps
    to their outputs. A critical step with status `failed` fails the job.
    """
    status = dict(statuses)
    failed_critical = next((n for n in sequence.order if status.get(n) == S.FAILED and sequence.step(n).critical), None)
    if failed_critical:
        open_ = any(status.get(n) in (S.QUEUED, S.RUNNING) for n in sequence.order)
        return Plan(finished=not open_, failed_step=failed_critical)

    ctx = WhenContext(payload=payload or {}, outputs=outputs if outputs is not None else {})
    to_queue: list[str] = []
    to_skip: list[tuple[str, str]] = []
    changed = True
    while changed:  # skipping a step can make its dependents ready: iterate to a fixpoint
        changed = False
        for name in sequence.order:
            if name in status:
                continue
            step = sequence.step(name)
            dep_states = [status.get(d) for d in step.deps]
            if any(st is None or st not in (S.SUCCEEDED, S.FAILED, S.SKIPPED) for st in dep_states):
                continue
            if step.deps and all(st == S.SKIPPED for st in dep_states):
                reason = f"upstream_skipped:{step.deps[0]}"
            elif step.when is not None and not step.when(ctx):
                reason = step.skip_reason
            else:
                to_queue.append(name)
                status[name] = S.QUEUED
                continue
            to_skip.append((name, reason))
            status[name] = S.SKIPPED
            changed = True

    running = any(status.get(n) in (S.QUEUED, S.RUNNING) for n in sequence.order)
    awaiting = any(status.get(n) == S.AWAITING_APPROVAL for n in sequence.order)
    # Nothing open and nothing newly queued: every reachable step has ended (a step whose
    # dependencies have all ended is always queued or skipped above).
    finished = not running and not awaiting
    waiting = awaiting and not running
    return Plan(queue=tuple(to_queue), skip=tuple(to_skip), finished=finished, waiting=waiting)


def roots(sequence: Sequence) -> tuple[str, ...]:
    """Steps with no dependencies (queued when the job is created)."""
    return tuple(n for n in sequence.order if not sequence.step(n).deps)
