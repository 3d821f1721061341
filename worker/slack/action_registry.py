"""Action-id prefix -> the handler of its buttons, for the buttons that are not approval decisions.

A sequence that renders its own buttons registers them when its module is imported, as sequences
register themselves with `worker.engine.registry` (so the modules of `PROACTIVE_SEQUENCE_MODULES`
are loaded before a lookup): `register_action("camp_", campaign_click, verbs={...})` makes the
click of `camp_view_thread` call `campaign_click(click, ActionRef("camp", "view_thread"), clicker)`
once the clicker is known (worker/slack/route.py). An action id of no known prefix and verb is
refused by the routing as an unknown button.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from worker.engine import registry
from worker.slack.clickers import Clicker
from worker.slack.clicks import VERBS, ActionRef, Click, ClickOutcome


class ActionHandler(Protocol):
    """Does what a click of a registered prefix asks, for a known clicker; answers it (queued)."""

    def __call__(self, click: Click, ref: ActionRef, clicker: Clicker) -> ClickOutcome: ...


@dataclass(frozen=True)
class _Registered:
    handler: ActionHandler
    verbs: frozenset[str]


_actions: dict[str, _Registered] = {}
_lock = threading.Lock()


def register_action(prefix: str, handler: ActionHandler, *, verbs: Iterable[str]) -> ActionHandler:
    """Route the clicks of `prefix` (e.g. "camp_") with one of `verbs` to `handler`; returns it.

    A prefix is one word and its underscore; the approval buttons' prefixes are not available.
    Registering the same handler again (a module imported twice) changes nothing."""
    name, sep, rest = prefix.partition("_")
    if not name or not sep or rest:
        raise ValueError(f"an action prefix is one word and an underscore, like 'camp_': {prefix!r}")
    if name in VERBS:
        raise ValueError(f"{prefix!r} is the prefix of approval decisions")
    entry = _Registered(handler, frozenset(verbs))
    if not entry.verbs:
        raise ValueError(f"no verbs for {prefix!r}")
    with _lock:
        current = _actions.get(name)
        if current is not None and current != entry:
            raise ValueError(f"the actions of {prefix!r} are already registered")
        _actions[name] = entry
    return handler


def parse_action_id(action_id: str) -> ActionRef | None:
    """`prop_approve_send` -> ActionRef("prop", "approve_send"); None for anything we did not render."""
    prefix, sep, verb = action_id.partition("_")
    if not sep:
        return None
    if verb in VERBS.get(prefix, ()):
        return ActionRef(prefix, verb)
    registry.load()
    entry = _actions.get(prefix)
    return ActionRef(prefix, verb) if entry is not None and verb in entry.verbs else None


def handler_for(ref: ActionRef) -> ActionHandler | None:
    """The registered handler of a parsed action id, or None for an approval decision."""
    entry = _actions.get(ref.prefix)
    return entry.handler if entry is not None else None
