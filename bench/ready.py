"""Worker-side hook for benchmarks: touch ``$BENCH_READY_FILE`` when a worker starts consuming.

Imported by the benchmark's worker modules (``bench.noop_dags``, ``bench.baseline_app``...) so the
benchmark can wait for readiness without parsing INFO logs (workers run at ``-l WARNING``).
"""

from __future__ import annotations

import os
from pathlib import Path

from celery.signals import worker_ready

READY_FILE_ENV = "BENCH_READY_FILE"


@worker_ready.connect(weak=False)
def _touch_ready_file(**_kwargs: object) -> None:
    """Create the ready file named by the environment (a no-op outside benchmark workers)."""
    path = os.environ.get(READY_FILE_ENV)
    if path:
        Path(path).touch()
