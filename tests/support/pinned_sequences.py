"""Two test sequences in two versions, to deploy a change while their jobs wait on an approval
(tests/integration/test_pinned_definitions.py).

A worker process loads this module with `PINNED_TEST_VERSION` 1 or 2 (1 when unset, as in the test
process); `build()` gives either version to the test process. Version 2 is "the deploy":
- `ADDED`'s sequence gains a step after the one behind the approval;
- `REMOVED`'s step behind the approval calls another skill: `send_v1` does not exist in a version-2
  process, as a function deleted by a deploy would not;
- `RENAMED`'s approval step is called `check` instead of `review` (the paused job's approval row
  still names `review`);
- `RERUN`'s "more options" re-runs from `review` instead of `prepare`, and the `enrich` step
  between them is gone: a job paused on version 1 re-runs version 1's steps from `prepare`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tests.support.sequences import TestPayload, act, noop, preview
from worker.engine.context import StepContext
from worker.engine.dag import ApprovalSpec, Sequence, Step
from worker.engine.registry import register

VERSION = os.environ.get("PINNED_TEST_VERSION", "1")
ADDED = "deal_risk_scan"
REMOVED = "coaching_weekly"
RENAMED = "campaign_daily_check"
RERUN = "pre_meeting_90min"

if VERSION == "1":

    def send_v1(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The skill version 2 no longer has."""
        return act(ctx, inputs)


def send_v2(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The skill version 2 calls instead."""
    return act(ctx, inputs)


def build(version: str) -> list[Sequence]:
    """The test sequences as `version` ("1" or "2") defines them."""
    review = Step("review", preview, deps=("prepare",), approval=ApprovalSpec("calendar_slots"))
    added = [Step("prepare", noop), review, Step("act", act, deps=("review",))]
    if version == "2":
        added.append(Step("added", noop, deps=("act",)))
    send = globals()["send_v1"] if version == "1" else send_v2
    removed = [Step("prepare", noop), review, Step("send", send, deps=("review",))]
    approval_step = "review" if version == "1" else "check"
    renamed = [
        Step("prepare", noop),
        Step(approval_step, preview, deps=("prepare",), approval=ApprovalSpec("calendar_slots")),
        Step("act", act, deps=(approval_step,)),
    ]
    if version == "1":
        more = ApprovalSpec("calendar_slots", rerun_from={"more": "prepare"})
        rerun = [
            Step("prepare", noop),
            Step("enrich", noop, deps=("prepare",)),
            Step("review", preview, deps=("enrich",), approval=more),
            Step("act", act, deps=("review",)),
        ]
    else:
        more = ApprovalSpec("calendar_slots", rerun_from={"more": "review"})
        rerun = [
            Step("prepare", noop),
            Step("review", preview, deps=("prepare",), approval=more),
            Step("act", act, deps=("review",)),
        ]
    return [
        Sequence(ADDED, tuple(added), payload_model=TestPayload),
        Sequence(REMOVED, tuple(removed), payload_model=TestPayload),
        Sequence(RENAMED, tuple(renamed), payload_model=TestPayload),
        Sequence(RERUN, tuple(rerun), payload_model=TestPayload),
    ]


for _sequence in build(VERSION):
    register(_sequence, replace=True)
