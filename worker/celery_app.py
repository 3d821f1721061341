"""The one Celery app: queues, reliability settings, task names under `proactive.*`.

State lives in the database, not in Celery: step tasks ignore results, acknowledge late, and are
re-published by the sweeper if the broker loses them. The embedded default uses our SQLite
transport (`worker.brokers.sqlite`, URL scheme `proactive+sqlite://`), the fleet uses Redis
(`redis://`) or RabbitMQ (`amqp://`); only the URL changes.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_shutdown
from kombu import Queue

import worker.brokers.redis  # redis:// uses our one-client-per-channel transport
import worker.brokers.sqlite  # noqa: F401 - registers the proactive+sqlite:// transport
from worker import logs
from worker.config import get_settings
from worker.engine.dag import DEFAULT_TIMEOUT_S, HARD_LIMIT_GRACE_S, QUEUES

# With ack emulation on, Redis re-delivers an unacknowledged message after this long (seconds);
# steps are idempotent.
REDIS_VISIBILITY_TIMEOUT_S = 3600
# Ack emulation is off by default (PROACTIVE_REDIS_ACK_EMULATION): kombu then keeps no copy of each
# fetched message in Redis (an HSET and a ZADD when it is fetched, an HDEL and a ZREM when acked, and
# the consumer's CPU for them: 4-23 % more engine throughput without, `bench.engine --whatif`). What that
# copy bought here: a message held by a worker killed with SIGKILL comes back after the visibility
# timeout (1 h), while the sweeper re-publishes its step from the rows within a minute or two
# (docs/architecture.md). Without it a warm shutdown still puts every held message back on its
# queue, and a pool child that dies still has its message requeued (kombu's in-memory QoS).
# RabbitMQ needs no option: it re-delivers a worker's unacknowledged messages when its connection
# closes, and closes a channel holding one longer than its consumer_timeout (30 min by default).
# A worker holds a message for at most a countdown (publish.MAX_COUNTDOWN_S, 10 min) plus the
# step's hard time limit, so steps keep timeout_s well under 20 min. Queues are classic (durable):
# the database, not the broker, is what survives a crash.


# RabbitMQ and the worker check each other this often (seconds): a broker that stops answering is
# noticed by a consumer within two beats. Producers (the web edge) send none; the retry below
# reopens a connection the broker closed meanwhile.
AMQP_HEARTBEAT_S = 60
# Celery's own defaults, kept for the embedded SQLite broker (no network to hang on).
CELERY_DEFAULTS: dict[str, object] = {
    "broker_connection_timeout": 4.0,
    "broker_heartbeat": 120,
    "task_publish_retry_policy": {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
}


def broker_conf(broker_url: str, timeout_s: float, *, ack_emulation: bool = False) -> dict[str, object]:
    """The app's broker settings for `broker_url`, bounded so that a publish to a broker that does
    not answer gives up within about `timeout_s` (the caller logs it; the sweeper re-publishes), with
    kombu's `ack_emulation` on Redis as asked (see REDIS_VISIBILITY_TIMEOUT_S).

    Redis: one attempt, its socket and connect timeouts at `timeout_s`; redis-py itself reopens a
    connection the server closed (a Redis restart), and `retry_on_timeout` stays off so a command
    that may have run is never sent twice. The consumer is unaffected: it reads BRPOP replies (1 s
    server-side timeout) only once they are there. RabbitMQ: an attempt and one retry after
    reconnecting, each connect bounded by half of `timeout_s` (a publish without confirms is a
    socket write, bounded by the write timeout).
    """
    if broker_url.startswith(("redis://", "rediss://")):
        return {
            **CELERY_DEFAULTS,
            "broker_transport_options": {
                "ack_emulation": ack_emulation,
                "visibility_timeout": REDIS_VISIBILITY_TIMEOUT_S,
                "socket_timeout": timeout_s,
                "socket_connect_timeout": timeout_s,
                "socket_keepalive": True,
                "retry_on_timeout": False,
            },
            "broker_connection_timeout": timeout_s,
            "task_publish_retry_policy": {"max_retries": 0},
        }
    if broker_url.startswith(("amqp://", "amqps://", "pyamqp://")):
        half = timeout_s / 2
        return {
            **CELERY_DEFAULTS,
            "broker_transport_options": {"write_timeout": half},
            "broker_connection_timeout": half,
            "broker_heartbeat": AMQP_HEARTBEAT_S,
            # The remote-control mailbox `<node>.celery.pidbox` shared, not exclusive: after a network
            # cut RabbitMQ holds the old connection until its heartbeat check (2 x 60 s), and a
            # worker reconnecting (or restarted) under the same name would otherwise die on
            # RESOURCE_LOCKED redeclaring it (tests/chaos/test_partition.py)
            "control_queue_exclusive": False,
            "task_publish_retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0},
        }
    return {**CELERY_DEFAULTS, "broker_transport_options": {}}


def make_celery() -> Celery:
    """Build the Celery app from the settings (called once, at import)."""
    settings = get_settings()
    app = Celery("proactive", set_as_current=True)
    app.conf.update(
        broker_url=settings.broker_url,
        **broker_conf(settings.broker_url, settings.broker_timeout_s, ack_emulation=settings.redis_ack_emulation),
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
            "proactive.metrics_rollup": {"queue": "beat"},
            "proactive.retention": {"queue": "beat"},
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
            "worker.engine.tasks",
            "worker.engine.sweeper",
            "worker.engine.heartbeat",
            "worker.metrics.rollup",
            "worker.ops.retention",
            "worker.crons.tasks",
            "worker.google.sync",
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
    settings = get_settings()
    celery_app.conf.broker_url = settings.broker_url
    celery_app.conf.update(
        broker_conf(settings.broker_url, settings.broker_timeout_s, ack_emulation=settings.redis_ack_emulation)
    )
    from kombu import pools

    pools.reset()  # per-connection producer pools are global in kombu
    celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
        amqp.__dict__.pop("send_task_message", None)  # it holds the publish retry policy it was built with


@worker_process_shutdown.connect
def _forget_process_metrics(pid: int | None = None, **_kwargs: object) -> None:
    """A prefork child is exiting: its live metric files go (worker/metrics/prom.py)."""
    # the metrics (prometheus-client and the database layer) load only in an exiting prefork child: every
    # process imports this module, the CLI and the web included
    from worker.metrics import prom

    prom.mark_process_dead(pid or os.getpid())
