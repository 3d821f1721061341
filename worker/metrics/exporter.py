"""`proactive prometheus`: `GET /metrics` for a machine that runs only Celery workers.

On a machine with the web edge, its `/metrics` already adds up every local process's values (the
fleet's PROMETHEUS_MULTIPROC_DIR). A machine running only `celery worker` writes its values to its
own directory and nothing serves them: this small HTTP server does, with the web edge's content
(`worker.metrics.prom.scrape_registry()`: the directory's values added up, plus the database gauges).

- It only reads the directory: emptying it before the workers start stays the job of whatever
  starts them (README, "Prometheus"); the exporter may start and stop at any time.
- The database gauges are fleet-wide numbers (every target that serves them reports the same
  value). They are read with a time box: a database that refuses, or that never answers, costs a
  scrape at most DB_GAUGES_TIMEOUT_S and the counters are served without the gauges.
- Only `GET /metrics` answers (any other path is 404); a thread per request; no request log.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from socketserver import ThreadingMixIn
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from worker.metrics import prom

log = logging.getLogger(__name__)

# worker.metrics.prom.MULTIPROC_ENV, not imported from there before the check: importing worker.metrics.prom creates
# the directory it names.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
# The longest a scrape waits for the database gauges (seconds): well inside Prometheus' default
# 10 s scrape timeout, so a database that never answers cannot cost the counters.
DB_GAUGES_TIMEOUT_S = 2.0

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ExporterError(Exception):
    """The exporter cannot start; the message says what to do (printed as one line)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def metrics_dir(env: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    """The multiprocess directory the workers of this machine write to; ExporterError when unset."""
    value = env.get(MULTIPROC_ENV)
    if not value:
        raise ExporterError(
            f"{MULTIPROC_ENV} is not set, so there is nothing to serve: set it to the directory this "
            f"machine's celery workers write to (the same value as theirs), e.g. "
            f"{MULTIPROC_ENV}=/var/lib/proactive/prometheus proactive prometheus"
        )
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise ExporterError(f"{MULTIPROC_ENV}={value} is not a directory: point it at the workers' directory")
    return path


def other_writers(directory: Path, pid: int | None = None) -> int:
    """Value files in `directory` written by processes other than `pid` (this one by default)."""
    own = f"_{pid or os.getpid()}.db"
    return sum(1 for f in directory.glob("*.db") if not f.name.endswith(own))


class TimeBoxed(Collector):
    """Another collector's metrics, given up on after `timeout_s` (logged; the scrape goes on).

    One read at a time, in a daemon thread: while a read hangs (a database that accepts the
    connection and never answers), the next scrapes wait on that same read instead of starting more,
    and the hanging thread never keeps the process from exiting on SIGTERM.
    """

    def __init__(self, inner: Collector, timeout_s: float = DB_GAUGES_TIMEOUT_S, what: str = "database gauges"):
        self.inner = inner
        self.timeout_s = timeout_s
        self.what = what
        self._lock = threading.Lock()
        self._read: Future[list[Metric]] | None = None

    def _start_read(self) -> Future[list[Metric]]:
        with self._lock:
            if self._read is None or self._read.done():
                read: Future[list[Metric]] = Future()

                def run() -> None:
                    try:
                        read.set_result(list(self.inner.collect()))
                    except BaseException as exc:  # handed to the scrape waiting on it
                        read.set_exception(exc)

                threading.Thread(target=run, name="db-gauges", daemon=True).start()
                self._read = read
            return self._read

    def collect(self) -> Iterator[Metric]:
        """The inner metrics, or none when they take longer than the time box or fail."""
        try:
            metrics = self._start_read().result(timeout=self.timeout_s)
        except FutureTimeout:
            log.warning("/metrics: %s skipped: no answer within %.1f s", self.what, self.timeout_s)
            return
        except Exception as exc:  # whatever the read raised, the counters are still served
            log.warning("/metrics: %s skipped: %s", self.what, type(exc).__name__)
            return
        yield from metrics


def exporter_registry(db_timeout_s: float = DB_GAUGES_TIMEOUT_S) -> CollectorRegistry:
    """The web edge's scrape registry (worker.metrics.prom.scrape_registry) with time-boxed database gauges."""
    return prom.scrape_registry(database=TimeBoxed(prom.DatabaseGauges(), db_timeout_s))


def make_app(registry: CollectorRegistry) -> WSGIApp:
    """GET /metrics: prometheus-client's exposition (text, or OpenMetrics when asked); else 404."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != METRICS_PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"not found: metrics are at {METRICS_PATH}\n".encode()]
        return metrics(environ, start_response)

    return app


class _Server(ThreadingMixIn, WSGIServer):
    """A thread per request (a slow scrape never holds up the next); threads not waited for at exit."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No line on stderr for every scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def bind(host: str, port: int, app: WSGIApp) -> WSGIServer:
    """A server listening on host:port (IPv4 or IPv6, as the host resolves); ExporterError when it cannot."""
    try:
        family, *_, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ExporterError(f"cannot listen on {host}: {exc.strerror} (give an address of this machine)") from exc

    class Server(_Server):
        address_family = family

    try:
        return make_server(sockaddr[0], port, app, Server, handler_class=_QuietHandler)
    except OSError as exc:
        raise ExporterError(
            f"cannot listen on {url_host(host)}:{port}: {exc.strerror} (another exporter? choose one with --port)",
            exit_code=1,
        ) from exc


def url_host(host: str) -> str:
    """`host` as written in a URL (IPv6 addresses in brackets)."""
    return f"[{host}]" if ":" in host else host


def serve(server: WSGIServer) -> str:
    """Serve until Ctrl-C or SIGTERM; close the socket; say which one stopped it.

    SIGTERM asks serve_forever to return (from a thread: `shutdown` waits for the loop) instead of
    raising in the main thread: an exception raised while the loop starts a request's thread is
    caught by socketserver as a failed request, and the signal would be lost."""
    how = "shut down"

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        nonlocal how
        how = "SIGTERM"
        threading.Thread(target=server.shutdown, name="sigterm", daemon=True).start()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # a BaseException: socketserver lets it through
        how = "interrupted"
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    return how


def run(host: str, port: int, echo: Callable[[str], None], db_timeout_s: float = DB_GAUGES_TIMEOUT_S) -> None:
    """Check the directory, listen, say where, serve until stopped (ExporterError before listening)."""
    directory = metrics_dir()
    registry = exporter_registry(db_timeout_s)  # imports worker.metrics.prom (which creates a missing directory)
    server = bind(host, port, make_app(registry))
    echo(
        f"serving http://{url_host(host)}:{server.server_address[1]}{METRICS_PATH} from "
        f"{MULTIPROC_ENV}={directory} (Ctrl-C stops)"
    )
    if not other_writers(directory):
        echo(f"no values in {directory} yet: the workers write there once they record something")
    echo(f"stopped ({serve(server)})")
