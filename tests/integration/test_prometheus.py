"""`/metrics` in multiprocess mode, as the fleet runs it: the Procfile's gunicorn (2 workers) and a
prefork `celery worker` (2 children) share one PROMETHEUS_MULTIPROC_DIR over PostgreSQL + Redis.
After a known run (n events accepted over HTTP, k refused, one duplicate, 5 steps per job) the
scrape, whichever gunicorn worker answers it, reads back exactly those numbers. The exposition
text is parsed with prometheus-client's own parser."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from tests.conftest import Backend
from tests.support.engine import TestOrg, make_org
from tests.support.gunicorn import START_TIMEOUT_S, Gunicorn, procfile_web
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from worker.access.api_keys import create_key
from worker.db import transaction
from worker.metrics.prom import MULTIPROC_ENV, clear_multiprocess_dir
from worker.models import jobs

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
# Events fired per round while waiting for both gunicorn workers to have served one, and the most
# rounds before the test says the kernel never spread the connections.
BATCH = 8
MAX_ROUNDS = 25
SEQUENCE = "campaign_daily_check"  # the engine test DAG: five no-op steps s1..s5
STEPS_PER_JOB = 5


def children_of(parent: int) -> set[int]:
    """Pids whose parent is `parent` (read from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                found.add(int(stat.parent.name))
    return found


def writers(directory: Path) -> set[int]:
    """Pids that wrote counter values to the multiprocess directory."""
    return {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("counter_*.db")}


@pytest.fixture(scope="module")
def metrics_dir(tmp_home: Path) -> Path:
    directory = tmp_home / f"prometheus-{uuid.uuid4().hex[:8]}"
    clear_multiprocess_dir(directory)  # what the fleet does before it starts its processes
    return directory


@pytest.fixture(scope="module")
def fleet_env(pg: Backend, metrics_dir: Path) -> dict[str, str]:
    return {**pg.env, MULTIPROC_ENV: str(metrics_dir)}


@pytest.fixture(scope="module")
def worker(fleet_env: dict[str, str], pg: Backend) -> Iterator[WorkerProcess]:
    w = WorkerProcess(fleet_env, pg.log_dir, "prometheus", concurrency=2).start()
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def web(fleet_env: dict[str, str], pg: Backend) -> Iterator[Gunicorn]:
    """The Procfile's web command (2 gthread workers), stopped by process group whatever happens."""
    with procfile_web(fleet_env, pg.log_dir / "prometheus-gunicorn.log") as server:
        wait_for(lambda: len(worker_pids(server)) == 2, timeout_s=START_TIMEOUT_S, what="two gunicorn workers")
        yield server


def worker_pids(server: Gunicorn) -> set[int]:
    """The gunicorn master's children (its workers)."""
    return children_of(server.proc.pid)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, sorted labels): value}, parsed by prometheus-client."""
    answer = httpx.get(f"{url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def event(org: TestOrg, key: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "type": SEQUENCE,
        "org_id": str(org.id),
        "payload": {},
        "idempotency_key": key or f"prom:{uuid.uuid4().hex}",
        **extra,
    }


def post(url: str, token: str, body: dict[str, object]) -> httpx.Response:
    """One request on a connection of its own (so the kernel may hand it to either gunicorn worker)."""
    return httpx.post(f"{url}/api/events", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_a_known_run_reads_back_from_every_process(web: Gunicorn, worker: WorkerProcess, metrics_dir: Path):
    org = make_org()
    token, _ = create_key(org.id, "prometheus")
    fired: list[str] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(MAX_ROUNDS):
            answers = list(pool.map(lambda body: post(web.url, token, body), [event(org) for _ in range(BATCH)]))
            assert {a.status_code for a in answers} == {202}, [a.text for a in answers if a.status_code != 202]
            fired += [a.json()["job_id"] for a in answers]
            if worker_pids(web) <= writers(metrics_dir):
                break
        assert worker_pids(web) <= writers(metrics_dir), "every event went to one gunicorn worker"
    n = len(fired)

    duplicate = post(web.url, token, event(org, key="prom:same"))
    again = post(web.url, token, event(org, key="prom:same"))
    assert duplicate.status_code == again.status_code == 202 and again.json()["duplicate"] is True
    n += 1
    refused = [post(web.url, token, event(org, type="no_such_event")) for _ in range(3)]
    assert {r.status_code for r in refused} == {422}
    unauthorized = post(web.url, "pk_wrong", event(org))
    assert unauthorized.status_code == 401

    def completed() -> int:
        with transaction() as conn:
            return conn.execute(
                select(func.count()).where(jobs.c.org_id == org.id, jobs.c.status == "completed")
            ).scalar_one()

    wait_for(lambda: completed() == n, timeout_s=60, what=f"{n} jobs completed")
    step_pids = writers(metrics_dir) - worker_pids(web)
    assert step_pids, "the celery worker's processes wrote no metrics"

    def settled() -> dict | None:
        samples = scrape(web.url)
        done = sample(samples, "proactive_steps_finished_total", sequence=SEQUENCE, step="s5", status="succeeded")
        return samples if done == n else None

    samples = wait_for(settled, timeout_s=10, what="every step counted")
    assert sample(samples, "proactive_events_accepted_total", source="api", type=SEQUENCE) == n
    assert sample(samples, "proactive_events_duplicate_total", source="api") == 1
    assert sample(samples, "proactive_events_rejected_total", source="api", reason="InvalidEvent") == 3
    assert sample(samples, "proactive_events_rejected_total", source="api", reason="Unauthorized") == 1
    # Only this sequence's series: the module's worker shares the session's broker, so a message another
    # module left queued (a cron's deal_risk_scan, say) may run here too and add series of its own.
    finished = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "proactive_steps_finished_total" and ("sequence", SEQUENCE) in labels
    }
    assert finished == {
        (("sequence", SEQUENCE), ("status", "succeeded"), ("step", f"s{i}")): float(n)
        for i in range(1, STEPS_PER_JOB + 1)
    }
    assert sample(samples, "proactive_step_duration_seconds_count", sequence=SEQUENCE) == STEPS_PER_JOB * n
    assert sample(samples, "proactive_step_duration_seconds_bucket", sequence=SEQUENCE, le="+Inf") == STEPS_PER_JOB * n
    assert {
        ("proactive_approvals_pending", ()),
        ("proactive_outbox_pending", ()),
    } <= samples.keys()  # from the database


def test_the_web_edges_scrape_gives_up_on_a_database_that_never_answers(monkeypatch: pytest.MonkeyPatch):
    """A database that accepts the connection and never answers costs /metrics its gauges, not the
    scrape: the counters come back within the 2-second time box, twice (the second scrape waits on
    the same hanging read)."""
    import socket
    import time

    from webhooks import create_app
    from worker.config import reset_settings
    from worker.db import reset_engine

    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/x")
        reset_settings()
        reset_engine()
        try:
            client = create_app({"TESTING": True}).test_client()
            for _ in range(2):
                started = time.monotonic()
                response = client.get("/metrics")
                assert response.status_code == 200 and time.monotonic() - started < 4
                names = {family.name for family in text_string_to_metric_families(response.text)}
                assert "proactive_events_accepted" in names and "proactive_approvals_pending" not in names
        finally:
            monkeypatch.undo()
            reset_settings()
            reset_engine()
