"""A test sequence whose one step blocks on its first run, so a test can kill -9 the worker running
it (tests/integration/test_worker_heartbeats.py).

Each run appends "<pid> <attempt>" to the payload's `runs_file`: the count of runs is kept outside
our tables. A worker process loads this module through PROACTIVE_SEQUENCE_MODULES; the test process
fires the event with `registry.overridden(SEQUENCES)`. It registers over `deal_risk_scan`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ConfigDict

from worker.engine.context import StepContext
from worker.engine.dag import Sequence, Step
from worker.engine.payloads import Payload
from worker.engine.registry import register

EVENT_TYPE = "deal_risk_scan"
# The step's soft time limit: its lease (hard limit + grace) is far longer than the re-run target.
STEP_TIMEOUT_S = 60.0


class AnyPayload(Payload):
    """Free-form test payload."""

    model_config = ConfigDict(extra="allow")


def run_and_block_first(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Record this run in `runs_file`; on the first attempt, block until `release_file` exists (or
    the step's time limit)."""
    with open(ctx.payload["runs_file"], "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()} {ctx.attempt}\n")
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while ctx.attempt == 1 and not Path(ctx.payload["release_file"]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # poll the release file until the deadline
    return {"attempt": ctx.attempt, "pid": os.getpid()}


SEQUENCES = [
    Sequence(
        EVENT_TYPE,
        (Step("hold", run_and_block_first, timeout_s=STEP_TIMEOUT_S),),
        payload_model=AnyPayload,
    )
]

for _sequence in SEQUENCES:
    register(_sequence, replace=True)
