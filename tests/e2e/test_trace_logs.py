"""One trace id through the logs: the Procfile's gunicorn and a real `celery worker`, both with
`LOG_FORMAT=json`, over PostgreSQL + Redis. An event is fired over HTTP with a W3C `traceparent`;
the web's and the worker's logs are parsed as JSON, and every line about the job must carry the
caller's trace id (a header that is not W3C-shaped gets a new id instead). A Slack click on a job's
approval, which arrives under its own trace id, is logged (web and worker) under the job's, with the
click's own as `origin_trace_id`. Processes are always stopped by process group."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from tests.conftest import Backend, apply_env
from tests.integration.conftest import TEST_ENGINE_ENV
from tests.support.engine import TestOrg, make_org, pending_approval, reached
from tests.support.gunicorn import procfile_web, procfile_web_env
from tests.support.slack import SIGNING_SECRET, click, form_body, signed_headers
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from worker import logs
from worker.db import transaction
from worker.models import Org, User, jobs

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
    chosen = {
        **postgres_backend.env,
        **TEST_ENGINE_ENV,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    }
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


def _fire(url: str, org: TestOrg, headers: dict[str, str], **extra: Any) -> httpx.Response:
    event = {
        "type": "campaign_daily_check",
        "org_id": str(org.id),
        "payload": {},
        "idempotency_key": f"trace:{uuid.uuid4().hex}",
        **extra,
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
    assert accepted[0]["org_id"] == str(org.id) and accepted[0]["logger"] == "worker.engine.events"
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


def test_a_slack_click_is_logged_under_its_jobs_trace_id(web, worker, org):
    """The engine test DAG of calendar_find_times pauses on an approval; the click comes with its own
    traceparent, yet every line about the job (the web's handling of the click, the worker's resume
    and the steps after it) carries the job's trace id, and the click's lines keep their own."""
    url, web_log = web
    team, slack_user = f"T{uuid.uuid4().hex[:10].upper()}", "U0TRACE01"
    with transaction() as conn:
        conn.execute(update(Org).where(Org.id == org.id).values(slack_team_id=team))
        conn.execute(update(User).where(User.id == org.admin).values(slack_user_id=slack_user))
    job_trace, click_trace = uuid.uuid4().hex, uuid.uuid4().hex
    fired = _fire(
        url,
        org,
        {"traceparent": f"00-{job_trace}-00f067aa0ba902b7-01"},
        type="calendar_find_times",
        user_id=str(org.rep),
    )
    job_id = fired.json()["job_id"]
    approval = wait_for(lambda: pending_approval(uuid.UUID(job_id)), timeout_s=30, what="the job's approval")

    body = form_body(click("cal_send_times", str(approval.id), user=slack_user, team=team))
    headers = {**signed_headers(body), "traceparent": f"00-{click_trace}-00f067aa0ba902b7-01"}
    clicked = httpx.post(f"{url}/slack/interactive", content=body, headers=headers, timeout=10)
    assert clicked.status_code == 200, clicked.text
    assert wait_for(lambda: reached(uuid.UUID(job_id), "completed"), timeout_s=30, what="the job completing")
    worker_log = JsonLog(worker.log_path)

    def resume_logged() -> bool:
        # Celery writes its "Task proactive.resume_approval[...] succeeded" line after the task returns,
        # i.e. after the inline step `act` logged: wait for both, not just the step's
        records, _ = worker_log.read()
        act = [r for r in _about(records, job_id) if r.get("step") == "act" and "succeeded" in r["message"]]
        task = [r for r in records if "proactive.resume_approval" in r["message"] and "succeeded" in r["message"]]
        return bool(act and task)

    wait_for(resume_logged, timeout_s=30, what="the worker's lines of the resume and the step after it")
    web_records, _ = web_log.read()
    worker_records, _ = worker_log.read()

    # the web's handling of the click: under the job's trace, the click's own id kept as the origin
    click_lines = [r for r in web_records if r.get("origin_trace_id") == click_trace]
    handled = [r for r in click_lines if r["message"].startswith("Slack click cal_send_times")]
    assert len(handled) == 1, click_lines
    assert (handled[0]["trace_id"], handled[0]["job_id"], handled[0]["org_id"]) == (job_trace, job_id, str(org.id))
    assert {r["trace_id"] for r in click_lines} == {job_trace}
    # the worker's resume of the job (and what ran after it): the job's trace, the click as the origin
    resumed = [r for r in worker_records if r.get("origin_trace_id") == click_trace]
    assert {r["trace_id"] for r in resumed} == {job_trace}
    assert any("proactive.resume_approval" in r["message"] for r in resumed), resumed
    assert any(r.get("step") == "act" for r in resumed)
    # so `grep <job trace id>` finds the click: every line about the job carries the job's trace id
    lines = _about(web_records, job_id) + _about(worker_records, job_id)
    assert handled[0] in lines
    assert {r.get("trace_id") for r in lines} == {job_trace}, [r for r in lines if r.get("trace_id") != job_trace]
