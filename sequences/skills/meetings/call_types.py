"""A meeting's call type (discovery, demo, negotiation, …) from its title and transcript, and
whether it is a sales call that gets coaching. Pure functions (no I/O). The rules:

Call types (``classify_call_type``)
    A stored type with confidence ≥ 0.5 is kept. Otherwise keywords (whole words) are counted in the
    title (3 points each) and in the transcript (1 point per distinct keyword); the best type wins
    (table order breaks ties) when it has a title hit, or two distinct transcript keywords; else
    ``unknown``. Sales types: names containing discover, demo, clos(e/ing), negotiat, proposal or pitch,
    plus ``unknown``; coaching is on for sales types and any type listed in ``coaching_call_types``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from sequences.skills.meetings.text import fold, rx
from sequences.skills.meetings.transcript import Transcript

KEEP_CALL_TYPE_CONFIDENCE = 0.5  # 0..1: a stored call type at or above this is kept
TITLE_KEYWORD_POINTS = 3  # points per call-type keyword in the title (a title names the meeting)
TRANSCRIPT_MIN_KEYWORDS = 2  # distinct keywords a transcript-only classification needs
UNKNOWN_CONFIDENCE = 0.2  # 0..1: confidence of the "unknown" (treated as sales) call type


class CallTypeResult(BaseModel):
    """A meeting's call type, whether it is a sales call and gets coaching, and what matched."""

    model_config = ConfigDict(frozen=True)

    call_type: str
    is_sales: bool
    coaching_enabled: bool
    confidence: float = Field(ge=0.0, le=1.0)
    matched: list[str] = Field(default_factory=list)  # "existing", "title:<kw>", "transcript:<kw>"


DEFAULT_CALL_TYPES: Mapping[str, list[str]] = {
    "discovery": [
        "discovery",
        "intro",
        "introduction",
        "intro call",
        "first call",
        "initial call",
        "qualification",
        "exploratory",
        "erstgespräch",
        "kennenlernen",
        "bedarfsanalyse",
    ],
    "demo": ["demo", "demonstration", "walkthrough", "walk-through", "product tour", "vorführung", "produktdemo"],
    "negotiation": [
        "negotiation",
        "pricing discussion",
        "contract",
        "closing",
        "close plan",
        "redlines",
        "procurement",
        "legal review",
        "order form",
        "verhandlung",
        "vertrag",
    ],
    "onboarding": ["onboarding", "kickoff", "kick-off", "implementation", "training", "go-live", "einführung"],
    "support": ["support", "troubleshooting", "escalation", "ticket", "bug", "outage"],
    "internal": [
        "standup",
        "stand-up",
        "internal",
        "1:1",
        "one-on-one",
        "team sync",
        "retro",
        "retrospective",
        "sprint",
        "all hands",
        "all-hands",
        "pipeline review",
        "forecast call",
        "blockers",
        "teammeeting",
    ],
    "interview": ["interview", "candidate", "hiring", "bewerbungsgespräch"],
    "qbr": ["qbr", "quarterly business review", "business review", "renewal", "account review"],
}  # call type → keywords; the org's own table replaces this one
_SALES_NAME_RE = re.compile(r"discover|demo|clos(?:e|ing)|negotiat|proposal|pitch")


def is_sales_call_type(call_type: str) -> bool:
    """Whether a call type's name is a sales call (discovery/demo/close names, and unknown)."""
    name = call_type.strip().casefold()
    return name == "unknown" or bool(_SALES_NAME_RE.search(name))


@lru_cache(maxsize=256)
def _keyword_patterns(keywords: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Each distinct folded keyword with its whole-word pattern (compiled once per keyword list)."""
    return tuple((k, rx(re.escape(k))) for k in dict.fromkeys(fold(k) for k in keywords) if k)


def _keyword_hits(folded: str, keywords: Iterable[str]) -> list[str]:
    """The keywords found as whole words in `folded` (text already folded)."""
    # the substring test first: a keyword absent from the text needs no whole-word search
    return [k for k, pattern in _keyword_patterns(tuple(keywords)) if k in folded and pattern.search(folded)]


def classify_call_type(
    title: str | None,
    transcript: Transcript | str | None,
    existing_type: str | None,
    existing_confidence: float | None,
    org_call_types: Mapping[str, list[str]] | None = None,
    *,
    coaching_call_types: Collection[str] = (),
) -> CallTypeResult:
    """The meeting's call type by the rules in the module docstring."""
    coaching_extra = {c.casefold() for c in coaching_call_types}

    def result(call_type: str, confidence: float, matched: list[str]) -> CallTypeResult:
        sales = is_sales_call_type(call_type)
        return CallTypeResult(
            call_type=call_type,
            is_sales=sales,
            coaching_enabled=sales or call_type.casefold() in coaching_extra,
            confidence=round(max(0.0, min(1.0, confidence)), 3),
            matched=matched,
        )

    if existing_type and existing_type.strip() and (existing_confidence or 0.0) >= KEEP_CALL_TYPE_CONFIDENCE:
        return result(existing_type.strip(), existing_confidence or 0.0, ["existing"])
    table = DEFAULT_CALL_TYPES if org_call_types is None else org_call_types
    body = transcript.text if isinstance(transcript, Transcript) else (transcript or "")
    folded_title, folded_body = fold(title or ""), fold(body)
    best: tuple[int, str, list[str], list[str]] | None = None
    for call_type, keywords in table.items():
        in_title = _keyword_hits(folded_title, keywords)
        in_body = _keyword_hits(folded_body, keywords)
        if not in_title and len(in_body) < TRANSCRIPT_MIN_KEYWORDS:
            continue
        score = TITLE_KEYWORD_POINTS * len(in_title) + len(in_body)
        if best is None or score > best[0]:
            best = (score, call_type, in_title, in_body)
    if best is None:
        return result("unknown", UNKNOWN_CONFIDENCE, [])
    _, call_type, in_title, in_body = best
    # a title hit is strong (0.8, 0.9 when the transcript agrees); a transcript-only match at most 0.6
    confidence = (0.8 + 0.1 * bool(in_body)) if in_title else min(0.6, 0.3 + 0.1 * len(in_body))
    matched = [f"title:{k}" for k in in_title] + [f"transcript:{k}" for k in in_body]
    return result(call_type, confidence, matched)
