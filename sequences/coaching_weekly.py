"""coaching_weekly: on the rep's local Monday, last week's coaching digest.

aggregate-weekly-metrics -> correlate-win-loss (best-effort) -> generate-coaching-digest (LLM when
configured; stored in coaching_reports) -> deliver-coaching-slack.
"""

from __future__ import annotations

from sequences.skills.coaching import steps as s
from worker.engine.dag import Sequence, Step
from worker.engine.registry import register

SEQUENCE = register(
    Sequence(
        event_type="coaching_weekly",
        description="Aggregate the rep's week of calls, compare with won and lost deals, DM the digest.",
        steps=(
            Step("aggregate-weekly-metrics", s.aggregate_weekly_metrics),
            Step("correlate-win-loss", s.correlate_win_loss_step, deps=("aggregate-weekly-metrics",), critical=False),
            Step(
                "generate-coaching-digest",
                s.generate_digest,
                deps=("aggregate-weekly-metrics", "correlate-win-loss"),
                queue="slow",
            ),
            Step("deliver-coaching-slack", s.deliver_coaching_slack, deps=("generate-coaching-digest",)),
        ),
    )
)
