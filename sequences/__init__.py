"""One module per event type, each registering its Sequence with `worker.engine.registry` on import."""

from sequences import (
    calendar_find_times,
    campaign_daily_check,
    coaching_weekly,
    deal_risk_scan,
    email_received,
    meeting_ended,
    pre_meeting_90min,
    proposal_generation,
    stale_deal_revival,
)
from sequences.skills.briefing import morning as morning_brief  # noqa: F401 - registers the morning brief's content

__all__ = [
    "calendar_find_times",
    "campaign_daily_check",
    "coaching_weekly",
    "deal_risk_scan",
    "email_received",
    "meeting_ended",
    "pre_meeting_90min",
    "proposal_generation",
    "stale_deal_revival",
]
