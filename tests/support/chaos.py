"""The fault suite's run (tests/chaos): real workers, a workload with approvals and sends, faults,
and an honest count of what came out, taken at the fakes.

    run = ChaosRun(stage, "kill-9-random")
    run.start_workers(2)
    run.fire(12, work_s=0.3)             # jobs of tests/support/chaos_sequences.py, one by one
    run.kill_worker(restart="same")       # any fault; recovery of the steps it held is measured
    outcome = run.finish(timeout_s=90)    # every job final, then the count at the fakes
    outcome.assert_clean()                # 0 lost, 0 stuck, 0 failed, 0 duplicated, 0 missing
    record(outcome)                       # a row for docs/RELIABILITY.md (tests/artifacts)

While the run lasts, an operator thread approves every pending approval of the run once its DM is
at the fake Slack (through `decide`, what the Slack click handler calls), runs the sweeper every
`sweep_every_s` (Beat's job; None: never, so recovery is the heartbeat's alone) and watches, for
each fault, the steps the victim
held: a step counts as recovered when a new attempt of it has started or it ended.

A `Stage` is what a run needs around it: the backend env, the fake Slack and the fake Google (with
latency), and an org whose rep has Slack and Google connected.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from tests.conftest import Backend
from tests.fakes.google import CLIENT_ID, CLIENT_SECRET, FakeGoogle
from tests.fakes.server import Reply
from tests.fakes.slack import FakeSlack
from tests.support import chaos_sequences as workload
from tests.support.engine import TestOrg, event, make_org
from tests.support.google import connect, credentials
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from worker.db import transaction
from worker.engine import registry
from worker.engine.approvals import decide
from worker.engine.events import fire_event
from worker.engine.sweeper import sweep
from worker.errors import AlreadyDecided
from worker.models import SlackOutbox, User, approvals, jobs, steps, worker_heartbeats

REPO = Path(__file__).resolve().parents[2]
# Where each scenario's outcome is appended (one JSON object per line): docs/RELIABILITY.md's source.
RESULTS = REPO / "tests" / "artifacts" / "reliability.jsonl"
FINAL = ("completed", "failed", "cancelled", "expired", "timeout")
# How often the operator thread looks (seconds): the resolution of the recovery times.
TICK_S = 0.2
# A held step that took longer than this to run again is named in the outcome's notes (seconds).
SLOW_RECOVERY_S = 15.0
# Engine knobs of the run: quick retries, a short lease grace. Heartbeats keep their defaults
# (a beat every 2 s, silent after 10 s): recovery is measured as it would be in production.
ENGINE_ENV = {
    "PROACTIVE_SEQUENCE_MODULES": "sequences,tests.support.chaos_sequences",
    "PROACTIVE_RETRY_BASE_S": "0.2",
    "PROACTIVE_LEASE_GRACE_S": "1",
    "PROACTIVE_SLACK_CHANNEL_INTERVAL_S": "0.05",
}


def with_latency(fake: FakeGoogle, latency_s: float) -> None:
    """Every answer of the fake Google is held `latency_s` after the request took effect."""
    for i, (method, pattern, route) in enumerate(fake._routes):

        def slow(request: Any, match: Any, route: Any = route) -> Reply:
            reply = route(request, match)
            return Reply(reply.status, reply.body, reply.headers, delay_s=max(reply.delay_s, latency_s))

        fake._routes[i] = (method, pattern, slow)


@dataclass
class Stage:
    """What a run needs around it: env for the workers, the fakes, and the org the jobs are for."""

    backend: Backend
    slack: FakeSlack
    google: FakeGoogle
    org: TestOrg
    rep_email: str
    env: dict[str, str]


def google_env(fake: FakeGoogle, encryption_key: str) -> dict[str, str]:
    """The environment that points the Google clients at `fake`."""
    return {
        "GOOGLE_TOKEN_URI": fake.token_uri,
        "GOOGLE_API_URL": fake.url,
        "GOOGLE_CLIENT_ID": CLIENT_ID,
        "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "ENCRYPTION_KEYS": encryption_key,
    }


def slack_env(fake: FakeSlack) -> dict[str, str]:
    """The environment that points the Slack client at `fake`."""
    return {"SLACK_BOT_TOKEN": fake.token, "SLACK_API_URL": fake.url}


def prepare_org(google: FakeGoogle) -> tuple[TestOrg, str]:
    """A new org whose rep has a Slack user id and Google connected (this process's settings must
    already point at the stage's database and fakes); (org, the rep's address)."""
    org = make_org()
    with transaction() as conn:
        conn.execute(
            update(User)
            .where(User.id == org.rep, User.org_id == org.id)
            .values(slack_user_id=f"U{uuid.uuid4().hex[:10].upper()}")
        )
        address = conn.execute(select(User.email).where(User.id == org.rep)).scalar_one()
    connect(org, address, None, creds=credentials(google, address))
    return org, address


def retire_pending_messages(org_id: uuid.UUID) -> int:
    """Mark the org's Slack messages still pending as failed; how many. A stage's runs stop their
    workers with deliveries still queued (an approval message's replacement, a row given back by a
    kill); left pending, a later test module's worker would deliver them at its start (its recovery
    pass re-publishes every pending row) to that module's own fake Slack."""
    with transaction() as conn:
        done = conn.execute(
            update(SlackOutbox.__table__)
            .where(SlackOutbox.__table__.c.org_id == org_id, SlackOutbox.__table__.c.status == "pending")
            .values(status="failed", lease_expires_at=None, claimed_by=None)
        )
    return done.rowcount


