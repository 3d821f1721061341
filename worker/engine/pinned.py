"""The definition a job runs on: the one it started with, even after a deploy changed its sequence.

A job's `definition_hash` names the definition it was accepted on. That definition is stored once per
hash (`sequence_definitions`, written lazily when the first job of it is accepted). Planning a job
uses the registered sequence when it is that definition (the usual case: no query), else the stored
one bound to this deployment's code (worker/engine/definitions.py), cached per process. Code a stored
definition names is found through the registered sequence's step of the same name (closures,
lambdas) or by module and qualified name among the modules this process has loaded; code found in
neither is missing, and the engine fails the job when it reaches it.
"""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine

from worker.db import on_commit
from worker.engine import definitions, registry
from worker.engine import jobstore as store
from worker.engine.dag import Sequence, callable_ref
from worker.models import utcnow

log = logging.getLogger(__name__)

# Hashes known to be stored, per database (tests switch databases within one process).
_stored: weakref.WeakKeyDictionary[Engine, set[str]] = weakref.WeakKeyDictionary()
# Hashes of jobs accepted before definitions were stored (warned about once per database).
_unstored: weakref.WeakKeyDictionary[Engine, set[str]] = weakref.WeakKeyDictionary()
# hash -> (the registered sequence it was bound against, the bound sequence). A hash names one
# definition in every database; binding depends on the registered code, hence the first element.
_bound: dict[str, tuple[Sequence | None, Sequence]] = {}


def remember(conn: Connection, sequence: Sequence) -> None:
    """Store `sequence`'s definition under its hash unless this process knows it is stored (called in
    the transaction that accepts a job of it, so the row exists before any job names it)."""
    engine, digest = conn.engine, sequence.definition_hash
    if digest in _stored.get(engine, ()):
        return
    store.insert_definition(conn, digest, sequence.event_type, definitions.to_json(sequence), utcnow())
    on_commit(lambda: _stored.setdefault(engine, set()).add(digest))


def for_job(conn: Connection, job: Mapping[str, Any], current: Sequence | None = None) -> Sequence:
    """The sequence `job` runs on: the definition it started with, bound to this deployment's code.

    `current` is the registered sequence of the job's event type (looked up when None). A job whose
    definition was never stored (accepted before migration 0011) runs on the registered one, with a
    warning. Raises registry.UnknownSequence when there is neither.
    """
    event_type = job["event_type"]
    if current is None:
        current = _registered(event_type)
    wanted = job.get("definition_hash")
    if not wanted or (current is not None and current.definition_hash == wanted):
        return _require(current, event_type)
    cached = _bound.get(wanted)
    if cached is not None and cached[0] is current:
        return cached[1]
    engine = conn.engine
    if wanted in _unstored.get(engine, ()):
        return _require(current, event_type)
    stored = store.definition_of(conn, wanted)
    if stored is None:
        _unstored.setdefault(engine, set()).add(wanted)
        log.warning(
            "definition %s of %s was never stored (its jobs were accepted before migration 0011); "
            "they continue on the current definition",
            wanted[:8],
            event_type,
        )
        return _require(current, event_type)
    bound = definitions.bind(
        stored,
        wanted,
        resolver(current),
        payload_model=current.payload_model if current is not None else None,
        gate=current.gate if current is not None else None,
    )
    _bound[wanted] = (current, bound)
    return bound


# Modules whose code moved without changing (old path -> new path). A job that started before the
# move stored the old references; it finishes on the same code, found at its new path. Add a line
# whenever a module holding skills, `when` or `start_after` functions is renamed; never remove one
# while a job that started before the rename may still be live (retention_days after the deploy).
MOVED_MODULES: dict[str, str] = {
    "sequences.skills.briefing_steps": "sequences.skills.briefing.steps",
    "sequences.skills.calendar_steps": "sequences.skills.calendar.steps",
    "sequences.skills.campaign_steps": "sequences.skills.campaigns.steps",
    "sequences.skills.coaching_steps": "sequences.skills.coaching.steps",
    "sequences.skills.deals": "sequences.skills.deals.risk_steps",
    "sequences.skills.stale_steps": "sequences.skills.deals.stale_steps",
    "sequences.skills.email_steps": "sequences.skills.email.steps",
    "sequences.skills.meeting_steps": "sequences.skills.meetings.steps",
    "sequences.skills.proposal_steps": "sequences.skills.proposals.steps",
}


def resolver(current: Sequence | None) -> definitions.Resolve:
    """Find a stored reference in this deployment: the registered sequence's step of the same name
    when it still uses that code (the only way to a closure or a lambda), else the module's attribute
    among the modules this process loaded (never importing anything new), else the same code at the
    module it moved to (MOVED_MODULES)."""

    def resolve(step_name: str, role: str, ref: str) -> Callable[..., Any] | None:
        if current is not None:
            try:
                fn = getattr(current.step(step_name), role)
            except KeyError:
                fn = None
            if fn is not None and callable_ref(fn) == ref:
                return fn
        if "<" in ref:  # <locals>, <lambda>: no name to find it by
            return None
        module, _, qualname = ref.partition(":")
        found = _loaded(module, qualname)
        if found is None and module in MOVED_MODULES:
            moved = _loaded(MOVED_MODULES[module], qualname)
            return definitions.Moved(moved, ref) if moved is not None else None
        return found

    return resolve


def _loaded(module: str, qualname: str) -> Callable[..., Any] | None:
    """`module:qualname` among the modules this process loaded (never importing anything new)."""
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if callable(obj) and callable_ref(obj) == f"{module}:{qualname}" else None


def _registered(event_type: str) -> Sequence | None:
    try:
        return registry.get(event_type)
    except registry.UnknownSequence:
        return None


def _require(sequence: Sequence | None, event_type: str) -> Sequence:
    if sequence is None:
        raise registry.UnknownSequence(
            f"no sequence is registered for event type {event_type!r} and its job's definition is not stored"
        )
    return sequence
