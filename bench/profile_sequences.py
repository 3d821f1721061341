"""Where the nine sequences' time goes: SQL round trips, transactions and CPU per event and per step.

Profiling companion of ``bench.sequences``, in this process, without a broker or a worker:
``fire_event``, ``engine.execute``, ``approvals.decide`` and the ``resume_approval`` task are the real
functions, but the messages they would publish are captured and run here one by one, as a solo
worker would (the same capture as bench.profile_engine, extended to resumes). Approvals are
decided like bench.sequences does, so each event's numbers include its resumed part and the
follow-up jobs it fires. SQLAlchemy event hooks count statements, transactions, commits and
pre-ping pings (bench.profile_engine.Counters); psycopg 3 sends BEGIN as its own command, so
round trips = pings + BEGINs + statements + COMMITs/ROLLBACKs. Dry-run, source ``smoke``.

Run from the repo root: ``.venv/bin/python -m bench.profile_sequences [--events 20] [--cprofile]``
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
import uuid
from collections import Counter, defaultdict, deque
from pathlib import Path
from typing import Any

from bench.harness import Backends, fresh_db_name, pick_redis_db, use_env
from bench.profile_engine import Counters, by_package
from bench.sequences import DAY_MIX, Bench, rep_choice, sequences_env


def trips(c: Counter[str]) -> int:
    """Database round trips in a counter delta."""
    return c["pre-ping pings"] + c["transactions"] + c["statements"] + c["commits"] + c["rollbacks"]


class Capture:
    """Stands in for the publishers: keeps run_step and resume messages to run them here."""

    def __init__(self) -> None:
        self.queue: deque[tuple[str, Any]] = deque()

    def steps(self, items: Any) -> int:
        """``publish_steps`` replacement."""
        items = list(items)
        self.queue.extend(("step", i) for i in items)
        return len(items)

    def resume(self, approval_id: uuid.UUID, *ids: uuid.UUID | None) -> bool:
        """``publish_resume`` replacement: keeps the message's arguments (the approval, its org and job)."""
        from worker.engine.publish import resume_message  # after use_env (settings read at import)

        self.queue.append(("resume", resume_message(approval_id, *ids).args))
        return True

    def install(self) -> None:
        """Swap the publishers where the engine, fire_event and the approvals look them up."""
        import worker.engine.approvals as approvals_mod  # after use_env: worker modules read the settings at import
        import worker.engine.driver as engine_mod
        import worker.engine.events as events_mod

        engine_mod.publish_steps = self.steps  # type: ignore[assignment]
        events_mod.publish_steps = self.steps  # type: ignore[assignment]
        approvals_mod.publish_steps = self.steps  # type: ignore[assignment]
        approvals_mod.publish_resume = self.resume  # type: ignore[assignment]


