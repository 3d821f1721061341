"""Suggested next actions after a call, ranked, leaving out what its action items and intents
already cover. Pure functions (no I/O).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from sequences.skills.meetings.action_items import ActionItem, Owner
from sequences.skills.meetings.intents import Intents, SignalKind
from sequences.skills.meetings.text import content_words, similar

MAX_NEXT_ACTIONS = 5  # suggestions returned


class NextAction(BaseModel):
    """One suggested action for the rep, with why, and its rank (1 = do first)."""

    model_config = ConfigDict(frozen=True)

    text: str
    reason: str
    priority: int  # 1 = do first


_STAGE_ACTIONS: Mapping[str, tuple[str, str, str | None]] = {
    "prospecting": ("Qualify budget, authority, need and timing", "the deal is still in prospecting", None),
    "qualification": ("Qualify budget, authority, need and timing", "the deal is in qualification", None),
    "discovery": ("Schedule a tailored demo", "discovery calls lead to a demo", "meeting"),
    "demo": ("Send a proposal", "after a demo the next stage is a proposal", "proposal"),
    "proposal": ("Confirm the decision process and the sign-off date", "the proposal is out", None),
    "negotiation": ("Send the order form and confirm the legal review", "the deal is in negotiation", None),
}  # deal stage → (action, reason, the intent that already covers it: a meeting or a proposal being set up)


def suggest_next_actions(items: list[ActionItem], intents: Intents, deal_stage: str | None) -> list[NextAction]:
    """Ranked suggestions (priority 1 first, at most 5) that the items and intents do not already cover.

    A suggestion is dropped when its content words are contained in, or ≥ 80% similar to, those of an
    item, a commitment, a follow-up or the proposal/meeting sentence.
    """
    kinds = {s.kind: s for s in intents.buying_signals}
    stage = (deal_stage or "").strip().casefold()
    candidates: list[NextAction] = []

    def add(text: str, reason: str, priority: int) -> None:
        candidates.append(NextAction(text=text, reason=reason, priority=priority))

    if intents.schedule_meeting is None:
        if SignalKind.DECISION_MAKER in kinds:
            add("Book a meeting with the decision maker", f'they said: "{kinds[SignalKind.DECISION_MAKER].quote}"', 1)
        else:
            add("Book the next meeting", "no follow-up meeting was agreed on the call", 1)
    if intents.send_proposal is None and (SignalKind.PRICING in kinds or SignalKind.BUDGET in kinds):
        signal = kinds.get(SignalKind.PRICING) or kinds[SignalKind.BUDGET]
        add("Send pricing options", f'they said: "{signal.quote}"', 1 if stage in ("demo", "proposal") else 2)
    if SignalKind.COMPETITOR in kinds:
        add("Prepare a competitive comparison", f'they said: "{kinds[SignalKind.COMPETITOR].quote}"', 2)
    if SignalKind.TIMELINE in kinds:
        add("Agree a mutual action plan against their timeline", f'they said: "{kinds[SignalKind.TIMELINE].quote}"', 2)
    if stage in _STAGE_ACTIONS:
        text, reason, covered_by = _STAGE_ACTIONS[stage]
        planned = {"meeting": intents.schedule_meeting, "proposal": intents.send_proposal}.get(covered_by or "")
        if planned is None:
            add(text, reason, 2)
    undated = [i for i in items if i.owner is Owner.REP and i.due is None]
    if undated:
        add("Put a date on each of your open action items", f"{len(undated)} of your items have no due date", 3)
    if any(i.owner is Owner.PROSPECT for i in items):
        add("Remind the prospect of what they agreed to do", "the prospect took on action items", 3)

    covered = [
        content_words(x)
        for x in (
            [i.text for i in items]
            + intents.commitments
            + intents.follow_ups
            + [r.text for r in (intents.send_proposal, intents.schedule_meeting) if r is not None]
        )
    ]
    kept: list[NextAction] = []
    for action in sorted(candidates, key=lambda a: a.priority):
        key = content_words(action.text)
        if any(key <= old or similar(key, old) for old in covered):
            continue
        covered.append(key)
        kept.append(action)
    return kept[:MAX_NEXT_ACTIONS]
