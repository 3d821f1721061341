"""Benchmark: the nine real sequences on PostgreSQL + Redis with a real prefork worker, in dry-run.

``.venv/bin/python -m bench.sequences [--events 1000] [--quick] [--no-decide] [--baseline-ref f989315]``

One run: a fresh database ``proactive_bench_seq_<random>`` (migrated to head, dropped at the end),
an empty Redis DB (flushed first and last), one ``celery -A worker.celery_app worker -P prefork -c 2
-Q steps,slow,edge`` with ``PROACTIVE_DRY_RUN=1`` (its process group is always killed). Several orgs
get the smoke fixture records (``worker.ops.smoke.ensure_fixtures``); the events are
``worker.ops.smoke.smoke_events`` envelopes (source ``smoke``: Slack to the console inbox, no
email/calendar calls) with a unique idempotency key each, mixed like a working day (``--mix day``,
default) or round-robin, fired as fast as ``--fire-threads`` threads can (or at ``--rate``).

Approvals: by default a thread of this process decides every pending approval the way a rep who
says yes would (``worker.engine.approvals.decide``: proposal ``approve_send``, email ``send_now`` with the
undo window set to 0, calendar ``send_invite`` on the first slot), so the resumed part of each job
and the follow-up jobs it fires (meeting_ended -> proposal_generation + calendar_find_times) are
measured too; the run ends when every job of the measured orgs is final. ``--no-decide`` leaves
pauses alone and counts ``awaiting_approval`` as final. An uncounted warm-up (``--warmup``) runs
first on its own orgs; worker RSS is read from /proc after it and again after the run.

``--baseline-ref REF`` compares with the code of commit REF in the same invocation: the benchmark
runs ``--rounds`` times from this tree and from a git worktree of REF (made once under /tmp, this
tree's bench/ copied over it; its own worker, client, database and migrations), alternating which
goes first, and prints both and the ratios (events/s, worker CPU per event, worker RSS per process).

``python -m bench.profile_sequences`` counts the SQL work per event type in-process (no broker);
``--py-spy FILE`` samples the worker during the measured phase.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy import select

from bench.child_profile import DIR_ENV as CPROFILE_DIR_ENV
from bench.harness import (
    Backends,
    WorkerProcess,
    bench_env,
    cpu_delta,
    cpu_seconds,
    epoch,
    fresh_db_name,
    machine_line,
    percentile,
    pick_redis_db,
    rss_mib,
    start_py_spy,
    stop_py_spy,
    use_env,
)

# The product's sequences, plus the hook that tells the benchmark the worker consumes.
SEQUENCE_MODULES = "sequences,bench.ready"
QUEUES = "steps,slow,edge"
# Pause between two "is everything settled?" checks (seconds).
POLL_S = 0.1
# Pause of the decider when no approval is pending (seconds).
DECIDER_IDLE_S = 0.05
# Targets the benchmark is measured against (each reported as met or NOT met).
TARGET_EVENTS_PER_S = 60.0
TARGET_RSS_GROWTH_MIB = 10.0

# A working day of a 20-rep team, per 100 events (the sources of docs/events.md: Gmail push, recorder webhook,
# meeting-prep cron, stale-deals cron, morning brief, reps' follow-ups).
DAY_MIX: dict[str, int] = {
    "email_received": 30,
    "meeting_ended": 18,
    "pre_meeting_90min": 18,
    "stale_deal_revival": 8,
    "calendar_find_times": 7,
    "proposal_generation": 5,
    "deal_risk_scan": 5,
    "campaign_daily_check": 5,
    "coaching_weekly": 4,
}
ACTIVE_JOB = ("queued", "running")
GOOD_FINAL = ("completed", "skipped")


def schedule(n: int, weights: Mapping[str, int]) -> list[str]:
    """``n`` event types in a smooth weighted round-robin (types interleave, proportions hold)."""
    current = dict.fromkeys(weights, 0)
    total = sum(weights.values())
    out: list[str] = []
    for _ in range(n):
        for t, w in weights.items():
            current[t] += w
        pick = max(current, key=lambda t: current[t])
        current[pick] -= total
        out.append(pick)
    return out


def rep_choice(kind: str, preview: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """What a rep who says yes clicks on an approval of this kind."""
    if kind == "calendar_slots":
        slots = preview.get("slots") or []
        return ("send_invite", {"slot": slots[0]["start"]}) if slots else ("handle", None)
    if kind == "proposal_review":
        return "approve_send", None
    if kind == "email_preview":
        return "send_now", None
    return "approve", None


class Decider(threading.Thread):
    """Decides every pending approval of the bench orgs, like a rep clicking in Slack."""

    def __init__(self, org_ids: list[uuid.UUID], reps: Mapping[uuid.UUID, uuid.UUID]) -> None:
        super().__init__(name="decider", daemon=True)
        self.org_ids = org_ids
        self.reps = reps
        self.stop = threading.Event()
        self.decided: Counter[str] = Counter()
        self.errors: list[str] = []
        self.busy_s = 0.0
        self.polls = 0  # polling transactions (left out of the commit count)

    def run(self) -> None:
        """Poll pending approvals and decide them until stopped."""
        from worker.db import transaction  # after use_env: worker modules read the settings at import
        from worker.engine.approvals import decide
        from worker.errors import AlreadyDecided
        from worker.models import approvals

        q = (
            select(
                approvals.c.id, approvals.c.org_id, approvals.c.kind, approvals.c.preview, approvals.c.approver_user_ids
            )
            .where(approvals.c.org_id.in_(self.org_ids), approvals.c.status == "pending")
            .order_by(approvals.c.created_at)
        )
        while not self.stop.is_set():
            pending: list[Any] = []
            try:
                self.polls += 1
                with transaction() as conn:
                    pending = list(conn.execute(q))
                t0 = time.perf_counter()
                for a in pending:
                    decision, data = rep_choice(a.kind, a.preview or {})
                    user = uuid.UUID(str(a.approver_user_ids[0])) if a.approver_user_ids else self.reps[a.org_id]
                    try:
                        decide(a.id, decision, user_id=user, data=data, actor="bench")
                        self.decided[f"{a.kind}:{decision}"] += 1
                    except AlreadyDecided:
                        pass
                self.busy_s += time.perf_counter() - t0
            except Exception as exc:  # reported at the end; the run then counts as failed
                self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                if len(self.errors) > 20:
                    return
            if not pending:
                self.stop.wait(DECIDER_IDLE_S)


@dataclass
class Phase:
    """What one batch (warm-up or measured) fired and when."""

    orgs: list[uuid.UUID]
    job_ids: list[uuid.UUID] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    fire_start: float = 0.0
    fire_end: float = 0.0


class Bench:
    """Owns the database, the Redis DB, the worker and the measurements of one run."""

    def __init__(self, args: argparse.Namespace, backends: Backends, workdir: Path) -> None:
        self.args = args
        self.db = backends
        self.workdir = workdir
        self.env = sequences_env(backends, args.cprofile)
        self.polls = 0  # the benchmark's own polling queries (left out of the commit count)
        self.templates: dict[uuid.UUID, dict[str, dict[str, Any]]] = {}
        self.reps: dict[uuid.UUID, uuid.UUID] = {}

    # ------------------------------------------------------------------ set-up / tear-down

    def setup(self) -> None:
        """Create and migrate the database, flush the Redis DB, load the sequences."""
        self.db.create()
        from worker.engine import registry  # after use_env (settings read at import)

        registry.load()
        missing = set(DAY_MIX) - set(registry.registered())
        if missing:
            raise RuntimeError(f"sequences not registered: {sorted(missing)}")

    def teardown(self) -> None:
        """Close connections, drop the database (unless --keep), flush the Redis DB (errors reported)."""
        if self.db.created and self.args.keep:
            print(f"kept database {self.db.db_name} (--keep); drop it when done", file=sys.stderr)
        self.db.close(keep=self.args.keep)

    def make_orgs(self, n: int, label: str) -> list[uuid.UUID]:
        """``n`` enabled orgs with the smoke fixtures; their event envelopes are kept as templates."""
        from worker.db import session_factory  # after use_env (settings read at import)
        from worker.models import Org
        from worker.ops.smoke import ensure_fixtures, smoke_events

        zones = ("America/New_York", "Europe/Berlin", "America/Los_Angeles", "UTC", "Asia/Singapore")
        ids = [uuid.uuid4() for _ in range(n)]
        with session_factory().begin() as s:
            for k, org_id in enumerate(ids):
                s.add(
                    Org(id=org_id, name=f"bench {label} {k}", timezone=zones[k % len(zones)], enabled=True, settings={})
                )
        for org_id in ids:
            fixtures = ensure_fixtures(org_id)
            self.templates[org_id] = smoke_events(fixtures, "tmpl")
            self.reps[org_id] = fixtures.rep_id
        return ids

    # ------------------------------------------------------------------ firing and waiting

    def fire(self, phase: Phase, n: int, tag: str, rate: float) -> None:
        """Fire ``n`` events over the phase's orgs from ``--fire-threads`` threads (paced at ``rate``)."""
        from worker.engine.events import fire_event  # after use_env (settings read at import)

        weights = DAY_MIX if self.args.mix == "day" else dict.fromkeys(DAY_MIX, 1)
        types = schedule(n, weights)
        ids: list[uuid.UUID | None] = [None] * n
        threads = max(1, self.args.fire_threads)
        start = time.time()

        def one(i: int) -> None:
            if rate > 0:
                delay = start + i / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            org = phase.orgs[i % len(phase.orgs)]
            event = {**self.templates[org][types[i]], "idempotency_key": f"bench:{tag}:{i}"}
            ids[i] = fire_event(event).job_id

        def part(k: int) -> None:
            for i in range(k, n, threads):
                one(i)

        phase.fire_start = start
        with ThreadPoolExecutor(threads) as pool:
            for fut in [pool.submit(part, k) for k in range(threads)]:
                fut.result()
        phase.fire_end = time.time()
        phase.job_ids = [j for j in ids if j is not None]
        phase.types = types

    def wait_settled(self, phase: Phase, worker: WorkerProcess, decider: Decider | None) -> None:
        """Wait until every job of the phase's orgs is final (or paused, without a decider)."""
        deadline = time.monotonic() + 90 + len(phase.job_ids) * 0.2
        # Cheap first (the status index of sequence_jobs); the step/approval check only once no job is open.
        open_sql = "SELECT count(*) FROM sequence_jobs WHERE status = ANY(%(s)s) AND org_id = ANY(%(o)s)"
        rest_sql = (
            "SELECT (SELECT count(*) FROM step_runs WHERE status = ANY(%(s)s) AND org_id = ANY(%(o)s)),"
            " (SELECT count(*) FROM approvals WHERE status = 'pending' AND org_id = ANY(%(o)s))"
        )
        open_states = [*ACTIVE_JOB, *([] if decider is None else ["awaiting_approval"])]
        while True:
            self.polls += 1
            open_jobs = self.db.admin.execute(open_sql, {"s": open_states, "o": phase.orgs}).fetchone()[0]
            steps = pending = 0
            if open_jobs == 0:
                self.polls += 1
                steps, pending = self.db.admin.execute(rest_sql, {"s": list(ACTIVE_JOB), "o": phase.orgs}).fetchone()
                if steps == 0 and (decider is None or pending == 0):
                    return
            worker.check_alive()
            if decider is not None and not decider.is_alive():
                raise RuntimeError(f"the decider stopped: {decider.errors[-3:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"not settled in time: {open_jobs} jobs open, {steps} steps queued/running, "
                    f"{pending} approvals pending\n{worker.log_tail()}"
                )
            time.sleep(POLL_S)

    # ------------------------------------------------------------------ measurements

    def pg_counters(self) -> dict[str, int]:
        """Transaction and row counters of the bench database (pg_stat_database)."""
        self.db.admin.execute("SELECT pg_stat_clear_snapshot()")
        row = self.db.admin.execute(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, deadlocks"
            " FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return dict(zip(("commits", "rollbacks", "inserted", "updated", "deadlocks"), row, strict=True))

    def collect(self, phase: Phase) -> Result:
        """Read the jobs, steps and approvals of the phase's orgs."""
        o = {"o": phase.orgs}
        cur = self.db.admin.cursor(row_factory=namedtuple_row)
        jobs = cur.execute(
            "SELECT id, event_type, status, parent_job_id, created_at, finished_at, paused_at, error, error_step,"
            " reason FROM sequence_jobs WHERE org_id = ANY(%(o)s)",
            o,
        ).fetchall()
        steps = cur.execute(
            "SELECT job_id, step, status, duration_ms, error FROM step_runs WHERE org_id = ANY(%(o)s)", o
        ).fetchall()
        approvals = cur.execute(
            "SELECT job_id, kind, status, created_at, decided_at FROM approvals WHERE org_id = ANY(%(o)s)", o
        ).fetchall()
        scheduled = self.db.admin.execute(
            "SELECT count(*) FROM scheduled_events WHERE org_id = ANY(%(o)s) AND fired_at IS NULL", o
        ).fetchone()[0]
        return Result(phase, jobs, steps, approvals, scheduled)


@dataclass
class Result:
    """Rows read after a phase, and the numbers derived from them."""

    phase: Phase
    jobs: list[Any]
    steps: list[Any]
    approvals: list[Any]
    unfired_scheduled: int

    def first_stop(self) -> dict[uuid.UUID, datetime | None]:
        """Each job's first stop: its first approval opening, else its end."""
        first: dict[uuid.UUID, datetime] = {}
        for a in self.approvals:
            if a.job_id not in first or a.created_at < first[a.job_id]:
                first[a.job_id] = a.created_at
        return {j.id: first.get(j.id) or j.finished_at or j.paused_at for j in self.jobs}

    def last_decision(self) -> dict[uuid.UUID, datetime]:
        """Each paused job's latest decision time."""
        out: dict[uuid.UUID, datetime] = {}
        for a in self.approvals:
            if a.decided_at is not None and (a.job_id not in out or a.decided_at > out[a.job_id]):
                out[a.job_id] = a.decided_at
        return out


def sequences_env(backends: Backends, cprofile_dir: str = "") -> dict[str, str]:
    """Environment of this process and the worker: bench database and broker, dry-run, no undo wait;
    with `cprofile_dir`, the pool processes profile themselves there (bench.child_profile)."""
    extra = {"PROACTIVE_DRY_RUN": "1", "PROACTIVE_UNDO_WINDOW_S": "0"}
    modules = SEQUENCE_MODULES
    if cprofile_dir:
        Path(cprofile_dir).mkdir(parents=True, exist_ok=True)
        extra[CPROFILE_DIR_ENV] = str(Path(cprofile_dir).resolve())
        modules += ",bench.child_profile"
    return bench_env(backends, modules, **extra)


# --------------------------------------------------------------------------- report


def ms_stats(values: list[float]) -> str:
    """``p50 X ms, p95 Y ms`` (or n/a)."""
    if not values:
        return "n/a"
    return f"p50 {percentile(values, 50):.0f} ms, p95 {percentile(values, 95):.0f} ms"


def report(args: argparse.Namespace, res: Result, window: Mapping[str, Any]) -> tuple[list[str], bool]:
    """The printed result and whether every job ended well."""
    phase = res.phase
    roots = set(phase.job_ids)
    by_id = {j.id: j for j in res.jobs}
    first = res.first_stop()
    decided = res.last_decision()
    lines: list[str] = []
    n_events = len(phase.job_ids)

    # Throughput: first fire -> last job final (every job, follow-ups included) / last first stop.
    ends = [epoch(j.finished_at) for j in res.jobs if j.finished_at is not None]
    stops = [epoch(t) for t in first.values() if t is not None]
    last_final = max(ends) if ends else phase.fire_end
    last_stop = max(stops) if stops else phase.fire_end
    end = last_final if not args.no_decide else max(last_stop, last_final)
    seconds = end - phase.fire_start
    ran = [s for s in res.steps if s.status in ("succeeded", "failed")]
    skipped_steps = sum(1 for s in res.steps if s.status == "skipped")
    follow = [j for j in res.jobs if j.id not in roots]
    eps = n_events / seconds
    follow_types = ", ".join(f"{n} {t}" for t, n in Counter(j.event_type for j in follow).most_common()) or "none"
    lines += [
        "",
        f"Events: {n_events} fired in {phase.fire_end - phase.fire_start:.2f} s "
        f"({n_events / max(phase.fire_end - phase.fire_start, 1e-9):.0f}/s offered), "
        f"+{len(follow)} follow-up jobs ({follow_types})",
        f"Throughput: {eps:.1f} events/s, {len(res.jobs) / seconds:.1f} jobs/s, {len(ran) / seconds:.0f} steps/s "
        f"({len(ran)} steps run, {skipped_steps} skipped) over {seconds:.2f} s = first fire -> "
        + ("last job final (decisions and follow-ups included)" if not args.no_decide else "last job final or paused"),
    ]
    if not args.no_decide:
        lines.append(
            f"  to first stop only (pauses counted as final): {n_events / (last_stop - phase.fire_start):.1f} "
            f"events/s over {last_stop - phase.fire_start:.2f} s"
        )

    # Latency of the fired events (root jobs).
    to_stop = [(epoch(first[j]) - epoch(by_id[j].created_at)) * 1000 for j in roots if first.get(j)]
    resumed = [
        (epoch(by_id[j].finished_at) - epoch(decided[j])) * 1000
        for j in roots
        if j in decided and by_id[j].finished_at is not None
    ]
    whole = [
        (epoch(by_id[j].finished_at) - epoch(by_id[j].created_at)) * 1000
        for j in roots
        if by_id[j].finished_at is not None
    ]
    lines += [
        f"Latency per event (created_at -> ...), n={len(to_stop)}, "
        + ("burst: time queued behind earlier events included:" if not args.rate else f"paced at {args.rate:g}/s:"),
        f"  -> final or first pause (approval opened):   {ms_stats(to_stop)}",
    ]
    if not args.no_decide:
        lines += [
            f"  decision -> final (resumed part, n={len(resumed)}):  {ms_stats(resumed)}",
            f"  -> final incl. waiting for the decision:     {ms_stats(whole)}",
        ]

    # Final states.
    status_roots = Counter(by_id[j].status for j in roots)
    status_all = Counter(j.status for j in res.jobs)
    paused_kinds = Counter(a.kind for a in res.approvals if a.status == "pending")
    lines.append(
        "Final status, events: "
        + ", ".join(f"{n} {s}" for s, n in status_roots.most_common())
        + "; all jobs: "
        + ", ".join(f"{n} {s}" for s, n in status_all.most_common())
        + (f" (paused on: {', '.join(f'{n} {k}' for k, n in paused_kinds.most_common())})" if paused_kinds else "")
    )
    decisions = Counter(f"{a.kind}:{a.status}" for a in res.approvals)
    if decisions:
        lines.append("Approvals: " + ", ".join(f"{n} {k}" for k, n in sorted(decisions.items())))

    # Per event type (roots): count, status, steps run, latency to first stop.
    steps_of: dict[uuid.UUID, int] = Counter(s.job_id for s in ran)
    lines += ["", f"{'event type':<22}{'events':>7}{'steps/ev':>9}{'p50 ms':>8}{'p95 ms':>8}  final status (events)"]
    for t in DAY_MIX:
        ids = [j for j in phase.job_ids if by_id[j].event_type == t]
        if not ids:
            continue
        lat = [(epoch(first[j]) - epoch(by_id[j].created_at)) * 1000 for j in ids if first.get(j)]
        st = Counter(by_id[j].status for j in ids)
        lines.append(
            f"{t:<22}{len(ids):>7}{sum(steps_of[j] for j in ids) / len(ids):>9.1f}"
            f"{percentile(lat, 50) if lat else 0:>8.0f}{percentile(lat, 95) if lat else 0:>8.0f}  "
            + ", ".join(f"{n} {s}" for s, n in st.most_common())
        )

    # Where the worker's time goes: step run time by step name.
    total_ms: dict[str, float] = defaultdict(float)
    count: Counter[str] = Counter()
    for s in ran:
        total_ms[s.step] += s.duration_ms or 0
        count[s.step] += 1
    busy = sum(total_ms.values()) / 1000
    top = sorted(total_ms, key=lambda k: -total_ms[k])[:6]
    lines.append(
        "Skill time (duration_ms: the skill call with its own DB work; claim/complete not included): "
        f"{busy:.1f} s in total, "
        f"{busy / (seconds * args.concurrency):.0%} of {args.concurrency} processes x window; top: "
        + ", ".join(f"{k} {total_ms[k] / count[k]:.1f} ms x{count[k]}" for k in top)
    )

    # CPU, database work, memory.
    cpu = window["cpu"]
    pg0, pg1 = window["pg0"], window["pg1"]
    dpg = {k: pg1[k] - pg0[k] for k in pg0}
    dpg["commits"] -= window["polls"]  # the benchmark's own polling
    lines += [
        f"CPU ms per event: worker {cpu['worker'] * 1000 / n_events:.1f} (main process "
        f"{window['cpu_main'] * 1000 / n_events:.1f}: Celery's consumer), client (firing + deciding + polling) "
        f"{cpu['client'] * 1000 / n_events:.1f}, PostgreSQL {cpu['pg'] * 1000 / n_events:.1f}; "
        f"decider busy {window['decider_busy']:.1f} s",
        f"PostgreSQL per event (pg_stat_database, the benchmark's {window['polls']} polls left out of commits; "
        "a skill's read outside a transaction commits on its own): "
        f"{dpg['commits'] / n_events:.1f} commits, {dpg['rollbacks'] / n_events:.2f} rollbacks, "
        f"{dpg['inserted'] / n_events:.1f} rows inserted, {dpg['updated'] / n_events:.1f} updated; "
        f"deadlocks {dpg['deadlocks']}",
    ]
    r0, r1 = window["rss0"], window["rss1"]
    growth = sum(r1.values()) - sum(r0.values())
    parts0, parts1 = (" + ".join(f"{v:.1f}" for v in r.values()) for r in (r0, r1))
    lines.append(
        f"Worker RSS: {sum(r0.values()):.1f} MiB after warm-up ({parts0}), "
        f"{sum(r1.values()):.1f} MiB after the run ({parts1}); "
        f"growth {growth:+.1f} MiB" + ("" if set(r0) == set(r1) else " (pool processes changed!)")
    )

    # Errors: failed/unexpected jobs, failed steps, decider errors, unfired delayed follow-ups.
    bad = [
        j for j in res.jobs if j.status not in GOOD_FINAL and not (args.no_decide and j.status == "awaiting_approval")
    ]
    failed_steps = [s for s in res.steps if s.status == "failed"]
    ok = not bad and not failed_steps and not window["decider_errors"] and not res.unfired_scheduled
    lines.append("")
    if ok:
        lines.append("Errors: none (every job completed" + (", paused" if args.no_decide else "") + " or skipped)")
    else:
        lines.append(
            f"Errors: {len(bad)} jobs not completed/skipped, {len(failed_steps)} failed steps, "
            f"{len(window['decider_errors'])} decider errors, {res.unfired_scheduled} delayed follow-ups"
        )
        for j in bad[:15]:
            lines.append(
                f"  job {j.id} {j.event_type} {j.status}: step {j.error_step}: {(j.error or j.reason or '')[:200]}"
            )
        for (step, err), n in Counter((s.step, (s.error or "")[:160]) for s in failed_steps).most_common(10):
            lines.append(f"  step {step} failed x{n}: {err}")
        lines += [f"  decider: {e}" for e in window["decider_errors"][:5]]

    def mark(good: bool) -> str:
        return "met" if good else "NOT met"

    lines += [
        "",
        "Targets:",
        f"  >= {TARGET_EVENTS_PER_S:.0f} events/s                 {eps:>7.1f}      {mark(eps >= TARGET_EVENTS_PER_S)}",
        f"  worker RSS growth < {TARGET_RSS_GROWTH_MIB:.0f} MiB       {growth:>+7.1f} MiB  "
        f"{mark(growth < TARGET_RSS_GROWTH_MIB)}",
    ]
    return lines, ok


def header(args: argparse.Namespace, bench: Bench) -> list[str]:
    """What was measured, where, with which versions."""
    mix = (", ".join(f"{t} {w}" for t, w in DAY_MIX.items()) + " per 100") if args.mix == "day" else "round-robin"
    return [
        machine_line("Sequences benchmark", ("celery", "kombu", "SQLAlchemy", "psycopg", "redis"), bench.db),
        f"{args.events} events ({args.warmup} warm-up, uncounted) over {args.orgs} orgs with smoke fixtures, "
        f"source smoke + PROACTIVE_DRY_RUN=1, prefork -c {args.concurrency} -Q {QUEUES}, {args.fire_threads} "
        f"firing threads, " + (f"paced at {args.rate:g}/s" if args.rate else "burst (as fast as fire_event returns)"),
        f"mix: {mix}",
        "approvals: "
        + (
            "left paused (awaiting_approval counts as final)"
            if args.no_decide
            else "decided by a thread of this process (approve_send / send_now with undo window 0 / "
            "send_invite first slot); resumed parts and follow-up jobs included"
        ),
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--quick``: 200 events, 20 warm-up, 5 orgs)."""
    p = argparse.ArgumentParser(prog="python -m bench.sequences", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--events", type=int, default=None, help="measured events (default 1000)")
    p.add_argument("--warmup", type=int, default=None, help="uncounted warm-up events (default 50)")
    p.add_argument("--orgs", type=int, default=None, help="orgs with fixtures for the measured events (default 20)")
    p.add_argument("--mix", choices=("day", "round-robin"), default="day", help="event type mix (default day)")
    p.add_argument("--rate", type=float, default=0.0, help="fire at this many events/s (default 0: burst)")
    p.add_argument("--fire-threads", type=int, default=2, help="threads calling fire_event (default 2)")
    p.add_argument("--concurrency", type=int, default=2, help="prefork processes (default 2)")
    p.add_argument("--no-decide", action="store_true", help="leave approvals pending (paused counts as final)")
    p.add_argument("--redis-db", type=int, default=None, help="Redis DB to use and flush (default: highest empty)")
    p.add_argument("--quick", action="store_true", help="200 events, 20 warm-up, 5 orgs")
    p.add_argument(
        "--py-spy",
        default="",
        metavar="FILE",
        help="profiling: record the worker with py-spy during the measured phase (collapsed stacks)",
    )
    p.add_argument(
        "--cprofile",
        default="",
        metavar="DIR",
        help="profiling: each pool process writes a CPU-time cProfile to DIR (read: python -m bench.child_profile DIR)",
    )
    p.add_argument("--analyze", action="store_true", help="ANALYZE the database after the warm-up")
    p.add_argument("--keep", action="store_true", help="profiling: keep the database (not dropped) for inspection")
    p.add_argument(
        "--baseline-ref",
        default="",
        metavar="REF",
        help="also run the code of commit REF (a git worktree) in this invocation and print the ratios",
    )
    p.add_argument("--rounds", type=int, default=2, help="with --baseline-ref: runs of each system (default 2)")
    p.add_argument(
        "--current-ref",
        default="",
        metavar="REF",
        help="with --baseline-ref: run today's side from a worktree of REF (e.g. HEAD) instead of this tree",
    )
    args = p.parse_args(argv)
    defaults = {"events": 200, "warmup": 20, "orgs": 5} if args.quick else {"events": 1000, "warmup": 50, "orgs": 20}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


# The lines of a run's report the comparison reads (the format of f989315 and of today).
_PATTERNS = {
    "events_s": r"Throughput: ([\d.]+) events/s",
    "steps_s": r"events/s, [\d.]+ jobs/s, (\d+) steps/s",
    "first_stop_s": r"to first stop only \(pauses counted as final\): ([\d.]+) events/s",
    "worker_cpu_ms": r"CPU ms per event: worker ([\d.]+)",
    "pg_cpu_ms": r"CPU ms per event: .*PostgreSQL ([\d.]+);",
    "commits": r"PostgreSQL per event .*?: ([\d.]+) commits",
    "load": r"load avg ([\d.]+) at start",
}


def parse_report(text: str) -> dict[str, Any]:
    """The numbers the comparison needs from one run's printed report."""
    out: dict[str, Any] = {}
    for key, pattern in _PATTERNS.items():
        m = re.search(pattern, text)
        out[key] = float(m.group(1)) if m else None
    m = re.search(r"Worker RSS: [\d.]+ MiB after warm-up \(([^)]*)\), [\d.]+ MiB after the run \(([^)]*)\)", text)
    after = [float(v) for v in m.group(2).split(" + ")] if m else []
    out["rss"] = " + ".join(f"{v:.0f}" for v in after) or "?"
    out["rss_max"] = max(after) if after else None
    out["rss_total"] = sum(after) if after else None
    out["ok"] = "\nErrors: none" in text
    return out


def worktree(ref: str) -> Path:
    """A git worktree of ``ref`` under /tmp (made once, reused) with this tree's bench/ copied over it,
    so the same benchmark code (its warm-up, its ANALYZE, its report) drives that commit's code."""
    repo = Path(__file__).resolve().parents[1]
    sha = subprocess.run(["git", "rev-parse", ref], cwd=repo, check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.gettempdir()) / f"proactive-bench-seq-{sha.strip()[:12]}"
    if not (path / "bench" / "sequences.py").exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), sha.strip()], cwd=repo, check=True)
    shutil.copytree(repo / "bench", path / "bench", dirs_exist_ok=True)
    return path


