"""Coaching rules: a rep's conversation metrics over an ISO week, win/loss patterns, the weekly digest.

Pure decisions (no I/O): the coaching_weekly steps load the rep's per-meeting stats (from
coaching-micro-feedback) and closed deals, call ``aggregate_week``, ``correlate_win_loss`` and
``coaching_digest`` (the offline version of the *LLM* digest), and deliver the result.

Weeks are ISO weeks in the rep's time zone ("2026-W48"): Monday 00:00 local to the next Monday
00:00 local, so a week is 167 or 169 hours long when a DST change falls inside it. The digest fires
on the rep's local Monday morning and covers the week that just ended (``previous_iso_week``).

Meeting metrics (meeting_ended's coaching-micro-feedback): ``talk_ratio`` is the rep's share
of the talk time (0..1), ``question_count`` the questions the rep asked, ``longest_monologue_s`` the
longest uninterrupted stretch of the rep speaking, ``next_step_clarity`` how clearly the meeting
ended on a dated next step (0..1). Targets (public sales-call research, rounded): the rep talks at
most half the time, asks about 11 questions in a 45-minute call, keeps monologues under 90 s, ends on
a clear next step. The question target scales with the call's length (``question_target``: a
10-minute call needs 3, not 11); the meeting debrief, the weekly digest and the meeting score all use
that one function, so the advice never contradicts the numbers it quotes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from statistics import fmean
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

TALK_RATIO_GOOD = 0.50  # share of talk time: at or below, the rep listens at least as much as they talk
TALK_RATIO_HIGH = 0.60  # share of talk time: above, the rep dominates the call (suggest listening more)
TALK_RATIO_LOW = 0.25  # share of talk time: below, the rep may not be leading the call
TALK_RATIO_ZERO_AT = 0.80  # share of talk time: the talk component of a meeting score is 0 at or above
QUESTIONS_GOOD = 11.0  # questions in a REFERENCE_CALL_MIN call: strong discovery (the target when length is unknown)
REFERENCE_CALL_MIN = 45.0  # minutes: the discovery-call length the 11-question target was measured on
MIN_QUESTION_TARGET = 2  # questions: even a short call should ask at least this many
QUESTIONS_LOW_SHARE = 6 / 11  # of the target: below, suggest more discovery questions (6 in a 45-minute call)
MONOLOGUE_GOOD_S = 90.0  # seconds: the longest monologue at or below this keeps the call a dialogue
MONOLOGUE_LONG_S = 150.0  # seconds: above, suggest checking in more often
MONOLOGUE_ZERO_AT_S = 300.0  # seconds: the monologue component of a meeting score is 0 at or above
CLARITY_GOOD = 0.75  # 0..1: at or above, meetings end on a clear next step
CLARITY_LOW = 0.50  # 0..1: below, suggest closing every call with a dated next step
SCORE_WEIGHTS = {"talk": 0.3, "questions": 0.2, "monologue": 0.2, "clarity": 0.3}  # meeting score, sums to 1
# Smallest win/loss differences worth a note (smaller ones are noise at a rep's deal volume).
NOTE_TALK_PTS = 5.0  # percentage points of talk ratio
NOTE_QUESTIONS = 1.0  # questions per meeting
NOTE_MONOLOGUE_S = 15.0  # seconds
NOTE_CLARITY_PTS = 10.0  # percentage points of next-step clarity
SMALL_SAMPLE_DEALS = 3  # deals: fewer on either side makes the comparison a hint only
# Week-on-week changes worth a highlight.
IMPROVED_TALK_PTS = 5.0  # percentage points down (while above the target)
IMPROVED_QUESTIONS = 2.0  # more questions per meeting
IMPROVED_MONOLOGUE_S = 30.0  # seconds shorter
IMPROVED_CLARITY_PTS = 10.0  # percentage points up
MAX_HIGHLIGHTS = 4  # bullets in the digest, best first
MAX_SUGGESTIONS = 3  # bullets in the digest: a rep acts on a few, not on ten

_WEEK = re.compile(r"(\d{4})-W(\d{2})")


class Outcome(StrEnum):
    """How a closed deal ended."""

    WON = "won"
    LOST = "lost"


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")


def _zone(tz: ZoneInfo | str) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def question_target(call_minutes: float | None) -> int:
    """How many questions a rep should ask in a call this long: 11 per 45 minutes rounded up, at
    least 2; 11 when the length is unknown. The one question target of the debrief, digest and score."""
    if call_minutes is None or call_minutes <= 0:
        return int(QUESTIONS_GOOD)
    return max(MIN_QUESTION_TARGET, math.ceil(QUESTIONS_GOOD * call_minutes / REFERENCE_CALL_MIN - 1e-9))


class MeetingStats(BaseModel):
    """One recorded meeting's conversation metrics."""

    model_config = ConfigDict(frozen=True)

    meeting_id: str
    start: datetime  # aware
    talk_ratio: float = Field(ge=0.0, le=1.0)
    question_count: int = Field(ge=0)
    longest_monologue_s: float = Field(ge=0.0)
    next_step_clarity: float = Field(ge=0.0, le=1.0)
    is_sales: bool = True
    deal_id: str | None = None
    call_minutes: float | None = None  # the recording's length; None when unknown (target: 11 questions)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def question_target(self) -> int:
        return question_target(self.call_minutes)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        _require_aware("start", value)
        return value


