"""Where a Proactive step's time goes: SQL statements, transactions, round trips, broker hops, CPU.

Runs the engine in this process, without a broker or a worker: ``fire_event`` and
``engine.execute`` are the real functions, but the ``run_step`` messages they would publish are
captured (``publish_steps`` is swapped in this process only) and executed here one by one, as a
solo worker would. SQLAlchemy event hooks count statements (by verb), transactions and pool
checkouts; the dialect's ``do_ping`` is wrapped to count ``pool_pre_ping`` pings. psycopg 3 sends
BEGIN as its own command, so round trips = pings + BEGINs + statements + COMMITs/ROLLBACKs, less what
went in one pipeline (worker/precompiled.py ``batch``: its statements, the BEGIN it opened with and
the COMMIT it ended with are one round trip; a statement run in a transaction of its own sends
neither; ``precompiled.stats`` counts them).
``--cprofile`` adds the top functions of the step path by CPU time (execute() only, fire_event
excluded); ``--trace`` prints every round trip of one job in order.

The placeholders case measures what worker/precompiled.py gains by sending psycopg SQL with
numbered placeholders (``$1``, on a ``RawCursor``, parameters as a tuple) instead of named ones
(``%(name)s``, parsed and reordered by psycopg on each run; a statement over 4 KiB or 50 parameters,
like the engine's guarded completion, is parsed again each time): CPU per execution of the engine's
own reads, captured while the steps ran, and of a read shaped like the longest statement the steps
sent, both ways in alternating rounds on one connection.

The decision case pauses no-op -> approval -> no-op jobs (bench.noop_dags.DECISION) on their
approval, then counts ``approvals.decide()`` (as a rep's click) and the ``proactive.resume_approval``
task body it asks for (the resume and the step after it), per decision.

Run from the repo root: ``.venv/bin/python -m bench.profile_engine [--jobs 200] [--cprofile]``
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event

from bench.engine import DECISION, FANOUT, LINEAR, STEPS_PER_JOB, Bench, baseline_tree, engine_env, run_in_tree
from bench.harness import Backends, cpu_delta, cpu_seconds, fresh_db_name, pick_redis_db, use_env


class Counters:
    """SQL activity seen through SQLAlchemy event hooks (one engine, this process)."""

    def __init__(self) -> None:
        self.c: Counter[str] = Counter()
        self.trace: list[str] | None = None  # when a list: one line per round trip, in order

    def install(self, engine: Any) -> None:
        """Hook statements, transactions, checkouts and pre-ping pings of ``engine``."""

        @event.listens_for(engine, "before_cursor_execute")
        def _stmt(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            self.c["statements"] += 1
            self.c["stmt " + statement.lstrip().split(None, 1)[0].upper()] += 1
            if self.trace is not None:
                self.trace.append("  " + " ".join(statement.split())[:150])

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            self.c["transactions"] += 1
            if self.trace is not None:
                self.trace.append("BEGIN")

        @event.listens_for(engine, "commit")
        def _commit(conn: Any) -> None:
            self.c["commits"] += 1
            if self.trace is not None:
                self.trace.append("COMMIT")

        @event.listens_for(engine, "rollback")
        def _rollback(conn: Any) -> None:
            self.c["rollbacks"] += 1

        @event.listens_for(engine, "checkout")
        def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
            self.c["pool checkouts"] += 1

        dialect = engine.dialect
        original = dialect.do_ping

        def counted_ping(dbapi_connection: Any) -> bool:
            self.c["pre-ping pings"] += 1
            if self.trace is not None:
                self.trace.append("(pool_pre_ping)")
            return original(dbapi_connection)

        dialect.do_ping = counted_ping

    @classmethod
    def on_engine(cls) -> Counters:
        """Counters hooked on this process's engine (once the benchmark set its environment)."""
        from worker.db import get_engine  # after use_env: worker modules read the settings at import

        counters = cls()
        counters.install(get_engine())
        return counters

    def snapshot(self) -> Counter[str]:
        """A copy of the counters, with what worker/precompiled.py sent in pipelines."""
        from worker import precompiled  # after use_env: worker modules read the settings at import

        sent = precompiled.stats
        pipelined = {
            "pipelines": sent["batches"],
            "pipelined statements": sent["batched"],
            "pipelined BEGINs": sent["batched_begins"],
            "pipelined COMMITs": sent["batched_commits"],
            "autocommitted statements": sent["autocommitted"],
        }
        return Counter(self.c) + Counter(pipelined)


