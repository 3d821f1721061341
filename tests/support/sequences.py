"""Engine test DAGs, registered over some event types (`replace=True`) in the test process and in
the worker processes the tests start (PROACTIVE_SEQUENCE_MODULES includes this module).

Every skill records each execution as an `audit_log` row (action `test.exec`), a real side effect
the tests count to prove a step ran exactly once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ConfigDict

from worker.audit import record
from worker.engine.context import FollowUp, StepContext, StepResult
from worker.engine.dag import ApprovalSpec, Sequence, Step
from worker.engine.payloads import Payload
from worker.engine.registry import load, register
from worker.errors import AuthRevoked, PermanentError, TransientError

# Longest a blocking test step waits for its release file (seconds) before giving up.
BLOCK_LIMIT_S = 60.0


load()  # the product's sequences first, so the test DAGs below replace them, never the reverse


class TestPayload(Payload):
    """Test events carry free-form knobs (marker files, failure counts...)."""

    __test__ = False
    model_config = ConfigDict(extra="allow")


def _exec(ctx: StepContext, **data: Any) -> None:
    with ctx.committed_transaction() as conn:  # kept even when the attempt then fails
        record(
            conn,
            ctx.org_id,
            action="test.exec",
            target_type="step",
            target_id=f"{ctx.job_id}:{ctx.step}",
            data={"attempt": ctx.attempt, "iteration": ctx.iteration, **data},
        )


def noop(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Record the execution; output which inputs were seen."""
    _exec(ctx)
    return {"step": ctx.step, "inputs": sorted(inputs)}


