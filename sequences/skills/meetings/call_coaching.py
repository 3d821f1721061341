"""Coaching numbers of one call: the rep's talk ratio, questions, longest monologue, how clear the
closing next step is, and one rule-based tip. Pure functions (no I/O); ``coaching_stats`` states
the rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from sequences.skills.coaching.rules import question_target
from sequences.skills.meetings.commitments import is_commitment
from sequences.skills.meetings.due_dates import due_from_text
from sequences.skills.meetings.intents import FOLLOW_UP_RE
from sequences.skills.meetings.speakers import rep_speakers
from sequences.skills.meetings.text import fold, is_question, rx, split_sentences, word_count
from sequences.skills.meetings.transcript import Transcript

HIGH_TALK_RATIO = 0.65  # 0..1: rep share of words above which the tip says to let the prospect talk
LOW_TALK_RATIO = 0.25  # 0..1: rep share below which the tip says to steer the call
MIN_REP_WORDS_FOR_QUESTIONS = 150  # words: below this the question count says little
LONG_MONOLOGUE_S = 150.0  # s: a rep monologue longer than this (2.5 min) is worth a tip
CLEAR_NEXT_STEP = 0.5  # 0..1: next-step clarity below this is worth a tip
TAIL_SHARE = 0.25  # share of turns at the end of the call searched for the closing next step
MIN_TAIL_TURNS = 4  # turns: the tail is at least this long


class CoachingStats(BaseModel):
    """The coaching numbers of one call and the tip they lead to (``coaching_stats``)."""

    model_config = ConfigDict(frozen=True)

    talk_ratio: float = Field(ge=0.0, le=1.0)  # rep share of words
    question_count: int  # rep sentences ending in a question mark
    longest_monologue_s: float  # longest run of consecutive rep turns
    next_step_clarity: float = Field(ge=0.0, le=1.0)
    rep_words: int
    total_words: int
    call_minutes: float = 0.0  # the recording's length (last turn's end, else the turns' durations)
    question_target: int = 2  # coaching.rules.question_target for this length
    tip: str


_OWNER_RE = rx(r"i", r"i'll", r"i will", r"let me", r"you", r"you'll", r"you will", r"ich", r"sie werden")
_SHARED_OWNER_RE = rx(r"we", r"we'll", r"we will", r"let's", r"let us", r"wir", r"lass uns")
_CLOCK_RE = re.compile(
    r"(?<!\w)(?:\d{1,2}(?::\d{2})?\s?(?:am|pm|uhr)|\d{1,2}:\d{2}|noon|morning|afternoon|vormittag|nachmittag)(?!\w)"
)


def _step_clarity(sentence: str, meeting_day: date) -> float:
    """0.4 for a next step, 0.3 for a named owner (0.15 for "we"), 0.3 for a time."""
    if not is_commitment(sentence) and not FOLLOW_UP_RE.search(fold(sentence)):
        return 0.0
    folded = fold(sentence)
    score = 0.4
    if _OWNER_RE.search(folded):
        score += 0.3
    elif _SHARED_OWNER_RE.search(folded):
        score += 0.15
    if due_from_text(sentence, meeting_day) is not None or _CLOCK_RE.search(folded):
        score += 0.3
    return round(min(1.0, score), 2)


def _tip(stats: dict, reps_found: bool) -> str:
    ratio, questions, monologue = stats["talk_ratio"], stats["question_count"], stats["longest_monologue_s"]
    if stats["total_words"] == 0:
        return "There was no transcript for this call, so there is no coaching feedback."
    if not reps_found:
        return "The rep was not recognised among the transcript's speakers, so talk time could not be measured."
    if ratio > HIGH_TALK_RATIO:
        return f"You talked {ratio:.0%} of the call: ask an open question and let the prospect talk more."
    if stats["next_step_clarity"] < CLEAR_NEXT_STEP:
        return "Close with a concrete next step: who does what, by when."
    asked = f"{questions} question{'' if questions == 1 else 's'}"
    target = stats["question_target"]
    if questions < target and stats["rep_words"] >= MIN_REP_WORDS_FOR_QUESTIONS:
        return f"You asked {asked} where a call this long needs about {target}: ask more open discovery questions."
    if monologue > LONG_MONOLOGUE_S:
        minutes = monologue / 60
        return f"Your longest monologue ran {minutes:.1f} min: pause for a check-in question every minute or two."
    if ratio < LOW_TALK_RATIO:
        return f"You talked only {ratio:.0%} of the call: make sure you steer it toward a next step."
    if questions >= target:  # praise the questions only when they reached the target (never a zero)
        return f"Good balance: {ratio:.0%} talk time, {asked} and a clear next step."
    return f"Good balance: {ratio:.0%} talk time and a clear next step."


def coaching_stats(t: Transcript, rep_names: Collection[str]) -> CoachingStats:
    """Talk ratio, rep questions, longest rep monologue, next-step clarity and one rule-based tip.

    Next-step clarity is the best ``_step_clarity`` over the sentences in the last quarter of the turns
    (at least the last 4): 0.4 for a commitment or follow-up, +0.3 for a named owner ("I", "you"; +0.15
    for "we"), +0.3 for a date or time. Tips, first that applies: no transcript; rep not found; talk
    ratio > 65%; clarity < 0.5; fewer questions than ``question_target`` for the call's length (with ≥ 150
    rep words); a monologue > 150 s; talk ratio < 25%; otherwise praise, which names the question count
    only when it reached the target.
    """
    reps = rep_speakers(t.speakers, rep_names)
    day = date(2000, 1, 3)  # any date: clarity only asks whether a date is named, not which one
    total = rep_words = questions = 0
    longest = run = 0.0
    for u in t.utterances:
        words = word_count(u.text)
        total += words
        if u.speaker in reps:
            rep_words += words
            questions += sum(1 for s in split_sentences(u.text) if is_question(s))
            run += u.duration_s
            longest = max(longest, run)
        else:
            run = 0.0
    turns = t.utterances
    tail = turns[-max(MIN_TAIL_TURNS, math.ceil(len(turns) * TAIL_SHARE)) :] if turns else []
    clarity = max((_step_clarity(s, day) for u in tail for s in split_sentences(u.text)), default=0.0)
    timed = [u.start_s + u.duration_s for u in turns if u.start_s is not None]
    call_minutes = round((max(timed) if timed else sum(u.duration_s for u in turns)) / 60, 1)
    stats = {
        "talk_ratio": round(rep_words / total, 3) if total else 0.0,
        "question_count": questions,
        "longest_monologue_s": round(longest, 1),
        "next_step_clarity": clarity,
        "rep_words": rep_words,
        "total_words": total,
        "call_minutes": call_minutes,
        "question_target": question_target(call_minutes),
    }
    return CoachingStats(**stats, tip=_tip(stats, bool(reps)))
