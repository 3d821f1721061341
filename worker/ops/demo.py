"""`proactive demo`: the whole loop on the embedded default, in one command (README.md#what-the-demo-shows).

Creates the database, seeds the demo org, starts a worker in-process, fires the nine events against
the demo records, decides the approvals the way a rep would (edit and send, approve, pick a slot
after asking for more options, reject one), then prints each job's timeline, the console inbox and
the numbers. Runs in dry-run: nothing is emailed or put in a calendar; what would have been sent is
recorded on the jobs. Exit code 0 only when every job ended as expected.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

import blocks
from worker import migrate
from worker.config import reset_settings
from worker.db import transaction
from worker.engine import registry
from worker.engine.approvals import decide
from worker.engine.events import fire_event
from worker.engine.states import JOB_FINAL, ApprovalStatus
from worker.models import SlackOutbox, User, approvals, jobs, steps, utcnow
from worker.ops.inprocess import EmbeddedWorker
from worker.ops.seed import SeedResult, demo_id, seed_demo
from worker.ops.show import print_inbox, print_timeline
from worker.ops.views import job_detail
from worker.slack.console_inbox import entries

Echo = Callable[..., Any]
outbox = SlackOutbox.__table__

POLL_S = 0.05
# The Undo window before an approved email goes out, shortened so the demo does not sit waiting (s).
DEMO_UNDO_WINDOW_S = 2.0
# Job statuses the demo expects at the end (a rejection or "I'll handle it" ends a job cancelled).
EXPECTED_FINAL = frozenset({"completed", "cancelled"})
# What each event is, in the words of the person it happens to.
EVENT_NAMES = {
    "meeting_ended": "A recorded meeting ended",
    "pre_meeting_90min": "A meeting starts in 90 minutes",
    "email_received": "A prospect emailed",
    "proposal_generation": "A proposal was asked for",
    "calendar_find_times": "A prospect asked to meet",
    "stale_deal_revival": "A deal went quiet",
    "campaign_daily_check": "Daily campaign check",
    "coaching_weekly": "Weekly coaching digest",
    "deal_risk_scan": "Daily deal risk scan",
}


def _iso_week(now: datetime, tz: str) -> str:
    """The ISO week ("2026-W48") `now` falls in on the clock of `tz`: the coaching digest's `week`."""
    year, week, _ = now.astimezone(ZoneInfo(tz)).isocalendar()
    return f"{year}-W{week:02d}"


def demo_events(seed: SeedResult, run: str) -> list[dict[str, Any]]:
    """One event per event type, against the seeded demo records (keys unique to this run)."""
    alice, bruno = str(seed.users["alice"]), str(seed.users["bruno"])
    specs: list[tuple[str, str | None, dict[str, Any]]] = [
        ("meeting_ended", alice, {"meeting_id": str(demo_id("meeting", "globex-discovery"))}),
        ("pre_meeting_90min", alice, {"calendar_event_id": str(demo_id("event", "globex-pricing"))}),
        ("email_received", alice, {"email_id": str(demo_id("email", "email-globex-question"))}),
        (
            "proposal_generation",
            alice,
            {"deal_id": str(demo_id("deal", "initech-platform")), "contact_id": str(demo_id("contact", "bill"))},
        ),
        (
            "calendar_find_times",
            alice,
            {
                "scheduling_text": "Let's find an hour next week, ideally an afternoon, for the technical deep dive.",
                "contact_id": str(demo_id("contact", "bill")),
                "deal_id": str(demo_id("deal", "initech-platform")),
            },
        ),
        ("stale_deal_revival", bruno, {"deal_id": str(demo_id("deal", "hooli-rollout"))}),
        ("campaign_daily_check", None, {}),
        ("coaching_weekly", alice, {"week": _iso_week(utcnow(), "America/New_York")}),
        ("deal_risk_scan", None, {}),
    ]
    registered = registry.registered()
    return [
        {
            "type": t,
            "source": "cli",
            "org_id": str(seed.org_id),
            "user_id": user,
            "payload": payload,
            "idempotency_key": f"demo:{run}:{t}",
        }
        for t, user, payload in specs
        if t in registered
    ]