class WeeklyMetrics(BaseModel):
    """A rep's week: meeting counts and the means over the week's sales meetings (None without any)."""

    model_config = ConfigDict(frozen=True)

    week: str
    meetings: int  # every meeting in the week
    sales_meetings: int  # those the metrics are computed over
    talk_ratio: float | None = None  # mean, 0..1
    questions_per_meeting: float | None = None  # mean
    question_target: float | None = None  # mean of the meetings' question targets (their lengths differ)
    longest_monologue_s: float | None = None  # the week's longest
    next_step_clarity: float | None = None  # mean, 0..1
    best_meeting_id: str | None = None
    worst_meeting_id: str | None = None  # None with fewer than two sales meetings


class DealOutcome(BaseModel):
    """A closed deal and the stats of its meetings; ``closed_won``/``closed_lost`` are accepted too."""

    model_config = ConfigDict(frozen=True)

    deal_id: str
    outcome: Outcome
    meetings: list[MeetingStats] = Field(default_factory=list)

    @field_validator("outcome", mode="before")
    @classmethod
    def _stage_names(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower().removeprefix("closed_")
        return value


class OutcomeStats(BaseModel):
    """The averages of one side (won or lost): each deal's meeting means, then the mean over deals."""

    model_config = ConfigDict(frozen=True)

    deals: int
    deals_with_meetings: int
    meetings: int
    talk_ratio: float | None = None
    questions_per_meeting: float | None = None
    longest_monologue_s: float | None = None  # mean of each deal's longest
    next_step_clarity: float | None = None


class WinLoss(BaseModel):
    """Won and lost deal counts, each side's averages, and sentences comparing them."""

    model_config = ConfigDict(frozen=True)

    won: int
    lost: int
    won_stats: OutcomeStats
    lost_stats: OutcomeStats
    notes: list[str] = Field(default_factory=list)


class CoachingDigest(BaseModel):
    """The weekly coaching digest: the metrics, last week's, what went well, what to try, the text.

    The week's metrics are repeated flat (computed fields) so that ``model_dump()`` is what the
    Slack digest builder reads.
    """

    model_config = ConfigDict(frozen=True)

    rep_name: str
    week: str
    metrics: WeeklyMetrics
    previous: WeeklyMetrics | None = None
    win_loss: WinLoss | None = None
    highlights: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)
    text: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def meetings(self) -> int:
        return self.metrics.meetings

    @computed_field  # type: ignore[prop-decorator]
    @property
    def talk_ratio(self) -> float | None:
        return self.metrics.talk_ratio

    @computed_field  # type: ignore[prop-decorator]
    @property
    def questions_per_meeting(self) -> float | None:
        return self.metrics.questions_per_meeting

    @computed_field  # type: ignore[prop-decorator]
    @property
    def question_target(self) -> float | None:
        return self.metrics.question_target

    @computed_field  # type: ignore[prop-decorator]
    @property
    def longest_monologue_s(self) -> float | None:
        return self.metrics.longest_monologue_s

    @computed_field  # type: ignore[prop-decorator]
    @property
    def next_step_clarity(self) -> float | None:
        return self.metrics.next_step_clarity


# --------------------------------------------------------------------------------------------------
# Weeks