@dataclass
class Fault:
    """One fault and what it cost: the steps the victim held, and how long until each ran again."""

    what: str
    at: float  # time.monotonic() of the fault
    held: dict[uuid.UUID, int]  # step run id -> its attempt when the fault hit
    recovered_s: dict[uuid.UUID, float] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a scenario's run came to, counted at the fakes and in the jobs the API accepted."""

    scenario: str
    broker: str
    jobs: int
    faults: int
    completed: int
    failed: list[str]  # "job n: status: reason" of every job that ended otherwise than completed
    stuck: list[str]  # jobs not final at the deadline: "job n: status"
    lost: int  # jobs accepted (fire_event returned) with no row in the database
    duplicated: dict[str, int]  # effect -> copies beyond the first, over all jobs (at the fakes)
    missing: dict[str, int]  # effect -> completed jobs without it (at the fakes)
    recovery_s: list[float]  # per held step: fault -> a new attempt started (or the step ended)
    unrecovered: int  # held steps never seen again (their job still ended: see stuck/failed)
    seconds: float  # the run's wall time
    notes: list[str] = field(default_factory=list)

    @property
    def recovery_p50(self) -> float | None:
        return round(statistics.median(self.recovery_s), 2) if self.recovery_s else None

    @property
    def recovery_p95(self) -> float | None:
        if not self.recovery_s:
            return None
        ordered = sorted(self.recovery_s)
        return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2)

    def summary(self) -> str:
        """One paragraph for an assertion message."""
        return json.dumps(self.row(), indent=1)

    def row(self) -> dict[str, Any]:
        """The outcome as a JSON-able dict (recovery as p50/p95/max)."""
        data = asdict(self)
        data.pop("recovery_s")
        data |= {
            "recovery_p50_s": self.recovery_p50,
            "recovery_p95_s": self.recovery_p95,
            "recovery_max_s": round(max(self.recovery_s), 2) if self.recovery_s else None,
            "recovered": len(self.recovery_s),
        }
        return data

    def assert_clean(self, *, recovery_p95_s: float | None = None) -> None:
        """Nothing lost, stuck, failed, duplicated or missing; recovery within `recovery_p95_s`."""
        assert (self.lost, self.stuck, self.failed) == (0, [], []), self.summary()
        assert not any(self.duplicated.values()), self.summary()
        assert not any(self.missing.values()), self.summary()
        assert self.completed == self.jobs, self.summary()
        if recovery_p95_s is not None and self.recovery_s:
            assert self.recovery_p95 is not None and self.recovery_p95 <= recovery_p95_s, self.summary()


