"""What every benchmark shares: its database and Redis DB, its environment, its worker processes,
percentiles, and the BENCHMARKS.md section it may write.

* ``Backends``: a fresh PostgreSQL database (migrated to head, dropped at the end) and a Redis DB
  picked free (``pick_redis_db``, flushed first and last);
* ``bench_env`` / ``use_env``: the environment of the benchmark process and of every process it
  starts (the run's database and broker, the sequence modules, nothing that calls a live service);
* ``WorkerProcess``: a real ``celery worker -P prefork`` in its own process group, ready once it
  consumes, always stopped by group; ``cpu_seconds`` / ``rss_mib`` read /proc;
* ``percentile`` (nearest rank), ``machine_line`` (the header's first line), ``section_text`` and
  ``write_section`` (a generated BENCHMARKS.md section, the notes under it kept).

The project's modules (``worker.*``) read the settings when they are imported (the Celery app is
built then), so this module imports them only inside the functions that run after ``use_env``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
import redis
from celery import Celery

from bench.ready import READY_FILE_ENV

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# Environment variables that would make a run call real services (removed for the run).
LIVE_ENV = ("LLM_BASE_URL", "SLACK_BOT_TOKEN", "GOOGLE_API_URL", "INSTANTLY_API_URL")
# How long a worker may take to start consuming on a loaded 2-core machine (seconds).
READY_TIMEOUT_S = 60.0
# How long a graceful stop may take before the process group is killed (seconds).
STOP_TIMEOUT_S = 10.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- database and Redis


def fresh_db_name(prefix: str = "proactive_bench") -> str:
    """A database name no other run uses: ``<prefix>_<random>``."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def pick_redis_db(wanted: int | None) -> int:
    """``wanted``, or a Redis DB with no keys and no client connected to it (no other user's queues
    are touched): DB 0 first (the test suite flushes and uses 1 + pid % 15, never 0), then 15 down to 1."""
    if wanted is not None:
        return wanted
    r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    me = r.client_id()
    count = int(r.config_get("databases").get("databases", 16))
    used = {int(k[2:]) for k in r.info("keyspace")}
    used |= {int(c["db"]) for c in r.client_list() if int(c["id"]) != me}
    r.close()
    free = [d for d in (0, *range(count - 1, 0, -1)) if d not in used]
    if not free:
        raise SystemExit("no Redis DB without keys and clients; pass --redis-db N (it will be flushed)")
    return free[0]


class Backends:
    """One run's PostgreSQL database and Redis DB: made (or opened) at set-up, released at teardown.

    ``redis_db`` None: the run uses no Redis. The names and URLs are known before anything is made,
    so the environment can be set first."""

    def __init__(self, db_name: str, redis_db: int | None = None) -> None:
        self.db_name = db_name
        self.redis_db = redis_db
        self.dsn = f"postgresql://postgres@127.0.0.1:5432/{db_name}"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{db_name}"
        self.broker_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}" if redis_db is not None else None
        self.admin: Any = None  # psycopg autocommit connection to the database (main thread)
        self.redis: Any = None
        self.created = False  # the database was made by this run (and is dropped by it)

    def create(self) -> None:
        """Make the database, migrate it to head, then ``connect``."""
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.created = True
        from worker import migrate  # after use_env: worker modules read the settings at import

        migrate.upgrade(self.url)
        self.connect()

    def connect(self) -> None:
        """Open the admin connection and the Redis client; flush the Redis DB."""
        self.admin = psycopg.connect(self.dsn, autocommit=True)
        if self.redis_db is not None:
            self.redis = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=self.redis_db)
            self.redis.flushdb()

    def pg_pids(self, others_only: bool = False) -> list[int]:
        """PIDs of the PostgreSQL backends connected to the database (``others_only``: but the admin
        connection's, whose polling is not the system's cost)."""
        sql = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        sql += " AND pid <> pg_backend_pid()" if others_only else ""
        return [r[0] for r in self.admin.execute(sql).fetchall()]

    def pg_version(self) -> str:
        """The PostgreSQL server's version."""
        return self.admin.execute("SHOW server_version").fetchone()[0]

    def autovacuum(self) -> str:
        """The server's ``autovacuum`` setting ('on' or 'off')."""
        return self.admin.execute("SHOW autovacuum").fetchone()[0]

    def analyze(self) -> None:
        """ANALYZE the database after a run's warm-up: the statistics a running system has (autovacuum's
        auto-analyze gathers them on a server where it runs; this machine's PostgreSQL runs without it).
        Without them, a generic plan PostgreSQL cached for a statement prepared while the tables were
        nearly empty stays: a lookup by primary key may read the org's whole index (every candidate
        index costs the same on an empty table). ANALYZE invalidates those plans.

        bench.edge and bench.engine call it; bench.sequences with ``--analyze``. Its measured orgs have
        no jobs yet at the warm-up, and statistics that never saw an org made custom plans for it look
        like one row (8.5 -> 12.1 ms of PostgreSQL CPU per event with an ANALYZE, 11:40 UTC
        2026-12-06), until the lookups by key stopped offering the planner an org or status index
        (worker/models.py ``checked``): with or without it since (13:49-13:55 UTC, 3 rounds each),
        1.47x and 1.42x f989315's events/s."""
        self.admin.execute("ANALYZE")

    def redis_version(self) -> str:
        """The Redis server's version."""
        return self.redis.info("server")["redis_version"]

    def close(self, keep: bool = False) -> None:
        """Close the connections, reset the engine of this process, drop the database (when this run
        made it and not ``keep``) and flush the Redis DB; failures are warnings, so a teardown finishes."""
        if self.admin is not None:
            self.admin.close()
            self.admin = None
        if "worker.db" in sys.modules:
            from worker.db import reset_engine  # imported already (after use_env)

            try:
                reset_engine()
            except Exception as exc:
                print(f"warning: engine reset failed: {exc}", file=sys.stderr)
        if self.created and not keep:
            try:
                with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            except Exception as exc:
                print(f"warning: could not drop {self.db_name}: {exc}", file=sys.stderr)
        if self.redis is not None:
            try:
                self.redis.flushdb()
            except Exception as exc:
                print(f"warning: could not flush redis db {self.redis_db}: {exc}", file=sys.stderr)