def per(counter: Counter[str], n: int) -> dict[str, float]:
    """Each counter divided by ``n`` (per job or per step), with the derived round trips."""
    out = {k: v / n for k, v in sorted(counter.items())}
    trips = (
        counter["pre-ping pings"]
        + counter["transactions"]
        + counter["statements"]
        + counter["commits"]
        + counter["rollbacks"]
        # a pipeline (worker/precompiled.py batch) is one round trip for its statements, BEGIN and
        # COMMIT (after which the transaction's own commit sends nothing)
        - (counter["pipelined statements"] - counter["pipelines"])
        - counter["pipelined BEGINs"]
        - counter["pipelined COMMITs"]
        # a statement run in its own transaction (worker/precompiled.py `_as_one_statement`): the
        # transaction it ended sent no BEGIN and no COMMIT
        - 2 * counter["autocommitted statements"]
    )
    out["= round trips"] = trips / n
    return out


class Capture:
    """Stands in for ``publish_steps`` in this process: keeps the messages to run them here."""

    def __init__(self) -> None:
        self.queue: deque[Any] = deque()
        self.resumes: deque[tuple[str, ...]] = deque()
        self.sent = 0

    def __call__(self, items: Any) -> int:
        items = list(items)
        self.sent += len(items)
        self.queue.extend(items)
        return len(items)

    def resume(self, approval_id: uuid.UUID, *ids: uuid.UUID | None) -> bool:
        """``publish_resume`` replacement: keeps the message's arguments (the approval, its org and job)."""
        from worker.engine.publish import resume_message  # after use_env (settings read at import)

        self.resumes.append(resume_message(approval_id, *ids).args)
        return True

    def install(self) -> None:
        """Swap ``publish_steps`` where the engine, the resume and fire_event look it up, and
        ``publish_resume`` where decide() does."""
        import worker.engine.approvals as approvals_mod  # after use_env: worker modules read the settings at import
        import worker.engine.driver as engine_mod
        import worker.engine.events as events_mod
        import worker.engine.tasks as tasks_mod

        for module in (engine_mod, events_mod, approvals_mod, tasks_mod):
            if hasattr(module, "publish_steps"):  # each module that imported it
                module.publish_steps = self  # type: ignore[attr-defined]
        approvals_mod.publish_resume = self.resume  # type: ignore[assignment]


