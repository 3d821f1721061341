"""What-if switches for profiling the engine benchmark (never part of a normal run).

Listed in ``PROACTIVE_SEQUENCE_MODULES`` only for the extra worker processes that
``python -m bench.engine --whatif ...`` starts (never for the benchmark process itself); it then
changes there, without touching product code, the settings named in ``$BENCH_WHATIF``
(comma-separated):

* ``no_events``: ``worker_send_task_events`` and ``task_send_sent_event`` off (no Celery event
  messages per task);
* ``no_ping``: engines created without ``pool_pre_ping`` (no extra round trip per transaction);
* ``ack_emulation``: kombu's Redis transport with ack emulation (off by default: see
  worker/celery_app.py), a copy of every fetched message kept in Redis until it is acked;
* ``no_join``: ``PROACTIVE_INLINE_JOIN_MS=0``, every ready sibling of an inline step published (as
  before fast siblings joined it: worker/engine/durations.py).
"""

from __future__ import annotations

import os
from typing import Any

import worker.db
from worker.celery_app import celery_app
from worker.config import reset_settings

WHATIF_ENV = "BENCH_WHATIF"
FLAGS = frozenset(f for f in os.environ.get(WHATIF_ENV, "").split(",") if f)
KNOWN = frozenset({"no_events", "no_ping", "ack_emulation", "no_join"})
if FLAGS - KNOWN:
    raise ValueError(f"unknown {WHATIF_ENV} flags {sorted(FLAGS - KNOWN)} (known: {sorted(KNOWN)})")

if "no_events" in FLAGS:
    celery_app.conf.worker_send_task_events = False
    celery_app.conf.task_send_sent_event = False

if "no_ping" in FLAGS:
    _make_engine = worker.db.make_engine

    def _make_engine_without_ping(url: str | None = None, **kwargs: Any) -> Any:
        """``worker.db.make_engine`` with ``pool_pre_ping=False`` on PostgreSQL."""
        if not (url or worker.db.get_settings().database_url).startswith("sqlite"):
            kwargs.setdefault("pool_pre_ping", False)
        return _make_engine(url, **kwargs)

    worker.db.make_engine = _make_engine_without_ping
    worker.db.reset_engine()

if "ack_emulation" in FLAGS:
    celery_app.conf.broker_transport_options = {**celery_app.conf.broker_transport_options, "ack_emulation": True}

if "no_join" in FLAGS:
    os.environ["PROACTIVE_INLINE_JOIN_MS"] = "0"
    reset_settings()  # read again, with the variable, on next use
