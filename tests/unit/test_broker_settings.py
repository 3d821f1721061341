"""Bounded broker waits: the timeouts and publish retries each broker gets, and one timeout per batch
of messages when the broker does not answer."""

from __future__ import annotations

from typing import Any

import pytest
from kombu.exceptions import OperationalError

from worker.celery_app import AMQP_HEARTBEAT_S, REDIS_VISIBILITY_TIMEOUT_S, broker_conf
from worker.engine import publish
from worker.engine.publish import Message, after_commit


def test_redis_publishes_once_with_socket_and_connect_timeouts():
    conf = broker_conf("redis://127.0.0.1:6379/0", 2.0)
    assert conf["broker_transport_options"] == {
        "ack_emulation": False,  # the rows, not a copy in Redis, bring a lost message back
        "visibility_timeout": REDIS_VISIBILITY_TIMEOUT_S,
        "socket_timeout": 2.0,
        "socket_connect_timeout": 2.0,
        "socket_keepalive": True,
        "retry_on_timeout": False,  # a command that may have run is never sent twice
    }
    assert conf["task_publish_retry_policy"] == {"max_retries": 0}
    assert conf["broker_connection_timeout"] == 2.0


def test_redis_ack_emulation_is_on_only_when_asked():
    assert broker_conf("redis://127.0.0.1:6379/0", 2.0, ack_emulation=True)["broker_transport_options"]["ack_emulation"]
    assert "ack_emulation" not in broker_conf("amqp://guest:guest@127.0.0.1:5672/x", 2.0)["broker_transport_options"]


def test_rabbitmq_retries_once_each_connect_bounded_by_half_the_timeout():
    conf = broker_conf("amqp://guest:guest@127.0.0.1:5672/x", 2.0)
    assert conf["broker_transport_options"] == {"write_timeout": 1.0}
    assert conf["broker_connection_timeout"] == 1.0
    assert conf["broker_heartbeat"] == AMQP_HEARTBEAT_S
    assert conf["task_publish_retry_policy"]["max_retries"] == 1
    assert conf["task_publish_retry_policy"]["interval_start"] == 0


def test_the_embedded_broker_keeps_celerys_defaults():
    conf = broker_conf("proactive+sqlite:////tmp/broker.db", 2.0)
    assert conf["broker_transport_options"] == {}
    assert conf["task_publish_retry_policy"]["max_retries"] == 3


class SilentBroker:
    """Celery's send_task against a broker that does not answer: every call times out."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, name: str, **_options: Any) -> None:
        self.calls.append(name)
        raise OperationalError("Timeout reading from 127.0.0.1:6379")


def test_a_silent_broker_costs_a_batch_one_timeout(monkeypatch: pytest.MonkeyPatch):
    broker = SilentBroker()
    monkeypatch.setattr(publish.celery_app, "send_task", broker)
    batch = [Message(f"proactive.t{i}", (i,), about=f"m{i}", retry="the sweeper will retry") for i in range(3)]
    assert after_commit(batch) == 0
    assert broker.calls == ["proactive.t0"]


def test_a_message_that_must_be_sent_raises_after_a_silent_broker(monkeypatch: pytest.MonkeyPatch):
    broker = SilentBroker()
    monkeypatch.setattr(publish.celery_app, "send_task", broker)
    with pytest.raises(OperationalError):
        after_commit([Message("proactive.a", ()), Message("proactive.b", (), must_send=True)])
    assert broker.calls == ["proactive.a"]
