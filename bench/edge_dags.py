"""Benchmark DAGs of the web-edge benchmark (bench/edge.py), registered over two event types.

- ``coaching_weekly``: one no-op step, so a job fired over ``POST /api/events`` costs the worker as
  little as a job can and the worker keeps up with the edge as best it can;
- ``stale_deal_revival``: no-op -> approval (kind ``bench_review``, decided by ``orch_approve``)
  -> no-op, so a Slack click has a real pending approval to decide and a step to start after it.

bench.edge lists this module in ``PROACTIVE_SEQUENCE_MODULES`` (after ``sequences``) for its own
process, gunicorn and the worker; importing it after the product modules replaces their DAGs for
these two event types only. bench/noop_dags.py (the engine benchmark's DAGs) is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict

import bench.ready  # noqa: F401 - worker_ready hook (ready file)
from worker.engine.context import StepContext
from worker.engine.dag import ApprovalSpec, Sequence, Step
from worker.engine.payloads import Payload
from worker.engine.registry import register

EVENTS_EVENT = "coaching_weekly"  # fired over /api/events
CLICK_EVENT = "stale_deal_revival"  # opens an approval for the clicks
APPROVAL_KIND = "bench_review"  # not a product kind: the generic message, `orch_` buttons
APPROVAL_STEP, AFTER_STEP = "review", "after"


class EdgePayload(Payload):
    """Benchmark events carry free-form fields (a run tag)."""

    model_config = ConfigDict(extra="allow")


def noop(ctx: StepContext, inputs: Mapping[str, Any]) -> None:
    """Do nothing: the step costs only what the engine spends on it."""
    return None


def review(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The approval's preview (the job's user decides it)."""
    return {"title": "bench review", "summary": "a benchmark approval"}


ACCEPT = register(
    Sequence(
        EVENTS_EVENT,
        payload_model=EdgePayload,
        description="bench: one no-op step",
        steps=(Step("accept", noop),),
    ),
    replace=True,
)

CLICK = register(
    Sequence(
        CLICK_EVENT,
        payload_model=EdgePayload,
        description="bench: no-op -> approval -> no-op",
        steps=(
            Step("prepare", noop),
            Step(APPROVAL_STEP, review, deps=("prepare",), approval=ApprovalSpec(APPROVAL_KIND)),
            Step(AFTER_STEP, noop, deps=(APPROVAL_STEP,)),
        ),
    ),
    replace=True,
)
