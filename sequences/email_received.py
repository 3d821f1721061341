"""email_received: one job per new inbox message (Gmail push) or campaign reply to answer.

classify-email-intent -> match-to-crm-contact -> a branch declared with `when` predicates:
reply_required -> draft-reply -> review-reply (approval email_preview) -> send-reply (threaded;
critical: an approved reply that cannot go out fails the job, or waits for Google);
booking_request -> book-meeting (follow-up calendar_find_times with the email as scheduling text);
out_of_office / unsubscribe -> record-contact-status. Steps of the branches not taken are skipped.
"""

from __future__ import annotations

from sequences.skills import common
from sequences.skills.email import steps as s
from worker.engine.dag import ApprovalSpec, Sequence, Step
from worker.engine.registry import register

MATCH = "match-to-crm-contact"

SEQUENCE = register(
    Sequence(
        event_type="email_received",
        description="Classify an inbound email, match it to the CRM and answer it the way its intent needs.",
        steps=(
            Step("classify-email-intent", s.classify_email_intent, queue="slow"),
            Step(MATCH, s.match_to_crm_contact, deps=("classify-email-intent",)),
            Step(
                "draft-reply",
                s.draft_email_reply,
                deps=(MATCH,),
                critical=False,
                when=s.intent_is("reply_required"),
                skip_reason="no_reply_needed",
                queue="slow",
            ),
            Step(
                "review-reply",
                s.review_email_reply,
                deps=("draft-reply",),
                critical=False,
                approval=ApprovalSpec("email_preview"),
            ),
            Step(
                "send-reply",
                s.send_email_reply,
                deps=("review-reply",),
                queue="slow",
                start_after=common.send_after("review-reply"),
            ),
            Step(
                "book-meeting",
                s.hand_off_booking,
                deps=(MATCH,),
                critical=False,
                when=s.intent_is("booking_request"),
                skip_reason="not_a_booking_request",
            ),
            Step(
                "record-contact-status",
                s.record_contact_status,
                deps=(MATCH,),
                critical=False,
                when=s.intent_is("out_of_office", "unsubscribe"),
                skip_reason="not_ooo_or_unsubscribe",
            ),
        ),
    )
)
