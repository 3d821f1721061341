"""A Celery worker inside the current process, for `proactive demo` and `proactive smoke`.

`celery_app.WorkController(pool="solo")` in a daemon thread, stopped with `.stop()`
(`celery_app.Worker` would replace sys.stdout). No child process is left behind and the command
exits within a second of finishing.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from worker.celery_app import celery_app

log = logging.getLogger(__name__)

# How long `stop()` waits for the worker thread to end (seconds).
STOP_TIMEOUT_S = 5.0


class EmbeddedWorker:
    """`with EmbeddedWorker(): ...` runs a solo-pool worker on every queue while the block runs."""

    def __init__(self, queues: tuple[str, ...] = ("steps", "slow", "edge", "beat")) -> None:
        self.queues = queues
        self._controller = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        """Start consuming in a daemon thread; returns at once."""
        controller = celery_app.WorkController(
            app=celery_app,
            hostname="embedded@proactive",
            pool_cls="solo",
            concurrency=1,
            queues=list(self.queues),
            loglevel="WARNING",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        self._controller = controller

        def _run() -> None:
            try:
                controller.start()
            except BaseException as exc:  # surfaced by stop()
                self.error = exc
                log.error("embedded worker stopped: %s", exc)

        self._thread = threading.Thread(target=_run, name="proactive-embedded-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to stop and wait briefly for its thread."""
        if self._controller is not None:
            self._controller.stop(in_sighandler=False, exitcode=0)
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)

    def __enter__(self) -> EmbeddedWorker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
