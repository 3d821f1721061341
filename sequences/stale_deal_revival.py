"""stale_deal_revival: one job per stale deal; re-engage only when the stall is worth it.

research-trigger-events (B) -> analyse-stall-reason -> draft-reengagement (only when the score is
>= 50; otherwise the job completes with no action) -> review-reengagement (approval email_preview)
-> send-reengagement (after the 30 s Undo window, or the next working morning for "send later").
"""

from __future__ import annotations

from sequences.skills import common
from sequences.skills.deals import stale_steps as s
from worker.engine.dag import ApprovalSpec, Sequence, Step
from worker.engine.registry import register

SEQUENCE = register(
    Sequence(
        event_type="stale_deal_revival",
        description="Score a silent deal's stall and, when worth it, draft and send a re-engagement email.",
        steps=(
            Step("research-trigger-events", s.research_trigger_events, critical=False),
            Step("analyse-stall-reason", s.analyse_stall_reason, deps=("research-trigger-events",)),
            Step(
                "draft-reengagement",
                s.draft_reengagement_email,
                deps=("analyse-stall-reason",),
                when=s.worth_reengaging,
                skip_reason="score_below_threshold",
                queue="slow",
            ),
            Step(
                "review-reengagement",
                s.review_reengagement,
                deps=("draft-reengagement",),
                approval=ApprovalSpec("email_preview"),
            ),
            Step(
                "send-reengagement",
                s.send_reengagement,
                deps=("review-reengagement",),
                queue="slow",
                start_after=common.send_after("review-reengagement"),
            ),
        ),
    )
)
