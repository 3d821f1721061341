"""The fault suite's workload (tests/chaos): one sequence with every kind of outward effect the
product has, so a kill or an outage anywhere in it shows up at the fakes as a lost or doubled effect.

    draft ─▶ review ─┬▶ send ─┬▶ confirm
                     └▶ book ─┘

review is an approval (a Block Kit message to the rep's DM), send a Gmail message, book a Calendar
event, confirm a Slack DM.

Every effect goes through the product's own paths (`sequences.skills.outbound`, the Slack outbox
via `sequences.skills.common.notify`), against the fake Slack and the fake Google, and names the job
in what it sends (the email's recipient, the event's summary, the message's text), so the fakes can
count each job's effects. `work_s` in the payload makes each step take that long (a kill then lands
inside a skill more often).

A worker process loads this module through PROACTIVE_SEQUENCE_MODULES; the test process fires the
event with `registry.overridden(SEQUENCES)`. It registers over `stale_deal_revival`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ConfigDict
from sqlalchemy import select

from sequences.skills import outbound
from sequences.skills.common import notify
from worker.engine.context import StepContext
from worker.engine.dag import ApprovalSpec, Sequence, Step
from worker.engine.payloads import Payload
from worker.engine.registry import register
from worker.models import User

EVENT_TYPE = "stale_deal_revival"
APPROVAL_KIND = "chaos_send"
# Short limits: a step held by a killed worker is retried within seconds (its lease is timeout + grace).
TIMEOUT_S = 8.0
MAX_ATTEMPTS = 6
MEETING_AT = datetime(2026, 12, 14, 15, 0, tzinfo=UTC)


class ChaosPayload(Payload):
    """`n` (the job's number in its run: it names the job's effects), `run` (the run's id) and
    `work_s` (how long each step works before its effect)."""

    model_config = ConfigDict(extra="allow")


def recipient(run: str, n: int) -> str:
    """The address the `n`th job of `run` emails (and invites): one per job, so the fake counts them."""
    return f"client-{run}-{n}@client.test"


def confirmation_text(run: str, n: int) -> str:
    """The text of the `n`th job's confirmation DM."""
    return f"Sent the follow-up of chaos job {run}-{n}"


def _work(ctx: StepContext) -> None:
    """Take `work_s` seconds, as a skill calling a model or a CRM would (a kill lands in here)."""
    time.sleep(float(ctx.payload.get("work_s", 0)))


def _rep(ctx: StepContext) -> User:
    with ctx.session() as session:
        return session.execute(select(User).where(User.id == ctx.user_id, User.org_id == ctx.org_id)).scalar_one()


def draft(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The preview the rep approves."""
    _work(ctx)
    n, run = int(ctx.payload["n"]), str(ctx.payload["run"])
    return {"title": f"Follow up chaos job {run}-{n}", "summary": f"Email {recipient(run, n)} and book a call"}


def review(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The approval step: its output is the preview of the Block Kit message."""
    return dict(inputs["draft"])


def send(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Email the job's recipient as the rep, once."""
    _work(ctx)
    n, run = int(ctx.payload["n"]), str(ctx.payload["run"])
    result = outbound.send_email(ctx, _rep(ctx), [recipient(run, n)], f"Following up ({run}-{n})", "Thanks!")
    return {"email": result, "attempt": ctx.attempt}


def book(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Invite the job's recipient to a call, once."""
    _work(ctx)
    n, run = int(ctx.payload["n"]), str(ctx.payload["run"])
    start = MEETING_AT + timedelta(minutes=30 * n)
    event = outbound.create_event(
        ctx, _rep(ctx), f"Call ({run}-{n})", start, start + timedelta(minutes=30), [recipient(run, n)], "Next steps"
    )
    return {"event": event, "attempt": ctx.attempt}


def confirm(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Tell the rep in Slack that it is done (through the outbox: posted once)."""
    n, run = int(ctx.payload["n"]), str(ctx.payload["run"])
    text = confirmation_text(run, n)
    queued = notify(ctx, "chaos_done", {"text": text, "blocks": []}, user_id=ctx.user_id, urgent=True)
    return {"outbox_id": str(queued) if queued else None}


def _step(name: str, skill: Any, deps: tuple[str, ...] = (), **extra: Any) -> Step:
    return Step(name, skill, deps=deps, timeout_s=TIMEOUT_S, hard_grace_s=1, max_attempts=MAX_ATTEMPTS, **extra)


SEQUENCES = [
    Sequence(
        EVENT_TYPE,
        (
            _step("draft", draft),
            _step("review", review, ("draft",), approval=ApprovalSpec(APPROVAL_KIND)),
            _step("send", send, ("review",)),
            _step("book", book, ("review",)),
            _step("confirm", confirm, ("send", "book")),
        ),
        payload_model=ChaosPayload,
    )
]

for _sequence in SEQUENCES:
    register(_sequence, replace=True)
