"""One trace id through the logs: the Procfile's gunicorn and a real `celery worker`, both with
`LOG_FORMAT=json`, over PostgreSQL + Redis. An event is fired over HTTP with a W3C `traceparent`;
the web's and the worker's logs are parsed as JSON, and every line about the job must carry the
caller's trace id (a header that is not W3C-shaped gets a new id instead). Processes are always
stopped by process group."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Backend, apply_env
from tests.integration.conftest import TEST_ENGINE_ENV
from tests.support.engine import TestOrg, make_org
from tests.support.gunicorn import procfile_web, procfile_web_env
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from worker import logs
from worker.db import transaction
from worker.models import jobs

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
# The engine test DAG for campaign_daily_check: five no-op steps.
STEPS = ["s1", "s2", "s3", "s4", "s5"]


@dataclass
class JsonLog:
    """A process's log file: the JSON lines parsed, the other lines kept as text."""

    path: Path

    def read(self) -> tuple[list[dict[str, Any]], list[str]]:
        """(records, lines that are not JSON objects)."""
        records, other = [], []
        text = self.path.read_text(errors="replace") if self.path.exists() else ""
        for line in text.splitlines():
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                records.append(parsed)
            elif line.strip():
                other.append(line)
        return records, other


@pytest.fixture(scope="module")
def env(postgres_backend: Backend) -> Iterator[dict[str, str]]:
    """PostgreSQL + Redis for this process (org set-up, reading jobs) and for the servers."""
    chosen = {**postgres_backend.env, **TEST_ENGINE_ENV, "ADMIN_TOKEN": ADMIN_TOKEN}
    with pytest.MonkeyPatch.context() as mp:
        apply_env(mp, chosen)
        yield chosen
    from worker.config import reset_settings
    from worker.db import reset_engine

    reset_settings()
    reset_engine()


@pytest.fixture(scope="module")
def worker(env: dict[str, str], tmp_home: Path) -> Iterator[WorkerProcess]:
    w = WorkerProcess({**env, "LOG_FORMAT": "json"}, tmp_home / "logs-trace", "trace-worker").start()
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def web(env: dict[str, str], tmp_home: Path) -> Iterator[tuple[str, JsonLog]]:
    """The Procfile's web line (its LOG_FORMAT=json included) on a free port."""
    assert procfile_web_env().get("LOG_FORMAT") == "json"  # the fleet's web logs JSON
    log_path = tmp_home / "logs-trace" / "gunicorn.log"
    with procfile_web(env, log_path, line_env=True) as srv:
        yield srv.url, JsonLog(log_path)


@pytest.fixture
def org(env: dict[str, str]) -> TestOrg:
    return make_org()


def _fire(url: str, org: TestOrg, headers: dict[str, str]) -> httpx.Response:
    event = {
        "type": "campaign_daily_check",
        "source": "api",
        "org_id": str(org.id),
        "payload": {},
        "idempotency_key": f"trace:{uuid.uuid4().hex}",
    }
    response = httpx.post(
        f"{url}/api/events", json=event, headers={"Authorization": f"Bearer {ADMIN_TOKEN}", **headers}, timeout=10
    )
    assert response.status_code == 202, response.text
    return response


def _stored_trace(job_id: str) -> str | None:
    with transaction() as conn:
        return conn.execute(select(jobs.c.trace_id).where(jobs.c.id == uuid.UUID(job_id))).scalar()


def _about(records: list[dict[str, Any]], job_id: str) -> list[dict[str, Any]]:
    """The records that mention the job (its id as a field or in the message)."""
    return [r for r in records if r.get("job_id") == job_id or job_id in str(r.get("message", ""))]


def _follow(url: str, org: TestOrg, worker: WorkerProcess, web_log: JsonLog, headers: dict[str, str]) -> str:
    """Fire one event, wait until the worker logged its five steps, and check every line about the
    job in both logs carries one trace id; returns that id."""
    response = _fire(url, org, headers)
    job_id = response.json()["job_id"]
    trace_id = response.headers["X-Trace-Id"]
    assert logs.valid_trace_id(trace_id) == trace_id
    worker_log = JsonLog(worker.log_path)

    def steps_logged() -> list[dict[str, Any]] | None:
        records, _ = worker_log.read()
        done = [r for r in _about(records, job_id) if r.get("step") and "succeeded" in r["message"]]
        return done if {r["step"] for r in done if r["message"].startswith("step ")} == set(STEPS) else None

    step_lines = wait_for(steps_logged, timeout_s=30, what=f"the worker's step lines of job {job_id}")
    assert _stored_trace(job_id) == trace_id

    web_records, web_text = web_log.read()
    worker_records, worker_text = worker_log.read()
    assert web_text == []  # gunicorn's own lines (the master's too) are JSON as well
    assert not [line for line in worker_text if job_id in line]  # the worker's banner is text, and says nothing of it
    accepted = [r for r in _about(web_records, job_id) if "accepted" in r["message"]]
    assert len(accepted) == 1 and accepted[0]["trace_id"] == trace_id
    assert accepted[0]["org_id"] == str(org.id) and accepted[0]["logger"] == "worker.events"
    lines = _about(web_records, job_id) + _about(worker_records, job_id)
    assert lines and {r.get("trace_id") for r in lines} == {trace_id}, [
        r for r in lines if r.get("trace_id") != trace_id
    ]
    assert {r["step"] for r in step_lines} == set(STEPS)
    assert {r["org_id"] for r in step_lines} == {str(org.id)}
    return trace_id


def test_one_trace_id_from_the_web_edge_through_every_step(web, worker, org):
    url, web_log = web
    trace = uuid.uuid4().hex
    assert _follow(url, org, worker, web_log, {"traceparent": f"00-{trace}-00f067aa0ba902b7-01"}) == trace
    # Celery's own lines about the tasks went through the same formatter, with the trace id
    records, _ = JsonLog(worker.log_path).read()
    celery_lines = [r for r in records if r.get("trace_id") == trace and r["logger"].startswith("celery")]
    assert any("proactive.run_step" in r["message"] and "succeeded" in r["message"] for r in celery_lines)


@pytest.mark.parametrize(
    "headers",
    [
        {"traceparent": "00-not-a-trace-01"},
        {"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"},
        {},
    ],
    ids=["malformed", "all-zero", "absent"],
)
def test_a_trace_header_that_is_not_w3c_shaped_gets_a_new_id(web, worker, org, headers):
    url, web_log = web
    made = _follow(url, org, worker, web_log, headers)
    assert made not in headers.get("traceparent", "")
