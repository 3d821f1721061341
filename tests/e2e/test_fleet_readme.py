"""The README's "Run the fleet" commands, run as a newcomer would: parsed from README.md and run verbatim
in a shell from the project directory (only the database and broker URLs point at this test's own
PostgreSQL database and Redis DB, and the curl example at this test's port). The database does not
exist before `proactive db upgrade`; `proactive fleet` starts web, worker, ticks, beat and flower;
the README's curl example fires an event over HTTP and the job completes; stopping the fleet leaves no
process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import _claim_redis_db
from tests.support.edge import closed_port
from tests.support.services import ensure_postgres, ensure_redis
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
REPO = Path(__file__).resolve().parents[2]
README_DB = "postgresql://postgres@127.0.0.1:5432/proactive"
README_BROKER = "redis://127.0.0.1:6379/0"
README_PORT = "localhost:5000"
# How long the whole fleet may take to come up, and to stop after SIGTERM (seconds).
START_S, STOP_S = 60.0, 30.0


def readme_blocks(section: str) -> list[str]:
    """The ```sh blocks of a README section, in order."""
    text = (REPO / "README.md").read_text()
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end != -1 else None]
    return re.findall(r"```sh\n(.*?)```", body, flags=re.S)


def test_the_readme_names_the_commands_this_test_runs():
    install, run, fire = readme_blocks("Run the fleet")[:3]
    assert install.strip() == ".venv/bin/pip install -q -e '.[fleet]'"
    assert f"DATABASE_URL={README_DB} BROKER_URL={README_BROKER}" in run
    assert ".venv/bin/proactive db upgrade" in run and run.rstrip().splitlines()[-1].startswith(
        ".venv/bin/proactive fleet"
    )
    assert README_PORT in fire and "/api/events" in fire


@dataclass
class Fleet:
    env: dict[str, str]
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    exports: str  # the run block's `export` lines: the README's later blocks run in that same shell

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """The README's run block in a shell, on a database that does not exist yet and a Redis DB of
    its own; stopped with SIGTERM to its process group (as Ctrl-C would), every process checked gone."""
    ensure_postgres()
    ensure_redis()
    name = f"proactive_fleet_{uuid.uuid4().hex[:10]}"
    redis_db, lease = _claim_redis_db()
    db_url, broker_url = f"postgresql://postgres@127.0.0.1:5432/{name}", f"redis://127.0.0.1:6379/{redis_db}"
    run_block = readme_blocks("Run the fleet")[1]
    script = run_block.replace(README_DB, db_url).replace(README_BROKER, broker_url)
    assert script != run_block and name in script
    port = closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "BROKER_URL", "PYTHONPATH"))}
    env.update(PORT=str(port), FLOWER_PORT=str(closed_port()), PROACTIVE_HOME=str(tmp_path / "home"))
    log = tmp_path / "fleet.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-ec", script], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    exports = "\n".join(line for line in script.splitlines() if line.startswith("export "))
    fleet = Fleet(env, port, proc, log, exports)
    try:
        yield fleet
    finally:
        _stop(proc)
        lease.release()
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if not _group_alive(proc.pid):
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        wait_for(  # poll() reaps the shell (a zombie still counts as a member of the group)
            lambda: proc.poll() is not None and not _group_alive(proc.pid),
            timeout_s=STOP_S,
            what="every fleet process stopped",
        )
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except OSError:
        return 0, {}


def test_the_readme_fleet_commands_run_an_event_to_completion(fleet: Fleet):
    def ready() -> bool:
        assert fleet.proc.poll() is None, f"the fleet exited (rc {fleet.proc.returncode}):\n{fleet.output()[-3000:]}"
        return _get(f"http://127.0.0.1:{fleet.port}/readyz")[0] == 200 and "worker.1 started" in fleet.output()

    wait_for(ready, timeout_s=START_S, what="the fleet's web edge ready")
    out = fleet.output()
    assert "created database proactive_fleet_" in out  # `db upgrade` made the missing database
    for process in ("web", "worker", "ticks", "beat", "flower"):
        assert f"{process}.1 started" in out
    assert "not found" not in out  # the Procfile's programs were on PATH

    fire_block = (
        fleet.exports + "\n" + readme_blocks("Run the fleet")[2].replace(README_PORT, f"127.0.0.1:{fleet.port}")
    )
    fired = subprocess.run(
        ["bash", "-ec", fire_block], cwd=REPO, env=fleet.env, capture_output=True, text=True, timeout=60
    )
    assert fired.returncode == 0, fired.stdout + fired.stderr
    accepted = json.loads(fired.stdout.splitlines()[0])
    assert accepted["status"] in ("queued", "running", "completed") and accepted["duplicate"] is False

    token = re.search(r"ADMIN_TOKEN=(\S+)", fleet.exports)[1]
    request = urllib.request.Request(
        f"http://127.0.0.1:{fleet.port}/api/jobs/{accepted['job_id']}", headers={"Authorization": f"Bearer {token}"}
    )

    def done() -> dict | None:
        with urllib.request.urlopen(request, timeout=2) as resp:
            job = json.loads(resp.read())
        return job if job["status"] in ("completed", "failed") else None

    job = wait_for(done, timeout_s=60, what=f"job {accepted['job_id']} finished on the fleet")
    assert job["status"] == "completed", job
    assert job["dry_run"] is True  # the demo org is dry-run until an admin turns it live
    assert accepted["job_id"] in fired.stdout  # `proactive jobs` in the README block lists it

    # the fleet's processes share one Prometheus directory: the web's /metrics counts the worker's steps
    with urllib.request.urlopen(f"http://127.0.0.1:{fleet.port}/metrics", timeout=5) as resp:
        families = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
    finished = [
        s
        for s in families["proactive_steps_finished"].samples
        if s.name.endswith("_total") and s.labels.get("sequence") == "deal_risk_scan"
    ]
    assert sum(s.value for s in finished) >= 4  # the scan's four steps, counted in worker processes
