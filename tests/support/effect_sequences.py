"""A test sequence whose one step sends a real email or creates a real calendar event for the rep
through `sequences.skills.outbound` (the Google clients against the fake Google), so a test can kill
its worker at chosen moments of the effect (tests/integration/test_effects_exactly_once.py).

A worker process loads this module through PROACTIVE_SEQUENCE_MODULES; the test process fires the
event with `registry.overridden(SEQUENCES)`. It registers over `meeting_ended` (a rep's event).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ConfigDict
from sqlalchemy import select

from sequences.skills import outbound
from worker.engine.context import StepContext
from worker.engine.dag import Sequence, Step
from worker.engine.payloads import Payload
from worker.engine.registry import register
from worker.models import User

EVENT_TYPE = "meeting_ended"
# Short limits: a killed step's lease (timeout + grace) runs out within seconds.
TIMEOUT_S = 5.0
START = datetime(2026, 12, 14, 15, 0, tzinfo=UTC)


class AnyPayload(Payload):
    """Free-form test payload: `kind` (email | event) and `to`."""

    model_config = ConfigDict(extra="allow")


def act(ctx: StepContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Send one email (or create one event, `kind=event`) to `to` as the rep; the effect's result and
    the attempt that returned it."""
    with ctx.session() as session:
        user = session.execute(select(User).where(User.id == ctx.user_id, User.org_id == ctx.org_id)).scalar_one()
    to = [str(ctx.payload["to"])]
    if ctx.payload.get("kind") == "event":
        result = outbound.create_event(
            ctx, user, "Intro call", START, START + timedelta(minutes=30), to, "Agenda: next steps"
        )
    else:
        result = outbound.send_email(ctx, user, to, "Following up", "Thanks for your time today.")
    return {"effect": result, "attempt": ctx.attempt}


SEQUENCES = [
    Sequence(
        EVENT_TYPE,
        (Step("act", act, timeout_s=TIMEOUT_S, hard_grace_s=1, max_attempts=3),),
        payload_model=AnyPayload,
    )
]

for _sequence in SEQUENCES:
    register(_sequence, replace=True)
