"""Tiny Celery app for broker tests and bench/broker_sqlite.py.

Env: ``BROKER_URL`` (e.g. ``proactive+sqlite:////tmp/x/broker.db`` or ``sqla+sqlite:///...``) and
``RECORD_FILE``, where each ``record`` task appends ``"<n> <sent_at> <started_at>"``.
"""

from __future__ import annotations

import os
import time

from celery import Celery

import worker.brokers.sqlite  # noqa: F401  (registers the proactive+ transport alias)

app = Celery("broker_app", broker=os.environ.get("BROKER_URL", "memory://"), set_as_current=False)
app.conf.update(
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
    worker_enable_remote_control=False,
)


@app.task(name="broker_app.record")
def record(n: int, sent_at: float = 0.0) -> None:
    """Append one line for task ``n`` to ``$RECORD_FILE`` (one write: atomic with O_APPEND)."""
    started = time.time()
    fd = os.open(os.environ["RECORD_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{n} {sent_at:.6f} {started:.6f}\n".encode())
    finally:
        os.close(fd)
