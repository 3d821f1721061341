"""PostgreSQL stopped mid-run (`pg_ctl stop -m fast`: every session cut, new ones refused) while
approvals and sends are in flight, then started again: every accepted job ends completed, every
effect reaches the fakes exactly once, the workers ride it out (same processes, no crash loop), and
the `proactive` command meets the outage with one line. The cluster is this module's own (initdb +
pg_ctl on a free port, tests/support/pg_cluster.py); the broker is the shared Redis, a DB of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from tests.conftest import Backend, _claim_redis_db
from tests.support import chaos_sequences as workload
from tests.support import pg_cluster
from tests.support.chaos import ChaosRun, Stage, chaos_run, record
from tests.support.services import REDIS_HOST, REDIS_PORT, ensure_redis
from tests.support.waiting import WaitTimeout, holds_for, wait_for
from worker.db import transaction
from worker.models import steps
from worker.slack import delivery

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.chaos,
    pytest.mark.parametrize("stage", ["postgres"], indirect=True),
]

# How long PostgreSQL stays down (seconds): the CI size, and the --soak size (issue 16: 15 s).
OUTAGE_S, SOAK_OUTAGE_S = 5.0, 15.0
# How often the operator thread sweeps (seconds): Beat's pass (every 60 s in production), compressed.
# A task that meets the stopped database fails and is acked; its step stays queued until a sweep
# re-publishes it (queued for 30 s or more), so the sweeper is part of the recovery here.
SWEEP_EVERY_S = 5.0
# The most the jobs may take to all end once PostgreSQL is back (seconds): the retries' backoff
# (quick in the run's env) plus the sweeper-free recovery of steps whose worker met the outage.
BACK_TO_FINAL_S = 60.0
# A Slack delivery claimed just before the outage keeps its lease (delivery.LEASE_S) in a live pool
# child whose task then failed: the confirmation DM waits that lease out, then a sweep.
BACK_TO_DELIVERED_S = delivery.LEASE_S + 3 * SWEEP_EVERY_S


@pytest.fixture(scope="module")
def own_pg() -> Iterator[pg_cluster.PgCluster]:
    """This module's own PostgreSQL cluster (skipped, with the reason, where one cannot be made)."""
    if reason := pg_cluster.missing():
        pytest.skip(reason)
    with pg_cluster.own_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def postgres_backend(own_pg: pg_cluster.PgCluster, tmp_home: Path) -> Iterator[Backend]:
    """The `postgres` backend of this module: its own cluster, and a Redis DB of its own. The fault
    suite's `stage` fixture (tests/chaos/conftest.py) builds the stage on it."""
    from worker.db import reset_engine

    ensure_redis()
    redis_db, lease = _claim_redis_db()
    try:
        yield Backend(
            "postgres",
            {"DATABASE_URL": own_pg.url, "BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"},
            tmp_home / "logs-postgres-outage",
        )
    finally:
        reset_engine()  # before the cluster goes: no pooled socket outlives it
        lease.release()


def running_steps(run: ChaosRun) -> dict[uuid.UUID, int]:
    """The run's running steps (step run id -> attempt): what a database outage holds up."""
    with transaction() as conn:
        rows = conn.execute(
            select(steps.c.id, steps.c.attempt).where(steps.c.org_id == run.stage.org.id, steps.c.status == "running")
        ).all()
    return {r.id: r.attempt for r in rows}


def finals(run: ChaosRun) -> int:
    """How many accepted jobs are final; -1 while this process's own database connection fails
    (its pooled connections die with the server: the first query after it meets one)."""
    try:
        return run.final_count()
    except DBAPIError:
        return -1


def confirmations_posted(run: ChaosRun) -> bool:
    """Every accepted job's confirmation DM is at the fake Slack."""
    texts = {workload.confirmation_text(run.run_id, n) for n in run.accepted}
    return texts <= {m["text"] for m in run.stage.slack.messages.values()}


def settle(run: ChaosRun, back_at: float) -> dict[str, float | None]:
    """Wait until every job is final, then every confirmation DM posted; seconds from `back_at` to
    each (None: not within its deadline; finish() then counts what is stuck or missing)."""
    took: dict[str, float | None] = {}
    for what, check, timeout_s in (
        ("every job final", lambda: finals(run) == len(run.accepted), BACK_TO_FINAL_S),
        ("every confirmation DM posted", lambda: confirmations_posted(run), BACK_TO_DELIVERED_S),
    ):
        try:
            wait_for(check, timeout_s=timeout_s, what=what)
        except WaitTimeout:
            took[what] = None
        else:
            took[what] = round(time.monotonic() - back_at, 1)
    return took


def proactive_fire(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`proactive fire` in a subprocess, as an operator runs it, on the stage's database."""
    payload = f'{{"deal_id": "{uuid.UUID(int=1)}"}}'
    return subprocess.run(
        [sys.executable, "-m", "worker.ops.cli", "fire", "proposal_generation", "--payload", payload],
        env={**os.environ, **env, "PROACTIVE_HOME": os.environ.get("TMPDIR", "/tmp")},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_postgres_stopped_mid_run_loses_nothing_and_doubles_nothing(
    stage: Stage, own_pg: pg_cluster.PgCluster, soak: bool
):
    jobs, outages, outage_s = (40, 2, SOAK_OUTAGE_S) if soak else (10, 1, OUTAGE_S)
    with chaos_run(
        stage, f"postgres stopped {outage_s:.0f} s (pg_ctl stop -m fast)", sweep_every_s=SWEEP_EVERY_S
    ) as run:
        run.start_workers(2)
        pids = [w.proc.pid for w in run.workers if w.proc]
        run.fire(jobs, work_s=0.3)
        for i in range(outages):
            progress = int(jobs * (i + 1) / (outages + 2))
            wait_for(lambda: finals(run) >= progress, timeout_s=90, what=f"{progress} jobs final")  # noqa: B023
            run.note_fault(f"pg_ctl stop -m fast for {outage_s:.0f} s", running_steps(run))
            own_pg.stop("fast")
            down_at = time.monotonic()
            if i == 0:  # the operator's command meets the outage with one line
                cli = proactive_fire(stage.env)
                lines = (cli.stdout + cli.stderr).strip().splitlines()
                assert cli.returncode == 1 and len(lines) == 1, cli.stdout + cli.stderr
                assert lines[0].startswith("error: ") and f"127.0.0.1:{own_pg.port}/" in lines[0], lines[0]
            holds_for(
                lambda: len(run.live_workers()) == len(pids),
                duration_s=max(0.0, outage_s - (time.monotonic() - down_at)),
                what="every worker alive while PostgreSQL is down",
            )
            own_pg.start()
            back_at = time.monotonic()
        settled = settle(run, back_at)
        survivors = [w.proc.pid for w in run.live_workers() if w.proc]
        outcome = run.finish(timeout_s=60)
    outcome.notes += [f"{what} {s} s after PostgreSQL was back" for what, s in settled.items()]
    record(outcome)
    assert outcome.faults == outages
    outcome.assert_clean()
    assert survivors == pids, f"a worker died or was restarted: {pids} -> {survivors}"
