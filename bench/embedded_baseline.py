"""Baseline of bench/embedded.py: a bare Celery chain of no-op tasks on the embedded SQLite broker.

Its own Celery app (``bench.harness.baseline_celery``: ``acks_late``, prefetch 1, no results, JSON)
on ``$BENCH_BROKER_URL`` (``proactive+sqlite:///...``), queue ``bench``. No Redis: the last task of
a chain appends ``"<tag> <finish time>"`` to ``$BENCH_DONE_FILE`` (one ``O_APPEND`` write, atomic),
the benchmark's completion signal.
"""

from __future__ import annotations

import os
import time

import bench.ready  # noqa: F401 - worker_ready hook (ready file)
import worker.brokers.sqlite  # noqa: F401 - registers the proactive+sqlite:// transport
from bench.harness import baseline_celery

BROKER_ENV = "BENCH_BROKER_URL"
DONE_ENV = "BENCH_DONE_FILE"
QUEUE = "bench"

app = baseline_celery("bench_embedded_baseline", QUEUE, BROKER_ENV)


@app.task(name="bench.embedded_noop", ignore_result=True, acks_late=True)
def noop(chain_id: str, step: int, done_tag: str | None = None) -> None:
    """Nothing; the last step of a chain appends its finish time to the done file."""
    if done_tag:
        fd = os.open(os.environ[DONE_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{done_tag} {time.time():.6f}\n".encode())
        finally:
            os.close(fd)