def rep_decision(kind: str, event_type: str, preview: dict[str, Any], round_: int) -> tuple[str, dict[str, Any]]:
    """What a rep clicks for this approval (the demo's script)."""
    if kind == "calendar_slots":
        if event_type == "calendar_find_times" and round_ == 0:
            return "more", {}
        slots = preview.get("slots") or []
        if not slots:
            return "handle", {}
        return "send_invite", {"slot": slots[min(1, len(slots) - 1)]["start"]}
    if kind == "proposal_review":
        return "approve_send", {}
    if kind == "email_preview" and preview.get("stall_score") is not None:
        return "cancel", {}  # the rep decides to call instead
    if kind == "email_preview":
        body = str(preview.get("body") or "")
        return "edit", {"subject": preview.get("subject"), "body": body + "\n\nP.S. Looking forward to Tuesday."}
    return "approve", {}


def _family(roots: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """The jobs and every follow-up job they fired, transitively."""
    found = list(roots)
    frontier = list(found)
    while frontier:
        with transaction() as conn:
            children = list(conn.execute(select(jobs.c.id).where(jobs.c.parent_job_id.in_(frontier))).scalars())
        frontier = [c for c in children if c not in found]
        found += frontier
    return found


def _statuses(job_ids: list[uuid.UUID]) -> tuple[dict[uuid.UUID, str], set[uuid.UUID]]:
    """Each job's status, and the jobs with a pending approval (paused and waiting for a person)."""
    with transaction() as conn:
        st = dict(conn.execute(select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(job_ids))).all())
        waiting = set(
            conn.execute(
                select(approvals.c.job_id).where(
                    approvals.c.job_id.in_(job_ids), approvals.c.status == ApprovalStatus.PENDING.value
                )
            ).scalars()
        )
    return st, waiting


def wait_settled(roots: list[uuid.UUID], timeout_s: float) -> dict[uuid.UUID, str]:
    """Wait until every job (follow-ups included) is final or waits on a pending approval."""
    deadline = time.monotonic() + timeout_s
    while True:
        st, waiting = _statuses(_family(roots))
        settled = all(s in JOB_FINAL or (s == "awaiting_approval" and j in waiting) for j, s in st.items())
        if settled or time.monotonic() > deadline:
            return st
        time.sleep(POLL_S)


def decide_pending(job_ids: list[uuid.UUID], rounds: Counter[uuid.UUID], echo: Echo) -> int:
    """Decide every pending approval of these jobs the way a rep would."""
    with transaction() as conn:
        pending = list(
            conn.execute(
                select(
                    approvals.c.id,
                    approvals.c.kind,
                    approvals.c.job_id,
                    approvals.c.preview,
                    approvals.c.approver_user_ids,
                    jobs.c.event_type,
                )
                .join(jobs, jobs.c.id == approvals.c.job_id)
                .where(approvals.c.job_id.in_(job_ids), approvals.c.status == ApprovalStatus.PENDING.value)
            )
        )
    with transaction() as conn:
        names = dict(conn.execute(select(User.id, User.name)).all())
    for a in pending:
        decision, data = rep_decision(a.kind, a.event_type, a.preview or {}, rounds[a.job_id])
        rounds[a.job_id] += 1
        approver = uuid.UUID(a.approver_user_ids[0])
        decide(a.id, decision, user_id=approver, data=data or None, actor="demo")
        what = (a.preview or {}).get("title") or a.kind.replace("_", " ")
        echo(f"  {names.get(approver, 'The rep')} chose “{blocks.decision_label(decision)}” on {what}")
    return len(pending)


