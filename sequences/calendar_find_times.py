"""calendar_find_times: from "let's find a time next week" to an invite or proposed times.

parse-scheduling-request -> find-available-slots -> present-time-options (approval calendar_slots:
Send invite / Send times by email / More options / I'll handle it) -> act. "More options" re-runs the
first two steps with a window 10 days longer and opens a new approval (the old one superseded);
"I'll handle it" ends the job cancelled.
"""

from __future__ import annotations

from sequences.skills.calendar import steps as s
from worker.engine.dag import ApprovalSpec, Sequence, Step
from worker.engine.registry import register

SEQUENCE = register(
    Sequence(
        event_type="calendar_find_times",
        description="Find free slots in the rep's calendar and act on the chosen one.",
        steps=(
            Step("parse-scheduling-request", s.parse_request),
            Step("find-available-slots", s.find_available_slots, deps=("parse-scheduling-request",), queue="slow"),
            Step(
                "present-time-options",
                s.present_time_options,
                deps=("find-available-slots",),
                approval=ApprovalSpec("calendar_slots", rerun_from={"more": "parse-scheduling-request"}),
            ),
            Step("act", s.act_on_choice, deps=("present-time-options",), queue="slow"),
        ),
    )
)