def by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Share of own (tottime) CPU per top-level package: sqlalchemy, psycopg, worker, stdlib..."""
    totals: Counter[str] = Counter()
    for (filename, _line, _func), row in stats.stats.items():  # type: ignore[attr-defined]
        tottime = row[2]
        if "site-packages/" in filename:
            pkg = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif "/work/main/" in filename or filename.startswith(("worker/", "bench/")):
            pkg = filename.split("/work/main/", 1)[-1].split("/", 1)[0]
        elif filename == "~":
            pkg = "builtins"
        else:
            pkg = "stdlib"
        totals[pkg] += tottime
    total = sum(totals.values()) or 1.0
    return [(pkg, t / total) for pkg, t in totals.most_common(7)]


def profile(
    event_type: str,
    label: str,
    bench: Bench,
    jobs: int,
    counters: Counters,
    capture: Capture,
    use_cprofile: bool,
    show_trace: bool,
) -> str:
    """Fire ``jobs`` jobs of ``event_type`` and run every captured step message here."""
    import worker.engine.driver as engine_mod  # after use_env (settings read at import)

    captured = capture.queue
    org, user = bench.make_org()
    tag = uuid.uuid4().hex[:8]
    for i in range(5):  # warm caches (statement compilation, psycopg prepared statements)
        bench.fire_one(event_type, org, user, "w" + tag, i)
        while captured:
            item = captured.popleft()
            engine_mod.execute(item.step_run_id, item.lease_s)
    capture.sent = 0
    c0 = counters.snapshot()
    t0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(jobs):
        bench.fire_one(event_type, org, user, tag, i)
    fire_wall, fire_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    c1 = counters.snapshot()
    fire_msgs = capture.sent
    prof = cProfile.Profile(time.process_time) if use_cprofile else None  # CPU time, not wall
    tasks = 0
    pg1 = cpu_seconds(bench.db.pg_pids(others_only=True))
    t1, cpu1 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    while captured:
        item = captured.popleft()
        engine_mod.execute(item.step_run_id, item.lease_s)
        tasks += 1
    if prof:
        prof.disable()
    exec_wall, exec_cpu = time.perf_counter() - t1, time.process_time() - cpu1
    exec_pg = cpu_delta(pg1, cpu_seconds(bench.db.pg_pids(others_only=True)))
    c2 = counters.snapshot()
    done = bench.db.admin.execute(
        "SELECT count(*) FROM step_runs WHERE org_id = %s AND status = 'succeeded'", (org,)
    ).fetchone()[0]
    steps = jobs * STEPS_PER_JOB
    assert done == steps + 5 * STEPS_PER_JOB, f"{done} succeeded steps"
    lines = [f"== {label}: {jobs} jobs, {steps} steps, in-process (no broker, no worker)"]
    lines.append(
        f"fire_event(): {fire_wall / jobs * 1000:.2f} ms wall, {fire_cpu / jobs * 1000:.2f} ms CPU "
        "per job; per job: " + ", ".join(f"{k} {v:.1f}" for k, v in per(c1 - c0, jobs).items())
    )
    lines.append(
        f"steps: {tasks} run_step tasks ({tasks / jobs:.1f} per job: {fire_msgs / jobs:.1f} published "
        f"by fire_event + {(capture.sent - fire_msgs) / jobs:.1f} by steps; the rest ran inline), "
        f"{exec_wall / steps * 1000:.2f} ms wall, {exec_cpu / steps * 1000:.2f} ms CPU per step "
        f"(PostgreSQL's backends: {exec_pg / steps * 1000:.2f} ms)"
    )
    lines.append("per step: " + ", ".join(f"{k} {v:.2f}" for k, v in per(c2 - c1, steps).items()))
    if prof:
        lines.extend(cprofile_lines(prof, "the step path"))
    trace: list[str] = []
    counters.trace = trace
    bench.fire_one(event_type, org, user, "t" + tag, 0)
    trace.append("-- fire_event() returned; run_step tasks follow")
    while captured:
        item = captured.popleft()
        trace.append(f"-- run_step task ({item.queue})")
        engine_mod.execute(item.step_run_id, item.lease_s)
    counters.trace = None
    if show_trace:
        lines.append("Round trips of one job, in order:")
        lines.extend("  " + t for t in trace)
    return "\n".join(lines)


def cprofile_lines(prof: cProfile.Profile, what: str) -> list[str]:
    """Own CPU time by package, then the top functions by own and by cumulative CPU time."""
    lines = [
        "cProfile own CPU time by package: "
        + ", ".join(f"{pkg} {share:.0%}" for pkg, share in by_package(pstats.Stats(prof)))
    ]
    for title, sort, restrict in (
        ("by own CPU time", "tottime", 15),
        ("engine functions by cumulative CPU time", "cumulative", r"worker/(engine/\w+|db)\.py"),
    ):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats(sort).print_stats(restrict)
        text = buf.getvalue()
        lines.append(f"cProfile (CPU timer, profiler overhead included) of {what}, {title}:")
        lines.extend(
            "  " + ln.replace(str(Path.cwd()) + "/", "")
            for ln in text[text.find("ncalls") :].splitlines()[:26]
            if ln.strip()
        )
    return lines


class DecisionProfile:
    """Counts decide() and the resume task it asks for, per decision (jobs paused one by one)."""

    def __init__(self, bench: Bench, counters: Counters, capture: Capture) -> None:
        self.bench, self.counters, self.capture = bench, counters, capture
        self.org, self.user = bench.make_org()

    def run_steps(self) -> None:
        """Run every captured run_step message here, as a solo worker would."""
        import worker.engine.driver as engine_mod  # after use_env (settings read at import)

        while self.capture.queue:
            item = self.capture.queue.popleft()
            engine_mod.execute(item.step_run_id, item.lease_s)

    def paused(self, tag: str, i: int) -> uuid.UUID:
        """Fire one DECISION job, run it to its approval; the pending approval's id (read uncounted)."""
        job_id = self.bench.fire_one(self.bench.events[DECISION], self.org, self.user, tag, i).job_id
        self.run_steps()
        return self.bench.db.admin.execute(
            "SELECT id FROM approvals WHERE job_id = %s AND status = 'pending'", (job_id,)
        ).fetchone()[0]

    def decide(self, approval_id: uuid.UUID) -> None:
        """What a rep's click does: the decision (publishing the resume, captured)."""
        from worker.engine import approvals  # after use_env (settings read at import)

        approvals.decide(approval_id, "approve", user_id=self.user, org_id=self.org, actor="bench")

    def resume(self) -> None:
        """The resume_approval task body for each captured resume, then any step messages left."""
        from worker.engine import tasks  # after use_env (settings read at import)

        while self.capture.resumes:
            tasks.resume_approval.run(*self.capture.resumes.popleft())
        self.run_steps()

    def profile(self, jobs: int, use_cprofile: bool, show_trace: bool) -> str:
        """Pause ``jobs`` jobs, then decide and resume each; statements, round trips and CPU per decision."""
        tag = uuid.uuid4().hex[:8]
        for i in range(5):  # warm caches (statement compilation, psycopg prepared statements)
            self.decide(self.paused("w" + tag, i))
            self.resume()
        ids = [self.paused(tag, i) for i in range(jobs)]
        totals: dict[str, tuple[Counter[str], float, float]] = {}
        prof = cProfile.Profile(time.process_time) if use_cprofile else None
        for approval_id in ids:
            for part, call in (("decide()", lambda a=approval_id: self.decide(a)), ("resume task", self.resume)):
                c0, t0, cpu0 = self.counters.snapshot(), time.perf_counter(), time.process_time()
                if prof:
                    prof.enable()
                call()
                if prof:
                    prof.disable()
                c, wall, cpu = totals.get(part, (Counter(), 0.0, 0.0))
                totals[part] = (
                    c + (self.counters.snapshot() - c0),
                    wall + time.perf_counter() - t0,
                    cpu + time.process_time() - cpu0,
                )
        done = self.bench.db.admin.execute(
            "SELECT count(*) FROM step_runs WHERE org_id = %s AND step = 'after' AND status = 'succeeded'",
            (self.org,),
        ).fetchone()[0]
        assert done == jobs + 5, f"{done} steps after an approval succeeded"
        lines = [f"== decision: {jobs} approvals decided (no-op -> approval -> no-op), in-process"]
        for part, (c, wall, cpu) in totals.items():
            lines.append(
                f"{part}: {wall / jobs * 1000:.2f} ms wall, {cpu / jobs * 1000:.2f} ms CPU per decision; "
                + ", ".join(f"{k} {v:.1f}" for k, v in per(c, jobs).items())
            )
        if prof:
            lines.extend(cprofile_lines(prof, "decide() + the resume task"))
        if show_trace:
            approval_id = self.paused("t" + tag, 0)
            trace: list[str] = ["-- decide()"]
            self.counters.trace = trace
            self.decide(approval_id)
            trace.append("-- resume task (the resume, then the step after the approval)")
            self.resume()
            self.counters.trace = None
            lines.append("Round trips of one decision, in order:")
            lines.extend("  " + t for t in trace)
        return "\n".join(lines)


