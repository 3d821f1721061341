"""Helpers for engine tests: a fresh org per test and read-only looks at jobs, steps, approvals."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from worker.db import session_factory, transaction
from worker.models import AuditLog, Org, User, approvals, jobs, steps


@dataclass(frozen=True)
class TestOrg:
    __test__ = False
    id: uuid.UUID
    rep: uuid.UUID
    other_rep: uuid.UUID
    admin: uuid.UUID


def make_org(**settings: Any) -> TestOrg:
    """A new org with a rep, another rep and an admin (all UTC)."""
    org_id = uuid.uuid4()
    ids = {k: uuid.uuid4() for k in ("rep", "other_rep", "admin")}
    with session_factory().begin() as s:
        s.add(Org(id=org_id, name=f"Test org {org_id.hex[:6]}", timezone="UTC", settings=settings))
        s.flush()
        for key, uid in ids.items():
            s.add(
                User(
                    id=uid,
                    org_id=org_id,
                    email=f"{key}-{uid.hex[:6]}@example.com",
                    name=key,
                    role="admin" if key == "admin" else "member",
                    timezone="UTC",
                    opted_out_sequences=[],
                )
            )
    return TestOrg(org_id, ids["rep"], ids["other_rep"], ids["admin"])


def event(org: TestOrg, event_type: str, payload: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """An event envelope from the API source with a unique key."""
    return {
        "type": event_type,
        "source": "api",
        "org_id": str(org.id),
        "user_id": str(org.rep),
        "payload": payload or {},
        "idempotency_key": f"test:{uuid.uuid4().hex}",
        **extra,
    }


def job_status(job_id: uuid.UUID) -> str:
    with transaction() as conn:
        return conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar_one()


def job_row(job_id: uuid.UUID) -> Any:
    with transaction() as conn:
        return conn.execute(select(jobs).where(jobs.c.id == job_id)).one()


def step_rows(job_id: uuid.UUID) -> dict[str, Any]:
    """Current (not superseded) step runs by step name."""
    with transaction() as conn:
        rows = conn.execute(select(steps).where(steps.c.job_id == job_id, steps.c.superseded.is_(False)))
        return {r.step: r for r in rows}


def all_step_rows(job_id: uuid.UUID) -> list[Any]:
    with transaction() as conn:
        return list(conn.execute(select(steps).where(steps.c.job_id == job_id).order_by(steps.c.iteration)))


def executions(job_id: uuid.UUID, step: str) -> int:
    """How many times a test skill ran for this job step (audit rows `test.exec`)."""
    with transaction() as conn:
        return conn.execute(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "test.exec", AuditLog.target_id == f"{job_id}:{step}")
        ).scalar_one()


def approvals_of(job_id: uuid.UUID) -> list[Any]:
    with transaction() as conn:
        return list(
            conn.execute(select(approvals).where(approvals.c.job_id == job_id).order_by(approvals.c.created_at))
        )


def pending_approval(job_id: uuid.UUID) -> Any:
    """The job's pending approval, or None."""
    return next((a for a in approvals_of(job_id) if a.status == "pending"), None)


def settled(job_id: uuid.UUID) -> str | None:
    """The status when final or paused, else None (for wait_for)."""
    status = job_status(job_id)
    return status if status not in ("queued", "running") else None


def reached(job_id: uuid.UUID, *statuses: str) -> str | None:
    """The job's status when it is one of `statuses`, else None (for wait_for)."""
    status = job_status(job_id)
    return status if status in statuses else None
