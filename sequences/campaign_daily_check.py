"""campaign_daily_check: once per org per local day, how the Instantly campaigns are doing.

fetch-campaign-metrics -> classify-replies (LLM when configured) -> build-report (rates, health,
suggestions) -> deliver-campaign-slack (one report per campaign owner, with reply buttons).
"""

from __future__ import annotations

from sequences.skills.campaigns import actions as campaign_actions  # noqa: F401 - registers the `camp_` buttons
from sequences.skills.campaigns import steps as s
from worker.engine.dag import Sequence, Step
from worker.engine.registry import register

SEQUENCE = register(
    Sequence(
        event_type="campaign_daily_check",
        description="Report each campaign's health and new replies to its owner.",
        steps=(
            Step("fetch-campaign-metrics", s.fetch_campaign_metrics, queue="slow"),
            Step("classify-replies", s.classify_replies, deps=("fetch-campaign-metrics",), queue="slow"),
            Step("build-report", s.build_campaign_report, deps=("classify-replies",)),
            Step("deliver-campaign-slack", s.deliver_campaign_slack, deps=("build-report",)),
        ),
    )
)
