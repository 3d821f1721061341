"""A Celery worker inside the current process, for `proactive demo` and `proactive smoke`.

`celery_app.WorkController(pool="solo")` in a daemon thread, stopped with `.stop()`
(`celery_app.Worker` would replace sys.stdout). No child process is left behind and the command
exits within a second of finishing.

On the embedded SQLite broker, messages an earlier command left unconsumed (a `fire` with no worker
running) are consumed too. Their jobs are not this command's: while the worker runs one, its log
lines are held back, and `leftover_lines()` names them afterwards ("also ran 1 job left from
earlier: ..."), so one command never shows another's errors as its own.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from celery.signals import task_postrun, task_prerun
from sqlalchemy import select

from worker.celery_app import celery_app
from worker.db import transaction
from worker.models import SlackOutbox, approvals, jobs, steps, utcnow

log = logging.getLogger(__name__)

# How long `stop()` waits for the worker thread to end (seconds).
STOP_TIMEOUT_S = 5.0
# The job (if any) the worker thread is running a task of, when that job predates this worker.
_current = threading.local()


def _job_of_task(task_name: str, args: Sequence[Any]) -> tuple[uuid.UUID, datetime] | None:
    """The job a task message works on, and when that job was created (None: not a job's task)."""
    if not args:
        return None
    try:
        ref = uuid.UUID(str(args[0]))
    except ValueError:
        return None
    outbox = SlackOutbox.__table__
    by_task = {
        "proactive.run_step": select(jobs.c.id, jobs.c.created_at)
        .join(steps, steps.c.job_id == jobs.c.id)
        .where(steps.c.id == ref),
        "proactive.resume_approval": select(jobs.c.id, jobs.c.created_at)
        .join(approvals, approvals.c.job_id == jobs.c.id)
        .where(approvals.c.id == ref),
        "proactive.deliver": select(jobs.c.id, jobs.c.created_at)
        .join(outbox, outbox.c.job_id == jobs.c.id)
        .where(outbox.c.id == ref),
    }
    query = by_task.get(task_name)
    if query is None:
        return None
    with transaction() as conn:
        row = conn.execute(query).first()
    return (row.id, row.created_at) if row else None


class _HoldLeftoverLogs(logging.Filter):
    """Drops the log records of the worker thread while it runs an earlier command's job."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(_current, "leftover_job", None) is None


class EmbeddedWorker:
    """`with EmbeddedWorker(): ...` runs a solo-pool worker on every queue while the block runs."""

    def __init__(self, queues: tuple[str, ...] = ("steps", "slow", "edge", "beat")) -> None:
        self.queues = queues
        self._controller = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.started_at: datetime | None = None
        self.leftover_jobs: dict[uuid.UUID, None] = {}  # jobs created before start() that it ran, in order
        self._filter = _HoldLeftoverLogs()

    def _before_task(self, sender: Any = None, args: Sequence[Any] = (), **_kw: Any) -> None:
        _current.leftover_job = None
        if threading.current_thread() is not self._thread or self.started_at is None:
            return
        try:
            found = _job_of_task(getattr(sender, "name", ""), args or ())
        except Exception:  # never keep the task from running over a label
            log.debug("could not tell which job a task belongs to", exc_info=True)
            return
        if found is not None and found[1] < self.started_at:
            _current.leftover_job = found[0]
            self.leftover_jobs[found[0]] = None

    def _after_task(self, **_kw: Any) -> None:
        _current.leftover_job = None

    def start(self) -> None:
        """Start consuming in a daemon thread; returns at once."""
        self.started_at = utcnow()
        task_prerun.connect(self._before_task, weak=False)
        task_postrun.connect(self._after_task, weak=False)
        for handler in logging.getLogger().handlers:
            handler.addFilter(self._filter)
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
            # The solo pool looks each task up in this thread's current Celery app: ours, whatever
            # app another library (or test) in this process created since.
            celery_app.set_current()
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
        task_prerun.disconnect(self._before_task)
        task_postrun.disconnect(self._after_task)
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self._filter)

    def leftovers(self) -> list[dict[str, Any]]:
        """The earlier commands' jobs this worker ran: id, event type and status now, in run order."""
        if not self.leftover_jobs:
            return []
        with transaction() as conn:
            rows = {
                r.id: r
                for r in conn.execute(
                    select(jobs.c.id, jobs.c.event_type, jobs.c.status).where(jobs.c.id.in_(list(self.leftover_jobs)))
                )
            }
        return [
            {"job_id": str(j), "event_type": rows[j].event_type, "status": rows[j].status}
            for j in self.leftover_jobs
            if j in rows
        ]

    def leftover_lines(self) -> list[str]:
        """One line naming the earlier commands' jobs this worker ran (none when it ran none)."""
        found = self.leftovers()
        if not found:
            return []
        jobs_text = "; ".join(f"{j['job_id']} {j['event_type']} {j['status']}" for j in found)
        noun = "job" if len(found) == 1 else "jobs"
        return [
            f"also ran {len(found)} {noun} left from earlier: {jobs_text} (not this command's; "
            "`proactive job ID` shows one)"
        ]

    def __enter__(self) -> EmbeddedWorker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