class Profiler:
    """Fires events of one type, runs everything they cause, and accounts it by phase and step."""

    def __init__(self, bench: Bench, counters: Counters, capture: Capture) -> None:
        self.bench = bench
        self.counters = counters
        self.capture = capture
        self.by_phase: dict[str, Counter[str]] = defaultdict(Counter)
        self.by_step: dict[str, Counter[str]] = defaultdict(Counter)
        self.cpu: Counter[str] = Counter()
        self.by_skill: dict[str, Counter[str]] = defaultdict(Counter)  # the skill call alone
        self.skill_sql: dict[str, Counter[str]] = defaultdict(Counter)  # its statements, by text
        self.measuring = False
        self.skill_profile: cProfile.Profile | None = None  # --cprofile-skills: the skill calls only

    def wrap_skills(self) -> None:
        """Count each skill call on its own (its statements and CPU, claim/complete left out)."""
        import worker.engine.driver as driver_mod  # after use_env (settings read at import)

        original = driver_mod.run_skill

        def counted(claimed: Any, connection: Any = None) -> Any:
            if not self.measuring:
                return original(claimed, connection)
            name = f"{claimed.job['event_type']}/{claimed.step.name}"
            c0, cpu0, self.counters.trace = self.counters.snapshot(), time.process_time(), []
            if self.skill_profile is not None:
                self.skill_profile.enable()
            try:
                return original(claimed, connection)
            finally:
                if self.skill_profile is not None:
                    self.skill_profile.disable()
                cpu = time.process_time() - cpu0
                self.by_skill[name].update(self.counters.snapshot() - c0)
                self.by_skill[name]["calls"] += 1
                self.by_skill[name]["cpu_us"] += int(cpu * 1e6)
                self.skill_sql[name].update(t for t in self.counters.trace if t.startswith("  "))
                self.counters.trace = None

        driver_mod.run_skill = counted  # type: ignore[assignment]

    def account(self, key: str, step: str | None, c0: Counter[str], cpu0: float) -> None:
        """Add the counters and CPU since ``c0``/``cpu0`` to phase ``key`` (and step ``step``)."""
        delta = self.counters.snapshot() - c0
        cpu = time.process_time() - cpu0
        self.by_phase[key].update(delta)
        self.cpu[key] += cpu
        if step is not None:
            self.by_step[step].update(delta)
            self.by_step[step]["tasks"] += 1
            self.by_step[step]["cpu_us"] += int(cpu * 1e6)

    def step_name(self, step_run_id: uuid.UUID) -> str:
        """The step a run_step message is for (read outside the counted engine)."""
        row = self.bench.db.admin.execute(
            "SELECT j.event_type, s.step FROM step_runs s JOIN sequence_jobs j ON j.id = s.job_id WHERE s.id = %s",
            (step_run_id,),
        ).fetchone()
        return f"{row[0]}/{row[1]}" if row else "?"

    def drain(self, org: uuid.UUID, measure: bool) -> None:
        """Run every captured message, deciding pending approvals of ``org`` until nothing is left."""
        import worker.engine.driver as engine_mod  # after use_env (settings read at import)
        from worker.engine import approvals, tasks

        while True:
            while self.capture.queue:
                kind, item = self.capture.queue.popleft()
                name = self.step_name(item.step_run_id) if kind == "step" and measure else None
                c0, cpu0 = self.counters.snapshot(), time.process_time()
                self.measuring = measure
                if kind == "step":
                    engine_mod.execute(item.step_run_id, item.lease_s)
                else:  # the resume_approval task body, as a worker runs the message
                    tasks.resume_approval.run(*item)
                self.measuring = False
                if measure:
                    self.account("run_step tasks" if kind == "step" else "resume tasks", name, c0, cpu0)
            pending = self.bench.db.admin.execute(
                "SELECT id, kind, preview, approver_user_ids FROM approvals WHERE org_id = %s AND status = 'pending'",
                (org,),
            ).fetchall()
            if not pending:
                return
            for approval_id, kind, preview, approvers in pending:
                decision, data = rep_choice(kind, preview or {})
                user = uuid.UUID(str(approvers[0])) if approvers else self.bench.reps[org]
                c0, cpu0 = self.counters.snapshot(), time.process_time()
                approvals.decide(approval_id, decision, user_id=user, data=data, actor="bench")
                if measure:
                    self.account("decide()", None, c0, cpu0)

    def run(self, event_type: str, n: int) -> tuple[int, int, float]:
        """Fire ``n`` measured events of ``event_type`` (after 3 uncounted); (jobs, steps run, wall s)."""
        from worker.engine.events import fire_event  # after use_env (settings read at import)

        org = self.bench.make_orgs(1, event_type)[0]
        template = self.bench.templates[org][event_type]
        tag = uuid.uuid4().hex[:8]
        for i in range(3):
            fire_event({**template, "idempotency_key": f"warm:{tag}:{i}"})
            self.drain(org, measure=False)
        self.bench.db.admin.execute("DELETE FROM sequence_jobs WHERE org_id = %s", (org,))  # count only measured
        t0 = time.perf_counter()
        for i in range(n):
            c0, cpu0 = self.counters.snapshot(), time.process_time()
            fire_event({**template, "idempotency_key": f"bench:{tag}:{i}"})
            self.account("fire_event()", None, c0, cpu0)
            self.drain(org, measure=True)
        wall = time.perf_counter() - t0
        jobs, bad, steps = self.bench.db.admin.execute(
            "SELECT count(*), count(*) FILTER (WHERE status NOT IN ('completed', 'skipped')),"
            " (SELECT count(*) FROM step_runs WHERE org_id = %(o)s AND status IN ('succeeded', 'failed'))"
            " FROM sequence_jobs WHERE org_id = %(o)s",
            {"o": org},
        ).fetchone()
        if bad:
            raise RuntimeError(f"{event_type}: {bad} jobs did not complete")
        return jobs, steps, wall


def print_cprofile(cp: cProfile.Profile, top: int) -> None:
    """Own CPU time by package, then the ``top`` functions by own time."""
    print(
        "\ncProfile own CPU time by package: "
        + ", ".join(f"{pkg} {share:.0%}" for pkg, share in by_package(pstats.Stats(cp)))
    )
    for sort in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(cp, stream=buf).sort_stats(sort).print_stats(top)
        text = buf.getvalue()
        print(
            "\n".join(
                "  " + ln.replace(str(Path.cwd()) + "/", "")
                for ln in text[text.find("ncalls") :].splitlines()
                if ln.strip()
            )
        )


def print_skills(prof: Profiler, events: int, sql: bool) -> None:
    """The skill calls alone: statements, transactions and CPU per call and per event, by step."""
    calls = sum(c["calls"] for c in prof.by_skill.values())
    stmts = sum(c["statements"] for c in prof.by_skill.values())
    cpu_ms = sum(c["cpu_us"] for c in prof.by_skill.values()) / 1000
    n_types = len({k.split("/")[0] for k in prof.by_skill})
    print(
        f"\nSkills alone (the skill call inside run_step, claim/complete left out): {calls} calls, "
        f"{stmts} statements, {cpu_ms:.0f} ms CPU over {events * n_types} events "
        f"({stmts / max(calls, 1):.1f} statements and {cpu_ms / max(calls, 1):.2f} ms CPU per call)"
    )
    print(f"  {'event type/step':<48}{'calls':>6}{'stmts':>6}{'txns':>6}{'CPU ms':>8}  statements by verb")
    for name, c in sorted(prof.by_skill.items(), key=lambda kv: -kv[1]["cpu_us"]):
        k = c["calls"]
        verbs = ", ".join(f"{v.split()[1]} {c[v] / k:.1f}" for v in sorted(c) if v.startswith("stmt "))
        print(
            f"  {name:<48}{k:>6}{c['statements'] / k:>6.1f}{c['transactions'] / k:>6.1f}"
            f"{c['cpu_us'] / k / 1000:>8.2f}  {verbs}"
        )
        if sql:
            for text, n in prof.skill_sql[name].most_common():
                print(f"      {n / k:>4.1f}x {text.strip()[:140]}")


