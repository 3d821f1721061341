"""Deal risk rules: the score of one deal from its engagement facts, and when to alert its owner.

Pure decisions (no I/O): the deal_risk_scan steps load ``DealFacts``, call ``risk_score`` and
``should_alert``, and store the results. The rules (docs/sequences.md#deal_risk_scan):

=============================  ======  ===============================================================
rule                           points  when
=============================  ======  ===============================================================
``inactive_14d``               25      engagement, first match of four: ≥ 14 days inactive
``inactive_7d``                15      … else ≥ 7 days inactive
``no_emails_30d``              25      … else no email with the deal's contacts in 30 days
``few_emails_30d``             10      … else fewer than 3 such emails
``primary_contact_silent``     20      the primary contact has 0 emails in 30 days
``primary_contact_one_email``  10      … exactly 1 email (no primary contact: neither rule)
``close_date_passed``          15      the close date is before today
``closing_soon_early_stage``   10      … else it is within the next 7 days (today included) and the
                                       stage is not yet a late stage (proposal, negotiation)
``single_threaded``            15/10   ≤ 1 distinct contact in activities in 30 days: 15 when the
                                       value is above 10,000, else 10
``no_meetings_silent``         5       no meeting in 30 days and ≥ 14 days inactive
=============================  ======  ===============================================================

Interpretations: "days inactive" is the number of whole days since ``last_activity_at`` (since
``created_at`` when the deal never had activity), never negative; "today" is ``now``'s UTC date.
The engagement group takes the first rule that matches, so it adds at most 25. The sum is capped
at 100 (the rules add up to 80 at most today; the cap keeps the scale if rules are added). Levels:
≥ 60 high, 40-59 medium, below 40 low. Closed deals (closed_won / closed_lost) carry no risk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

STAGES = (
    "prospecting",
    "qualification",
    "discovery",
    "demo",
    "proposal",
    "negotiation",
    "closed_won",
    "closed_lost",
)  # pipeline order
CLOSED_STAGES = frozenset({"closed_won", "closed_lost"})
OPEN_STAGES = frozenset(STAGES) - CLOSED_STAGES
LATE_STAGES = frozenset({"proposal", "negotiation"})

MAX_SCORE = 100  # points: the scale's ceiling
HIGH_THRESHOLD = 60  # points: at or above, the deal is high risk (alerted on its own)
MEDIUM_THRESHOLD = 40  # points: at or above (and below HIGH_THRESHOLD), medium risk
LONG_INACTIVE_DAYS = 14  # days without activity for the heaviest inactivity rule
SHORT_INACTIVE_DAYS = 7  # days without activity for the lighter inactivity rule
FEW_EMAILS = 3  # emails in 30 days: fewer than this counts as thin engagement
CLOSING_SOON_DAYS = 7  # days ahead in which a close date counts as imminent
BIG_DEAL_VALUE = Decimal(10_000)  # deal currency units: above this, single-threading weighs more
ALERT_RISE = 10  # points: a rise of MORE than this since the last scan alerts below HIGH_THRESHOLD
ALERT_QUIET = timedelta(days=7)  # at most one alert per deal in this window


class RiskLevel(StrEnum):
    """How worried the owner should be; stored as its string value."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class DealFacts:
    """What the rules need to know about one open deal (counts are over the last 30 days)."""

    deal_id: str
    stage: str
    value: Decimal | float
    close_date: date | None
    last_activity_at: datetime | None  # aware UTC; None when the deal never had activity
    created_at: datetime  # aware UTC
    emails_30d: int  # emails with the deal's contacts
    primary_contact_emails_30d: int | None  # None when the deal has no primary contact
    meetings_30d: int
    contacts_engaged_30d: int  # distinct contacts appearing in activities


@dataclass(frozen=True)
class Factor:
    """One rule that fired: its name, the points it adds and a sentence for the owner."""

    rule: str
    points: int
    detail: str


@dataclass(frozen=True)
class RiskScore:
    """A deal's score (0-100), its level and the factors that make it up."""

    score: int
    level: RiskLevel
    factors: tuple[Factor, ...]


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {moment.isoformat()}")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def risk_level(score: int) -> RiskLevel:
    """The level of a score: ≥ 60 high, 40-59 medium, else low."""
    if score >= HIGH_THRESHOLD:
        return RiskLevel.HIGH
    if score >= MEDIUM_THRESHOLD:
        return RiskLevel.MEDIUM
    return RiskLevel.LOW


