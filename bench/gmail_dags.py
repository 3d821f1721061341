"""Benchmark DAG of the Gmail push benchmark (bench/gmail.py): `email_received` as one no-op step, so
the burst measures push -> sync -> event, not the email sequence's own skills (bench/sequences.py
measures those). Listed after `sequences` in PROACTIVE_SEQUENCE_MODULES for the run only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bench.ready  # noqa: F401 - worker_ready hook (ready file)
from worker.engine.context import StepContext
from worker.engine.dag import Sequence, Step
from worker.engine.registry import register


def noop(ctx: StepContext, inputs: Mapping[str, Any]) -> None:
    """Do nothing."""
    return None


EMAIL = register(
    Sequence("email_received", description="bench: one no-op step", steps=(Step("accept", noop),)),
    replace=True,
)