def main(argv: list[str] | None = None) -> None:
    """Profile each event type on a fresh database; print per-event and per-step SQL work."""
    p = argparse.ArgumentParser(prog="python -m bench.profile_sequences", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--events", type=int, default=20, help="measured events per type (default 20)")
    p.add_argument("--types", default=",".join(DAY_MIX), help="event types, comma-separated (default all nine)")
    p.add_argument("--cprofile", action="store_true", help="also print CPU by package and the top functions")
    p.add_argument("--cprofile-skills", action="store_true", help="print the skill calls' top functions by CPU")
    p.add_argument("--sql", action="store_true", help="also print each skill's statements (per call, by text)")
    p.add_argument("--redis-db", type=int, default=None)
    args = p.parse_args(argv)
    args.keep = False
    # Nothing is published; the Redis DB is only flushed.
    backends = Backends(fresh_db_name("proactive_bench_seq"), pick_redis_db(args.redis_db))
    use_env(sequences_env(backends))
    with tempfile.TemporaryDirectory(prefix="bench-profile-seq-") as tmp:
        # Bench reads args.cprofile as the worker's profile directory; here there is no worker.
        bench = Bench(argparse.Namespace(**{**vars(args), "cprofile": ""}), backends, Path(tmp))
        try:
            bench.setup()
            counters, capture = Counters.on_engine(), Capture()
            capture.install()
            prof = Profiler(bench, counters, capture)
            prof.wrap_skills()
            if args.cprofile_skills:
                prof.skill_profile = cProfile.Profile(time.process_time)
            cp = cProfile.Profile(time.process_time) if args.cprofile else None
            print(
                f"{'event type':<22}{'jobs/ev':>8}{'steps/ev':>9}{'trips/ev':>9}{'txns/ev':>8}{'stmts/ev':>9}"
                f"{'pings/ev':>9}{'CPU ms/ev':>10}{'wall ms/ev':>11}"
            )
            for t in args.types.split(","):
                before = {k: Counter(v) for k, v in prof.by_phase.items()}
                cpu_before = Counter(prof.cpu)
                if cp:
                    cp.enable()
                jobs, steps, wall = prof.run(t, args.events)
                if cp:
                    cp.disable()
                total: Counter[str] = Counter()
                for k, v in prof.by_phase.items():
                    total.update(v - before.get(k, Counter()))
                cpu = sum(prof.cpu.values()) - sum(cpu_before.values())
                n = args.events
                print(
                    f"{t:<22}{jobs / n:>8.1f}{steps / n:>9.1f}{trips(total) / n:>9.0f}"
                    f"{total['transactions'] / n:>8.1f}{total['statements'] / n:>9.0f}"
                    f"{total['pre-ping pings'] / n:>9.1f}{cpu * 1000 / n:>10.1f}{wall * 1000 / n:>11.1f}",
                    flush=True,
                )
            print(
                "\nBy phase (all types): "
                + "; ".join(
                    f"{k}: {trips(v)} round trips, {v['transactions']} txns, {v['statements']} statements, "
                    f"{prof.cpu[k]:.2f} s CPU"
                    for k, v in prof.by_phase.items()
                )
            )
            total_steps = sum(v["tasks"] for v in prof.by_step.values())
            print(
                f"\nTop run_step tasks by round trips (a task = its step + any successor run inline; "
                f"{total_steps} tasks):"
            )
            print(
                f"  {'event type/step':<48}{'tasks':>6}{'trips/task':>11}{'txns':>6}{'stmts':>6}{'CPU ms':>8}"
                f"  statements by verb"
            )
            ranked = sorted(prof.by_step.items(), key=lambda kv: -trips(kv[1]))
            for name, c in ranked[:25]:
                k = c["tasks"]
                verbs = ", ".join(f"{v.split()[1]} {c[v] / k:.1f}" for v in sorted(c) if v.startswith("stmt "))
                print(
                    f"  {name:<48}{k:>6}{trips(c) / k:>11.1f}{c['transactions'] / k:>6.1f}"
                    f"{c['statements'] / k:>6.1f}{c['cpu_us'] / k / 1000:>8.2f}  {verbs}"
                )
            print_skills(prof, args.events, args.sql)
            if prof.skill_profile is not None:
                print("\nSkill calls only:")
                print_cprofile(prof.skill_profile, 30)
            if cp:
                print_cprofile(cp, 20)
        finally:
            bench.teardown()


if __name__ == "__main__":
    main()
