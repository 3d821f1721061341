"""Block Kit builders: pure functions from plain data to Slack message dicts.

Nothing here imports the rest of Proactive; every builder keeps its output within Slack's Block Kit
limits (``blocks.limits``) however long the data it is given.
"""

from blocks.approval import DEFAULT_DECISIONS, approval_message, decided_message, expired_message, format_utc
from blocks.deal_risk import deal_risk_alerts
from blocks.limits import (
    MAX_BLOCKS,
    actions,
    button,
    cap_blocks,
    context,
    divider,
    escape,
    header,
    section,
    truncate,
)
from blocks.render import render_text

__all__ = [
    "DEFAULT_DECISIONS",
    "MAX_BLOCKS",
    "actions",
    "approval_message",
    "button",
    "cap_blocks",
    "context",
    "deal_risk_alerts",
    "decided_message",
    "divider",
    "escape",
    "expired_message",
    "format_utc",
    "header",
    "render_text",
    "section",
    "truncate",
]
