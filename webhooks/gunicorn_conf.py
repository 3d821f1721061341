"""gunicorn settings the command line cannot carry: server hooks (`-c python:webhooks.gunicorn_conf`,
used by the Procfile's web process and `proactive web`).

With `PROMETHEUS_MULTIPROC_DIR` set, each gunicorn worker writes its metric values to files of its
own in that directory (worker/prom.py); when a worker exits, `child_exit` tells prometheus-client
so. The hook runs in the master, which never loads the app, so it imports prometheus-client only.
The directory is not emptied here: the web may restart alone while the fleet's workers keep
writing there; empty it before the whole fleet starts.
"""

from __future__ import annotations

import os
from typing import Any

# The variable prometheus-client reads (worker.prom.MULTIPROC_ENV; not imported into the master).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def child_exit(server: Any, worker: Any) -> None:
    """A gunicorn worker exited: its live metric files go (its counters stay, they are totals)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, path)
