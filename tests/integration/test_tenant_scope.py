"""Tenant scope: every statement of a sequence run that reads, changes or deletes rows of a tenant
table (one with an `org_id` column) names `org_id` in its WHERE, so a wrong id from any caller can
never reach another org's row. The SQL log of real runs (the in-process worker, worker/ops/inprocess.py)
is walked statement by statement; each statement is attributed to the project function that issued it.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import event as sa_event

from tests.conftest import Backend
from worker.db import get_engine
from worker.models import Base

SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True, scope="module")

REPO = Path(__file__).resolve().parents[2]
PROJECT_DIRS = ("worker", "sequences", "webhooks", "blocks")
# Frames that only carry a statement to the database (the issuer is the frame below them): whole files,
# or path:function (the skills' statement runners).
CARRIERS = {
    "worker/db.py",
    "worker/precompiled.py",
    *(f"sequences/skills/common.py:{f}" for f in ("rows", "first", "scalars", "execute", "execute_on")),
}
# Modules whose functions take the ids (and the org) from their caller: the caller is named too.
STORES = ("worker/engine/jobstore.py",)
TENANT_TABLES = frozenset(t.name for t in Base.metadata.sorted_tables if "org_id" in t.c)

# Statements allowed without org_id, as (issuer, how the statement starts): why. The entry lookups by
# a globally unique id (a Celery message carries nothing else) whose row then gives the org every later
# statement uses; and the test harness's own reads (the demo loop's helpers, the in-process worker's labels).
ALLOWED = {
    (
        "worker/engine/jobstore.py:job_for_step < worker/engine/executor.py:claim",
        "SELECT",
    ): "a run_step message: a step run id",
    ("worker/engine/approvals.py:resume", "SELECT sequence_jobs.id, sequence_jobs.org_id"): (
        "a resume message: an approval id (its job, locked, found through the approval's row)"
    ),
    ("worker/ops/inprocess.py:_job_of_task", "SELECT"): "the in-process worker labels which job a task is for",
    ("worker/ops/demo.py:_family", "SELECT"): "the demo loop's progress reads",
    ("worker/ops/demo.py:_statuses", "SELECT"): "the demo loop's progress reads",
    ("worker/ops/demo.py:decide_pending", "SELECT"): "the demo loop finds the approvals to decide",
    ("worker/slack/replace.py:org_of_approval", "SELECT approvals.org_id FROM approvals"): (
        "a slack_replace message published before messages carried the clicker's org: an approval id"
    ),
    ("worker/engine/executor.py:request_cancel", "SELECT sequence_jobs.org_id FROM sequence_jobs"): (
        "`proactive cancel JOB_ID`: a job id"
    ),
    ("worker/ops/cli.py:_decide", "SELECT approvals.org_id"): "`proactive approve|reject APPROVAL_ID`: an approval id",
    ("worker/engine/approvals.py:expire_due", "SELECT approvals.id, approvals.org_id FROM approvals"): (
        "the sweeper's scan of due approvals in every org (each row is then changed under its org)"
    ),
    ("worker/engine/sweeper.py:resume_decided", "SELECT approvals.id, approvals.org_id FROM approvals"): (
        "the sweeper's scan of unapplied decisions in every org (each resume is then scoped by its org)"
    ),
    ("worker/slack/delivery.py:_claim", "UPDATE slack_outbox SET lease_expires_at"): (
        "a deliver message: an outbox id (the claimed row's org scopes every later statement)"
    ),
    ("worker/slack/delivery.py:deliver_due", "SELECT slack_outbox.id, slack_outbox.org_id FROM slack_outbox"): (
        "the sweeper's scan of due deliveries in every org (each stamp is then scoped by its org)"
    ),
    ("worker/engine/jobstore.py:requeue_orphaned < worker/engine/sweeper.py:reclaim_orphaned", "UPDATE step_runs"): (
        "a live worker re-queues the running steps of a silent worker, which held steps of any org (each is then "
        "published and claimed under its own org)"
    ),
    ("worker/slack/delivery.py:release_orphaned", "UPDATE slack_outbox"): (
        "a live worker gives back the outbox leases of a silent worker, which delivered rows of any org (each is "
        "then published and claimed under its own org)"
    ),
}


def listed(table: dict[tuple[str, str], str], s: Statement) -> tuple[str, str] | None:
    """The entry of `table` that covers statement `s`, or None."""
    sql = " ".join(s.sql.split())
    return next((k for k in table if k[0] == s.where and sql.startswith(k[1])), None)


@dataclass(frozen=True)
class Statement:
    # path:function of the project code that issued it; for worker/engine/jobstore.py's functions also the
    # caller that chose the ids ("worker/engine/jobstore.py:lock_job < worker/engine/approvals.py:resume")
    where: str
    sql: str


def _issuer() -> str:
    found: list[str] = []
    frame = sys._getframe(2)
    while frame is not None and len(found) < 2:
        path = Path(frame.f_code.co_filename)
        try:
            rel = path.resolve().relative_to(REPO).as_posix()
        except ValueError:
            rel = ""
        if rel.startswith(PROJECT_DIRS) and rel not in CARRIERS and f"{rel}:{frame.f_code.co_name}" not in CARRIERS:
            found.append(f"{rel}:{frame.f_code.co_name}")
            if not rel.startswith(STORES):
                break
        frame = frame.f_back
    return " < ".join(found)  # "": the test's own reads


_TABLE = re.compile(r'\b(?:FROM|JOIN|UPDATE|INTO)\s+"?(\w+)"?', re.IGNORECASE)


def tenant_tables_of(sql: str) -> set[str]:
    """The tenant tables a statement reads or writes."""
    return {t for t in _TABLE.findall(sql) if t in TENANT_TABLES}


_ORG_CONDITION = re.compile(r"\borg_id\s*(=|IN\b|IS NOT DISTINCT)", re.IGNORECASE)


def unscoped(sql: str) -> bool:
    """True for a SELECT/UPDATE/DELETE on a tenant table with no `org_id` condition in its WHERE (or a
    JOIN's ON: a joined table scoped by the org of the row it joins); an INSERT carries org_id in its
    values."""
    text = " ".join(sql.split())
    verb = text.split(" ", 1)[0].upper()
    if verb not in ("SELECT", "UPDATE", "DELETE", "WITH") or not tenant_tables_of(text):
        return False
    # the conditions: after FROM for a read or a delete (not the selected columns), after WHERE for an UPDATE
    _, found, conditions = text.partition(" WHERE " if verb == "UPDATE" else " FROM ")
    return not found or not _ORG_CONDITION.search(conditions)


@pytest.fixture
def sql_log(backend: Backend) -> Iterator[list[Statement]]:
    """Every statement this process sends to the database while the test runs."""
    seen: list[Statement] = []
    lock = threading.Lock()

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        with lock:
            seen.append(Statement(_issuer(), statement))

    engine = get_engine()
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)


def test_the_checker_tells_scoped_from_unscoped_statements():
    assert unscoped("SELECT sequence_jobs.id FROM sequence_jobs WHERE sequence_jobs.id = ?")
    assert unscoped("UPDATE step_runs SET status=? WHERE step_runs.id = ?")
    assert unscoped("DELETE FROM effects")
    assert not unscoped("SELECT x FROM sequence_jobs WHERE sequence_jobs.id = ? AND sequence_jobs.org_id = ?")
    assert not unscoped("INSERT INTO step_runs (id, org_id) VALUES (?, ?)")
    assert not unscoped("SELECT rate_slots.key FROM rate_slots WHERE rate_slots.key = ?")  # not a tenant table
    assert not unscoped("SELECT orgs.id, users.id FROM orgs JOIN users ON users.id = ? AND users.org_id = orgs.id")
    assert unscoped(
        "SELECT sequence_jobs.org_id FROM sequence_jobs WHERE sequence_jobs.id = ?"
    )  # a column, not a condition
    assert "sequence_definitions" not in TENANT_TABLES and "step_runs" in TENANT_TABLES


@SQLITE
def test_every_sequence_run_scopes_tenant_statements_by_org(
    backend: Backend, sql_log: list[Statement], monkeypatch: pytest.MonkeyPatch
):
    """The demo's loop: one event of each type against the seeded demo org, every approval decided as
    a rep would, until each job has ended; then the log is walked."""
    from collections import Counter

    from worker.config import reset_settings
    from worker.engine.events import fire_event
    from worker.engine.states import JOB_FINAL
    from worker.ops.demo import decide_pending, demo_events, wait_settled
    from worker.ops.inprocess import EmbeddedWorker
    from worker.ops.seed import seed_demo

    monkeypatch.setenv("PROACTIVE_DRY_RUN", "1")
    monkeypatch.setenv("PROACTIVE_UNDO_WINDOW_S", "0.2")
    reset_settings()
    try:
        seed = seed_demo()
        sql_log.clear()  # the seeding is not a sequence run
        rounds: Counter[uuid.UUID] = Counter()
        with EmbeddedWorker():
            roots = [fire_event(e).job_id for e in demo_events(seed, uuid.uuid4().hex[:8])]
            for _round in range(6):
                st = wait_settled(roots, 60)
                if not any(s == "awaiting_approval" for s in st.values()):
                    break
                decide_pending(list(st), rounds, lambda *a, **k: None)
            st = wait_settled(roots, 60)
    finally:
        reset_settings()
    assert all(s in JOB_FINAL for s in st.values()), st  # every job ran to its end
    assert len({s.where for s in sql_log if s.where.startswith("sequences/")}) > 20  # the skills ran
    assert_scoped(sql_log)


def assert_scoped(sql_log: list[Statement]) -> None:
    """Fail naming each project function that sent an unscoped statement on a tenant table."""
    offenders: dict[str, str] = {}
    for s in sql_log:
        if s.where and unscoped(s.sql) and not listed(ALLOWED, s):
            offenders.setdefault(s.where, " ".join(s.sql.split())[:240])
    assert not offenders, "statements on tenant tables without org_id in WHERE:\n" + "\n".join(
        f"{where}: {sql}" for where, sql in sorted(offenders.items())
    )


@SQLITE
def test_approval_paths_outside_the_demo_loop_scope_by_org(
    backend: Backend, sql_log: list[Statement], monkeypatch: pytest.MonkeyPatch
):
    """What the demo loop never does to an approval: a Slack click and its answer, an undo from
    Slack, an expiry, the sweeper applying a decision no worker picked up, the job page. Each is
    scoped by org, and an id given with another org reaches nothing."""
    from datetime import timedelta

    from sqlalchemy import select, update

    from tests.fakes.slack import FakeSlack
    from worker.config import reset_settings
    from worker.db import transaction
    from worker.engine import approvals as approval_rules
    from worker.engine import jobstore, sweeper
    from worker.engine.events import fire_event
    from worker.models import SlackOutbox, User, approvals, jobs, utcnow
    from worker.ops import views
    from worker.ops.demo import demo_events, wait_settled
    from worker.ops.inprocess import EmbeddedWorker
    from worker.ops.seed import seed_demo
    from worker.slack import delivery
    from worker.slack.clickers import forget_clickers
    from worker.slack.clicks import Click, ClickOutcome, Out
    from worker.slack.replace import replace_clicked_message
    from worker.slack.route import handle_click

    monkeypatch.setenv("PROACTIVE_DRY_RUN", "1")
    monkeypatch.setenv("PROACTIVE_UNDO_WINDOW_S", "60")  # the send waits: Undo is in time
    slack = FakeSlack().start()  # the click's answer posts to its response_url
    monkeypatch.setenv("SLACK_API_URL", slack.url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.token)
    reset_settings()
    forget_clickers()
    elsewhere = uuid.uuid4()  # an org that owns none of these rows
    try:
        seed = seed_demo()
        with EmbeddedWorker():
            roots = [fire_event(e).job_id for e in demo_events(seed, uuid.uuid4().hex[:8])]
            wait_settled(roots, 60)
            with transaction() as conn:
                pending = conn.execute(
                    select(approvals)
                    .where(approvals.c.job_id.in_(roots), approvals.c.status == "pending")
                    .order_by(approvals.c.created_at)
                ).all()
            email = next(a for a in pending if a.kind == "email_preview")
            others = [a for a in pending if a.id != email.id]
            assert len(others) >= 2, [a.kind for a in pending]
            outbox = SlackOutbox.__table__
            with transaction() as conn:
                approver = conn.execute(
                    select(User.slack_user_id).where(User.id == uuid.UUID(email.approver_user_ids[0]))
                ).scalar_one()
                # as if its message were in Slack (a dry-run org keeps it in the console)
                conn.execute(
                    update(outbox)
                    .where(outbox.c.approval_id == email.id)
                    .values(channel="D0ALICE", ts="1700000000.000100", status="sent")
                )
            sql_log.clear()

            def click(action: str) -> ClickOutcome:
                return handle_click(Click(action, str(email.id), team_id="T0DEMO0001", slack_user_id=approver))

            # another org's id reaches nothing
            assert replace_clicked_message(email.id, None, org_id=elsewhere) == "gone"
            assert approval_rules.resume(email.id, org_id=elsewhere) == []
            with transaction() as conn:
                assert jobstore.lock_job(conn, email.job_id, org_id=elsewhere) is None
            # a click decides, its answer replaces the message, Undo ends the job before the send
            assert click("email_send_now") == Out.DECIDED
            url = slack.response_url("D0ALICE", "1700000000.000100")
            replace_clicked_message(email.id, url, time.time(), org_id=email.org_id)
            wait_for_status(email.job_id, "running")  # resumed: the send waits for the Undo window
            assert click("email_undo") == Out.UNDONE
            # an expiry, applied as the sweeper does
            with transaction() as conn:
                conn.execute(update(approvals).where(approvals.c.id == others[0].id).values(expires_at=utcnow()))
            assert approval_rules.expire_due(utcnow() + timedelta(seconds=1)) >= 1
            wait_settled(roots, 60)
            # the replaced message was edited in Slack (worker/slack/delivery.py); the sweeper's re-publish scan
            wait_for_delivered(email.id)
            delivery.deliver_due(utcnow() + timedelta(minutes=1))
        # An edit waiting for its delivery, delivered here: the worker's deliveries above may all have
        # found the row leased by a click's answer (which then sent the newest content itself), so
        # the delivery's own statements run here whatever order the worker took.
        with transaction() as conn:
            waiting = (
                conn.execute(
                    update(outbox)
                    .where(outbox.c.approval_id == email.id, outbox.c.org_id == email.org_id)
                    .values(status="pending", lease_expires_at=None)
                    .returning(outbox.c.id)
                )
                .scalars()
                .all()
            )
        # (the fake Slack never saw the message this test marked as posted: its edit fails)
        outcomes = [delivery.deliver(row_id) for row_id in waiting]
        assert waiting and outcomes == [delivery.DeliveryStatus.FAILED] * len(waiting), outcomes
        # a decision no worker picks up: the sweeper applies it
        approval_rules.decide(others[1].id, "reject", user_id=uuid.UUID(others[1].approver_user_ids[0]))
        assert sweeper.resume_decided(utcnow() + timedelta(minutes=5)) >= 1
        # a live worker's scan of the steps held by silent workers (every org's)
        sweeper.reclaim_orphaned(utcnow(), utcnow())
        with transaction() as conn:
            assert views.job_detail(conn, others[1].job_id, others[1].org_id)["status"] == "cancelled"
            ended = {j: s for j, s in conn.execute(select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(roots)))}
    finally:
        reset_settings()
        forget_clickers()
        slack.stop()
    assert ended[email.job_id] == "cancelled" and ended[others[0].job_id] in ("expired", "running", "completed")
    # the delivery ran: its claim, its job read, and the lease holder's update of the row
    # (the fake Slack never saw the message this test marked as posted: the edit ends in `_fail`)
    delivered = {s.where for s in sql_log if s.where.startswith("worker/slack/delivery.py:")}
    assert {"worker/slack/delivery.py:_claim", "worker/slack/delivery.py:_bind_log_context"} <= delivered, delivered
    assert delivered & {"worker/slack/delivery.py:_finish", "worker/slack/delivery.py:_fail"}, delivered
    assert_scoped(sql_log)


def wait_for_delivered(approval_id: uuid.UUID) -> None:
    """Wait until no Slack message of the approval waits for delivery (its edits were sent)."""
    from sqlalchemy import select

    from tests.support.waiting import wait_for
    from worker.db import transaction
    from worker.models import SlackOutbox

    outbox = SlackOutbox.__table__

    def delivered() -> bool:
        with transaction() as conn:
            states = conn.execute(select(outbox.c.status).where(outbox.c.approval_id == approval_id)).scalars().all()
        return bool(states) and "pending" not in states

    wait_for(delivered, what=f"the messages of approval {approval_id} delivered")


def wait_for_status(job_id: uuid.UUID, *wanted: str) -> str:
    """Wait until the job has one of `wanted` statuses."""
    from sqlalchemy import select

    from tests.support.waiting import wait_for
    from worker.db import transaction
    from worker.models import jobs

    def status() -> str | None:
        with transaction() as conn:
            s = conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar()
        return s if s in wanted else None

    return wait_for(status, what=f"job {job_id} {' or '.join(wanted)}")
