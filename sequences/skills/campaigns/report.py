"""The daily campaign report: campaigns worst first with their health, the replies to answer first,
totals and a headline. Pure functions (no I/O): the campaign_daily_check steps pass the counts and
the new replies in and deliver what comes out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from sequences.skills.campaigns.health import (
    STATUS_RANK,
    CampaignCounts,
    CampaignHealth,
    CampaignStatus,
    campaign_health,
    clamped_count,
    delivered_base,
    percent,
)
from sequences.skills.campaigns.replies import ReplyClass, ReplyLabel, classify_reply, reply_text

SNIPPET_MAX = 200  # characters of a reply kept in the report
_REPLY_RANK = {"positive": 0, "other": 1, "negative": 2, "out_of_office": 3, "unsubscribe": 4}  # to answer first
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class ReplyIn(BaseModel):
    """A new reply to a campaign; ``classification`` when the LLM already gave one, else rules decide."""

    model_config = ConfigDict(frozen=True)

    reply_id: str
    campaign_id: str
    from_email: str
    from_name: str | None = None
    subject: str | None = None
    body: str | None = None
    received_at: datetime | None = None
    campaign_name: str | None = None  # when the caller knows it better than the campaign list
    classification: ReplyClass | None = None


class CampaignLine(BaseModel):
    """One campaign in the report: its counts, its health, and today's replies by label.

    The health's rates, status, reasons and suggestions are repeated flat (computed fields) so that
    ``model_dump()`` is what the Slack report builder reads.
    """

    model_config = ConfigDict(frozen=True)

    campaign_id: str
    name: str
    sent: int
    delivered: int  # the open/reply denominator used (reported, or sent - bounced)
    opened: int
    replied: int
    bounced: int
    unsubscribed: int
    health: CampaignHealth
    replies_by_label: dict[str, int] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def open_rate(self) -> float:
        return self.health.open_rate

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reply_rate(self) -> float:
        return self.health.reply_rate

    @computed_field  # type: ignore[prop-decorator]
    @property
    def bounce_rate(self) -> float:
        return self.health.bounce_rate

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> CampaignStatus:
        return self.health.status

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reasons(self) -> list[str]:
        return list(self.health.reasons)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def suggestions(self) -> list[str]:
        return list(self.health.suggestions)


class ReplyLine(BaseModel):
    """One reply in the report: who, which campaign, a one-paragraph snippet and its class."""

    model_config = ConfigDict(frozen=True)

    reply_id: str
    campaign_id: str
    campaign_name: str
    from_email: str
    from_name: str | None
    snippet: str = Field(max_length=SNIPPET_MAX)
    classification: ReplyLabel
    confidence: float
    signals: list[str] = Field(default_factory=list)
    received_at: datetime | None = None


class CampaignTotals(BaseModel):
    """Sums over the report's campaigns, the pooled rates, and counts by status and reply label."""

    model_config = ConfigDict(frozen=True)

    campaigns: int
    sent: int
    delivered: int
    opened: int
    replied: int
    bounced: int
    unsubscribed: int
    open_rate: float
    reply_rate: float
    bounce_rate: float
    by_status: dict[str, int]
    replies: int
    replies_by_label: dict[str, int]


class CampaignReport(BaseModel):
    """The daily campaign report: campaigns worst first, replies to answer first, totals, headline."""

    model_config = ConfigDict(frozen=True)

    date: date
    campaigns: list[CampaignLine]
    replies: list[ReplyLine]
    totals: CampaignTotals
    headline: str