def parse_iso_week(week: str) -> tuple[int, int]:
    """``"2026-W48"`` → ``(2026, 48)``; ValueError for anything else or a week the year lacks (W53)."""
    match = _WEEK.fullmatch(week.strip()) if isinstance(week, str) else None
    if match is None:
        raise ValueError(f"week must look like 2026-W48, got {week!r}")
    year, number = int(match.group(1)), int(match.group(2))
    try:
        date.fromisocalendar(year, number, 1)
    except ValueError:
        raise ValueError(f"{week!r} is not a week of {year} (W00, W54, or W53 in a 52-week year)") from None
    return year, number


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``tz``, as aware UTC.

    Midnight itself may not exist (a DST gap at 00:00, as in Santiago or Havana): zoneinfo then reads
    it with the offset before the change, which is the moment the clock jumps, the day's first instant.
    Where midnight happens twice, fold 0 is the first time.
    """
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def iso_week_bounds(week: str, tz: ZoneInfo | str) -> tuple[datetime, datetime]:
    """The week's ``[start, end)`` in UTC: Monday 00:00 local to the next Monday 00:00 local."""
    zone = _zone(tz)
    year, number = parse_iso_week(week)
    monday = date.fromisocalendar(year, number, 1)
    return _local_midnight(monday, zone), _local_midnight(monday + timedelta(days=7), zone)


def iso_week_of(dt: datetime, tz: ZoneInfo | str) -> str:
    """The ISO week ("2026-W48") that the aware ``dt`` falls in, on the clock of ``tz``."""
    _require_aware("dt", dt)
    year, week, _ = dt.astimezone(_zone(tz)).isocalendar()
    return f"{year}-W{week:02d}"


def previous_iso_week(now: datetime, tz: ZoneInfo | str) -> str:
    """The ISO week before the one ``now`` is in, locally: what a Monday-morning digest covers."""
    _require_aware("now", now)
    local_day = now.astimezone(_zone(tz)).date()
    year, week, _ = (local_day - timedelta(days=7)).isocalendar()
    return f"{year}-W{week:02d}"


# --------------------------------------------------------------------------------------------------
# Aggregation


def meeting_score(m: MeetingStats) -> float:
    """How close one meeting came to the targets, 0..1 (weights in ``SCORE_WEIGHTS``).

    Talk: 1 from 25 % to 50 %, falling linearly to 0 at 0 % and at 80 %. Questions: the count over
    the call's ``question_target``, capped at 1. Monologue: 1 up to 90 s, falling linearly to 0 at
    300 s. Clarity: as given.
    """
    ratio = m.talk_ratio
    if ratio > TALK_RATIO_GOOD:
        talk = max(0.0, 1 - (ratio - TALK_RATIO_GOOD) / (TALK_RATIO_ZERO_AT - TALK_RATIO_GOOD))
    elif ratio < TALK_RATIO_LOW:
        talk = ratio / TALK_RATIO_LOW
    else:
        talk = 1.0
    questions = min(1.0, m.question_count / m.question_target)
    over = m.longest_monologue_s - MONOLOGUE_GOOD_S
    monologue = 1.0 if over <= 0 else max(0.0, 1 - over / (MONOLOGUE_ZERO_AT_S - MONOLOGUE_GOOD_S))
    parts = {"talk": talk, "questions": questions, "monologue": monologue, "clarity": m.next_step_clarity}
    return round(sum(SCORE_WEIGHTS[k] * v for k, v in parts.items()), 4)


def _mean(values: Sequence[float], digits: int) -> float | None:
    return round(fmean(values), digits) if values else None


