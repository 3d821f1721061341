"""Event type -> Sequence. Sequence modules register themselves here when imported.

The modules listed in `PROACTIVE_SEQUENCE_MODULES` (default `sequences`) are imported once per
process by `load()`; the Celery app does the same through `imports`. A later registration for the
same event type needs `replace=True`, which is how tests plug in their own DAGs.
"""

from __future__ import annotations

import importlib
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from worker.config import get_settings
from worker.engine.dag import Sequence
from worker.engine.payloads import PAYLOAD_MODELS, EventType

# The morning brief's content (README.md#crons): (connection, org id, user row, now, the rep's zone) ->
# a Slack message {"text", "blocks"}. The morning-brief cron (worker/crons/tasks.py) posts it; the
# sequences package provides it, as it provides the sequences.
BriefBuilder = Callable[[Connection, uuid.UUID, Mapping[str, Any], datetime, ZoneInfo], dict[str, Any]]

_sequences: dict[str, Sequence] = {}
_brief_builder: BriefBuilder | None = None
_loaded = False
_lock = threading.RLock()  # re-entrant: a module being loaded may call load() itself


class UnknownSequence(LookupError):
    """No sequence is registered for this event type."""


def register(sequence: Sequence, *, replace: bool = False) -> Sequence:
    """Make `sequence` the one run for its event type; returns it (usable as a module constant)."""
    if sequence.event_type not in PAYLOAD_MODELS:
        raise ValueError(
            f"{sequence.event_type!r} is not an event type (one of {', '.join(e.value for e in EventType)})"
        )
    current = _sequences.get(sequence.event_type)
    if current is not None and current is not sequence and not replace:
        raise ValueError(f"a sequence for {sequence.event_type!r} is already registered")
    if sequence.payload_model is None:
        object.__setattr__(sequence, "payload_model", PAYLOAD_MODELS[sequence.event_type])
    _sequences[sequence.event_type] = sequence
    return sequence


def register_brief(builder: BriefBuilder) -> BriefBuilder:
    """Make `builder` the morning brief's content (the last registration wins); returns it."""
    global _brief_builder
    _brief_builder = builder
    return builder


def brief_builder() -> BriefBuilder | None:
    """The registered morning-brief builder, or None when no module provides one."""
    load()
    return _brief_builder


def load() -> None:
    """Import the configured sequence modules once (idempotent, thread-safe)."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if not _loaded:
            for module in get_settings().sequence_module_list:
                importlib.import_module(module)
            _loaded = True


def get(event_type: str) -> Sequence:
    """The sequence for `event_type`; UnknownSequence when none is registered."""
    load()
    try:
        return _sequences[event_type]
    except KeyError:
        raise UnknownSequence(f"no sequence is registered for event type {event_type!r}") from None


def registered() -> dict[str, Sequence]:
    """All registered sequences by event type."""
    load()
    return dict(_sequences)


@contextmanager
def overridden(sequences: Iterable[Sequence]) -> Iterator[None]:
    """Run the block with `sequences` replacing the registered ones for their event types, then
    restore the registry (tests plug their own DAGs in this way)."""
    load()
    saved = dict(_sequences)
    for sequence in sequences:
        register(sequence, replace=True)
    try:
        yield
    finally:
        _sequences.clear()
        _sequences.update(saved)