def child_argv(argv: list[str]) -> list[str]:
    """``argv`` without the comparison's own options (what each run of the benchmark gets)."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--baseline-ref", "--rounds", "--current-ref"):
            skip = True
        elif not a.startswith(("--baseline-ref=", "--rounds=", "--current-ref=")):
            out.append(a)
    return out


def compare(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the benchmark from this tree and from a worktree of ``--baseline-ref``, ``--rounds`` times
    each in alternating order; print every run's summary, the medians and their ratios."""
    here = Path(__file__).resolve().parents[1] if not args.current_ref else worktree(args.current_ref)
    trees = {"today": here, f"base {args.baseline_ref}": worktree(args.baseline_ref)}
    print(
        f"Sequences benchmark, same-run comparison, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}: "
        f"{os.cpu_count()} cores (load avg {os.getloadavg()[0]:.2f} at start); {args.rounds} rounds, "
        f"alternating order; today = {args.current_ref or 'this working tree'}; each run: "
        f"python -m bench.sequences {' '.join(child_argv(argv))}",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in trees}
    ok = True
    for r in range(args.rounds):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for name in order:
            tree = trees[name]
            env = {**os.environ, "PYTHONPATH": str(tree)}
            cmd = [sys.executable, "-m", "bench.sequences", *child_argv(argv)]
            proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
            log = Path(tempfile.gettempdir()) / f"bench-seq-{name.split()[0]}-round{r + 1}-{os.getpid()}.log"
            log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
            res = parse_report(proc.stdout)
            res["ok"] = res["ok"] and proc.returncode == 0
            ok = ok and res["ok"]
            runs[name].append(res)
            print(
                f"  round {r + 1} {name:<14} {_fmt(res['events_s'], '.1f')} events/s, "
                f"worker {_fmt(res['worker_cpu_ms'], '.1f')} CPU ms/event, PostgreSQL "
                f"{_fmt(res['pg_cpu_ms'], '.1f')}, {_fmt(res['commits'], '.1f')} commits/event, RSS "
                f"{res['rss']} MiB, load {_fmt(res['load'], '.2f')}"
                + ("" if res["ok"] else f"  FAILED (exit {proc.returncode}), its output: {log}"),
                flush=True,
            )
    keys = (
        ("events_s", "events/s", True),
        ("first_stop_s", "events/s to first stop", True),
        ("steps_s", "steps/s", True),
        ("worker_cpu_ms", "worker CPU ms/event", False),
        ("pg_cpu_ms", "PostgreSQL CPU ms/event", False),
        ("commits", "commits/event", False),
        ("rss_max", "worker RSS MiB/process (max)", False),
    )
    base, today = list(trees)[1], "today"
    print(f"\nMedians of {args.rounds} runs each:  {'':<30}{today:>10}{base:>18}   ratio today/base")
    for key, label, _higher in keys:
        a = [v[key] for v in runs[today] if v[key] is not None]
        b = [v[key] for v in runs[base] if v[key] is not None]
        if not a or not b:
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"  {label:<46}{ma:>10.1f}{mb:>18.1f}   {ma / mb:.2f}x")
    print("" if ok else "\nSome runs failed (see above).")
    return 0 if ok else 1


