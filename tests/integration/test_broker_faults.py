"""A broker that hangs costs a producer at most its broker timeout: the job is committed, the
publish gives up (logged), the caller gets its answer, and the sweeper runs the job once the broker
is back. Real `redis-server`, RabbitMQ and `celery worker` processes: the Redis is the test's own
(SIGSTOP), the RabbitMQ is reached through a TCP proxy the test pauses."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import Backend, apply_env
from tests.support import brokers_under_test
from tests.support.engine import event, executions, job_status, reached
from tests.support.services import (
    RABBITMQ_HOST,
    RABBITMQ_PORT,
    add_rabbitmq_vhost,
    delete_rabbitmq_vhost,
    ensure_rabbitmq,
)
from tests.support.tcp_proxy import PausableProxy
from tests.support.waiting import holds_for, wait_for
from tests.support.workers import WorkerProcess
from worker.celery_app import reconfigure_broker
from worker.engine.events import fire_event
from worker.engine.sweeper import sweep

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("test_sequences")]

# The test's broker timeout (seconds), and the most a producer may wait on a hung broker.
BROKER_TIMEOUT_S = 1.0
PRODUCER_LIMIT_S = 3.0

own_redis = brokers_under_test.own_redis  # the fixture: a redis-server of the test's own


def done(job_id: object) -> str | None:
    return reached(job_id, "completed", "failed", "cancelled", "expired", "timeout")  # type: ignore[arg-type]


@pytest.fixture
def on_own_redis(pg: Backend, own_redis: tuple[str, subprocess.Popen[bytes]]) -> Iterator[dict[str, str]]:
    """This process and the returned worker env on the test's own Redis (with the test's broker
    timeout) until the test ends; then back on the module's backend."""
    env = {**pg.env, "BROKER_URL": own_redis[0], "PROACTIVE_BROKER_TIMEOUT_S": str(BROKER_TIMEOUT_S)}
    with pytest.MonkeyPatch.context() as mp:
        apply_env(mp, env)
        yield env
    with pytest.MonkeyPatch.context() as mp:
        apply_env(mp, pg.env)


def test_a_hung_redis_costs_a_producer_at_most_its_timeout(pg: Backend, org, own_redis, on_own_redis):
    redis_proc = own_redis[1]
    env = on_own_redis
    worker = WorkerProcess(env, pg.log_dir, "hung-redis", start_recovery=False).start()
    try:
        first = fire_event(event(org, "proposal_generation"))
        assert wait_for(lambda: done(first.job_id)) == "completed"
        # an idle consumer outlives several socket timeouts
        holds_for(lambda: worker.alive, duration_s=3 * BROKER_TIMEOUT_S, what="the idle worker")
        assert "lost" not in worker.log().lower() and "reconnect" not in worker.log().lower(), worker.log()[-2000:]

        os.kill(redis_proc.pid, signal.SIGSTOP)
        with ThreadPoolExecutor(1) as pool:  # a producer blocked for good fails the test, never hangs it
            firing = pool.submit(fire_event, event(org, "proposal_generation"))
            try:
                second = firing.result(timeout=PRODUCER_LIMIT_S)  # committed; its publish gave up
            finally:
                os.kill(redis_proc.pid, signal.SIGCONT)
        assert job_status(second.job_id) == "queued"

        sweep(requeue_after_s=0)  # what the sweeper does 30 s later, now
        assert wait_for(lambda: done(second.job_id), what="job run after the broker came back") == "completed"
        assert all(executions(second.job_id, s) == 1 for s in ("start", "left", "right", "join", "finish"))
    finally:
        worker.stop()


@pytest.fixture
def rabbitmq_via_proxy(pg: Backend) -> Iterator[tuple[dict[str, str], PausableProxy]]:
    """A RabbitMQ virtual host of this test's own, reached through a pausable proxy: the worker env
    (the module's database) and the proxy, with this process on it until the test ends."""
    ensure_rabbitmq()
    vhost = f"proactive_hang_{uuid.uuid4().hex[:10]}"
    add_rabbitmq_vhost(vhost)
    proxy = PausableProxy((RABBITMQ_HOST, RABBITMQ_PORT))
    env = {
        **pg.env,
        "BROKER_URL": f"amqp://guest:guest@127.0.0.1:{proxy.port}/{vhost}",
        "PROACTIVE_BROKER_TIMEOUT_S": str(BROKER_TIMEOUT_S),
    }
    try:
        with pytest.MonkeyPatch.context() as mp:
            apply_env(mp, env)
            yield env, proxy
    finally:
        proxy.close()
        with pytest.MonkeyPatch.context() as mp:
            apply_env(mp, pg.env)
        delete_rabbitmq_vhost(vhost)


def test_a_hung_rabbitmq_costs_a_producer_at_most_its_timeout(pg: Backend, org, rabbitmq_via_proxy):
    env, proxy = rabbitmq_via_proxy
    worker = WorkerProcess(env, pg.log_dir, "hung-rabbitmq", start_recovery=False).start()
    try:
        first = fire_event(event(org, "proposal_generation"))
        assert wait_for(lambda: done(first.job_id)) == "completed"

        proxy.pause()
        reconfigure_broker()  # a producer that must open a connection to the hung broker (a new web process)
        with ThreadPoolExecutor(1) as pool:  # a producer blocked for good fails the test, never hangs it
            firing = pool.submit(fire_event, event(org, "proposal_generation"))
            try:
                second = firing.result(timeout=PRODUCER_LIMIT_S)  # committed; its publish gave up
            finally:
                proxy.resume()
        assert job_status(second.job_id) == "queued"

        sweep(requeue_after_s=0)  # what the sweeper does 30 s later, now
        assert wait_for(lambda: done(second.job_id), what="job run after the broker came back") == "completed"
        assert all(executions(second.job_id, s) == 1 for s in ("start", "left", "right", "join", "finish"))
    finally:
        worker.stop()