def snippet(text: str | None, limit: int = SNIPPET_MAX) -> str:
    """One paragraph of at most ``limit`` characters, cut at a word with "…" when longer."""
    flat = " ".join((text or "").split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 3 // 4:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "\u2026"


def _labels(replies: Iterable[ReplyLine], campaign_id: str) -> dict[str, int]:
    return dict(Counter(r.classification.value for r in replies if r.campaign_id == campaign_id))


def _day_label(day: date) -> str:
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def _plural(count: int, noun: str, plural: str | None = None) -> str:
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def _headline(day: date, lines: Sequence[CampaignLine], replies: Sequence[ReplyLine]) -> str:
    when = _day_label(day)
    statuses = Counter(line.status.value for line in lines)
    positive = sum(1 for r in replies if r.classification is ReplyLabel.POSITIVE)
    reply_part = f"{_plural(len(replies), 'new reply', 'new replies')}" + (f" ({positive} positive)" if replies else "")
    if not lines:
        return f"{when}: no active campaigns · {reply_part}"
    attention = statuses["underperforming"] + statuses["warning"]
    if attention:
        detail = ", ".join(f"{statuses[s]} {s}" for s in ("underperforming", "warning") if statuses[s])
        head = f"{attention} of {_plural(len(lines), 'campaign')} need attention ({detail})"
    elif statuses["healthy"] == len(lines):
        head = f"All {_plural(len(lines), 'campaign')} healthy"
    elif statuses["healthy"]:
        head = f"{statuses['healthy']} of {_plural(len(lines), 'campaign')} healthy, {statuses['no_data']} without data"
    else:
        head = f"{_plural(len(lines), 'campaign')} without data yet"
    return f"{when}: {head} · {reply_part}"


def build_report(date: date, campaigns: Sequence[CampaignCounts], replies: Sequence[ReplyIn]) -> CampaignReport:
    """The campaign_daily_check report for one org's local ``date``.

    Campaigns are ordered underperforming, warning, healthy, no_data, then by emails sent (most
    first) and name. Replies are ordered positive, other, negative, out_of_office, unsubscribe (the
    ones to answer first), then newest first; a reply without an LLM classification is classified
    by ``classify_reply``. A reply's campaign name comes from the reply, else the campaign list,
    else its campaign id. Totals pool the counts: their rates use the same denominators.
    """
    classified: list[ReplyLine] = []
    names = {c.campaign_id: c.name for c in campaigns}
    for reply in replies:
        verdict = reply.classification or classify_reply(reply.subject, reply.body)
        words = reply_text(reply.body) or reply.body or reply.subject
        classified.append(
            ReplyLine(
                reply_id=reply.reply_id,
                campaign_id=reply.campaign_id,
                campaign_name=reply.campaign_name or names.get(reply.campaign_id) or reply.campaign_id,
                from_email=reply.from_email,
                from_name=reply.from_name,
                snippet=snippet(words),
                classification=verdict.label,
                confidence=verdict.confidence,
                signals=list(verdict.signals),
                received_at=reply.received_at,
            )
        )
    newest_first = sorted(classified, key=lambda r: r.received_at.timestamp() if r.received_at else float("-inf"))
    newest_first.reverse()
    ordered_replies = sorted(newest_first, key=lambda r: _REPLY_RANK[r.classification.value])

    lines = [
        CampaignLine(
            campaign_id=c.campaign_id,
            name=c.name,
            sent=clamped_count(c.sent),
            delivered=delivered_base(c),
            opened=clamped_count(c.opened),
            replied=clamped_count(c.replied),
            bounced=clamped_count(c.bounced),
            unsubscribed=clamped_count(c.unsubscribed),
            health=campaign_health(c),
            replies_by_label=_labels(classified, c.campaign_id),
        )
        for c in campaigns
    ]
    lines.sort(key=lambda line: (STATUS_RANK[line.status.value], -line.sent, line.name.casefold()))

    sent = sum(line.sent for line in lines)
    delivered = sum(line.delivered for line in lines)
    opened = sum(line.opened for line in lines)
    replied = sum(line.replied for line in lines)
    bounced = sum(line.bounced for line in lines)
    totals = CampaignTotals(
        campaigns=len(lines),
        sent=sent,
        delivered=delivered,
        opened=opened,
        replied=replied,
        bounced=bounced,
        unsubscribed=sum(line.unsubscribed for line in lines),
        open_rate=percent(opened, delivered),
        reply_rate=percent(replied, delivered),
        bounce_rate=percent(bounced, sent),
        by_status={s.value: sum(1 for line in lines if line.status is s) for s in CampaignStatus},
        replies=len(classified),
        replies_by_label={label.value: sum(1 for r in classified if r.classification is label) for label in ReplyLabel},
    )
    return CampaignReport(
        date=date,
        campaigns=lines,
        replies=ordered_replies,
        totals=totals,
        headline=_headline(date, lines, ordered_replies),
    )