def record(outcome: Outcome) -> None:
    """Append the outcome to tests/artifacts/reliability.jsonl (the source of docs/RELIABILITY.md)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    row = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **outcome.row()}
    with RESULTS.open("a") as out:
        out.write(json.dumps(row) + "\n")


class ChaosRun:
    """One scenario's run on a stage: workers, jobs, faults, and the operator thread."""

    def __init__(
        self,
        stage: Stage,
        scenario: str,
        *,
        sweep_every_s: float | None = 5.0,
        seed: int | None = None,
    ) -> None:
        self.stage = stage
        self.scenario = scenario
        self.run_id = uuid.uuid4().hex[:6]
        self.sweep_every_s = sweep_every_s
        self.random = random.Random(seed)
        self.workers: list[WorkerProcess] = []
        self.accepted: dict[int, uuid.UUID] = {}  # job number -> job id
        self.refused: list[str] = []  # fire_event errors (nothing accepted: not lost)
        self.faults: list[Fault] = []
        self.errors: Counter[str] = Counter()  # the operator thread's errors (a database outage...)
        self._names = iter(range(10_000))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._operator = threading.Thread(target=self._operate, daemon=True, name=f"chaos-{scenario}")
        self._operator.start()

    # ------------------------------------------------------------------ workers

    def start_worker(self, name: str | None = None, **env: str) -> WorkerProcess:
        """Start one prefork worker (2 processes) with the stage's env; returns it once it consumes."""
        name = name or f"chaos-{self.scenario[:20]}-{self.run_id}-{next(self._names)}"
        worker = WorkerProcess({**self.stage.env, **env}, self.stage.backend.log_dir, name).start()
        self.workers.append(worker)
        return worker

    def start_workers(self, count: int) -> list[WorkerProcess]:
        """Start `count` workers."""
        return [self.start_worker() for _ in range(count)]

    def live_workers(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.alive]

    def pool_children(self, worker: WorkerProcess) -> list[int]:
        """The pids of `worker`'s pool children (from /proc)."""
        assert worker.proc is not None
        pids: list[int] = []
        for children in Path(f"/proc/{worker.proc.pid}/task").glob("*/children"):  # any thread may fork
            with contextlib.suppress(OSError):
                pids += [int(pid) for pid in children.read_text().split()]
        return pids

    def held_by(self, worker: WorkerProcess, pid: int | None = None) -> dict[uuid.UUID, int]:
        """The running steps the worker (or one of its children, `pid`) holds: step run id -> attempt."""
        assert worker.proc is not None
        with transaction() as conn:
            instances = [
                r.instance
                for r in conn.execute(
                    select(worker_heartbeats.c.instance).where(worker_heartbeats.c.pid == worker.proc.pid)
                )
            ]
            if not instances:
                return {}
            claimants = steps.c.claimed_by.in_(instances)
            for instance in instances:
                claimants = claimants | steps.c.claimed_by.like(f"{instance}/%")
            if pid is not None:
                claimants = steps.c.claimed_by.in_([f"{i}/{pid}" for i in instances])
            rows = conn.execute(
                select(steps.c.id, steps.c.attempt).where(
                    steps.c.org_id == self.stage.org.id, steps.c.status == "running", claimants
                )
            ).all()
        return {r.id: r.attempt for r in rows}

    def kill_worker(self, worker: WorkerProcess | None = None, *, restart: str | None = "same") -> Fault:
        """kill -9 a worker's whole process group (a random live one by default), then start it
        again under the same name (`same`: a supervisor restarting it), a new one (`new`: a new
        container), or not at all (None)."""
        worker = worker or self.random.choice(self.live_workers())
        fault = self._fault(f"kill -9 worker {worker.name}", self.held_by(worker))
        worker.kill()
        if restart == "same":
            self.start_worker(worker.name)
        elif restart == "new":
            self.start_worker()
        return fault

    def kill_child(self, worker: WorkerProcess | None = None) -> Fault | None:
        """kill -9 one pool child of a worker (a random live worker; the child running a step if
        any); None when it has no child."""
        worker = worker or self.random.choice(self.live_workers())
        children = self.pool_children(worker)
        if not children:
            return None
        busy = [pid for pid in children if self.held_by(worker, pid)]
        pid = self.random.choice(busy or children)
        fault = self._fault(f"kill -9 pool child {pid} of {worker.name}", self.held_by(worker, pid))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return fault

    def _fault(self, what: str, held: dict[uuid.UUID, int]) -> Fault:
        fault = Fault(what, time.monotonic(), held)
        with self._lock:
            self.faults.append(fault)
        return fault

    def note_fault(self, what: str, held: dict[uuid.UUID, int] | None = None) -> Fault:
        """Record a fault caused elsewhere (a broker stopped, a database down): its held steps'
        recovery is measured like a kill's."""
        return self._fault(what, held or {})

    # ------------------------------------------------------------------ jobs

    def fire(self, count: int, *, work_s: float = 0.0, every_s: float = 0.0) -> list[uuid.UUID]:
        """Fire `count` jobs of the workload, `every_s` apart; their ids (refusals are noted)."""
        fired = []
        for _ in range(count):
            n = len(self.accepted) + len(self.refused)
            payload = {"n": n, "run": self.run_id, "work_s": work_s}
            try:
                with registry.overridden(workload.SEQUENCES):
                    job_id = fire_event(event(self.stage.org, workload.EVENT_TYPE, payload)).job_id
            except Exception as exc:  # a refusal is counted, never a crash of the run
                self.refused.append(f"job {n}: {type(exc).__name__}: {exc}")
            else:
                self.accepted[n] = job_id
                fired.append(job_id)
            if every_s:
                self._stop.wait(every_s)
        return fired

    def statuses(self) -> dict[uuid.UUID, tuple[str, str | None]]:
        """job id -> (status, reason) of the run's accepted jobs."""
        ids = list(self.accepted.values())
        with transaction() as conn:
            rows = conn.execute(
                select(jobs.c.id, jobs.c.status, jobs.c.reason).where(
                    jobs.c.org_id == self.stage.org.id, jobs.c.id.in_(ids)
                )
            ).all()
        return {r.id: (r.status, r.reason) for r in rows}

    def final_count(self) -> int:
        """How many of the accepted jobs are final."""
        return sum(status in FINAL for status, _ in self.statuses().values())

    def wait_progress(self, final: int, timeout_s: float = 60.0) -> None:
        """Wait until at least `final` jobs are final (to place a fault mid-run)."""
        wait_for(lambda: self.final_count() >= final, timeout_s=timeout_s, what=f"{final} jobs final")

    # ------------------------------------------------------------------ the operator thread

    def _operate(self) -> None:
        last_sweep = time.monotonic()
        while not self._stop.wait(TICK_S):
            for name, action in (("approve", self._approve_pending), ("watch", self._watch_recovery)):
                self._guarded(name, action)
            if self.sweep_every_s is not None and time.monotonic() - last_sweep >= self.sweep_every_s:
                last_sweep = time.monotonic()
                self._guarded("sweep", sweep)

    def _guarded(self, name: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:  # a database or broker outage: try again next tick
            self.errors[f"{name}: {type(exc).__name__}"] += 1

    def _approve_pending(self) -> None:
        ids = list(self.accepted.values())
        if not ids:
            return
        with transaction() as conn:
            pending = conn.execute(
                select(approvals.c.id).where(
                    approvals.c.org_id == self.stage.org.id,
                    approvals.c.job_id.in_(ids),
                    approvals.c.status == "pending",
                )
            ).all()
        if not pending:
            return
        posted = " ".join(json.dumps(c.params.get("blocks") or []) for c in self.stage.slack.calls("chat.postMessage"))
        for row in pending:
            if str(row.id) not in posted:
                continue  # the rep clicks a button Slack shows: not before the DM is posted
            with contextlib.suppress(AlreadyDecided):
                decide(row.id, "approve", user_id=self.stage.org.rep, org_id=self.stage.org.id, actor="slack")

    def _watch_recovery(self) -> None:
        with self._lock:
            open_faults = [f for f in self.faults if len(f.recovered_s) < len(f.held)]
        if not open_faults:
            return
        waiting = {sid for f in open_faults for sid in f.held if sid not in f.recovered_s}
        with transaction() as conn:
            rows = conn.execute(
                select(steps.c.id, steps.c.attempt, steps.c.status).where(
                    steps.c.org_id == self.stage.org.id, steps.c.id.in_(waiting)
                )
            ).all()
        now = time.monotonic()
        for row in rows:
            for fault in open_faults:
                before = fault.held.get(row.id)
                if before is None or row.id in fault.recovered_s:
                    continue
                if row.attempt > before or row.status != "running":
                    fault.recovered_s[row.id] = now - fault.at

    # ------------------------------------------------------------------ the end

    def finish(self, *, timeout_s: float = 90.0) -> Outcome:
        """Wait until every accepted job is final (or the deadline), stop the workers, and count."""
        with contextlib.suppress(AssertionError):
            wait_for(
                lambda: self.final_count() == len(self.accepted),
                timeout_s=timeout_s,
                what="every accepted job final",
            )
        outcome = self._count(time.monotonic() - self._started)
        self.stop()
        return outcome

    def wait_deliveries(self, jobs_completed: list[int], timeout_s: float = 20.0) -> None:
        """The confirmation DMs of completed jobs are posted after the job ends (the outbox): wait
        until each has reached the fake Slack, or the deadline (a missing one is then counted)."""
        texts = {workload.confirmation_text(self.run_id, n) for n in jobs_completed}
        with contextlib.suppress(AssertionError):
            wait_for(
                lambda: texts <= {m["text"] for m in self.stage.slack.messages.values()},
                timeout_s=timeout_s,
                what="every confirmation DM posted",
            )

    def _count(self, seconds: float) -> Outcome:
        statuses = self.statuses()
        by_n = {n: statuses.get(job_id) for n, job_id in self.accepted.items()}
        completed = [n for n, s in by_n.items() if s is not None and s[0] == "completed"]
        self.wait_deliveries(completed)
        copies = self.effects_at_fakes()
        duplicated = {kind: sum(max(0, c - 1) for c in counts.values()) for kind, counts in copies.items()}
        missing = {kind: sum(1 for n in completed if counts.get(n, 0) == 0) for kind, counts in copies.items()}
        recovery = [s for f in self.faults for s in f.recovered_s.values()]
        unrecovered = sum(len(f.held) - len(f.recovered_s) for f in self.faults)
        notes = [f"{count} x {what}" for what, count in self.errors.most_common()]
        notes += self.refused
        notes += [  # where a slow recovery came from, for the post-mortem
            f"step {step_id} recovered {seconds:.1f} s after: {f.what}"
            for f in self.faults
            for step_id, seconds in f.recovered_s.items()
            if seconds > SLOW_RECOVERY_S
        ]
        return Outcome(
            scenario=self.scenario,
            broker=self.stage.backend.name,
            jobs=len(self.accepted),
            faults=len(self.faults),
            completed=len(completed),
            failed=[f"job {n}: {s[0]}: {s[1]}" for n, s in by_n.items() if s is not None and s[0] in FINAL[1:]],
            stuck=[
                f"job {n}: {s[0] if s else 'no row'}" for n, s in by_n.items() if s is not None and s[0] not in FINAL
            ],
            lost=sum(1 for s in by_n.values() if s is None),
            duplicated=duplicated,
            missing=missing,
            recovery_s=recovery,
            unrecovered=unrecovered,
            seconds=round(seconds, 1),
            notes=notes,
        )

    def effects_at_fakes(self) -> dict[str, Counter[int]]:
        """effect -> job number -> how many the fakes received (approval DMs, emails, invites,
        confirmation DMs)."""
        found: dict[str, Counter[int]] = {k: Counter() for k in ("approval", "email", "invite", "confirmation")}
        numbers = {workload.recipient(self.run_id, n): n for n in self.accepted}
        job_numbers = {job_id: n for n, job_id in self.accepted.items()}
        confirmations = {workload.confirmation_text(self.run_id, n): n for n in self.accepted}
        with transaction() as conn:
            approval_numbers = {
                str(r.id): job_numbers[r.job_id]
                for r in conn.execute(
                    select(approvals.c.id, approvals.c.job_id).where(
                        approvals.c.org_id == self.stage.org.id, approvals.c.job_id.in_(list(job_numbers))
                    )
                )
            }
        for call in self.stage.slack.calls("chat.postMessage"):  # what Slack posted (a later
            if not call.ok:  # chat.update replaces an approval's buttons: count the posts)
                continue
            if (n := confirmations.get(str(call.params.get("text", "")))) is not None:
                found["confirmation"][n] += 1
                continue
            blocks = json.dumps(call.params.get("blocks") or [])
            for approval_id, n in approval_numbers.items():
                if approval_id in blocks:  # the buttons carry the approval's id
                    found["approval"][n] += 1
        for sent in list(self.stage.google.sent):
            if (n := numbers.get(str(sent.mime["To"]))) is not None:
                found["email"][n] += 1
        for invite in list(self.stage.google.events.values()):
            emails = [a.get("email") for a in invite.get("attendees", [])]
            for address in emails:
                if (n := numbers.get(address)) is not None:
                    found["invite"][n] += 1
        return found

    def stop(self) -> None:
        """Stop the operator thread and every worker (warm shutdown, SIGKILL after a grace)."""
        self._stop.set()
        self._operator.join(timeout=10)
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.stop()


@contextlib.contextmanager
def chaos_run(stage: Stage, scenario: str, **kwargs: Any) -> Iterator[ChaosRun]:
    """A ChaosRun whose workers and thread are stopped however the test ends."""
    run = ChaosRun(stage, scenario, **kwargs)
    try:
        yield run
    finally:
        run.stop()