# --------------------------------------------------------------------------- environment


def bench_env(backends: Backends, sequence_modules: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of the benchmark process and its children: the run's database and broker
    (also as ``BENCH_*`` for the baseline apps), the sequence modules (when given), then ``extra``."""
    env = {"DATABASE_URL": backends.url, "BENCH_DB_DSN": backends.dsn}
    if backends.broker_url is not None:
        env.update(BROKER_URL=backends.broker_url, BENCH_BROKER_URL=backends.broker_url)
    if sequence_modules is not None:
        env["PROACTIVE_SEQUENCE_MODULES"] = sequence_modules
    env.update(extra)
    return env


def use_env(env: Mapping[str, str]) -> None:
    """Put ``env`` into this process's environment (without the live-service variables) before any
    worker module reads its settings; when one has already (a caller imported it), the settings, the
    engine and the Celery app's broker are re-read."""
    for key in LIVE_ENV:
        os.environ.pop(key, None)
    os.environ.update(env)
    if "worker.config" in sys.modules:
        from worker.celery_app import reconfigure_broker  # worker.config is loaded: the settings are re-read
        from worker.config import reset_settings
        from worker.db import reset_engine

        reset_settings()
        reset_engine()
        reconfigure_broker()


def raise_on_signals(*signums: int) -> None:
    """End the run through its ``finally`` blocks on these signals (servers and workers stopped,
    the database dropped): SIGTERM, and SIGINT, which a background shell leaves ignored."""
    for signum in signums:
        signal.signal(signum, _interrupted)


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------- processes


class ChildProcess:
    """A subprocess in its own session (process group) writing to a log file; ``stop()`` ends the
    whole group by its id, so none of its children outlives the benchmark."""

    kind = "process"  # how errors name it

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process (repo root as its directory, output appended to the log)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self.proc

    def failed_to_start(self) -> RuntimeError:
        """Stop what is left and describe the failure with the log."""
        self.stop()
        return RuntimeError(f"{self.kind} {self.name} did not start:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def check_alive(self) -> None:
        """Raise with the log when the main process has exited."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.kind} {self.name} exited:\n{self.log_tail()}")

    def children(self) -> list[int]:
        """The main process's children (pool processes, web workers)."""
        return children_of(self.proc.pid) if self.proc is not None else []

    def pids(self) -> list[int]:
        """The main process and its children."""
        return [self.proc.pid, *self.children()] if self.proc is not None else []

    def stop(self) -> None:
        """Graceful stop (SIGTERM to the group), then SIGKILL whatever of the group is left."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        if self.proc.poll() is None:
            _killpg(pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        _killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_TIMEOUT_S)


class WorkerProcess(ChildProcess):
    """One ``celery -A APP worker -P prefork -c N`` and its pool children, logging at WARNING (no
    per-task lines in the measurement). Ready when the file that ``bench.ready`` touches on
    ``worker_ready`` exists, so no INFO log has to be parsed."""

    kind = "worker"

    def __init__(
        self, app: str, queues: str, env: Mapping[str, str], workdir: Path, name: str, concurrency: int = 2
    ) -> None:
        self.ready_path = workdir / f"{name}.ready"
        args = [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queues, "-P", "prefork"]
        args += ["-c", str(concurrency), "-n", f"{name}@%h", "-l", "WARNING"]
        args += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
        super().__init__(name, args, {**env, READY_FILE_ENV: str(self.ready_path)}, workdir / f"{name}.log")

    def start(self) -> WorkerProcess:
        """Start the worker and return once it consumes (RuntimeError with its log otherwise)."""
        self.ready_path.unlink(missing_ok=True)
        proc = self.spawn()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.ready_path.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise self.failed_to_start()
            time.sleep(0.02)
        return self


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process in ``pids``."""
    out: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return out


def cpu_delta(before: Mapping[int, float], after: Mapping[int, float]) -> float:
    """CPU seconds spent between two samples (a process born in between counts from zero)."""
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def rss_mib(pids: Iterable[int]) -> dict[int, float]:
    """Resident set size (MiB) of each live process in ``pids`` (VmRSS from /proc)."""
    out: dict[int, float] = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[pid] = int(line.split()[1]) / 1024
                    break
        except OSError:
            continue
    return out


def start_py_spy(pid: int, path: Path | str, idle: bool = True) -> subprocess.Popen[bytes]:
    """Profiling: sample process ``pid`` and its children with py-spy (raw collapsed stacks to ``path``);
    ``idle`` False drops the samples py-spy judges idle (a thread blocked where py-spy recognises it;
    psycopg's waits for the server, inside its C code, still show as busy)."""
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        raise SystemExit(f"--py-spy needs py-spy beside the interpreter ({exe}): .venv/bin/pip install py-spy")
    args = [str(exe), "record", "--subprocesses", "--nonblocking", *(["--idle"] if idle else [])]
    args += ["--format", "raw", "--rate", "200"]
    return subprocess.Popen(
        [*args, "-p", str(pid), "-o", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_py_spy(spy: subprocess.Popen[bytes]) -> None:
    """Stop py-spy (SIGINT makes it write its output) and wait for the file."""
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


# --------------------------------------------------------------------------- baseline Celery apps


def baseline_celery(name: str, queue: str, broker_env: str) -> Celery:
    """A bare Celery app configured like the engine's (``acks_late``, ``reject_on_worker_lost``,
    prefetch 1, no results, JSON) on the broker named by ``$broker_env``, default queue ``queue``."""
    broker_url = os.environ.get(broker_env, "redis://127.0.0.1:6379/15")
    app = Celery(name, set_as_current=False)
    app.conf.update(
        broker_url=broker_url,
        broker_transport_options=transport_options(broker_url),
        broker_connection_retry_on_startup=True,
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=queue,
        task_serializer="json",
        accept_content=["json"],
        enable_utc=True,
    )
    return app


def transport_options(broker_url: str) -> dict[str, object]:
    """As the engine's app: on Redis no ack emulation (worker/celery_app.py) and its visibility
    timeout; nothing for RabbitMQ."""
    return {"ack_emulation": False, "visibility_timeout": 3600} if broker_url.startswith("redis") else {}


# --------------------------------------------------------------------------- numbers and report


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` from 0 to 100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def epoch(value: datetime) -> float:
    """Seconds since the epoch of a stored timestamp (naive values are UTC)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def machine_line(title: str, packages: Sequence[str], backends: Backends) -> str:
    """The first header line: when, the machine and its load, the versions, the servers."""
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in packages)
    return (
        f"{title}, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}: {os.cpu_count()} cores "
        f"(load avg {os.getloadavg()[0]:.2f} at start), Python {platform.python_version()}, {versions}; "
        f"PostgreSQL {backends.pg_version()} (autovacuum {backends.autovacuum()}), Redis {backends.redis_version()} "
        f"(db {backends.redis_db})"
    )


def section_text(title: str, about: str, command: str, output: str, notes: str = "") -> str:
    """A BENCHMARKS.md section: the title, what it measures (``about``, ending with the line that
    introduces the command), the command, the run's output dated today, then ``notes``."""
    text = f"{title}\n\n{about}\n\n```\n{command}\n```\n\nRun ({time.strftime('%Y-%m-%d')}):\n\n```\n{output}\n```\n"
    return text + (f"\n{notes}\n" if notes else "")


def write_section(path: Path, title: str, body: str) -> None:
    """Put ``body`` (a generated section) into ``path``: in place of the generated part of the section
    starting with ``title`` (from the title to the end of its ``Run (...)`` output block), keeping the
    notes written under that block (they may then need updating); appended when there is no section."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, x in enumerate(lines) if x.rstrip() == title), None)
    if start is None:
        path.write_text(text.rstrip("\n") + "\n\n" + body.rstrip("\n") + "\n")
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    generated_end = _output_block_end(lines, start, end)
    notes = "".join(lines[generated_end:end]).strip("\n")
    tail = "".join(lines[end:])
    new = (
        "".join(lines[:start])
        + body.rstrip("\n")
        + "\n"
        + (f"\n{notes}\n" if notes else "")
        + ("\n" + tail if tail else "")
    )
    path.write_text(new.rstrip("\n") + "\n")


def _output_block_end(lines: list[str], start: int, end: int) -> int:
    """The line after the closing fence of the first code block following ``Run (`` in lines[start:end]
    (``end`` when the section has no such block: all of it is replaced)."""
    run = next((i for i in range(start, end) if lines[i].startswith("Run (")), None)
    if run is None:
        return end
    fences = [i for i in range(run, end) if lines[i].rstrip() == "```"]
    return fences[1] + 1 if len(fences) >= 2 else end
