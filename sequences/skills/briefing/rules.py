"""Briefing rules: the pre-meeting briefing, the morning brief, and whether a DM may be sent now.

Pure decisions (no I/O): pre_meeting_90min loads the attendees, history, news and deal and calls
``briefing`` (the offline version of the *LLM* generate-briefing) and ``should_deliver_now``; the
morning-brief cron loads the rep's day and calls ``morning_brief`` (docs/sequences.md, README.md#crons).

Times: instants are aware datetimes, shown on the rep's clock (``tz``: a ``ZoneInfo`` or an IANA
name; an unknown or missing zone reads as UTC). A naive datetime is read as UTC, as the Slack text
helpers do, so a briefing never fails on a careless timestamp. ``briefing`` never raises on missing
data: every input may be empty or None and the result says what is unknown.

Quiet hours are wall-clock times ``{"start": "20:00", "end": "07:00"}`` in the rep's zone: the
window is ``[start, end)`` and wraps midnight when start > end; start == end, a missing or
unreadable setting means no quiet hours. A brief for a meeting starting within 2 hours is always
delivered (a brief is always wanted then).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from sequences.skills.deals.risk_rules import MEDIUM_THRESHOLD, risk_level

HISTORY_MAX = 8  # lines of history in a briefing, newest first
NEWS_MAX = 5  # news items in a briefing
TALKING_POINTS_MAX = 6  # bullets: what a rep can read in the minute before a call
QUESTIONS_MAX = 5  # bullets
LINE_MAX = 100  # characters of one history subject / task / news line
SILENCE_DAYS = 14  # days without contact before the meeting that call for a recap
CLOSING_SOON_DAYS = 14  # days to the close date in which a briefing brings it up
OPEN_TASKS_SHOWN = 2  # open tasks turned into talking points
MORNING_LIST_CAP = 10  # items per morning-brief list; the rest is a "+N more" count
MEETING_OVERRIDE = timedelta(hours=2)  # a meeting this close gets its brief even in quiet hours
QUIET_SCAN_LIMIT = timedelta(days=3)  # how far ahead the end of quiet hours is searched (a window is < 24 h)

_T = TypeVar("_T")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CLOSED = frozenset({"closed_won", "closed_lost"})
_SENIOR = re.compile(
    r"\b(ceo|cfo|coo|cto|cro|cmo|cio|ciso|chief|vp|svp|evp|vice president|head of|director|founder|co-founder"
    r"|owner|president|partner|managing director|geschaftsfuhrer|directeur|director general)\b",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"\s*(\d{1,2}):(\d{2})(?::\d{2})?\s*")

# Stage → (talking point, questions). Unknown stages read as discovery.
_STAGE_PLAYBOOK: dict[str, tuple[str, tuple[str, ...]]] = {
    "prospecting": (
        "Early stage: earn the right to a discovery call; confirm there is a real problem worth solving",
        ("What prompted you to take this meeting now?", "How are you handling this today?"),
    ),
    "qualification": (
        "Qualify: confirm the pain, the budget, who decides and the timeline",
        ("Who else is involved in evaluating this, and who signs off?", "Is there a budget set aside for this?"),
    ),
    "discovery": (
        "Discovery: dig into the pain, its cost, and how they will measure success",
        ("What happens if this isn't solved this quarter?", "How will you measure success?"),
    ),
    "demo": (
        "Demo: show only the workflows tied to the pains found in discovery",
        ("Which of these workflows matters most to your team?", "What would you need to see to move forward?"),
    ),
    "proposal": (
        "Proposal: walk through scope and pricing and surface objections early",
        ("Does the proposal match what you need?", "What does the sign-off process look like on your side?"),
    ),
    "negotiation": (
        "Negotiation: resolve the open points and agree on a signature date",
        ("What stands between us and a signature?", "Does legal or procurement need anything from us?"),
    ),
    "closed_won": (
        "Customer: focus on onboarding, adoption and expansion",
        ("How is the rollout going?", "Which other teams could benefit?"),
    ),
    "closed_lost": (
        "Lost deal: understand what changed and leave the door open",
        ("What would have to change for this to be a priority again?",),
    ),
}
_NO_DEAL = (
    "No open deal: qualify the opportunity before pitching",
    ("What are your priorities this quarter?", "How are you handling this today?"),
)


class AttendeeInfo(BaseModel):
    """One attendee as enrich-attendees knows them; ``internal`` for the rep's colleagues."""

    model_config = ConfigDict(frozen=True)

    email: str | None = None
    name: str | None = None
    title: str | None = None
    company: str | None = None
    internal: bool = False


