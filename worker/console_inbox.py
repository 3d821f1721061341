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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

import blocks
from worker.approvals import request_content
from worker.delivery import inbox
from worker.models import User, approvals, jobs

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


def _offers_undo(message: Mapping[str, Any]) -> bool:
    """Whether a message still shows the Undo button of an email waiting to go out."""
    return any(
        e.get("action_id") == "email_undo"
        for b in message.get("blocks") or []
        if b.get("type") == "actions"
        for e in b.get("elements") or []
    )


def _sent(a: Any, approver: str | None, at: datetime | None) -> dict[str, Any]:
    """An approved email whose job completed went out: "Sent …" in place of the stale Undo offer."""
    preview, data = a.preview or {}, a.decision_data or {}
    subject = data.get("subject") or preview.get("subject") or ""
    return blocks.email_sent(preview.get("to") or "", subject, at or a.decided_at, approver, a.decision == "edit")


def kind_name(kind: str) -> str:
    """The heading word of an outbox kind ("meeting_debrief" -> "meeting debrief")."""
    return KIND_NAMES.get(kind) or kind.replace("_", " ")


def entries(conn: Connection, org_id: uuid.UUID | None = None, limit: int = 50) -> list[InboxEntry]:
    """The newest messages (all orgs when `org_id` is None), oldest first, rendered as text."""
    rows = inbox(conn, org_id, limit)
    names = dict(conn.execute(select(User.id, User.name)).all())
    replaced = [r.approval_id for r in rows if r.kind == "approval" and r.approval_id and r.revision]
    opened = {a.id: a for a in conn.execute(select(approvals).where(approvals.c.id.in_(replaced)))} if replaced else {}
    job_ids = {a.job_id for a in opened.values()}
    ended = {
        j.id: j
        for j in conn.execute(select(jobs.c.id, jobs.c.status, jobs.c.finished_at).where(jobs.c.id.in_(job_ids)))
    }
    out = []
    for r in rows:
        message = {"text": r.text, "blocks": r.blocks}
        decided = opened.get(r.approval_id) if r.approval_id else None
        if decided is not None:
            job = ended.get(decided.job_id)
            if job is not None and job.status == "completed" and _offers_undo(message):
                message = _sent(decided, names.get(decided.decided_by), job.finished_at)
            text = blocks.render_decided(request_content(conn, decided), message)
            kind = "approval request, decided"
        else:
            text = blocks.render_text(message)
            kind = kind_name(r.kind)
        out.append(InboxEntry(names.get(r.user_id) or r.channel or "channel", kind, r.created_at, r.status, text))
    return out
