"""gunicorn settings the command line cannot carry: server hooks (`-c python:webhooks.gunicorn_conf`,
used by the Procfile's web process and `proactive web`).

With `PROMETHEUS_MULTIPROC_DIR` set, each gunicorn worker writes its metric values to a file of its
own in that directory (worker/prom.py); when a worker exits, `child_exit` tells prometheus-client
so. The directory is not emptied here: the web may restart alone while the fleet's workers keep
writing there; empty it before the whole fleet starts.
"""

from __future__ import annotations

from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    """A gunicorn worker exited (in the master): its live metric files go."""
    from worker import prom

    prom.mark_process_dead(worker.pid)