class CompanyInfo(BaseModel):
    """The attendees' company, as far as the CRM knows it."""

    model_config = ConfigDict(frozen=True)

    name: str
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    notes: str | None = None


class HistoryItem(BaseModel):
    """One earlier touch with the account: an email, meeting, call, note…"""

    model_config = ConfigDict(frozen=True)

    kind: str = "activity"
    occurred_at: datetime | None = None
    subject: str | None = None


class DealInfo(BaseModel):
    """The open deal with the account, with its latest risk score and the factors behind it."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    stage: str | None = None
    value: float | None = None
    currency: str | None = None
    risk_score: int | None = None
    risk_level: str | None = None
    close_date: date | None = None
    risk_factors: list[str] = Field(default_factory=list)  # the risk factors' sentences, heaviest first


class Briefing(BaseModel):
    """What the rep reads 90 minutes before a meeting."""

    model_config = ConfigDict(frozen=True)

    meeting_title: str
    start: datetime | None  # aware UTC
    start_local: str  # "Tue 2 Dec, 10:30 EST"
    attendees: list[AttendeeInfo]
    company: CompanyInfo | None
    history: list[str]  # "3 Nov · email · Re: pricing", newest first
    news: list[str]
    deal: DealInfo | None
    talking_points: list[str]
    questions: list[str]


class BriefMeeting(BaseModel):
    """A meeting on the rep's calendar today."""

    model_config = ConfigDict(frozen=True)

    title: str | None = None
    start: datetime
    attendees_count: int = 0


class BriefTask(BaseModel):
    """A task due: ``due`` is an instant, a whole day, or unknown."""

    model_config = ConfigDict(frozen=True)

    title: str | None = None
    due: datetime | date | None = None


class BriefRisk(BaseModel):
    """A deal at risk; the level is derived from the score when not given."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    score: int
    level: str | None = None


class BriefApproval(BaseModel):
    """A pending approval waiting for the rep."""

    model_config = ConfigDict(frozen=True)

    kind: str
    title: str | None = None
    created_at: datetime


class MeetingLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    start: datetime  # aware UTC
    start_local: str  # "10:30" today, else "Wed 3 Dec, 10:30"
    attendees_count: int


class TaskLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    due_local: str  # "today 17:00", "today", "Wed 3 Dec", "overdue since 28 Nov", "no due date"
    overdue: bool


class RiskLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    score: int
    level: str


class ApprovalLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str
    title: str
    age_h: int  # whole hours waiting


class MorningBrief(BaseModel):
    """The rep's morning DM: each list sorted and capped at 10, with the number left out."""

    model_config = ConfigDict(frozen=True)

    rep_name: str
    day: date  # the rep's local date
    date_local: str  # "Tue 2 Dec 2026"
    meetings: list[MeetingLine]
    meetings_more: int = 0
    tasks_due: list[TaskLine]
    tasks_due_more: int = 0
    deals_at_risk: list[RiskLine]
    deals_at_risk_more: int = 0
    approvals_waiting: list[ApprovalLine]
    approvals_waiting_more: int = 0
    empty: bool


# --------------------------------------------------------------------------------------------------
# Helpers


