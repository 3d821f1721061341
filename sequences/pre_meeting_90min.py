"""pre_meeting_90min: a briefing in the rep's DMs before a meeting with more than one attendee.

enrich-attendees -> pull-crm-history and research-company-news (both best-effort, in parallel) ->
generate-briefing (LLM when configured) -> deliver-slack-briefing (quiet hours respected unless the
meeting starts within 2 h).
"""

from __future__ import annotations

from sequences.skills.briefing import steps as s
from worker.engine.dag import Sequence, Step
from worker.engine.registry import register

SEQUENCE = register(
    Sequence(
        event_type="pre_meeting_90min",
        description="Brief the rep on who is coming, the history, the deal and what to ask.",
        steps=(
            Step("enrich-attendees", s.enrich_attendees, critical=False),
            Step("pull-crm-history", s.pull_crm_history, deps=("enrich-attendees",), critical=False),
            Step("research-company-news", s.research_company_news, deps=("enrich-attendees",), critical=False),
            Step(
                "generate-briefing",
                s.generate_briefing,
                deps=("enrich-attendees", "pull-crm-history", "research-company-news"),
                queue="slow",
            ),
            Step("deliver-slack-briefing", s.deliver_slack_briefing, deps=("generate-briefing",)),
        ),
    )
)
