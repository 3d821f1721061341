"""The follow-up email to the prospect after a call: a recap of what they said, both sides' next
steps and the rep's sign-off. Pure functions (no I/O).
"""

from __future__ import annotations

import re

from sequences.skills.email.drafts import EmailDraft
from sequences.skills.meetings.action_items import ActionItem, Owner
from sequences.skills.meetings.due_dates import day_text, names_a_date
from sequences.skills.meetings.intents import Intents
from sequences.skills.meetings.perspective import QUOTE_TO_PROSPECT, for_prospect
from sequences.skills.meetings.summary import signal_points
from sequences.skills.meetings.text import first_name, is_german
from sequences.skills.meetings.transcript import UNKNOWN_SPEAKER

_FOLLOW_UP_PREFIX_RE = re.compile(r"^\s*(?:(?:follow[- ]?up|re|fwd?)\s*:\s*)+", re.IGNORECASE)


def _item_line(item: ActionItem, with_owner: bool) -> str:
    """An item of the follow-up email, as the prospect reads it ("their CFO" → "your CFO")."""
    who = f"{first_name(item.who)}: " if with_owner and item.who != UNKNOWN_SPEAKER else ""
    due = f" (by {day_text(item.due)})" if item.due and not names_a_date(item.text) else ""
    text = for_prospect(item.text)
    return f"- {who}{text[:1].lower() + text[1:] if who and not is_german(text) else text}{due}"


def draft_followup_email(
    meeting_title: str | None,
    contact_name: str | None,
    rep_name: str | None,
    items: list[ActionItem],
    intents: Intents,
) -> EmailDraft:
    """The follow-up email to the primary external attendee: recap, both sides' next steps, rep's sign-off.

    Subject "Follow-up: <title>" (an existing "Follow-up:"/"Re:" prefix is not doubled). The recap is
    what the prospect said about budget, pricing, decision, timeline and competition, in the second
    person ("Budget: you set aside about eighty thousand for this in Q1."); the next steps are the
    tasks, the prospect's with who takes them ("- Lena: send the depot list and current volumes").
    """
    title = _FOLLOW_UP_PREFIX_RE.sub("", meeting_title or "").strip()
    subject = f"Follow-up: {title}" if title else "Follow-up: our conversation"
    greeting = f"Hi {first_name(contact_name) or 'there'},"
    opening = f'Thanks for your time today on "{title}".' if title else "Thanks for your time today."
    recap = signal_points(intents.buying_signals, QUOTE_TO_PROSPECT)
    parts = [greeting, f"{opening} Here is what I took away:" if recap else opening]
    if recap:
        parts.append("\n".join(f"- {line}" for line in recap))
    ours = [_item_line(i, with_owner=False) for i in items if i.owner is Owner.REP]
    theirs = [_item_line(i, with_owner=True) for i in items if i.owner is Owner.PROSPECT]
    if ours:
        parts.append("Next steps on our side:\n" + "\n".join(ours))
    if theirs:
        parts.append("Next steps on your side:\n" + "\n".join(theirs))
    if not ours and not theirs:
        parts.append("We didn't capture specific action items; reply with anything I missed.")
    if intents.schedule_meeting is not None:
        when = intents.schedule_meeting.when
        on = f" on {day_text(when)}" if when else ""
        parts.append(f"I'll send a calendar invite for our next conversation{on}.")
    signer = first_name(rep_name)
    parts.append(f"Best,\n{signer}" if signer else "Best regards")
    return EmailDraft(subject=subject, body="\n\n".join(parts))
