"""What only RabbitMQ does, with real `celery worker`s on PostgreSQL + RabbitMQ: when the worker's AMQP
connection drops, the broker re-delivers its unacknowledged messages at once (Redis waits for its
visibility timeout), so a step running at that moment must finish once, not be cancelled and re-run."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.engine import event, executions, reached, step_rows
from tests.support.services import close_rabbitmq_connections
from tests.support.waiting import wait_for
from worker.engine.events import fire_event

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("test_sequences"),
    pytest.mark.parametrize("pg", ["rabbitmq"], indirect=True, scope="module"),
]


def test_a_step_running_when_the_broker_connection_drops_finishes_once(pg, workers, org, tmp_path: Path):
    effect_file, block_file, release_file = tmp_path / "effects.txt", tmp_path / "inside", tmp_path / "release"
    worker = workers()
    result = fire_event(
        event(
            org,
            "pre_meeting_90min",
            {"effect_file": str(effect_file), "block_file": str(block_file), "release_file": str(release_file)},
        )
    )
    wait_for(block_file.exists, what="step inside its side effect window")
    close_rabbitmq_connections(urlsplit(pg.env["BROKER_URL"]).path.lstrip("/"))
    wait_for(lambda: "Connection to broker lost" in worker.log(), what="the worker saw its connection close")
    release_file.touch()

    final = wait_for(lambda: reached(result.job_id, "completed", "failed", "cancelled"), what="job finished")
    assert final == "completed"
    send = step_rows(result.job_id)["send"]
    assert (send.status, send.attempt) == ("succeeded", 1)  # not cancelled and re-run by the sweeper
    assert effect_file.read_text().splitlines() == ["sent by attempt 1"]
    assert executions(result.job_id, "send") == 1 and executions(result.job_id, "after") == 1