def _fmt(value: float | None, spec: str) -> str:
    return "?" if value is None else format(value, spec)


def run(args: argparse.Namespace, bench: Bench, say: Callable[[str], None]) -> tuple[list[str], bool]:
    """Start the worker, warm up, measure, and return the report lines."""
    warm = Phase(bench.make_orgs(max(1, args.orgs // 10), "warm-up"))
    measured = Phase(bench.make_orgs(args.orgs, "measured"))
    say(f"  {len(warm.orgs) + len(measured.orgs)} orgs with fixtures ready")
    decider = None if args.no_decide else Decider([*warm.orgs, *measured.orgs], bench.reps)
    worker = WorkerProcess(
        "worker.celery_app", QUEUES, bench.env, bench.workdir, "sequences", concurrency=args.concurrency
    )
    spy: subprocess.Popen[bytes] | None = None
    try:
        worker.start()
        if decider is not None:
            decider.start()
        say("  worker ready; warming up")
        bench.fire(warm, args.warmup, "warm-" + uuid.uuid4().hex[:6], 0.0)
        bench.wait_settled(warm, worker, decider)
        if args.analyze:
            bench.db.analyze()
        time.sleep(0.5)
        rss0 = rss_mib(worker.pids())
        pg0 = bench.pg_counters()
        w0, c0, p0 = cpu_seconds(worker.pids()), time.process_time(), cpu_seconds(bench.db.pg_pids())
        busy0 = decider.busy_s if decider else 0.0
        polls0 = bench.polls + (decider.polls if decider else 0)
        say(f"  warm-up done (worker RSS {sum(rss0.values()):.1f} MiB); firing {args.events} events")
        spy = start_py_spy(worker.pids()[0], args.py_spy, idle=False) if args.py_spy else None  # no idle samples
        bench.fire(measured, args.events, uuid.uuid4().hex[:8], args.rate)
        say(f"  fired in {measured.fire_end - measured.fire_start:.1f} s; waiting for every job to settle")
        bench.wait_settled(measured, worker, decider)
        w1, c1, p1 = cpu_seconds(worker.pids()), time.process_time(), cpu_seconds(bench.db.pg_pids())
        busy1 = decider.busy_s if decider else 0.0
        polls1 = bench.polls + (decider.polls if decider else 0)
        if spy is not None:
            stop_py_spy(spy)
            say(f"  py-spy samples written to {args.py_spy}")
            spy = None
        time.sleep(1.1)  # PostgreSQL backends flush their statistics at most once a second
        rss1 = rss_mib(worker.pids())
        pg1 = bench.pg_counters()
        result = bench.collect(measured)
    finally:
        if decider is not None:
            decider.stop.set()
            decider.join(timeout=10)
        if spy is not None:
            spy.kill()
            spy.wait()
        worker.stop()
    window = {
        "cpu": {"worker": cpu_delta(w0, w1), "client": c1 - c0, "pg": cpu_delta(p0, p1)},
        "cpu_main": w1.get(worker.pids()[0], 0.0) - w0.get(worker.pids()[0], 0.0),
        "rss0": rss0,
        "rss1": rss1,
        "pg0": pg0,
        "pg1": pg1,
        "decider_busy": busy1 - busy0,
        "polls": polls1 - polls0,
        "decider_errors": decider.errors if decider else [],
    }
    return report(args, result, window)


def main(argv: list[str] | None = None) -> int:
    """Set the environment, run the benchmark, print the report; 1 when a job failed."""
    args = parse_args(argv)
    if args.baseline_ref:
        return compare(args, list(sys.argv[1:] if argv is None else argv))
    backends = Backends(fresh_db_name("proactive_bench_seq"), pick_redis_db(args.redis_db))
    use_env(sequences_env(backends, args.cprofile))  # before any worker module reads its settings
    started = time.monotonic()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-seq-") as tmp:
        bench = Bench(args, backends, Path(tmp))
        try:
            bench.setup()
            head = header(args, bench)
            print("\n".join(head), flush=True)
            lines, ok = run(args, bench, say)
        finally:
            bench.teardown()
    print("\n".join(lines))
    print(f"\n(total wall time {time.monotonic() - started:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
