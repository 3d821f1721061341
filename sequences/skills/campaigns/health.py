"""The health of one outbound campaign: its rates, its status, why, and what to try.

Pure decisions (no I/O): the campaign_daily_check steps pass the Instantly analytics in. The status
rules are those of docs/sequences.md#campaign_daily_check.

Rates are percentages rounded to one decimal (half up), each clamped to 0..100:

* open and reply rates are over the emails that reached an inbox: ``delivered`` when the API
  reports it, else ``sent - bounced``;
* the bounce rate is over ``sent``.

The rules compare those rounded rates, so a status never contradicts the number shown (19.96 %
shows as 20.0 % and is not "below 20 %"). Every comparison is strict:

==========================  ================  =======================================================
rule                        status            when
==========================  ================  =======================================================
``open_low``                underperforming   open rate < 20 %
``reply_low``               underperforming   reply rate < 2 % **and** open rate ≤ 40 %
``bounce_high``             underperforming   bounce rate > 5 %
``bounce_elevated``         warning           bounce rate > 2 % (and ≤ 5 %, else ``bounce_high``)
``copy_not_converting``     warning           open rate > 40 % **and** reply rate < 2 %
==========================  ================  =======================================================

Reading of the rules' overlap: read literally, "reply < 2 %" makes every campaign with "open > 40 %
with reply < 2 %" underperforming, and that warning rule could never fire. We read the warning as
the more specific rule: many opens and few replies means the subject lines and the deliverability
work and the copy or the call to action does not, a fixable problem rather than a failing campaign.
So ``reply_low`` applies only when the open rate is at most 40 %. Every rule that fires is reported
(reasons in rule order, underperforming ones first); the status is the worst tier that fired.

Edge cases: nothing sent → all rates 0 and status ``no_data``. Emails sent but none delivered
because all bounced → the bounce rules decide (100 % bounce is underperforming). Emails sent, none
delivered and none bounced (the API has not counted deliveries yet) → ``no_data``; the open and
reply rules are never evaluated on an empty denominator. Negative counts count as 0.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

OPEN_LOW_PCT = 20.0  # %: open rate below this is underperforming
REPLY_LOW_PCT = 2.0  # %: reply rate below this is underperforming, or a warning with high opens
BOUNCE_HIGH_PCT = 5.0  # %: bounce rate above this is underperforming; it harms the sending domain
BOUNCE_ELEVATED_PCT = 2.0  # %: bounce rate above this is a warning
OPEN_HIGH_PCT = 40.0  # %: open rate above this with low replies points at the copy, a warning
STATUS_RANK = {"underperforming": 0, "warning": 1, "healthy": 2, "no_data": 3}  # report order, worst first


class CampaignStatus(StrEnum):
    """A campaign's health; stored and shown as its string value."""

    HEALTHY = "healthy"
    WARNING = "warning"
    UNDERPERFORMING = "underperforming"
    NO_DATA = "no_data"


class CampaignCounts(BaseModel):
    """One campaign's cumulative counts from the analytics API (``delivered`` when it reports it)."""

    model_config = ConfigDict(frozen=True)

    campaign_id: str
    name: str
    sent: int
    delivered: int | None = None
    opened: int = 0
    replied: int = 0
    bounced: int = 0
    unsubscribed: int = 0


class CampaignHealth(BaseModel):
    """Rates (percentages, one decimal), the status, why, and what to try."""

    model_config = ConfigDict(frozen=True)

    open_rate: float
    reply_rate: float
    bounce_rate: float
    status: CampaignStatus
    reasons: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)


def clamped_count(value: int | None) -> int:
    """A count from the API as a non-negative int (None and negatives count as 0)."""
    return max(0, int(value or 0))


