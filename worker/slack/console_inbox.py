"""The console inbox: the Slack messages of the embedded default, as a person reads them.

Without a Slack token (the embedded default, dry runs, the demo) a message stays in the outbox as
`console` and `proactive inbox` prints it. A decided approval shows the request as the rep saw it
(the draft email, the proposal, the offered times) followed by what replaced it: in Slack the
replacement overwrote the request, which is how a channel reads, but an inbox read later needs both.
An approved email whose job has completed reads "Sent" rather than the Undo offer it had while it
waited to go out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

import blocks
from worker.engine.approvals import request_content
from worker.models import User, approvals
from worker.slack.delivery import inbox

# How each outbox kind is named in an entry's heading.
KIND_NAMES = {
    "approval": "approval request",
    "approval_reminder": "reminder",
    "pre_meeting_briefing": "meeting brief",
    "morning_brief": "morning brief",
    "meeting_debrief": "meeting debrief",
    "campaign_report": "campaign report",
    "coaching_digest": "coaching digest",
    "deal_risk_alerts": "deal risk alert",
    "reconnect": "reconnect Google",
}


@dataclass(frozen=True)
class InboxEntry:
    """One message: to whom, what it is, when, its delivery status and its text."""

    to: str
    kind: str
    created_at: datetime
    status: str
    text: str


def kind_name(kind: str) -> str:
    """The heading word of an outbox kind ("meeting_debrief" -> "meeting debrief")."""
    return KIND_NAMES.get(kind) or kind.replace("_", " ")


def entries(conn: Connection, org_id: uuid.UUID | None = None, limit: int = 50) -> list[InboxEntry]:
    """The newest messages (all orgs when `org_id` is None), oldest first, rendered as text."""
    rows = inbox(conn, org_id, limit)
    people = select(User.id, User.name)
    names = dict(conn.execute(people if org_id is None else people.where(User.org_id == org_id)).all())
    replaced = [r.approval_id for r in rows if r.kind == "approval" and r.approval_id and r.revision]
    opened = {a.id: a for a in conn.execute(select(approvals).where(approvals.c.id.in_(replaced)))} if replaced else {}
    out = []
    for r in rows:
        message = {"text": r.text, "blocks": r.blocks}
        decided = opened.get(r.approval_id) if r.approval_id else None
        if decided is not None:
            text = blocks.render_decided(request_content(conn, decided), message)
            kind = "approval request, decided"
        else:
            text = blocks.render_text(message)
            kind = kind_name(r.kind)
        out.append(InboxEntry(names.get(r.user_id) or r.channel or "channel", kind, r.created_at, r.status, text))
    return out
