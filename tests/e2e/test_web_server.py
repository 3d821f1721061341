"""The real web edge: the Procfile's `gunicorn -k gthread -w 2 ... 'webhooks:create_app()'` on 127.0.0.1 over
PostgreSQL + Redis with a real `celery worker`; an org key fires an event over HTTP and the job is
followed through `GET /api/jobs/<id>` until it completes; requests gunicorn refuses itself (a control
character in a header) get the app's JSON error. gunicorn is always stopped (its whole process group)."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Backend, apply_env
from tests.integration.conftest import TEST_ENGINE_ENV
from tests.support.engine import TestOrg, make_org
from tests.support.gunicorn import Gunicorn, procfile_web, procfile_web_command
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from worker.access.api_keys import create_key

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def env(postgres_backend: Backend) -> Iterator[dict[str, str]]:
    """PostgreSQL + Redis for this process (org and key set-up) and for the servers."""
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
    w = WorkerProcess(env, tmp_home / "logs-e2e", "web-e2e").start()
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def server(env: dict[str, str], tmp_home: Path) -> Iterator[Gunicorn]:
    """The Procfile's gunicorn, stopped by process group whatever happens."""
    with procfile_web(env, tmp_home / "logs-e2e" / "gunicorn.log") as srv:
        yield srv


@pytest.fixture
def org(env: dict[str, str]) -> TestOrg:
    return make_org()


def event(org: TestOrg, **extra: object) -> dict[str, object]:
    """A five-step no-op job (the engine test DAG for campaign_daily_check) with a unique key."""
    return {
        "type": "campaign_daily_check",
        "org_id": str(org.id),
        "payload": {},
        "idempotency_key": f"e2e:{uuid.uuid4().hex}",
        **extra,
    }


def test_an_event_fired_over_http_runs_to_completion(server, worker, org):
    key, _ = create_key(org.id, "e2e")
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=10) as http:
        ev = event(org)
        fired = http.post("/api/events", json=ev)
        assert fired.status_code == 202, fired.text
        job_id = fired.json()["job_id"]
        assert fired.json()["duplicate"] is False and fired.headers["X-Request-Id"]

        def finished() -> dict | None:
            detail = http.get(f"/api/jobs/{job_id}")
            assert detail.status_code == 200, detail.text
            body = detail.json()
            return body if body["status"] not in ("queued", "running") else None

        job = wait_for(finished, timeout_s=30, what=f"job {job_id} finished")
        assert job["status"] == "completed"
        assert [s["step"] for s in job["steps"]] == ["s1", "s2", "s3", "s4", "s5"]
        assert {s["status"] for s in job["steps"]} == {"succeeded"}

        again = http.post("/api/events", json=ev)
        assert again.status_code == 202 and again.json() == {"job_id": job_id, "status": "completed", "duplicate": True}

        waited = http.post("/api/events", params={"wait": "20"}, json=event(org))
        assert waited.status_code == 202 and waited.json()["status"] == "completed"


def test_refusals_over_http(server, org):
    key, _ = create_key(org.id, "e2e-refusals")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        no_key = http.post("/api/events", json=event(org))
        assert no_key.status_code == 401 and no_key.json()["error"] == "unauthorized"
        huge = http.post(
            "/api/events",
            content=b'{"x": "' + b"y" * (2 * 1024 * 1024) + b'"}',
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        assert huge.status_code == 413 and huge.json()["error"] == "payload_too_large"
        other = make_org()
        admin = http.get(f"/api/jobs/{uuid.uuid4()}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert admin.status_code == 404
        forbidden = http.post("/api/events", json=event(other), headers={"Authorization": f"Bearer {key}"})
        assert forbidden.status_code == 403
        doc = http.get("/api/openapi.json")
        assert doc.status_code == 200 and doc.json()["openapi"].startswith("3.1")


def test_gunicorn_outlives_the_longest_wait():
    from webhooks.api import MAX_WAIT_S
    from worker.ops.cli import WEB_TIMEOUT_S

    args = procfile_web_command("127.0.0.1:0")
    assert float(args[args.index("--timeout") + 1]) > MAX_WAIT_S  # else a ?wait=30 request is killed mid-wait
    assert WEB_TIMEOUT_S > MAX_WAIT_S  # `proactive web`


def _raw_request(url: str, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send `request` as is over a socket (no client would send it) and read the whole answer:
    status line, headers (lower-case names) and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        raw = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return status, {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /healthz HTTP/1.1\r\nHost: proactive\r\nX-Request-Id: abc\x01def\r\n\r\n",  # a control character
        b"GET /healthz HTTP/1.1\r\nHost: proactive\r\nX-Note: \x7f\r\n\r\n",
        b"GET /hea lthz HTTP/1.1\r\nHost: proactive\r\n\r\n",  # a malformed request line
    ],
)
def test_a_request_gunicorn_refuses_before_the_app_gets_a_json_error(server, request_bytes):
    status, headers, body = _raw_request(server.url, request_bytes)

    assert status.startswith("HTTP/1.1 400 "), (status, body)
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["error"] == "bad_request" and answer["message"]
    assert answer["request_id"] == headers["x-request-id"]
    assert f"request {answer['request_id']} refused before the app" in server.log()  # findable in the log


def test_metrics_names_its_charset_once(server):
    answer = httpx.get(f"{server.url}/metrics", timeout=10)

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