def score_from_factors(factors: Iterable[Factor]) -> RiskScore:
    """Sum the factors' points, cap the sum to 0..100 and attach the level."""
    kept = tuple(factors)
    score = max(0, min(MAX_SCORE, sum(f.points for f in kept)))
    return RiskScore(score=score, level=risk_level(score), factors=kept)


def days_inactive(facts: DealFacts, now: datetime) -> int:
    """Whole days since the last activity (or creation when never active); 0 if in the future."""
    _require_aware("now", now)
    since = facts.last_activity_at if facts.last_activity_at is not None else facts.created_at
    _require_aware("last_activity_at" if facts.last_activity_at is not None else "created_at", since)
    return max(0, (now - since) // timedelta(days=1))


def _engagement(facts: DealFacts, inactive: int) -> Factor | None:
    if inactive >= LONG_INACTIVE_DAYS:
        return Factor("inactive_14d", 25, f"no activity for {inactive} days")
    if inactive >= SHORT_INACTIVE_DAYS:
        return Factor("inactive_7d", 15, f"no activity for {inactive} days")
    if facts.emails_30d <= 0:
        return Factor("no_emails_30d", 25, "no emails with the deal's contacts in 30 days")
    if facts.emails_30d < FEW_EMAILS:
        return Factor("few_emails_30d", 10, f"only {_plural(facts.emails_30d, 'email')} in 30 days")
    return None


def _primary_contact(facts: DealFacts) -> Factor | None:
    emails = facts.primary_contact_emails_30d
    if emails is None:
        return None
    if emails <= 0:
        return Factor("primary_contact_silent", 20, "primary contact silent for 30 days")
    if emails == 1:
        return Factor("primary_contact_one_email", 10, "only one email with the primary contact in 30 days")
    return None


def _close_date(facts: DealFacts, stage: str, today: date) -> Factor | None:
    close = facts.close_date
    if close is None:
        return None
    if close < today:
        overdue = _plural((today - close).days, "day")
        return Factor("close_date_passed", 15, f"close date {close.isoformat()} passed {overdue} ago")
    days_left = (close - today).days
    if days_left <= CLOSING_SOON_DAYS and stage not in LATE_STAGES:
        when = "today" if days_left == 0 else f"in {_plural(days_left, 'day')}"
        return Factor(
            "closing_soon_early_stage",
            10,
            f"closes {when} ({close.isoformat()}) while still in {stage.replace('_', ' ') or 'no stage'}",
        )
    return None


def _single_threaded(facts: DealFacts) -> Factor | None:
    if facts.contacts_engaged_30d > 1:
        return None
    big = Decimal(str(facts.value)) > BIG_DEAL_VALUE
    who = "no contact" if facts.contacts_engaged_30d <= 0 else "a single contact"
    size = "on a deal above 10,000" if big else "on this deal"
    return Factor("single_threaded", 15 if big else 10, f"single-threaded: {who} engaged in 30 days {size}")


def _no_meetings(facts: DealFacts, inactive: int) -> Factor | None:
    if facts.meetings_30d <= 0 and inactive >= LONG_INACTIVE_DAYS:
        return Factor("no_meetings_silent", 5, f"no meetings in 30 days and {inactive} days silent")
    return None


def risk_score(facts: DealFacts, now: datetime) -> RiskScore:
    """Score one deal by the risk rules (see the module docstring for their exact reading).

    ``now`` must be timezone-aware; a closed deal scores 0 with no factors.
    """
    _require_aware("now", now)
    stage = facts.stage.strip().lower()
    if stage in CLOSED_STAGES:
        return score_from_factors(())
    inactive = days_inactive(facts, now)
    today = now.astimezone(UTC).date()
    candidates = (
        _engagement(facts, inactive),
        _primary_contact(facts),
        _close_date(facts, stage, today),
        _single_threaded(facts),
        _no_meetings(facts, inactive),
    )
    return score_from_factors(f for f in candidates if f is not None)


def should_alert(
    score: int,
    previous_score: int | None,
    last_alerted_at: datetime | None,
    now: datetime,
) -> bool:
    """Whether to alert the owner about a deal after this scan.

    Yes when the score is ≥ 60 or rose by more than 10 since the previous scan (no previous scan:
    only ≥ 60 counts), unless the deal was alerted less than 7 days before ``now`` (an alert exactly
    7 days ago allows a new one).
    """
    _require_aware("now", now)
    risky = score >= HIGH_THRESHOLD or (previous_score is not None and score - previous_score > ALERT_RISE)
    if not risky:
        return False
    if last_alerted_at is None:
        return True
    _require_aware("last_alerted_at", last_alerted_at)
    return now - last_alerted_at >= ALERT_QUIET
