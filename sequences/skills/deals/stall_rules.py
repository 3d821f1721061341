"""Stalled deals: how strongly a silent deal calls for a re-engagement email, and that email's draft.

Pure decisions (no I/O) for stale_deal_revival: analyse-stall-reason calls ``stall_score``
with the facts and the trigger events research-trigger-events found; draft-reengagement runs only
when the score is at least ``REENGAGE_THRESHOLD`` (50) and falls back to ``draft_reengagement``
without an LLM. The score reads "how stalled the deal is, and how good a moment this is to reach
out"; it is the sum of four parts, clamped to 0..100:

====================  ===========  ==============================================================
part                  points       rule
====================  ===========  ==============================================================
days silent           0..45        below 7 days 0; from 7 days 15, +1 a day, at most 45 (37 days)
stage age             0..25        days in stage over the stage's usual length (prospecting,
                                   qualification, demo, proposal 14 days; discovery, negotiation
                                   and unknown stages 21): 25 * (days / usual - 1), rounded down,
                                   at most 25 (reached at twice the usual length); 0 for closed
                                   stages
lost reason           0..15        timing/budget/no decision/went dark/on hold → +15 (worth a new
                                   attempt); lost to a competitor → +5; any other reason → +5;
                                   not a fit / no need / do not contact / duplicate / spam / out
                                   of business → the whole score is capped at 20 (never re-engage)
signals               -15..+25     champion_left +15, new_activity / job_change / news /
                                   competitor_mentioned +10 each, the positive ones capped at
                                   +25 together; budget_frozen -15 (wait); unknown ones ignored
====================  ===========  ==============================================================

A won deal (``closed_won``) scores 0. The value does not weigh the score (the score has four inputs);
it only adds "call as well" to the recommendation for deals of 50,000 and more. The score never
decreases when days silent or days in stage grow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sequences.skills.deals.risk_rules import CLOSED_STAGES

REENGAGE_THRESHOLD = 50  # points: at or above, the sequence drafts a re-engagement email
MAX_SCORE = 100  # points: the scale's ceiling
SILENT_START_DAYS = 7  # days: silence shorter than this is normal (the stale-deals cron's default)
SILENT_BASE_POINTS = 15  # points at SILENT_START_DAYS
SILENT_POINTS_PER_DAY = 1  # points per further silent day
SILENT_MAX_POINTS = 45  # points: silence weighs most, but alone never reaches the threshold
STAGE_AGE_MAX_POINTS = 25  # points, reached when a deal has sat twice the usual time in its stage
USUAL_STAGE_DAYS = {
    "prospecting": 14,
    "qualification": 14,
    "discovery": 21,
    "demo": 14,
    "proposal": 14,
    "negotiation": 21,
}  # days a deal usually spends in each open stage (risk_rules.STAGES)
DEFAULT_STAGE_DAYS = 21  # days: the usual length of a stage not listed above
REVIVABLE_LOST_POINTS = 15  # points: lost on timing or budget, a new attempt may land
OTHER_LOST_POINTS = 5  # points: lost to a competitor or for another reason
TERMINAL_CAP = 20  # points: the ceiling when the lost reason rules out contact
SIGNAL_POINTS = {
    "champion_left": 15,  # the deal lost its internal advocate: re-thread it
    "new_activity": 10,  # the contact or company moved recently: a reason to write
    "job_change": 10,
    "news": 10,
    "competitor_mentioned": 10,  # a competitor is circling: act before it is decided
    "budget_frozen": -15,  # money is frozen: pushing now wastes the contact's goodwill
}
SIGNAL_MAX_POINTS = 25  # points: the positive signals together
BIG_DEAL_VALUE = Decimal(50_000)  # deal currency units: from this value, call as well as email
MAX_TRIGGER_CHARS = 200  # characters of a trigger event quoted in an email

_TERMINAL_REASONS = re.compile(
    r"not\s+a\s+fit|no\s+fit|bad\s+fit|no\s+need|do\s+not\s+contact|don'?t\s+contact|unsubscrib|duplicate|spam"
    r"|out\s+of\s+business|bankrupt|closed\s+down|invalid|bad\s+data",
    re.IGNORECASE,
)
_REVIVABLE_REASONS = re.compile(
    r"timing|budget|no\s+decision|went\s+dark|ghost|unresponsive|no\s+response|on\s+hold|paused|priorit"
    r"|next\s+(?:year|quarter)|later",
    re.IGNORECASE,
)
_COMPETITOR_REASONS = re.compile(r"competit|went\s+with|chose|vendor|incumbent", re.IGNORECASE)

Angle = Literal["new_champion", "trigger", "competitor", "timing", "check_in", "none"]


class StallFacts(BaseModel):
    """What the stall score needs to know about one deal."""

    model_config = ConfigDict(frozen=True)

    days_silent: int = Field(ge=0)  # whole days since the last activity
    stage: str
    days_in_stage: int = Field(ge=0)
    lost_reason: str | None = None
    signals: list[str] = Field(default_factory=list)  # keys of SIGNAL_POINTS; others are ignored
    value: Decimal | None = None  # deal currency units


class StallAnalysis(BaseModel):
    """The score (0-100), the parts that make it up, and what to do."""

    model_config = ConfigDict(frozen=True)

    score: int
    reasons: list[str]
    recommendation: str
    reengage: bool  # score ≥ REENGAGE_THRESHOLD: draft a re-engagement email
    angle: Angle  # what the email should lead with


class EmailDraft(BaseModel):
    """A plain-text email for the rep to review."""

    model_config = ConfigDict(frozen=True)

    subject: str
    body: str


def _norm_stage(stage: str) -> str:
    return "_".join(stage.strip().lower().replace("-", " ").split())


def silence_points(days_silent: int) -> int:
    """Points for days without activity: 0 below 7 days, 15 at 7, +1 a day up to 45."""
    if days_silent < SILENT_START_DAYS:
        return 0
    return min(SILENT_MAX_POINTS, SILENT_BASE_POINTS + SILENT_POINTS_PER_DAY * (days_silent - SILENT_START_DAYS))


def stage_age_points(stage: str, days_in_stage: int) -> int:
    """Points for time spent in the stage beyond its usual length (0 for closed stages)."""
    key = _norm_stage(stage)
    if key in CLOSED_STAGES:
        return 0
    usual = USUAL_STAGE_DAYS.get(key, DEFAULT_STAGE_DAYS)
    overdue = max(0.0, days_in_stage / usual - 1.0)
    return min(STAGE_AGE_MAX_POINTS, math.floor(STAGE_AGE_MAX_POINTS * overdue))


def lost_reason_kind(reason: str | None) -> Literal["terminal", "revivable", "competitor", "other"] | None:
    """How a lost reason bears on re-engaging (None when there is no reason)."""
    text = " ".join((reason or "").split())
    if not text:
        return None
    if _TERMINAL_REASONS.search(text):
        return "terminal"
    if _REVIVABLE_REASONS.search(text):
        return "revivable"
    if _COMPETITOR_REASONS.search(text):
        return "competitor"
    return "other"


def _known_signals(signals: Sequence[str]) -> list[str]:
    seen: list[str] = []
    for signal in signals:
        key = _norm_stage(signal)
        if key in SIGNAL_POINTS and key not in seen:
            seen.append(key)
    return seen


def _angle(signals: list[str], lost: str | None) -> Angle:
    if "champion_left" in signals:
        return "new_champion"
    if any(s in signals for s in ("job_change", "news", "new_activity")):
        return "trigger"
    if "competitor_mentioned" in signals or lost == "competitor":
        return "competitor"
    if lost == "revivable" or "budget_frozen" in signals:
        return "timing"
    return "check_in"


_ADVICE: dict[str, str] = {
    "new_champion": "your champion left: find who owns the decision now and re-introduce the deal",
    "trigger": "lead with the trigger event, it gives a natural reason to write",
    "competitor": "a competitor is in play: restate the differentiators and offer a short call",
    "timing": "ask whether the timing has changed since the deal stalled",
    "check_in": "send a short, low-pressure check-in with one clear question",
}


def stall_score(facts: StallFacts) -> StallAnalysis:
    """Score how much a stalled deal calls for re-engagement (weights in the module docstring)."""
    stage = _norm_stage(facts.stage)
    if stage == "closed_won":
        return StallAnalysis(
            score=0, reasons=["the deal is won"], recommendation="no action: the deal is won", reengage=False,
            angle="none",
        )  # fmt: skip
    reasons: list[str] = []
    score = 0
    silent = silence_points(facts.days_silent)
    if silent:
        reasons.append(f"silent for {facts.days_silent} days (+{silent})")
        score += silent
    aged = stage_age_points(stage, facts.days_in_stage)
    if aged:
        usual = USUAL_STAGE_DAYS.get(stage, DEFAULT_STAGE_DAYS)
        where = stage.replace("_", " ") or "its stage"
        reasons.append(f"{facts.days_in_stage} days in {where}, usually {usual} (+{aged})")
        score += aged
    lost = lost_reason_kind(facts.lost_reason)
    if lost == "revivable":
        reasons.append(f"lost on {facts.lost_reason!r}: worth a new attempt (+{REVIVABLE_LOST_POINTS})")
        score += REVIVABLE_LOST_POINTS
    elif lost in ("competitor", "other"):
        reasons.append(f"lost reason {facts.lost_reason!r} (+{OTHER_LOST_POINTS})")
        score += OTHER_LOST_POINTS
    signals = _known_signals(facts.signals)
    positive = min(SIGNAL_MAX_POINTS, sum(SIGNAL_POINTS[s] for s in signals if SIGNAL_POINTS[s] > 0))
    negative = sum(SIGNAL_POINTS[s] for s in signals if SIGNAL_POINTS[s] < 0)
    for signal in signals:
        reasons.append(f"signal {signal.replace('_', ' ')} ({SIGNAL_POINTS[signal]:+d})")
    score += positive + negative
    if lost == "terminal":
        reasons.append(f"lost as {facts.lost_reason!r}: not to be re-engaged (score capped at {TERMINAL_CAP})")
        score = min(score, TERMINAL_CAP)
    score = max(0, min(MAX_SCORE, score))
    reengage = score >= REENGAGE_THRESHOLD
    angle: Angle = _angle(signals, lost) if lost != "terminal" else "none"
    if reengage:
        recommendation = f"re-engage: {_ADVICE[angle]}"
        if facts.value is not None and facts.value >= BIG_DEAL_VALUE:
            recommendation += "; a deal this size deserves a call as well as the email"
    elif lost == "terminal":
        recommendation = f"no action: the deal was lost as {facts.lost_reason!r}"
    else:
        recommendation = f"no action: score {score} is below {REENGAGE_THRESHOLD}"
    return StallAnalysis(score=score, reasons=reasons, recommendation=recommendation, reengage=reengage, angle=angle)


# --------------------------------------------------------------------------- the email


def _clean(text: str | None, limit: int = MAX_TRIGGER_CHARS) -> str:
    cleaned = " ".join((text or "").split())
    if len(cleaned) > limit:
        cleaned = cleaned[:limit].rsplit(" ", 1)[0] + "…"
    return cleaned


_MIDDLE: dict[str, str] = {
    "new_champion": (
        "I understand the team around {deal} has changed. Who would be the best person to pick this up "
        "with? I'm happy to bring anyone new up to speed in 20 minutes."
    ),
    "competitor": (
        "If you're weighing other options for {deal}, I'd be glad to share how similar teams compared "
        "them with us - no pressure either way."
    ),
    "timing": (
        "When we last spoke, the timing for {deal} wasn't right. If priorities have moved since, I'd be "
        "glad to pick it back up where we left off."
    ),
    "trigger": "It also seemed a good moment to pick {deal} back up.",
    "check_in": "It's been a while since we last spoke about {deal}, so I wanted to check in on where things stand.",
    "none": "It's been a while since we last spoke about {deal}, so I wanted to check in on where things stand.",
}
_SUBJECTS: dict[str, str] = {
    "new_champion": "Who should I talk to about {deal}?",
    "competitor": "{deal}: still comparing options?",
    "timing": "Picking {deal} back up?",
    "trigger": "Checking in on {deal}",
    "check_in": "Checking in on {deal}",
    "none": "Checking in on {deal}",
}


def draft_reengagement(
    deal_name: str | None,
    contact_name: str | None,
    rep_name: str | None,
    analysis: StallAnalysis,
    trigger_events: Sequence[str],
) -> EmailDraft:
    """A short re-engagement email; it opens with the first trigger event when there is one.

    It drafts whatever the score: the sequence decides (``analysis.reengage``) whether to call it.
    """
    deal = _clean(deal_name, 80) or "our conversation"
    first_name = _clean(contact_name, 80).split(" ")[0] or "there"
    events = [event for raw in trigger_events if (event := _clean(raw).rstrip("."))]
    if events:
        subject = f"Thought of you: {_clean(events[0], 60)}"
        middle = _MIDDLE["trigger" if analysis.angle in ("trigger", "check_in", "none") else analysis.angle]
        opening = f"I came across this and thought of you: {events[0]}. {middle.format(deal=deal)}"
    else:
        subject = _SUBJECTS[analysis.angle].format(deal=deal)
        opening = _MIDDLE[analysis.angle].format(deal=deal)
    lines = [
        f"Hi {first_name},",
        "",
        opening,
        "",
        "Would a 15-minute call next week be useful? If things have changed on your side, just let me know "
        "and I'll close the loop.",
        "",
        "Best,",
    ]
    if _clean(rep_name, 80):
        lines.append(_clean(rep_name, 80))
    return EmailDraft(subject=subject, body="\n".join(lines))