def _numbers(job_ids: list[uuid.UUID]) -> str:
    with transaction() as conn:
        rows = list(
            conn.execute(
                select(jobs.c.status, jobs.c.started_at, jobs.c.created_at, jobs.c.finished_at, jobs.c.paused_ms).where(
                    jobs.c.id.in_(job_ids)
                )
            )
        )
        step_counts = Counter(conn.execute(select(steps.c.status).where(steps.c.job_id.in_(job_ids))).scalars())
        opened = conn.execute(select(approvals.c.status).where(approvals.c.job_id.in_(job_ids))).scalars().all()
    by_status = Counter(r.status for r in rows)
    finished = [r for r in rows if r.finished_at]
    durations = sorted(
        int(((r.finished_at - (r.started_at or r.created_at)).total_seconds()) * 1000) - (r.paused_ms or 0)
        for r in finished
    )
    ended = by_status["completed"] + by_status["failed"] + by_status["timeout"]
    p95 = durations[min(len(durations) - 1, int(0.95 * len(durations)))] if durations else 0
    decided = sum(
        1 for s in opened if s not in (ApprovalStatus.PENDING, ApprovalStatus.EXPIRED, ApprovalStatus.CANCELLED)
    )
    return (
        f"jobs {len(rows)} ({', '.join(f'{n} {s}' for s, n in sorted(by_status.items()))}); "
        f"success rate {by_status['completed'] / ended:.0%}; "
        if ended
        else ""
    ) + (
        f"running time avg {sum(durations) // max(1, len(durations))} ms, p95 {p95} ms; "
        f"steps {', '.join(f'{n} {s}' for s, n in sorted(step_counts.items()))}; "
        f"approvals {len(opened)} opened, {decided} decided"
    )


def run_demo(timeout_s: float = 60.0, echo: Echo = print) -> int:
    """Run the demo; returns the process exit code."""
    os.environ["PROACTIVE_DRY_RUN"] = "1"  # record sends instead of performing them
    os.environ.setdefault("PROACTIVE_UNDO_WINDOW_S", str(DEMO_UNDO_WINDOW_S))
    reset_settings()
    t0 = time.monotonic()
    migrate.upgrade()
    seed = seed_demo()
    echo(
        f"demo org {seed.org_id} ({'seeded' if seed.created else 'already seeded'}); "
        f"{len(registry.registered())} sequences; dry run: emails, invites and proposals are recorded, not sent"
    )
    echo("\nWhat happened:")
    run = uuid.uuid4().hex[:8]
    rounds: Counter[uuid.UUID] = Counter()
    with EmbeddedWorker() as worker:
        roots = []
        for event in demo_events(seed, run):
            result = fire_event(event)
            roots.append(result.job_id)
            echo(f"  {EVENT_NAMES.get(event['type'], event['type']):32} fired {event['type']:22} → job {result.job_id}")
        echo("\nWhat the reps decided in Slack:")
        for _round in range(6):
            st = wait_settled(roots, timeout_s)
            if not any(s == "awaiting_approval" for s in st.values()):
                break
            decide_pending(list(st), rounds, echo)
        st = wait_settled(roots, timeout_s)
    for note in worker.leftover_lines():  # an earlier command's jobs: named, never counted below
        echo(note)
    family = _family(roots)
    echo("\nEach job, step by step (`proactive job ID` shows one again):\n")
    with transaction() as conn:
        details = [job_detail(conn, j) for j in family]
        messages = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.job_id.in_(family))).scalar()
    for d in details:
        print_timeline(d)
        echo("")
    echo(f"Inbox (what Slack would show: the {messages} messages of this run, `proactive inbox` shows them again):")
    with transaction() as conn:
        print_inbox(entries(conn, seed.org_id, max(1, messages or 0)))
    echo(f"numbers: {_numbers(family)}; demo took {time.monotonic() - t0:.1f} s")
    bad = {str(j)[:8]: s for j, s in st.items() if s not in EXPECTED_FINAL}
    if bad:
        echo(f"unexpected end states: {bad}")
    return 1 if bad else 0