def aggregate_week(meetings: Sequence[MeetingStats], week: str, tz: ZoneInfo | str) -> WeeklyMetrics:
    """The rep's metrics for ``week`` in ``tz``: meetings outside the week are ignored.

    Means and the longest monologue are over the week's sales meetings only (internal and other
    non-sales calls say little about selling); with none, they are None. Best and worst are the
    meetings with the highest and lowest ``meeting_score`` (ties: the earlier one); there is no
    worst with fewer than two sales meetings. Ratios are rounded to 3 decimals, questions and
    seconds to 1.
    """
    start, end = iso_week_bounds(week, tz)
    in_week = sorted((m for m in meetings if start <= m.start < end), key=lambda m: (m.start, m.meeting_id))
    sales = [m for m in in_week if m.is_sales]
    label = "{}-W{:02d}".format(*parse_iso_week(week))
    if not sales:
        return WeeklyMetrics(week=label, meetings=len(in_week), sales_meetings=0)
    scores = [meeting_score(m) for m in sales]
    best = max(range(len(sales)), key=lambda i: (scores[i], -i))
    worst = min(range(len(sales)), key=lambda i: (scores[i], i))
    return WeeklyMetrics(
        week=label,
        meetings=len(in_week),
        sales_meetings=len(sales),
        talk_ratio=_mean([m.talk_ratio for m in sales], 3),
        questions_per_meeting=_mean([float(m.question_count) for m in sales], 1),
        question_target=_mean([float(m.question_target) for m in sales], 1),
        longest_monologue_s=round(max(m.longest_monologue_s for m in sales), 1),
        next_step_clarity=_mean([m.next_step_clarity for m in sales], 3),
        best_meeting_id=sales[best].meeting_id,
        worst_meeting_id=sales[worst].meeting_id if len(sales) > 1 else None,
    )


# --------------------------------------------------------------------------------------------------
# Win / loss


def _side(deals: Sequence[DealOutcome]) -> OutcomeStats:
    with_meetings = [d for d in deals if d.meetings]

    def per_deal(metric: Callable[[Sequence[MeetingStats]], float], digits: int) -> float | None:
        return _mean([metric(d.meetings) for d in with_meetings], digits)

    return OutcomeStats(
        deals=len(deals),
        deals_with_meetings=len(with_meetings),
        meetings=sum(len(d.meetings) for d in deals),
        talk_ratio=per_deal(lambda ms: fmean(m.talk_ratio for m in ms), 3),
        questions_per_meeting=per_deal(lambda ms: fmean(m.question_count for m in ms), 1),
        longest_monologue_s=per_deal(lambda ms: max(m.longest_monologue_s for m in ms), 1),
        next_step_clarity=per_deal(lambda ms: fmean(m.next_step_clarity for m in ms), 3),
    )


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.0f} %"


def _duration(seconds: float) -> str:
    total = round(seconds)
    minutes, secs = divmod(total, 60)
    if not minutes:
        return f"{secs} s"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def correlate_win_loss(deals: Sequence[DealOutcome]) -> WinLoss:
    """Compare the meetings of won and lost deals and say where they differ.

    Each deal's meetings are averaged first (every meeting listed for the deal counts), then the
    deals, so one long cycle does not outweigh several short ones. A note is written for each metric
    whose difference is at least 5 pts of talk ratio, 1 question, 15 s of monologue or 10 pts of
    clarity. Without deals, or without meetings on one side, the notes say what is missing; with
    fewer than 3 deals on a side, a note says the comparison is a hint only.
    """
    won = _side([d for d in deals if d.outcome is Outcome.WON])
    lost = _side([d for d in deals if d.outcome is Outcome.LOST])
    notes: list[str] = []
    if not deals:
        notes.append("No closed deals yet: nothing to compare.")
    elif not won.deals_with_meetings or not lost.deals_with_meetings:
        missing = "won" if not won.deals_with_meetings else "lost"
        notes.append(f"No recorded meetings on {missing} deals yet: nothing to compare.")
    else:
        wt, lt = won.talk_ratio, lost.talk_ratio
        if wt is not None and lt is not None and abs(wt - lt) * 100 >= NOTE_TALK_PTS:
            notes.append(f"Won deals averaged {_pct(wt)} talk ratio vs {_pct(lt)} in lost ones.")
        wq, lq = won.questions_per_meeting, lost.questions_per_meeting
        if wq is not None and lq is not None and abs(wq - lq) >= NOTE_QUESTIONS:
            notes.append(f"Won deals averaged {wq:.1f} questions per meeting vs {lq:.1f} in lost ones.")
        wm, lm = won.longest_monologue_s, lost.longest_monologue_s
        if wm is not None and lm is not None and abs(wm - lm) >= NOTE_MONOLOGUE_S:
            notes.append(f"Longest monologues averaged {_duration(wm)} in won deals vs {_duration(lm)} in lost ones.")
        wc, lc = won.next_step_clarity, lost.next_step_clarity
        if wc is not None and lc is not None and abs(wc - lc) * 100 >= NOTE_CLARITY_PTS:
            notes.append(f"Next-step clarity was {_pct(wc)} in won deals vs {_pct(lc)} in lost ones.")
        if not notes:
            notes.append("Won and lost deals look alike on these metrics.")
        if min(won.deals, lost.deals) < SMALL_SAMPLE_DEALS:
            notes.append(
                f"Small sample ({_plural(won.deals, 'won deal')}, {_plural(lost.deals, 'lost deal')}): treat as a hint."
            )
    return WinLoss(won=won.deals, lost=lost.deals, won_stats=won, lost_stats=lost, notes=notes)


