"""Block Kit builders: pure functions from plain data to Slack message dicts.

Nothing here imports the rest of Proactive; every builder keeps its output within Slack's Block Kit
limits (``blocks.limits``) however long the data it is given.
"""

from blocks.approval import (
    DECISION_LABELS,
    DEFAULT_DECISIONS,
    approval_message,
    decided_message,
    decision_label,
    decision_line,
    expired_message,
    format_utc,
)
from blocks.briefs import morning_brief, pre_meeting_briefing
from blocks.calendar import calendar_slots
from blocks.campaigns import campaign_report
from blocks.coaching import coaching_digest
from blocks.deal_risk import deal_risk_alerts
from blocks.email import email_preview, email_sent, email_sent_with_undo, email_undone
from blocks.kinds import approval_blocks
from blocks.limits import (
    MAX_BLOCKS,
    actions,
    button,
    cap_blocks,
    context,
    divider,
    escape,
    header,
    option,
    radio_buttons,
    section,
    sections,
    truncate,
)
from blocks.meetings import meeting_debrief
from blocks.modals import EDIT_CALLBACK_ID, edit_modal, validate_edit
from blocks.proposals import proposal_review
from blocks.render import render_decided, render_text
from blocks.stale_deal import stale_deal_reengagement

__all__ = [
    "DECISION_LABELS",
    "DEFAULT_DECISIONS",
    "EDIT_CALLBACK_ID",
    "MAX_BLOCKS",
    "actions",
    "approval_blocks",
    "approval_message",
    "button",
    "calendar_slots",
    "campaign_report",
    "cap_blocks",
    "coaching_digest",
    "context",
    "deal_risk_alerts",
    "decided_message",
    "decision_label",
    "decision_line",
    "divider",
    "edit_modal",
    "email_preview",
    "email_sent",
    "email_sent_with_undo",
    "email_undone",
    "escape",
    "expired_message",
    "format_utc",
    "header",
    "meeting_debrief",
    "morning_brief",
    "option",
    "pre_meeting_briefing",
    "proposal_review",
    "radio_buttons",
    "render_decided",
    "render_text",
    "section",
    "sections",
    "stale_deal_reengagement",
    "truncate",
    "validate_edit",
]
