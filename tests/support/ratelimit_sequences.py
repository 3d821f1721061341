"""A test sequence whose one step calls the real LLM client (tests/integration/test_rate_limits.py):
the fake LLM answers 429 more times than the step's max_attempts, and a RateLimited retry must not
use up an attempt.

A worker process loads this module through PROACTIVE_SEQUENCE_MODULES; the test process fires the
event with `registry.overridden(SEQUENCES)`. It registers over `deal_risk_scan` (org-level: no user).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from worker.clients import llm
from worker.engine.context import StepContext
from worker.engine.dag import Sequence, Step
from worker.engine.payloads import Payload
from worker.engine.registry import register

EVENT_TYPE = "deal_risk_scan"
MAX_ATTEMPTS = 2


class AnyPayload(Payload):
    """Free-form test payload."""

    model_config = ConfigDict(extra="allow")


class Answer(BaseModel):
    """What the fake LLM answers by default: {"ok": true}."""

    ok: bool


def ask(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """One chat completion (no fallback: the step's outcome is the client's); the prompt names the job
    and the payload's `tag` so the fake can answer each job its own way."""
    result = llm.complete_json(Answer, "Answer ok.", f"job {ctx.job_id}:{ctx.payload.get('tag')}")
    return {"ok": result.value.ok, "attempt": ctx.attempt}


SEQUENCES = [Sequence(EVENT_TYPE, (Step("ask", ask, max_attempts=MAX_ATTEMPTS),), payload_model=AnyPayload)]

for _sequence in SEQUENCES:
    register(_sequence, replace=True)