class Sent:
    """The statements the engine sends on the numbered path (query, parameters), as it sends them."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[Any, ...]] = {}
        self.runs = self.uncached = 0  # executions; those psycopg would parse every time if named

    def __call__(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if isinstance(params, tuple) and not many:
            self.seen.setdefault(statement, params)
            self.runs += 1
            self.uncached += len(statement) > 4096 or len(params) > 50  # psycopg's _queries limits


def _as_named(query: str, params: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
    """A numbered statement (`$1`) written with psycopg's named placeholders (`%(p1)s`)."""
    named = re.sub(r"\$(\d+)", lambda m: f"%(p{m.group(1)})s", query.replace("%", "%%"))
    return named, {f"p{i}": v for i, v in enumerate(params, 1)}


def placeholder_lines(dsn: str, sent: Sent, runs: int = 2000, rounds: int = 5) -> list[str]:
    """CPU per execution, named against numbered placeholders, of the engine's most frequent reads
    and of a read as long (and with as many parameters) as the longest statement it sent."""
    reads = [(q, p) for q, p in sent.seen.items() if q.lstrip().upper().startswith("SELECT")]
    longest_q, longest_p = max(sent.seen.items(), key=lambda qp: len(qp[0]))
    n = len(longest_p)
    padding = "x" * max(0, len(longest_q) - 20 * n)
    big = ("SELECT " + ", ".join(f"${i}::text" for i in range(1, n + 1)) + f" -- {padding}", ("v",) * n)
    cases = [
        (f"the engine's {len(reads)} reads (each in turn)", reads),
        (f"a {len(big[0])}-byte read, {n} params", [big]),
    ]
    lines = [f"== placeholders: {runs} executions x {rounds} rounds each way, one connection, autocommit"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for label, statements in cases:
            ways = {
                "named": (psycopg.Cursor, [_as_named(q, p) for q, p in statements]),
                "numbered": (psycopg.RawCursor, statements),
            }
            cpu = dict.fromkeys(ways, 0.0)
            for _ in range(rounds):
                for way, (cursor_type, runnable) in ways.items():
                    t0 = time.process_time()
                    for i in range(runs):
                        query, params = runnable[i % len(runnable)]
                        with cursor_type(conn) as cur:
                            cur.execute(query, params)
                            cur.fetchall()
                    cpu[way] += time.process_time() - t0
            per_run = {k: v / (runs * rounds) * 1e6 for k, v in cpu.items()}
            lines.append(
                f"{label}: named {per_run['named']:.0f} us, numbered {per_run['numbered']:.0f} us CPU per "
                f"execution = {per_run['numbered'] / per_run['named']:.2f}x"
            )
    lines.append(
        f"(longest statement the steps sent: {len(longest_q)} bytes, {n} parameters; {sent.uncached} of their "
        f"{sent.runs} numbered executions are over psycopg's 4 KiB / 50-parameter limit for caching the parsing)"
    )
    return lines


def main(argv: list[str] | None = None) -> None:
    """Profile the linear and the fan-out benchmark DAGs and the decision path on a fresh database."""
    doc = (__doc__ or "").splitlines()[0]
    p = argparse.ArgumentParser(prog="python -m bench.profile_engine", description=doc)
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--cprofile", action="store_true", help="also print the top functions by CPU time")
    p.add_argument("--trace", action="store_true", help="also print the statements of one job in order")
    p.add_argument("--redis-db", type=int, default=None)
    p.add_argument(
        "--cases",
        default="steps,decision",
        help="comma-separated: steps (the linear and fan-out DAGs), decision (decide + resume), placeholders "
        "(named against numbered psycopg placeholders; runs the steps first)",
    )
    p.add_argument(
        "--baseline-ref",
        default=None,
        help="then profile the same cases on this commit's engine (e.g. f989315; see bench.engine)",
    )
    args = p.parse_args(argv)
    args.fire_threads, args.concurrency = 1, 1
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min)", flush=True)
    backends = Backends(fresh_db_name(), pick_redis_db(args.redis_db))
    use_env(engine_env(backends))
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        bench = Bench(args, backends, Path(tmp))
        try:
            bench.setup()
            counters, capture, sent = Counters.on_engine(), Capture(), Sent()
            capture.install()
            if "placeholders" in args.cases:
                import worker.db  # after use_env (settings read at import)

                event.listen(worker.db.get_engine(), "before_cursor_execute", sent)
            linear, fanout = bench.events[LINEAR], bench.events[FANOUT]
            cases = ((linear, "linear 5 steps"), (fanout, "fan-out a->(b,c,d)->e"))
            for kind, label in cases if "steps" in args.cases or "placeholders" in args.cases else ():
                print(profile(kind, label, bench, args.jobs, counters, capture, args.cprofile, args.trace), flush=True)
                print()
            if "placeholders" in args.cases:
                print("\n".join(placeholder_lines(backends.dsn, sent)), flush=True)
            if "decision" in args.cases:
                decisions = DecisionProfile(bench, counters, capture)
                print(decisions.profile(args.jobs, args.cprofile, args.trace), flush=True)
        finally:
            bench.teardown()
    if args.baseline_ref:  # the same cases on the older engine, right after (its own database)
        rest = sys.argv[1:] if argv is None else list(argv)
        if "--baseline-ref" in rest:
            del rest[rest.index("--baseline-ref") : rest.index("--baseline-ref") + 2]
        rest = [a for a in rest if not a.startswith("--baseline-ref=")]
        print(f"\n==== the same on {args.baseline_ref}", flush=True)
        print(run_in_tree(baseline_tree(args.baseline_ref), "bench.profile_engine", rest).stdout, flush=True)


if __name__ == "__main__":
    main()
