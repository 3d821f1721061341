"""The two briefs a rep reads before acting: the pre-meeting briefing and the morning brief.

The pre-meeting briefing (90 minutes before a meeting) says who is coming, what the company is,
the history and news, the open deal with its risk, and what to talk about and ask. The morning
brief lists the day's meetings, tasks due, deals at risk and approvals waiting; an empty list says
"Nothing today". Information only: no buttons.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blocks import coerce, mrkdwn
from blocks.limits import FALLBACK_TEXT_MAX, Block, context, divider, escape, header, section, truncate

NOTHING_TODAY = "Nothing today"
RISK_EMOJI = {"high": ":red_circle:", "medium": ":large_orange_circle:", "low": ":large_yellow_circle:"}


def _list(heading: str, lines: list[str], empty: str | None = None) -> list[Block]:
    """A section "heading + bullets"; no lines gives ``empty`` under the heading, or nothing."""
    if not lines and empty is None:
        return []
    return [section(f"{heading}\n{mrkdwn.bullets(lines, empty=empty or '')}")]


def _attendee(person: Mapping[str, Any]) -> str:
    who = mrkdwn.person(person.get("name"), person.get("email"))
    role = coerce.text(person.get("title"))
    company = coerce.text(person.get("company"))
    where = " at ".join(mrkdwn.name(part) for part in (role, company) if part)
    return f"*{who}*, {where}" if where else f"*{who}*"


def _risk(deal: Mapping[str, Any]) -> str:
    score = coerce.integer(deal.get("risk_score"))
    level = coerce.text(deal.get("risk_level")).lower()
    if score is None and not level:
        return "not scored"
    emoji = RISK_EMOJI.get(level, ":white_circle:")
    shown = "—" if score is None else f"{score}/100"
    return f"{emoji} {shown}{f' ({mrkdwn.name(level, limit=20)})' if level else ''}"


def _deal_blocks(deal: Mapping[str, Any]) -> list[Block]:
    if not deal:
        return [section(":briefcase: *Open deal*\nNo open deal with this company")]
    fields = [
        f"*Deal*\n{mrkdwn.name(deal.get('name'), default='Unnamed deal')}",
        f"*Stage*\n{mrkdwn.name(coerce.text(deal.get('stage')).replace('_', ' ').capitalize())}",
        f"*Value*\n{mrkdwn.money(deal.get('value'), deal.get('currency'))}",
        f"*Risk*\n{_risk(deal)}",
    ]
    return [section(":briefcase: *Open deal*", fields)]


def pre_meeting_briefing(data: Mapping[str, Any]) -> dict[str, Any]:
    """Build the pre-meeting briefing DM ``{"text", "blocks"}``.

    Keys: meeting_title, start (ISO), start_local (display text in the rep's tz), attendees [{name,
    email, title, company}], company {name, industry, employees, notes}, history [str], news [str],
    deal {name, stage, value, currency, risk_score, risk_level} or None, talking_points [str],
    questions [str].
    """
    title = coerce.text(data.get("meeting_title"), "Upcoming meeting")
    start = mrkdwn.name(data.get("start_local"), default="") or mrkdwn.when(data.get("start")) or "Time unknown"
    attendees = [_attendee(a) for a in coerce.mappings(data.get("attendees"))]
    company = coerce.mapping(data.get("company"))
    company_name = coerce.text(company.get("name"))
    facts = [
        f"*Industry*\n{mrkdwn.name(company.get('industry'))}",
        f"*Employees*\n{mrkdwn.count(company.get('employees'))}",
    ]
    notes = coerce.text(company.get("notes"))
    company_text = f":office: *{mrkdwn.name(company_name, default='Company')}*"
    if notes:
        company_text += f"\n{truncate(escape(notes), mrkdwn.LIST_LIMIT)}"

    def lines(key: str) -> list[str]:
        return [escape(s) for s in coerce.strings(data.get(key))]

    blocks = [
        header(f"Brief: {title}"),
        context([f":clock3: {start} · {mrkdwn.plural(len(attendees), 'attendee')}"]),
        *_list(":busts_in_silhouette: *Who is coming*", attendees, empty="No attendee details"),
        section(company_text, facts) if company else section(":office: *Company*\nNo company details"),
        *_deal_blocks(coerce.mapping(data.get("deal"))),
        *_list(":scroll: *History*", lines("history"), empty="No earlier contact recorded"),
        *_list(":newspaper: *Recent news*", lines("news")),
        divider(),
        *_list(":speech_balloon: *Talking points*", lines("talking_points"), empty="—"),
        *_list(":question: *Questions to ask*", lines("questions"), empty="—"),
    ]
    text = f"Brief for {mrkdwn.name(title)}{f' with {mrkdwn.name(company_name)}' if company_name else ''}"
    return {"text": truncate(text, FALLBACK_TEXT_MAX), "blocks": blocks}


def _meeting(meeting: Mapping[str, Any]) -> str:
    at = mrkdwn.name(meeting.get("start_local"), default="time unknown", limit=60)
    people = coerce.integer(meeting.get("attendees_count"))
    who = "" if people is None else f" ({mrkdwn.plural(people, 'attendee')})"
    return f"*{at}* {mrkdwn.name(meeting.get('title'), default='Untitled meeting')}{who}"


def _task(task: Mapping[str, Any]) -> str:
    due = coerce.text(task.get("due_local"))
    title = mrkdwn.name(task.get("title"), default="Untitled task", limit=mrkdwn.ITEM_MAX)
    return f"{title} · due {mrkdwn.name(due, limit=60)}" if due else title


def _deal_at_risk(deal: Mapping[str, Any]) -> str:
    score = coerce.integer(deal.get("score"))
    level = coerce.text(deal.get("level")).lower()
    emoji = RISK_EMOJI.get(level, ":white_circle:")
    facts = ", ".join(
        p for p in ("" if score is None else f"{score}/100", mrkdwn.name(level, default="", limit=20)) if p
    )
    name = mrkdwn.name(deal.get("name"), default="Unnamed deal")
    return f"{emoji} {name}{f' ({facts})' if facts else ''}"


def _approval(approval: Mapping[str, Any]) -> str:
    kind = mrkdwn.name(coerce.text(approval.get("kind")).replace("_", " "), default="approval", limit=40)
    hours = coerce.number(approval.get("age_h"))
    age = "" if hours is None else f" · waiting {hours:.0f} h"
    return f"{mrkdwn.name(approval.get('title'), default='Untitled', limit=mrkdwn.ITEM_MAX)} · {kind}{age}"


def morning_brief(data: Mapping[str, Any]) -> dict[str, Any]:
    """Build the morning brief DM ``{"text", "blocks"}``.

    Keys: rep_name, date_local (display text), meetings [{title, start_local, attendees_count}],
    tasks_due [{title, due_local}], deals_at_risk [{name, score, level}], approvals_waiting [{kind,
    title, age_h}]. An empty list shows "Nothing today".
    """
    rep = coerce.text(data.get("rep_name"))
    day = coerce.text(data.get("date_local"))
    meetings = [_meeting(m) for m in coerce.mappings(data.get("meetings"))]
    tasks = [_task(t) for t in coerce.mappings(data.get("tasks_due"))]
    deals = [_deal_at_risk(d) for d in coerce.mappings(data.get("deals_at_risk"))]
    waiting = [_approval(a) for a in coerce.mappings(data.get("approvals_waiting"))]
    greeting = f"Good morning, {rep}" if rep else "Good morning"
    counts = " · ".join(
        [
            mrkdwn.plural(len(meetings), "meeting"),
            f"{mrkdwn.plural(len(tasks), 'task')} due",
            f"{mrkdwn.plural(len(deals), 'deal')} at risk",
            f"{len(waiting):,} waiting",
        ]
    )
    blocks = [
        header(f":sunrise: {greeting}"),
        context([f"{mrkdwn.name(day)} · {counts}" if day else counts]),
        *_list(":calendar: *Meetings*", meetings, empty=NOTHING_TODAY),
        *_list(":white_check_mark: *Tasks due*", tasks, empty=NOTHING_TODAY),
        *_list(":warning: *Deals at risk*", deals, empty=NOTHING_TODAY),
        *_list(":inbox_tray: *Waiting for your approval*", waiting, empty=NOTHING_TODAY),
    ]
    text = f"{escape(greeting)}: {counts}"
    return {"text": truncate(text, FALLBACK_TEXT_MAX), "blocks": blocks}
