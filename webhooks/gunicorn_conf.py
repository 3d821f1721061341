"""gunicorn settings the command line cannot carry: server hooks (`-c python:webhooks.gunicorn_conf`,
used by the Procfile's web process and `proactive web`), and gunicorn's own log lines written like
the app's (`JsonLogger`).

With `PROMETHEUS_MULTIPROC_DIR` set, each gunicorn worker writes its metric values to files of its
own in that directory (worker/metrics/prom.py); when a worker exits, `child_exit` tells prometheus-client
so. The hook runs in the master, which never loads the app, so it imports prometheus-client only.
The directory is not emptied here: the web may restart alone while the fleet's workers keep
writing there; empty it before the whole fleet starts.

gunicorn answers a request it cannot parse (a control character in a header, a malformed request
line, an over-long line or too many headers) itself, before Flask sees it. gunicorn has no setting
or hook for that answer's body, so this module replaces the one function that writes it
(`gunicorn.util.write_error`, called by every worker class's `handle_error`) with `write_json_error`:
the app's JSON error shape with a new request id, instead of an HTML page. Installed when gunicorn
loads this file, in the master, so every forked worker has it (tests/e2e/test_web_server.py pins
gunicorn's signature).
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from typing import Any

from gunicorn import util
from gunicorn.glogging import Logger

# The variable prometheus-client reads (worker.metrics.prom.MULTIPROC_ENV; not imported into the master).
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
        # the app's logging loads here, when gunicorn sets up its loggers: reading this file loads nothing of the app
        from worker import logs

        if logs.json_enabled():
            logs.use_json(self.error_log)
            logs.use_json(self.access_log)


logger_class = JsonLogger


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Write gunicorn's refusal of a request it could not parse as the app's JSON error
    (`{error, message, request_id}` with `X-Request-Id`): what `gunicorn.util.write_error` writes as
    HTML. The id is new (the request's own headers could not be read) and logged with the refusal."""
    request_id = uuid.uuid4().hex
    if status_int >= 500:
        code, message = "internal_error", "something went wrong; the request id helps us find it"
    else:
        code = re.sub(r"[^a-z0-9]+", "_", reason.lower()).strip("_") or "bad_request"
        message = mesg or reason
    body = json.dumps({"error": code, "message": message, "request_id": request_id}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-Id: {request_id}\r\n"
        "\r\n"
    )
    logging.getLogger("gunicorn.error").warning(
        "request %s refused before the app: %s %s", request_id, status_int, message
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = write_json_error  # gunicorn's handle_error looks it up at each refusal
