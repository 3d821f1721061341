"""meeting_ended: after a recorded meeting with more than one attendee, everything the rep
would otherwise do by hand.

classify-call-type -> extract-action-items (critical) | detect-intents | coaching-micro-feedback ->
suggest-next-actions, draft-followup-email, update-crm-from-meeting, create-tasks-from-actions ->
notify-slack-summary (after the coaching tip too) -> review-followup-email (approval email_preview) ->
send-followup-email (after the 30 s Undo window; critical: an approved email that cannot go out fails
the job, or waits for the rep to connect Google, and the review message says so). Non-sales calls
skip intents, suggestions, the draft and the email steps (reason not_sales). A rep's promise to send
a proposal or to schedule a meeting becomes a follow-up event (proposal_generation,
calendar_find_times) when the job completes.
"""

from __future__ import annotations

from sequences.skills import common
from sequences.skills.meetings import steps as s
from worker.engine.dag import ApprovalSpec, Sequence, Step
from worker.engine.registry import register

CLASSIFY = "classify-call-type"
EXTRACT = "extract-action-items"
INTENTS = "detect-intents"
DRAFT = "draft-followup-email"
COACHING = "coaching-micro-feedback"

SEQUENCE = register(
    Sequence(
        event_type="meeting_ended",
        description="Debrief a recorded meeting: action items, intents, coaching, CRM, tasks, follow-up email.",
        gate=s.enough_attendees,
        steps=(
            Step(CLASSIFY, s.classify_call, critical=False),
            Step(EXTRACT, s.extract_items, deps=(CLASSIFY,), queue="slow"),
            Step(
                INTENTS,
                s.detect_call_intents,
                deps=(CLASSIFY,),
                critical=False,
                when=s.is_sales,
                skip_reason="not_sales",
                queue="slow",
            ),
            Step(
                COACHING,
                s.coaching_feedback,
                deps=(CLASSIFY,),
                critical=False,
                when=s.coaching_on,
                skip_reason="coaching_off",
            ),
            Step(
                "suggest-next-actions",
                s.next_actions,
                deps=(EXTRACT, INTENTS),
                critical=False,
                when=s.is_sales,
                skip_reason="not_sales",
            ),
            Step(
                DRAFT,
                s.draft_followup,
                deps=(EXTRACT, INTENTS),
                critical=False,
                when=s.is_sales,
                skip_reason="not_sales",
                queue="slow",
            ),
            Step("update-crm-from-meeting", s.update_crm, deps=(EXTRACT,), critical=False),
            Step("create-tasks-from-actions", s.create_tasks, deps=(EXTRACT,), critical=False),
            Step(
                "notify-slack-summary",
                s.notify_summary,
                # coaching too: the debrief shows its tip (best-effort: a failed or skipped tip is left out)
                deps=("suggest-next-actions", DRAFT, "create-tasks-from-actions", COACHING),
                critical=False,
            ),
            Step(
                "review-followup-email",
                s.review_followup,
                deps=(DRAFT, "notify-slack-summary"),
                critical=False,
                when=s.is_sales,
                skip_reason="not_sales",
                approval=ApprovalSpec("email_preview"),
            ),
            Step(
                "send-followup-email",
                s.send_followup,
                # classify too: with only the review as dependency, a non-sales call would skip this
                # step as "upstream_skipped" instead of not_sales.
                deps=("review-followup-email", CLASSIFY),
                when=s.is_sales,
                skip_reason="not_sales",
                queue="slow",
                start_after=common.send_after("review-followup-email"),
            ),
        ),
    )
)
