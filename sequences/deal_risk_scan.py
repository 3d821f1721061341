"""deal_risk_scan: once per org per day, score open deals and alert their owners.

scan-active-deals -> score-deal-risks -> generate-risk-alerts -> deliver-risk-slack, all
best-effort: a failed step is recorded and the rest still runs with what there is.
"""

from __future__ import annotations

from sequences.skills.deals import risk_steps as deals
from worker.engine.dag import Sequence, Step
from worker.engine.registry import register

SEQUENCE = register(
    Sequence(
        event_type="deal_risk_scan",
        description="Score the org's open deals and send each owner their deals at risk.",
        steps=(
            Step("scan-active-deals", deals.scan_active_deals, critical=False),
            Step("score-deal-risks", deals.score_deal_risks, deps=("scan-active-deals",), critical=False),
            Step("generate-risk-alerts", deals.generate_risk_alerts, deps=("score-deal-risks",), critical=False),
            Step("deliver-risk-slack", deals.deliver_risk_slack, deps=("generate-risk-alerts",), critical=False),
        ),
    )
)