def preview(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """An approval step's preview."""
    _exec(ctx)
    return {"title": f"Review {ctx.step}", "summary": "Test draft", "draft": "Hello", "round": ctx.iteration}


def act(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Report the decision handed over by the approval step before it."""
    _exec(ctx)
    review = inputs.get("review") or {}
    return {
        "saw_decision": review.get("decision"),
        "saw_data": review.get("data"),
        "decided_by": review.get("decided_by"),
    }


def flaky(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Fail transiently on the first `fail_times` attempts, then succeed."""
    _exec(ctx)
    if ctx.attempt <= int(ctx.payload.get("fail_times", 0)):
        raise TransientError(f"simulated outage on attempt {ctx.attempt}")
    return {"attempt": ctx.attempt}


def broken(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Fail for good when the payload asks this step to."""
    _exec(ctx)
    if ctx.step in ctx.payload.get("fail_steps", []):
        raise PermanentError(f"{ctx.step} refuses bad data")
    if ctx.step in ctx.payload.get("revoke_steps", []) and _still_revoked(ctx):
        raise AuthRevoked("invalid_grant", provider="google", integration_id=uuid.UUID(ctx.payload["integration_id"]))
    return {"ok": True}


def _still_revoked(ctx: StepContext) -> bool:
    """With `revoke_until_reconnect`, Google refuses until the integration holds credentials again
    (a reconnect stores them); otherwise it always refuses."""
    if not ctx.payload.get("revoke_until_reconnect"):
        return True
    from sqlalchemy import select

    from worker.db import transaction
    from worker.models import Integration

    with transaction() as conn:
        creds = conn.execute(
            select(Integration.credentials).where(
                Integration.id == uuid.UUID(ctx.payload["integration_id"]), Integration.org_id == ctx.org_id
            )
        ).scalar()
    return creds is None


def _wait_for_file(path: str) -> None:
    deadline = time.monotonic() + BLOCK_LIMIT_S
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TransientError(f"release file {path} never appeared")
        time.sleep(0.02)  # poll until the deadline


def effect_then_block(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Append one line to `effect_file` (the external side effect, at most once), then on the first
    attempt block until `release_file` exists so a test can kill the worker mid-step."""
    _exec(ctx)

    def send() -> dict[str, Any]:
        with open(ctx.payload["effect_file"], "a", encoding="utf-8") as fh:
            fh.write(f"sent by attempt {ctx.attempt}\n")
        return {"sent_by_attempt": ctx.attempt}

    result = ctx.effect("send", send)
    if ctx.attempt == 1 and ctx.payload.get("block_file"):
        Path(ctx.payload["block_file"]).touch()  # tell the test we are inside the step
        _wait_for_file(ctx.payload["release_file"])
    return {"effect": result}


def wait_release(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Block until `release_file` exists (for cancel-at-boundary tests)."""
    _exec(ctx)
    Path(ctx.payload["started_file"]).touch()
    _wait_for_file(ctx.payload["release_file"])
    return {"released": True}


def maybe_wait(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """A no-op, or a blocking step when the payload names a release file."""
    if ctx.payload.get("release_file"):
        return wait_release(ctx, inputs)
    return noop(ctx, inputs)


def with_follow_up(ctx: StepContext, inputs: Mapping[str, Any]) -> StepResult:
    """Declare a follow-up event (fired when the job completes)."""
    _exec(ctx)
    fu = ctx.payload.get("follow_up")
    follow_ups = (
        [FollowUp(type=fu["type"], payload=fu.get("payload", {}), delay_minutes=fu.get("delay_minutes"))] if fu else []
    )
    return StepResult(output={"follow_ups": len(follow_ups)}, follow_ups=follow_ups)


def _is(intent: str) -> Any:
    return lambda w: w.payload.get("intent") == intent


FANOUT = register(
    Sequence(
        "proposal_generation",
        payload_model=TestPayload,
        steps=(
            Step("start", noop),
            Step("left", noop, deps=("start",)),
            Step("right", noop, deps=("start",)),
            Step("join", noop, deps=("left", "right")),
            Step("finish", with_follow_up, deps=("join",)),
        ),
    ),
    replace=True,
)

APPROVAL = register(
    Sequence(
        "calendar_find_times",
        payload_model=TestPayload,
        steps=(
            Step("prepare", noop),
            Step(
                "review",
                preview,
                deps=("prepare",),
                approval=ApprovalSpec("calendar_slots", rerun_from={"more": "prepare"}),
            ),
            Step("act", act, deps=("review",)),
        ),
    ),
    replace=True,
)


def after_undo_window(w: Any) -> datetime | None:
    """The send waits `undo_s` seconds after the decision (the Undo window)."""
    decided = w.output("review", "decided_at")
    if not decided or not w.payload.get("undo_s"):
        return None
    return datetime.fromisoformat(decided) + timedelta(seconds=float(w.payload["undo_s"]))


OPTIONAL_APPROVAL = register(
    Sequence(
        "stale_deal_revival",
        payload_model=TestPayload,
        steps=(
            Step("draft", noop),
            Step("review", preview, deps=("draft",), critical=False, approval=ApprovalSpec("email_preview")),
            Step("send", act, deps=("review",), critical=False, start_after=after_undo_window),
        ),
    ),
    replace=True,
)

EFFECT = register(
    Sequence(
        "pre_meeting_90min",
        payload_model=TestPayload,
        steps=(
            Step("prepare", noop),
            Step("send", effect_then_block, deps=("prepare",), timeout_s=3, hard_grace_s=1),
            Step("after", noop, deps=("send",)),
        ),
    ),
    replace=True,
)

RETRY = register(
    Sequence(
        "coaching_weekly",
        payload_model=TestPayload,
        steps=(
            Step("flaky", flaky, max_attempts=3),
            Step("after", noop, deps=("flaky",)),
        ),
    ),
    replace=True,
)

BRANCH = register(
    Sequence(
        "email_received",
        payload_model=TestPayload,
        steps=(
            Step("classify", noop),
            Step("draft-reply", noop, deps=("classify",), when=_is("reply"), skip_reason="not_reply"),
            Step("review-reply", noop, deps=("draft-reply",)),
            Step("book", noop, deps=("classify",), when=_is("book"), skip_reason="not_booking"),
            Step("wrap-up", noop, deps=("review-reply", "book")),
        ),
    ),
    replace=True,
)

FAILURES = register(
    Sequence(
        "meeting_ended",
        payload_model=TestPayload,
        steps=(
            Step("optional", broken, critical=False),
            Step("needs-optional", broken, deps=("optional",)),
            Step("vital", broken, deps=("needs-optional",)),
            Step("never", noop, deps=("vital",)),
        ),
    ),
    replace=True,
)

LINEAR = register(
    Sequence(
        "campaign_daily_check",
        payload_model=TestPayload,
        steps=(
            Step("s1", noop),
            Step("s2", noop, deps=("s1",)),
            Step("s3", maybe_wait, deps=("s2",)),
            Step("s4", noop, deps=("s3",)),
            Step("s5", noop, deps=("s4",)),
        ),
    ),
    replace=True,
)


def new_id() -> str:
    """A fresh id for marker files and keys."""
    return uuid.uuid4().hex


ALL = (FANOUT, APPROVAL, OPTIONAL_APPROVAL, EFFECT, RETRY, BRANCH, FAILURES, LINEAR)
