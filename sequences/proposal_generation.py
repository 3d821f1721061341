"""proposal_generation: a proposal drafted from the deal's own records, sent on approval.

select-proposal-template -> populate-proposal -> generate-custom-sections (best-effort, LLM) ->
present-for-review (approval proposal_review: Approve & send / Edit / Share link / Skip) ->
send-proposal. Skip ends the job cancelled.
"""

from __future__ import annotations

from sequences.skills.proposals import steps as s
from worker.engine.dag import ApprovalSpec, Sequence, Step
from worker.engine.registry import register

SEQUENCE = register(
    Sequence(
        event_type="proposal_generation",
        description="Draft a proposal from the deal, contact, company and meeting notes; send it on approval.",
        steps=(
            Step("select-proposal-template", s.select_proposal_template),
            Step("populate-proposal", s.populate_proposal, deps=("select-proposal-template",)),
            Step(
                "generate-custom-sections",
                s.generate_custom_sections,
                deps=("populate-proposal",),
                critical=False,
                queue="slow",
            ),
            Step(
                "present-for-review",
                s.present_for_review,
                deps=("populate-proposal", "generate-custom-sections"),
                approval=ApprovalSpec("proposal_review"),
            ),
            Step(
                "send-proposal",
                s.send_proposal,
                deps=("present-for-review",),
                queue="slow",
            ),
        ),
    )
)
