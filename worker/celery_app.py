"""The one Celery app: queues, reliability settings, task names under `proactive.*`.

State lives in the database, not in Celery: step tasks ignore results, acknowledge late, and are
re-published by the sweeper if the broker loses them. The embedded default uses our SQLite
transport (`worker.broker_sqlite`, URL scheme `proactive+sqlite://`), the fleet uses Redis
(`redis://`) or RabbitMQ (`amqp://`); only the URL changes.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_shutdown
from kombu import Queue

import worker.broker_redis  # redis:// uses our one-client-per-channel transport
import worker.broker_sqlite  # noqa: F401 - registers the proactive+sqlite:// transport
from worker import logs
from worker.config import get_settings
from worker.dag import DEFAULT_TIMEOUT_S, HARD_LIMIT_GRACE_S, QUEUES

# Redis re-delivers an unacknowledged message after this long (seconds); steps are idempotent.
REDIS_VISIBILITY_TIMEOUT_S = 3600
# RabbitMQ needs no option: it re-delivers a worker's unacknowledged messages when its connection
# closes, and closes a channel holding one longer than its consumer_timeout (30 min by default).
# A worker holds a message for at most a countdown (publish.MAX_COUNTDOWN_S, 10 min) plus the
# step's hard time limit, so steps keep timeout_s well under 20 min. Queues are classic (durable):
# the database, not the broker, is what survives a crash.


def _transport_options(broker_url: str) -> dict[str, object]:
    if broker_url.startswith(("redis://", "rediss://")):
        return {"visibility_timeout": REDIS_VISIBILITY_TIMEOUT_S}
    return {}


def make_celery() -> Celery:
    """Build the Celery app from the settings (called once, at import)."""
    settings = get_settings()
    app = Celery("proactive", set_as_current=True)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport_options=_transport_options(settings.broker_url),
        broker_connection_retry_on_startup=True,
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A step still running when the worker loses its broker connection finishes and stores its
        # result: its lease keeps the copy the broker re-delivers at once (RabbitMQ) from running
        # it again. Cancelling it (Celery 6's default) would leave the step to the sweeper.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_queues=[Queue(q, routing_key=q) for q in QUEUES],
        task_default_queue="steps",
        task_default_routing_key="steps",
        task_routes={
            "proactive.run_step": {"queue": "steps"},
            "proactive.resume_approval": {"queue": "steps"},
            "proactive.deliver": {"queue": "edge"},
            "proactive.slack_replace": {"queue": "edge"},
            "proactive.slack_respond": {"queue": "edge"},
            "proactive.sweep": {"queue": "beat"},
            # Cron ticks run where Beat's tasks run; the per-org / per-rep work they fan out to
            # runs on `steps`, shared by every worker.
            "proactive.cron.morning_brief": {"queue": "beat"},
            "proactive.cron.meeting_prep": {"queue": "beat"},
            "proactive.cron.stale_deals": {"queue": "beat"},
            "proactive.cron.gmail_watch": {"queue": "beat"},
            "proactive.cron.*": {"queue": "steps"},
            "proactive.gmail_sync": {"queue": "slow"},
        },
        task_soft_time_limit=DEFAULT_TIMEOUT_S,
        task_time_limit=DEFAULT_TIMEOUT_S + HARD_LIMIT_GRACE_S,
        task_serializer="json",
        accept_content=["json"],
        # Task events cost a broker round trip per task; Flower needs them: PROACTIVE_TASK_EVENTS=1
        # (or `celery worker -E`, as the Procfile does) turns them on.
        worker_send_task_events=settings.task_events,
        task_send_sent_event=settings.task_events,
        enable_utc=True,
        timezone="UTC",
        imports=(
            "worker.runner",
            "worker.sweeper",
            "worker.crons",
            "worker.gmail_sync",
            *settings.sequence_module_list,
        ),
    )
    return app


celery_app = make_celery()
logs.connect_celery()  # the trace id in every message's headers; Celery's own lines in LOG_FORMAT


def reconfigure_broker() -> None:
    """Point the app at the current settings' broker and drop pooled connections.

    For a process that switches databases/brokers at run time (the test suite); workers and web
    processes read their settings once at start.
    """
    url = get_settings().broker_url
    celery_app.conf.broker_url = url
    celery_app.conf.broker_transport_options = _transport_options(url)
    from kombu import pools

    pools.reset()  # per-connection producer pools are global in kombu
    celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@worker_process_shutdown.connect
def _forget_process_metrics(pid: int | None = None, **_kwargs: object) -> None:
    """A prefork child is exiting: its live metric files go (worker/prom.py)."""
    from worker import prom

    prom.mark_process_dead(pid or os.getpid())