def percent(part: int, whole: int) -> float:
    """``part / whole`` as a percentage, one decimal rounded half up, clamped to 0..100; 0 when empty."""
    if whole <= 0:
        return 0.0
    share = Decimal(min(max(part, 0), whole)) * 100 / Decimal(whole)
    return float(share.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def delivered_base(c: CampaignCounts) -> int:
    """The open/reply denominator: ``delivered`` when reported, else ``sent - bounced`` (never < 0)."""
    if c.delivered is not None:
        return clamped_count(c.delivered)
    return max(0, clamped_count(c.sent) - clamped_count(c.bounced))


_SUGGESTIONS: dict[str, tuple[str, ...]] = {
    "open_low": (
        "Test new subject lines: short, specific, no spam-trigger words; A/B test two at a time",
        "Check deliverability: warm up the sending domains/mailboxes and verify SPF, DKIM and DMARC",
    ),
    "reply_low": (
        "Rewrite the copy around one pain point and a single low-friction call to action (a yes/no question)",
        "Personalise the first line and tighten the targeting to the segment that replies",
    ),
    "bounce_high": (
        "Pause the campaign and verify the remaining leads before sending more",
        "Clean the list: remove invalid, catch-all and role addresses and review the lead source",
    ),
    "bounce_elevated": ("Run the remaining leads through email verification and drop risky addresses",),
    "copy_not_converting": (
        "Subject lines work but the body does not convert: A/B test the copy and the call to action",
        "Add a follow-up step with a different angle (a case study or a short question)",
    ),
    "nothing_delivered": ("Check the sending accounts and the campaign schedule: nothing was delivered",),
}


def campaign_health(c: CampaignCounts) -> CampaignHealth:
    """Rates, status, reasons and suggestions of one campaign (rules in the module docstring)."""
    sent, bounced = clamped_count(c.sent), clamped_count(c.bounced)
    if sent <= 0:
        return CampaignHealth(
            open_rate=0.0,
            reply_rate=0.0,
            bounce_rate=0.0,
            status=CampaignStatus.NO_DATA,
            reasons=["no emails sent yet"],
            suggestions=["Check the campaign is active, has leads and a sending schedule"],
        )
    base = delivered_base(c)
    open_rate = percent(clamped_count(c.opened), base)
    reply_rate = percent(clamped_count(c.replied), base)
    bounce_rate = percent(bounced, sent)

    fired: list[tuple[str, CampaignStatus, str]] = []
    if base > 0:
        if open_rate < OPEN_LOW_PCT:
            fired.append(("open_low", CampaignStatus.UNDERPERFORMING, f"open rate {open_rate:.1f} % is below 20 %"))
        if reply_rate < REPLY_LOW_PCT and open_rate <= OPEN_HIGH_PCT:
            fired.append(("reply_low", CampaignStatus.UNDERPERFORMING, f"reply rate {reply_rate:.1f} % is below 2 %"))
    if bounce_rate > BOUNCE_HIGH_PCT:
        fired.append(("bounce_high", CampaignStatus.UNDERPERFORMING, f"bounce rate {bounce_rate:.1f} % is above 5 %"))
    elif bounce_rate > BOUNCE_ELEVATED_PCT:
        fired.append(("bounce_elevated", CampaignStatus.WARNING, f"bounce rate {bounce_rate:.1f} % is above 2 %"))
    if base > 0 and open_rate > OPEN_HIGH_PCT and reply_rate < REPLY_LOW_PCT:
        fired.append(
            (
                "copy_not_converting",
                CampaignStatus.WARNING,
                f"open rate {open_rate:.1f} % is above 40 % but reply rate {reply_rate:.1f} % is below 2 %",
            )
        )

    if base <= 0 and not fired:
        return CampaignHealth(
            open_rate=open_rate,
            reply_rate=reply_rate,
            bounce_rate=bounce_rate,
            status=CampaignStatus.NO_DATA,
            reasons=[f"{sent:,} sent but none delivered yet"],
            suggestions=list(_SUGGESTIONS["nothing_delivered"]),
        )
    if base <= 0:
        nothing = f"none of the {sent:,} emails was delivered"
        fired.insert(0, ("nothing_delivered", CampaignStatus.UNDERPERFORMING, nothing))

    fired.sort(key=lambda f: STATUS_RANK[f[1]])  # stable: rule order within a tier
    status = fired[0][1] if fired else CampaignStatus.HEALTHY
    suggestions: list[str] = []
    for rule, _, _ in fired:
        suggestions.extend(s for s in _SUGGESTIONS[rule] if s not in suggestions)
    return CampaignHealth(
        open_rate=open_rate,
        reply_rate=reply_rate,
        bounce_rate=bounce_rate,
        status=status,
        reasons=[reason for _, _, reason in fired],
        suggestions=suggestions,
    )