# --------------------------------------------------------------------------------------------------
# Digest


def _signed(value: float, digits: int = 0, unit: str = "") -> str:
    shown = f"{value:+.{digits}f}"
    if float(shown) == 0:
        shown = f"{0:.{digits}f}"  # never "+0" / "-0"
    return f"{shown}{unit}"


def _metric_lines(m: WeeklyMetrics, p: WeeklyMetrics | None) -> list[str]:
    def delta(now: float | None, before: float | None, fmt: Callable[[float], str]) -> str:
        if now is None or p is None or before is None:
            return ""
        return f" ({fmt(now - before)} vs last week)"

    lines = [f"Meetings: {m.meetings} ({m.sales_meetings} sales)" + delta(m.meetings, p and p.meetings, _signed)]
    if m.talk_ratio is not None:
        change = delta(m.talk_ratio, p and p.talk_ratio, lambda d: _signed(d * 100, 0, " pts"))
        lines.append(f"Talk ratio: {_pct(m.talk_ratio)}{change}")
    if m.questions_per_meeting is not None:
        change = delta(m.questions_per_meeting, p and p.questions_per_meeting, lambda d: _signed(d, 1))
        aim = f" (aim for {m.question_target:.0f}+)" if m.question_target is not None else ""
        lines.append(f"Questions per meeting: {m.questions_per_meeting:.1f}{aim}{change}")
    if m.longest_monologue_s is not None:
        change = delta(m.longest_monologue_s, p and p.longest_monologue_s, lambda d: _signed(d, 0, " s"))
        lines.append(f"Longest monologue: {_duration(m.longest_monologue_s)}{change}")
    if m.next_step_clarity is not None:
        change = delta(m.next_step_clarity, p and p.next_step_clarity, lambda d: _signed(d * 100, 0, " pts"))
        lines.append(f"Next-step clarity: {_pct(m.next_step_clarity)}{change}")
    return lines


def _target_words(m: WeeklyMetrics) -> str:
    """The week's question target in words: "target 3 for calls this long", or "target 11"."""
    if m.question_target is None:
        return f"target {QUESTIONS_GOOD:.0f}"
    return f"target {m.question_target:.0f} for calls this long"


def _highlights(m: WeeklyMetrics, p: WeeklyMetrics | None) -> list[str]:
    out: list[str] = []
    if m.talk_ratio is not None and p is not None and p.talk_ratio is not None:
        drop = (p.talk_ratio - m.talk_ratio) * 100
        if p.talk_ratio > TALK_RATIO_GOOD and drop >= IMPROVED_TALK_PTS:
            out.append(f"Talk ratio down from {_pct(p.talk_ratio)} to {_pct(m.talk_ratio)}: more listening.")
    if not out and m.talk_ratio is not None and TALK_RATIO_LOW <= m.talk_ratio <= TALK_RATIO_GOOD:
        out.append(f"Balanced talk ratio ({_pct(m.talk_ratio)}): prospects talked at least as much as you.")
    q, pq = m.questions_per_meeting, (p.questions_per_meeting if p else None)
    if q is not None and pq is not None and q - pq >= IMPROVED_QUESTIONS:
        out.append(f"More discovery: {q:.1f} questions per meeting, up from {pq:.1f}.")
    elif q is not None and q > 0 and q >= (m.question_target or QUESTIONS_GOOD):
        out.append(f"Strong discovery: {q:.1f} questions per meeting ({_target_words(m)}).")
    mono, pm = m.longest_monologue_s, (p.longest_monologue_s if p else None)
    if mono is not None and pm is not None and pm - mono >= IMPROVED_MONOLOGUE_S and pm > MONOLOGUE_GOOD_S:
        out.append(f"Shorter monologues: longest {_duration(mono)}, down from {_duration(pm)}.")
    elif mono is not None and mono <= MONOLOGUE_GOOD_S:
        out.append(f"Kept it a dialogue: no monologue longer than {_duration(mono)}.")
    c, pc = m.next_step_clarity, (p.next_step_clarity if p else None)
    if c is not None and pc is not None and (c - pc) * 100 >= IMPROVED_CLARITY_PTS:
        out.append(f"Clearer next steps: {_pct(c)}, up from {_pct(pc)}.")
    elif c is not None and c >= CLARITY_GOOD:
        out.append(f"Meetings ended on clear next steps ({_pct(c)}).")
    return out[:MAX_HIGHLIGHTS]


