"""Benchmark DAGs with no-op skills, registered over two event types (``replace=True``).

bench.engine lists this module in ``PROACTIVE_SEQUENCE_MODULES`` (after ``sequences``) for its own
process and the workers it starts, so ``worker.engine.registry.load()`` imports it after the product
modules and these DAGs replace theirs. Import it only after that load (an earlier import would
register these first).
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

# Event types the benchmark DAGs run for (org-level or not, both get a user id).
LINEAR_EVENT = "campaign_daily_check"
FANOUT_EVENT = "proposal_generation"
DECISION_EVENT = "deal_risk_scan"
DECISION_KIND = "bench_review"  # no Block Kit builder of its own: the generic approval message


class BenchPayload(Payload):
    """Benchmark events carry free-form fields (a run tag)."""

    model_config = ConfigDict(extra="allow")


def noop(ctx: StepContext, inputs: Mapping[str, Any]) -> None:
    """Do nothing: the step costs only what the engine spends on it."""
    return None


def preview(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The approval step's preview (its job's user decides)."""
    return {"title": "bench approval"}


LINEAR = register(
    Sequence(
        LINEAR_EVENT,
        payload_model=BenchPayload,
        description="bench: 5-step chain",
        steps=(
            Step("s1", noop),
            Step("s2", noop, deps=("s1",)),
            Step("s3", noop, deps=("s2",)),
            Step("s4", noop, deps=("s3",)),
            Step("s5", noop, deps=("s4",)),
        ),
    ),
    replace=True,
)

FANOUT = register(
    Sequence(
        FANOUT_EVENT,
        payload_model=BenchPayload,
        description="bench: a -> (b, c, d) -> e",
        steps=(
            Step("a", noop),
            Step("b", noop, deps=("a",)),
            Step("c", noop, deps=("a",)),
            Step("d", noop, deps=("a",)),
            Step("e", noop, deps=("b", "c", "d")),
        ),
    ),
    replace=True,
)

DECISION = register(
    Sequence(
        DECISION_EVENT,
        payload_model=BenchPayload,
        description="bench: no-op -> approval -> no-op",
        steps=(
            Step("before", noop),
            Step("review", preview, deps=("before",), approval=ApprovalSpec(DECISION_KIND)),
            Step("after", noop, deps=("review",)),
        ),
    ),
    replace=True,
)
