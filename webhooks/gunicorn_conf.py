"""gunicorn settings the command line cannot carry: server hooks (`-c python:webhooks.gunicorn_conf`,
used by the Procfile's web process and `proactive web`), and gunicorn's own log lines written like
the app's (`JsonLogger`).

With `PROMETHEUS_MULTIPROC_DIR` set, each gunicorn worker writes its metric values to files of its
own in that directory (worker/prom.py); when a worker exits, `child_exit` tells prometheus-client
so. The hook runs in the master, which never loads the app, so it imports prometheus-client only.
The directory is not emptied here: the web may restart alone while the fleet's workers keep
writing there; empty it before the whole fleet starts.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.glogging import Logger

# The variable prometheus-client reads (worker.prom.MULTIPROC_ENV; not imported into the master).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def child_exit(server: Any, worker: Any) -> None:
    """A gunicorn worker exited: its live metric files go (its counters stay, they are totals)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, path)


class JsonLogger(Logger):
    """gunicorn's own lines (the master's start and stop included) in the app's format: JSON with
    the trace context when LOG_FORMAT=json (worker/logs.py), gunicorn's text otherwise."""

    def setup(self, cfg: Any) -> None:
        """gunicorn's set-up, then the JSON formatter on its handlers."""
        super().setup(cfg)
        from worker import logs

        if logs.json_enabled():
            logs.use_json(self.error_log)
            logs.use_json(self.access_log)


logger_class = JsonLogger