def _suggestions(m: WeeklyMetrics, win_loss: WinLoss | None) -> list[str]:
    out: list[str] = []
    won = win_loss.won_stats if win_loss is not None and win_loss.lost_stats.deals_with_meetings else None
    if m.talk_ratio is not None and m.talk_ratio > TALK_RATIO_HIGH:
        tip = f"You talked {_pct(m.talk_ratio)} of the time: aim for under 50 % with open questions and pauses."
        if won is not None and won.talk_ratio is not None and m.talk_ratio - won.talk_ratio >= NOTE_TALK_PTS / 100:
            tip += f" Your won deals averaged {_pct(won.talk_ratio)}."
        out.append(tip)
    elif m.talk_ratio is not None and m.talk_ratio < TALK_RATIO_LOW:
        out.append(f"You talked only {_pct(m.talk_ratio)} of the time: lead with a point of view and a clear agenda.")
    if m.next_step_clarity is not None and m.next_step_clarity < CLARITY_LOW:
        out.append(
            f"Next steps were unclear ({_pct(m.next_step_clarity)}): end every call with an owner and a date "
            "for the next step."
        )
    q = m.questions_per_meeting
    if q is not None and q < QUESTIONS_LOW_SHARE * (m.question_target or QUESTIONS_GOOD):
        out.append(
            f"Ask more discovery questions: {q:.1f} per meeting ({_target_words(m)}); prepare them before each call."
        )
    if m.longest_monologue_s is not None and m.longest_monologue_s > MONOLOGUE_LONG_S:
        out.append(
            f"Your longest monologue ran {_duration(m.longest_monologue_s)}: check in with a question every 90 seconds."
        )
    return out[:MAX_SUGGESTIONS]


def coaching_digest(
    rep_name: str,
    metrics: WeeklyMetrics,
    previous: WeeklyMetrics | None,
    win_loss: WinLoss | None,
) -> CoachingDigest:
    """The rule-based weekly digest: metric lines with deltas vs ``previous``, highlights, suggestions.

    Highlights (at most 4): improvements of at least 5 pts of talk ratio (from above 50 %), 2
    questions, 30 s of monologue (from above 90 s) or 10 pts of clarity; else metrics on target.
    Suggestions (at most 3, most important first): talk ratio above 60 % (or below 25 %), clarity
    below 50 %, questions below 6/11 of the week's ``question_target``, monologues above 150 s; the
    talk tip quotes the won deals' average when it is at least 5 pts lower. A week without sales meetings gets neither.
    """
    name = rep_name.strip()
    lines = _metric_lines(metrics, previous)
    highlights = _highlights(metrics, previous) if metrics.sales_meetings else []
    suggestions = _suggestions(metrics, win_loss) if metrics.sales_meetings else []
    parts = [f"Coaching digest for {name}, week {metrics.week}" if name else f"Coaching digest, week {metrics.week}"]
    if not metrics.sales_meetings:
        parts.append(f"No recorded sales meetings in {metrics.week}: nothing to coach on this week.")
    parts.extend(f"- {line}" for line in lines)
    if metrics.best_meeting_id:
        best = f"Best meeting: {metrics.best_meeting_id}"
        parts.append(best + (f" · needs work: {metrics.worst_meeting_id}" if metrics.worst_meeting_id else ""))
    if highlights:
        parts += ["What went well:", *(f"- {h}" for h in highlights)]
    if suggestions:
        parts += ["Try this week:", *(f"- {s}" for s in suggestions)]
    if win_loss is not None and win_loss.notes:
        parts += [f"Won vs lost ({win_loss.won} won, {win_loss.lost} lost):", *(f"- {n}" for n in win_loss.notes)]
    return CoachingDigest(
        rep_name=rep_name,
        week=metrics.week,
        metrics=metrics,
        previous=previous,
        win_loss=win_loss,
        highlights=highlights,
        suggestions=suggestions,
        text="\n".join(parts),
    )
