"""Rows for the org metrics tests, inserted directly with exact values (tests/integration/test_metrics*.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update

from tests.support.engine import TestOrg, make_org
from worker.db import transaction
from worker.models import Org, SlackOutbox, approvals, jobs, steps

outbox = SlackOutbox.__table__


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A UTC instant in March 2026."""
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


class Rows:
    """Inserts jobs, steps, approvals and outbox rows of one org with exact values."""

    def __init__(self, org: TestOrg) -> None:
        self.org = org

    def job(
        self,
        status: str,
        created_at: datetime,
        *,
        seconds: float | None = None,
        paused_ms: int = 0,
        event_type: str = "meeting_ended",
        source: str = "api",
        error: str | None = None,
    ) -> uuid.UUID:
        job_id = uuid.uuid4()
        finished = created_at + timedelta(seconds=seconds) if seconds is not None else None
        with transaction() as conn:
            conn.execute(
                insert(jobs).values(
                    id=job_id,
                    org_id=self.org.id,
                    user_id=self.org.rep,
                    event_type=event_type,
                    source=source,
                    payload={},
                    idempotency_key=f"metrics:{job_id}",
                    status=status,
                    error=error,
                    paused_ms=paused_ms,
                    created_at=created_at,
                    started_at=created_at,
                    finished_at=finished,
                    updated_at=finished or created_at,
                )
            )
        return job_id

    def step(
        self,
        job_id: uuid.UUID,
        step: str,
        status: str,
        queued_at: datetime,
        *,
        duration_ms: int | None = None,
        error_class: str | None = None,
        error: str | None = None,
        finished: bool = True,
    ) -> uuid.UUID:
        step_id = uuid.uuid4()
        with transaction() as conn:
            conn.execute(
                insert(steps).values(
                    id=step_id,
                    org_id=self.org.id,
                    job_id=job_id,
                    step=step,
                    status=status,
                    queued_at=queued_at,
                    started_at=queued_at + timedelta(seconds=1),
                    finished_at=queued_at + timedelta(seconds=2) if finished else None,
                    duration_ms=duration_ms,
                    error_class=error_class,
                    error=error,
                )
            )
        return step_id

    def approval(
        self,
        job_id: uuid.UUID,
        status: str,
        created_at: datetime,
        *,
        approver: uuid.UUID,
        decided_s: float | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        step_id = self.step(job_id, "approve", "awaiting_approval", created_at, finished=False)
        with transaction() as conn:
            conn.execute(
                insert(approvals).values(
                    id=uuid.uuid4(),
                    org_id=self.org.id,
                    job_id=job_id,
                    step_run_id=step_id,
                    step="approve",
                    kind="email_send",
                    status=status,
                    approver_user_ids=[str(approver)],
                    preview={},
                    decided_at=created_at + timedelta(seconds=decided_s) if decided_s is not None else None,
                    expires_at=expires_at or created_at + timedelta(days=1),
                    created_at=created_at,
                )
            )

    def message(self, job_id: uuid.UUID, created_at: datetime, status: str, sent_at: datetime | None) -> None:
        with transaction() as conn:
            conn.execute(
                insert(outbox).values(
                    id=uuid.uuid4(),
                    org_id=self.org.id,
                    dedupe_key=f"metrics:{uuid.uuid4()}",
                    job_id=job_id,
                    kind="meeting_debrief",
                    text="hello",
                    blocks=[],
                    status=status,
                    created_at=created_at,
                    sent_at=sent_at,
                )
            )


def berlin_org() -> TestOrg:
    org = make_org()
    with transaction() as conn:
        conn.execute(update(Org).where(Org.id == org.id).values(timezone="Europe/Berlin"))
    return org
