"""`proactive demo`: the whole loop on the embedded default, in one command (SPEC §8).

Creates the database, seeds the demo org, starts a worker in-process, fires an event for every
registered sequence, decides the approvals a rep would be asked for, then prints each job's
timeline, the console inbox and a summary. Exit code 0 only when every job ended as expected.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from worker import migrate, registry
from worker.db import transaction
from worker.events import fire_event
from worker.inprocess import EmbeddedWorker
from worker.models import approvals, jobs, steps
from worker.seed import SeedResult, seed_demo
from worker.states import JOB_FINAL, ApprovalStatus

Echo = Callable[..., Any]

# Seconds between two polls of the jobs' states.
POLL_S = 0.05


def demo_events(seed: SeedResult, run: str) -> list[dict[str, Any]]:
    """One event per registered sequence, against the seeded org (unique keys per demo run)."""
    builders: dict[str, Callable[[], dict[str, Any]]] = {
        "deal_risk_scan": lambda: {"user_id": None, "payload": {}},
    }
    events = []
    for event_type in registry.registered():
        build = builders.get(event_type)
        if build is None:
            continue
        spec = build()
        events.append(
            {
                "type": event_type,
                "source": "cli",
                "org_id": str(seed.org_id),
                "idempotency_key": f"demo:{run}:{event_type}",
                **spec,
            }
        )
    return events


def _statuses(job_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    with transaction() as conn:
        return dict(conn.execute(select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(job_ids))).all())


def wait_settled(job_ids: list[uuid.UUID], timeout_s: float) -> dict[uuid.UUID, str]:
    """Wait until every job is final or awaiting approval (or the deadline passes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        st = _statuses(job_ids)
        if all(s in JOB_FINAL or s == "awaiting_approval" for s in st.values()) or time.monotonic() > deadline:
            return st
        time.sleep(POLL_S)


def decide_pending(job_ids: list[uuid.UUID], echo: Echo) -> int:
    """Approve every pending approval of these jobs as its first approver (a rep clicking)."""
    from worker.approvals import decide

    with transaction() as conn:
        pending = list(
            conn.execute(
                select(approvals.c.id, approvals.c.kind, approvals.c.approver_user_ids).where(
                    approvals.c.job_id.in_(job_ids), approvals.c.status == ApprovalStatus.PENDING.value
                )
            )
        )
    for a in pending:
        user = uuid.UUID(a.approver_user_ids[0])
        decide(a.id, "approve", user_id=user, actor="demo")
        echo(f"  approved {a.kind} approval {a.id}")
    return len(pending)


def run_demo(timeout_s: float = 60.0, echo: Echo = print) -> int:
    """Run the demo; returns the process exit code."""
    from worker.cli import print_timeline
    from worker.views import job_detail

    t0 = time.monotonic()
    migrate.upgrade()
    seed = seed_demo()
    echo(
        f"demo org {seed.org_id} ({'seeded' if seed.created else 'already seeded'}); "
        f"{len(registry.registered())} sequence(s) registered"
    )
    run = uuid.uuid4().hex[:8]
    with EmbeddedWorker():
        job_ids = []
        for event in demo_events(seed, run):
            result = fire_event(event)
            job_ids.append(result.job_id)
            echo(f"fired {event['type']:22} -> job {result.job_id} ({result.status})")
        for _round in range(5):
            st = wait_settled(job_ids, timeout_s)
            if not any(s == "awaiting_approval" for s in st.values()):
                break
            decide_pending(job_ids, echo)
        st = wait_settled(job_ids, timeout_s)
    echo("")
    with transaction() as conn:
        details = [job_detail(conn, j) for j in job_ids]
        step_counts = Counter(conn.execute(select(steps.c.status).where(steps.c.job_id.in_(job_ids))).scalars())
    for d in details:
        print_timeline(d)
        echo("")
    from worker.cli import inbox

    echo("Inbox (what Slack would show):")
    inbox.main(args=["--limit", "10"], standalone_mode=False)
    by_status = Counter(st.values())
    echo(
        f"summary: {len(job_ids)} jobs — "
        + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
        + "; steps: "
        + ", ".join(f"{n} {s}" for s, n in sorted(step_counts.items()))
        + f"; {time.monotonic() - t0:.1f} s"
    )
    bad = [s for s in st.values() if s not in ("completed",)]
    return 1 if bad else 0
