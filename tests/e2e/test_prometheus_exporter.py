"""`proactive prometheus`, the exporter of a machine that runs only Celery workers, as an operator
runs it: processes record known values into a PROMETHEUS_MULTIPROC_DIR (through worker.metrics.prom's own
record functions, as a prefork child does), the exporter is started as a subprocess on that
directory, and its GET /metrics, parsed by prometheus-client's parser, reads back exactly those
values added up, plus the database gauges; a database that never answers costs the gauges only.
Anything but /metrics is 404; without the directory it refuses to start (exit 2)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.waiting import wait_for
from worker.metrics import exporter as prom_exporter

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
PROACTIVE = [sys.executable, "-m", "worker.ops.cli"]
START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 10

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the project's database, broker and metrics settings, plus `extra`."""
    drop = ("DATABASE_URL", "BROKER_URL", "PROACTIVE_HOME", prom_exporter.MULTIPROC_ENV)
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record(directory: Path, code: str) -> None:
    """Run `code` in a process of its own (`prom` is worker.metrics.prom) writing to `directory`."""
    script = "from worker.metrics import prom\n" + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=clean_env(**{prom_exporter.MULTIPROC_ENV: str(directory)}),
        cwd=directory.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "not recorded" not in done.stderr, done.stderr


@dataclass
class Exporter:
    proc: subprocess.Popen[str]
    url: str
    out: Path
    err: Path

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.read().decode()

    def scrape(self) -> Samples:
        """/metrics as {(sample name, sorted labels): value}, parsed by prometheus-client."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"].startswith("text/plain")
            text = answer.read().decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


def answers(exporter: Exporter) -> bool:
    """The exporter accepts a connection (fails the test at once when it exited instead)."""
    if exporter.proc.poll() is not None:
        pytest.fail(f"exporter exited {exporter.proc.returncode}: {exporter.output()}")
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", int(exporter.url.rsplit(":", 1)[1]))):
        return True
    return False


@contextlib.contextmanager
def exporter(tmp_path: Path, directory: Path, database_url: str) -> Iterator[Exporter]:
    """`proactive prometheus --host 127.0.0.1 --port <free>` on `directory`, stopped with SIGTERM
    (killed if it does not stop) whatever happens."""
    port = free_port()
    out, err = tmp_path / f"exporter-{port}.out", tmp_path / f"exporter-{port}.err"
    env = clean_env(**{prom_exporter.MULTIPROC_ENV: str(directory), "DATABASE_URL": database_url})
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [*PROACTIVE, "prometheus", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
    running = Exporter(proc, f"http://127.0.0.1:{port}", out, err)
    try:
        wait_for(lambda: answers(running), timeout_s=START_TIMEOUT_S, what="the exporter listening")
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def totals(samples: Samples) -> Samples:
    """The counters' samples only (`*_total`)."""
    return {key: value for key, value in samples.items() if key[0].endswith("_total")}


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    return directory


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A database of its own, migrated, empty: the gauges read exactly 0 from it."""
    from worker import migrate

    url = f"sqlite:///{tmp_path / 'proactive.db'}"
    migrate.upgrade(url)
    return url


def test_the_exporter_serves_what_the_workers_recorded_added_up(tmp_path: Path, metrics_dir: Path, database_url: str):
    record(
        metrics_dir,
        """
        prom.event_accepted("api", "meeting_ended")
        prom.event_accepted("api", "meeting_ended")
        prom.step_finished("meeting_ended", "summarize", "succeeded", 0.2)
        prom.outbox_delivered("debrief", "post", 0.3)
        """,
    )
    record(
        metrics_dir,
        """
        prom.event_accepted("api", "meeting_ended")
        prom.event_rejected("slack:events", "InvalidSignature")
        prom.step_finished("meeting_ended", "summarize", "failed", 3.0)
        prom.sweeper_repaired({"republished": 2, "reclaimed": 0})
        """,
    )
    with exporter(tmp_path, metrics_dir, database_url) as running:
        samples = running.scrape()
        assert totals(samples) == {
            ("proactive_events_accepted_total", (("source", "api"), ("type", "meeting_ended"))): 3.0,
            ("proactive_events_rejected_total", (("reason", "InvalidSignature"), ("source", "slack:events"))): 1.0,
            (
                "proactive_steps_finished_total",
                (("sequence", "meeting_ended"), ("status", "succeeded"), ("step", "summarize")),
            ): 1.0,
            (
                "proactive_steps_finished_total",
                (("sequence", "meeting_ended"), ("status", "failed"), ("step", "summarize")),
            ): 1.0,
            ("proactive_outbox_delivered_total", (("kind", "debrief"), ("op", "post"))): 1.0,
            ("proactive_sweeper_repairs_total", (("kind", "republished"),)): 2.0,
        }
        duration = "proactive_step_duration_seconds"
        assert sample(samples, f"{duration}_count", sequence="meeting_ended") == 2
        assert sample(samples, f"{duration}_sum", sequence="meeting_ended") == pytest.approx(3.2)
        assert sample(samples, f"{duration}_bucket", sequence="meeting_ended", le="0.25") == 1
        assert sample(samples, f"{duration}_bucket", sequence="meeting_ended", le="5.0") == 2
        assert sample(samples, "proactive_outbox_delivery_lag_seconds_count") == 1
        assert sample(samples, "proactive_outbox_delivery_lag_seconds_sum") == pytest.approx(0.3)
        # the database gauges, from the database DATABASE_URL names
        assert sample(samples, "proactive_approvals_pending") == 0
        assert sample(samples, "proactive_outbox_pending") == 0
        assert sample(samples, "proactive_outbox_lag_seconds") == 0

        # read at each scrape: a worker that records later is counted without a restart
        record(metrics_dir, 'prom.event_accepted("api", "meeting_ended")')
        later = running.scrape()
        assert sample(later, "proactive_events_accepted_total", source="api", type="meeting_ended") == 4

        status, body = running.get("/other")
        assert status == 404 and "/metrics" in body
        assert running.get("/")[0] == 404
        assert running.get("/metrics/extra")[0] == 404

        running.proc.send_signal(signal.SIGTERM)
        assert running.proc.wait(timeout=STOP_TIMEOUT_S) == 0, running.output()
    out = running.out.read_text()
    assert f"serving {running.url}/metrics from PROMETHEUS_MULTIPROC_DIR={metrics_dir}" in out
    assert "stopped (SIGTERM)" in out
    assert "Traceback" not in running.output()


def test_a_database_that_never_answers_costs_the_gauges_only(tmp_path: Path, metrics_dir: Path):
    record(metrics_dir, 'prom.event_duplicate("api")')
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/proactive"
        with exporter(tmp_path, metrics_dir, url) as running:
            for _ in range(2):  # the second scrape waits on the same hanging read, no longer
                started = time.monotonic()
                samples = running.scrape()
                assert time.monotonic() - started < prom_exporter.DB_GAUGES_TIMEOUT_S + 3
                assert totals(samples) == {("proactive_events_duplicate_total", (("source", "api"),)): 1.0}
                assert sample(samples, "proactive_approvals_pending") is None
            assert "database gauges skipped: no answer within" in running.err.read_text()
            started = time.monotonic()  # the read still hanging does not hold the process up
            running.proc.send_signal(signal.SIGTERM)
            assert running.proc.wait(timeout=STOP_TIMEOUT_S) == 0, running.output()
            assert time.monotonic() - started < 3


def test_a_database_that_refuses_costs_the_gauges_only(tmp_path: Path, metrics_dir: Path):
    record(metrics_dir, 'prom.cron_slot_claimed("sweeper")')
    with exporter(tmp_path, metrics_dir, f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x") as running:
        samples = running.scrape()
        assert totals(samples) == {("proactive_cron_slots_claimed_total", (("cron", "sweeper"),)): 1.0}
        assert sample(samples, "proactive_outbox_pending") is None
        assert "database gauges skipped: OperationalError" in running.err.read_text()


def test_without_a_directory_it_refuses_to_start(tmp_path: Path):
    done = subprocess.run(
        [*PROACTIVE, "prometheus", "--port", str(free_port())],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: PROMETHEUS_MULTIPROC_DIR is not set")
    assert "PROMETHEUS_MULTIPROC_DIR=/var/lib/proactive/prometheus proactive prometheus" in lines[0]
    assert done.stdout == ""


def test_a_port_in_use_is_one_line(tmp_path: Path, metrics_dir: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        done = subprocess.run(
            [*PROACTIVE, "prometheus", "--host", "127.0.0.1", "--port", str(taken.getsockname()[1])],
            cwd=tmp_path,
            env=clean_env(**{prom_exporter.MULTIPROC_ENV: str(metrics_dir)}),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot listen on 127.0.0.1:") and done.stderr.count("\n") == 1, done.stderr
    assert "--port" in done.stderr