def zone(tz: ZoneInfo | str | None) -> ZoneInfo:
    """A ``ZoneInfo`` from a zone or its IANA name; None, "" or an unknown name give UTC."""
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz.strip()) if isinstance(tz, str) and tz.strip() else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _utc(moment: datetime) -> datetime:
    """Aware UTC; a naive datetime is read as UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _day_month(day: date, with_year: bool = False) -> str:
    text = f"{day.day} {_MONTHS[day.month - 1]}"
    return f"{text} {day.year}" if with_year else text


def _weekday_day(day: date) -> str:
    return f"{_DAYS[day.weekday()]} {_day_month(day)}"


def local_label(moment: datetime, tz: ZoneInfo | str | None) -> str:
    """``Tue 2 Dec, 10:30 EST`` on the clock of ``tz``."""
    local = _utc(moment).astimezone(zone(tz))
    return f"{_weekday_day(local.date())}, {local:%H:%M} {local.tzname() or ''}".rstrip()


def _line(text: str | None, limit: int = LINE_MAX) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "\u2026"


def _unique(items: Iterable[str], limit: int | None = None) -> list[str]:
    """Non-empty items, first spelling of each kept (case-insensitive), at most ``limit``."""
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        key = item.casefold()
        if item and key not in seen:
            seen.add(key)
            out.append(item)
    return out[:limit]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# --------------------------------------------------------------------------------------------------
# Pre-meeting briefing


def _history_lines(items: Sequence[HistoryItem], start: datetime | None, tz: ZoneInfo) -> list[str]:
    """Newest first, at most 8; touches at or after the meeting start (the meeting itself) left out."""
    dated = [(_utc(i.occurred_at), i) for i in items if i.occurred_at is not None]
    if start is not None:
        dated = [(at, i) for at, i in dated if at < start]
    dated.sort(key=lambda pair: pair[0], reverse=True)
    undated = [i for i in items if i.occurred_at is None]
    reference = start or (dated[0][0] if dated else None)
    year = reference.astimezone(tz).year if reference is not None else None
    lines: list[str] = []
    for at, item in dated:
        local_day = at.astimezone(tz).date()
        when = _day_month(local_day, with_year=local_day.year != year)
        lines.append(f"{when} · {_kind(item.kind)} · {_line(item.subject) or '(no subject)'}")
    lines += [f"undated · {_kind(i.kind)} · {_line(i.subject) or '(no subject)'}" for i in undated]
    return lines[:HISTORY_MAX]


def _kind(kind: str | None) -> str:
    return (kind or "activity").strip().replace("_", " ").lower() or "activity"


def _stage(deal: DealInfo | None) -> str | None:
    if deal is None or not deal.stage:
        return None
    return deal.stage.strip().lower().replace(" ", "_").replace("-", "_") or None


def _deal_level(deal: DealInfo) -> str | None:
    if deal.risk_level:
        return deal.risk_level.strip().lower()
    return risk_level(deal.risk_score).value if deal.risk_score is not None else None


def _last_touch(items: Sequence[HistoryItem], start: datetime) -> datetime | None:
    times = [_utc(i.occurred_at) for i in items if i.occurred_at is not None and _utc(i.occurred_at) < start]
    return max(times, default=None)


def briefing(
    meeting_title: str | None,
    start: datetime | None,
    tz: ZoneInfo | str | None,
    attendees: Sequence[AttendeeInfo] | None = None,
    company: CompanyInfo | str | None = None,
    history: Sequence[HistoryItem] | None = None,
    news: Sequence[str] | None = None,
    deal: DealInfo | None = None,
    open_tasks: Sequence[str] | None = None,
) -> Briefing:
    """The pre-meeting briefing; never raises on missing data.

    Talking points (at most 6, in this order): the deal stage's focus (no deal: qualify first; an
    unknown stage reads as discovery); the risk when the deal is at least medium risk, with its two
    heaviest factors; a close date that has passed or falls within 14 days of the meeting (open
    deals only); a recap when the last touch is 14+ days before the meeting, or an opener when
    there is no history; the senior attendees (CxO, VP, head of, director, founder…); the first two
    open tasks; the first news item.
    Questions (at most 5): whether the close date still holds; what changed after a silence; who
    else decides when at most one external person attends or the deal is single-threaded; the
    attendee's role when the company is unknown; then the stage's questions; and always, last, the
    next step.
    Attendees are listed external first, in the given order otherwise.
    """
    tzinfo = zone(tz)
    start_utc = _utc(start) if isinstance(start, datetime) else None
    people = list(attendees or [])
    people.sort(key=lambda a: a.internal)  # stable: external first
    firm = CompanyInfo(name=company.strip()) if isinstance(company, str) and company.strip() else company
    firm = firm if isinstance(firm, CompanyInfo) else None
    items = list(history or [])
    news_lines = _unique((_line(n, 200) for n in (news or []) if isinstance(n, str)), NEWS_MAX)
    tasks = _unique(_line(t) for t in (open_tasks or []) if isinstance(t, str))
    stage = _stage(deal)
    externals = [a for a in people if not a.internal]

    points: list[str] = []
    questions: list[str] = []
    # an unknown or missing stage reads as discovery
    discovery = _STAGE_PLAYBOOK["discovery"]
    playbook = _NO_DEAL if deal is None else _STAGE_PLAYBOOK.get(stage or "discovery", discovery)
    points.append(playbook[0])
    stage_questions = list(playbook[1])

    if deal is not None:
        level = _deal_level(deal)
        score = deal.risk_score
        if (score is not None and score >= MEDIUM_THRESHOLD) or level in {"high", "medium"}:
            factors = [f for f in deal.risk_factors if f][:2]
            shown = f"{score}/100 " if score is not None else ""
            detail = f": address {' and '.join(factors)}" if factors else ""
            points.append(f"Deal risk {shown}({level or 'unscored'}){detail}")
        if deal.close_date is not None and stage not in _CLOSED and start_utc is not None:
            meeting_day = start_utc.astimezone(tzinfo).date()
            days = (deal.close_date - meeting_day).days
            when = _day_month(deal.close_date, with_year=deal.close_date.year != meeting_day.year)
            if days < 0:
                points.append(f"Close date {when} has passed: agree a new, realistic date")
                questions.append(f"The close date was {when}: what is the realistic timeline now?")
            elif days <= CLOSING_SOON_DAYS:
                points.append(f"Close date {when} is {_plural(days, 'day')} away: confirm the path to signature")
                questions.append(f"Is {when} still realistic, and what could move it?")

    if start_utc is not None and items:
        last = _last_touch(items, start_utc)
        if last is not None:
            silent = (start_utc - last) // timedelta(days=1)
            if silent >= SILENCE_DAYS:
                points.append(f"Last contact was {silent} days ago: recap where you left off")
                questions.append("What has changed on your side since we last spoke?")
    if not items:
        points.append("No earlier contact on record: open with context and a clear agenda")

    senior = [a for a in externals if a.title and _SENIOR.search(a.title)]
    if senior:
        who = ", ".join(f"{a.name or a.email or 'someone'} ({_line(a.title, 40)})" for a in senior[:3])
        points.append(f"Senior attendee{'s' if len(senior) > 1 else ''}: {who}; lead with business outcomes")
    for task in tasks[:OPEN_TASKS_SHOWN]:
        points.append(f"Close the loop on: {task}")
    if len(tasks) > OPEN_TASKS_SHOWN:
        points.append(f"{_plural(len(tasks) - OPEN_TASKS_SHOWN, 'more open task')} on this account")
    if news_lines:
        points.append(f"Mention recent news: {news_lines[0]}")

    single = deal is not None and any("single-threaded" in f.lower() for f in deal.risk_factors)
    if len(externals) <= 1 or single:
        questions.append("Who else is involved in the decision, and should they join the next call?")
    if firm is None and not any(a.company for a in externals):
        questions.append("Can you tell me about your role and your team's priorities?")
    ordered_questions = [*questions, *stage_questions]  # this meeting's situation before the stage's generic ones
    closing = "What would be a good next step after today?"
    kept = _unique(ordered_questions, QUESTIONS_MAX - 1)
    return Briefing(
        meeting_title=_line(meeting_title, 200) or "Untitled meeting",
        start=start_utc,
        start_local=local_label(start_utc, tzinfo) if start_utc is not None else "time unknown",
        attendees=people,
        company=firm,
        history=_history_lines(items, start_utc, tzinfo),
        news=news_lines,
        deal=deal,
        talking_points=_unique(points, TALKING_POINTS_MAX),
        questions=[*kept, closing],
    )


# --------------------------------------------------------------------------------------------------
# Morning brief


def _capped(items: list[_T], limit: int = MORNING_LIST_CAP) -> tuple[list[_T], int]:
    return items[:limit], max(0, len(items) - limit)


def _due_key(task: BriefTask, tz: ZoneInfo) -> tuple[int, datetime]:
    """Sort key: timed tasks at their instant, whole-day tasks at the end of that local day, undated last."""
    due = task.due
    if isinstance(due, datetime):
        return 0, _utc(due)
    if isinstance(due, date):
        end_of_day = datetime.combine(due + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        return 0, end_of_day - timedelta(microseconds=1)
    return 1, datetime.max.replace(tzinfo=UTC)


def _task_line(task: BriefTask, now: datetime, tz: ZoneInfo) -> TaskLine:
    title = _line(task.title) or "Untitled task"
    today = now.astimezone(tz).date()
    due = task.due
    if isinstance(due, datetime):
        local = _utc(due).astimezone(tz)
        overdue = _utc(due) < now
        if overdue:
            since = f"{local:%H:%M}" if local.date() == today else _day_month(local.date(), local.year != today.year)
            return TaskLine(title=title, due_local=f"overdue since {since}", overdue=True)
        when = "today" if local.date() == today else _weekday_day(local.date())
        return TaskLine(title=title, due_local=f"{when} {local:%H:%M}", overdue=False)
    if isinstance(due, date):
        if due < today:
            since = _day_month(due, due.year != today.year)
            return TaskLine(title=title, due_local=f"overdue since {since}", overdue=True)
        return TaskLine(title=title, due_local="today" if due == today else _weekday_day(due), overdue=False)
    return TaskLine(title=title, due_local="no due date", overdue=False)


def morning_brief(
    rep_name: str,
    now: datetime,
    tz: ZoneInfo | str | None,
    meetings_today: Sequence[BriefMeeting],
    tasks_due: Sequence[BriefTask],
    deals_at_risk: Sequence[BriefRisk],
    approvals_waiting: Sequence[BriefApproval],
) -> MorningBrief:
    """The morning brief (README.md#crons) on the rep's clock.

    Meetings by start time, tasks by due time (a whole-day task at the end of its day, undated
    last), deals by score (highest first), approvals by age (oldest first); ties by title/name.
    Each list keeps 10 items and counts the rest in ``*_more``. The lists are taken as given: a
    meeting on another day shows its date, a task due before ``now`` is marked overdue.
    """
    tzinfo = zone(tz)
    now_utc = _utc(now)
    today = now_utc.astimezone(tzinfo).date()

    meetings = sorted(meetings_today, key=lambda m: (_utc(m.start), (m.title or "").casefold()))
    meeting_lines = []
    for m in meetings:
        local = _utc(m.start).astimezone(tzinfo)
        shown = f"{local:%H:%M}" if local.date() == today else f"{_weekday_day(local.date())}, {local:%H:%M}"
        meeting_lines.append(
            MeetingLine(
                title=_line(m.title, 200) or "Untitled meeting",
                start=_utc(m.start),
                start_local=shown,
                attendees_count=max(0, m.attendees_count),
            )
        )
    tasks = sorted(tasks_due, key=lambda t: (*_due_key(t, tzinfo), (t.title or "").casefold()))
    risks = sorted(deals_at_risk, key=lambda r: (-r.score, (r.name or "").casefold()))
    approvals = sorted(approvals_waiting, key=lambda a: (_utc(a.created_at), (a.title or "").casefold()))

    shown_meetings, meetings_more = _capped(meeting_lines)
    shown_tasks, tasks_more = _capped([_task_line(t, now_utc, tzinfo) for t in tasks])
    shown_risks, risks_more = _capped(
        [
            RiskLine(
                name=_line(r.name, 200) or "Unnamed deal",
                score=r.score,
                level=(r.level or "").strip().lower() or risk_level(r.score).value,
            )
            for r in risks
        ]
    )
    shown_approvals, approvals_more = _capped(
        [
            ApprovalLine(
                kind=a.kind,
                title=_line(a.title) or a.kind.replace("_", " "),
                age_h=max(0, (now_utc - _utc(a.created_at)) // timedelta(hours=1)),
            )
            for a in approvals
        ]
    )
    return MorningBrief(
        rep_name=rep_name,
        day=today,
        date_local=f"{_weekday_day(today)} {today.year}",
        meetings=shown_meetings,
        meetings_more=meetings_more,
        tasks_due=shown_tasks,
        tasks_due_more=tasks_more,
        deals_at_risk=shown_risks,
        deals_at_risk_more=risks_more,
        approvals_waiting=shown_approvals,
        approvals_waiting_more=approvals_more,
        empty=not (meeting_lines or tasks or risks or approvals),
    )


# --------------------------------------------------------------------------------------------------
# Quiet hours


def _clock(value: object) -> time | None:
    """Read "07:00", "7:00", "07:00:00" or a ``time`` as a wall-clock minute; "24:00" is midnight; else None."""
    if isinstance(value, time):
        return time(value.hour, value.minute)
    match = _CLOCK.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if (hour, minute) == (24, 0):
        return time(0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def quiet_window(quiet_hours: Mapping[str, object] | None) -> tuple[time, time] | None:
    """``(start, end)`` of the quiet hours, or None when unset, unreadable or empty (start == end)."""
    if not isinstance(quiet_hours, Mapping):
        return None
    start, end = _clock(quiet_hours.get("start")), _clock(quiet_hours.get("end"))
    if start is None or end is None or start == end:
        return None
    return start, end


def in_quiet_hours(moment: datetime, tz: ZoneInfo | str | None, quiet_hours: Mapping[str, object] | None) -> bool:
    """Whether the rep's wall clock at ``moment`` is inside ``[start, end)`` (wrapping midnight if start > end)."""
    window = quiet_window(quiet_hours)
    return window is not None and _in_window(_utc(moment).astimezone(zone(tz)).time(), window)


def _in_window(local: time, window: tuple[time, time]) -> bool:
    start, end = window
    if start < end:
        return start <= local < end
    return local >= start or local < end


def _quiet_until(now: datetime, tz: ZoneInfo, window: tuple[time, time]) -> datetime:
    """The first instant after ``now`` outside quiet hours.

    Searched minute by minute in UTC: the window's ends are whole minutes and every current zone
    offset is a whole number of minutes, so the answer is a minute boundary. Searching (rather than
    building "end time tomorrow") is what keeps DST exact: an end time skipped by the clock, or a
    repeated hour that takes the clock back out of the window, both come out right.
    """
    moment = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = now + QUIET_SCAN_LIMIT
    while moment <= limit:
        if not _in_window(moment.astimezone(tz).time(), window):
            return moment
        moment += timedelta(minutes=1)
    return limit  # unreachable for a window shorter than a day; a bound, not a loop forever


def should_deliver_now(
    now: datetime,
    tz: ZoneInfo | str | None,
    quiet_hours: Mapping[str, object] | None,
    meeting_start: datetime | None = None,
) -> tuple[bool, datetime | None]:
    """Whether to DM now; if not, the earliest instant (aware UTC) at which it may be sent.

    Always yes when the meeting starts within 2 hours of ``now`` (the boundary included; a meeting
    already under way too). Otherwise yes outside quiet hours; inside them, the answer is the end
    of the quiet hours, or the moment the meeting comes within 2 hours if that is sooner. At the
    returned instant this function says yes.
    """
    now_utc = _utc(now)
    tzinfo = zone(tz)
    meeting = _utc(meeting_start) if meeting_start is not None else None
    if meeting is not None and meeting - now_utc <= MEETING_OVERRIDE:
        return True, None
    window = quiet_window(quiet_hours)
    if window is None or not _in_window(now_utc.astimezone(tzinfo).time(), window):
        return True, None
    allowed = _quiet_until(now_utc, tzinfo, window)
    if meeting is not None:
        allowed = min(allowed, meeting - MEETING_OVERRIDE)
    return False, allowed
