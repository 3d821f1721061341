"""worker/logs.py: the W3C traceparent parser, the log context and the JSON formatter."""

from __future__ import annotations

import json
import logging
import sys
import threading
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker import logs
from worker.slack.delivery import SLACK_METADATA_EVENT, slack_metadata

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture(autouse=True)
def _fresh_context() -> None:
    logs.start_trace("f" * 32)  # each test starts from a known unit of work


@pytest.mark.parametrize(
    "header",
    [
        f"00-{TRACE}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-00",
        f"  00-{TRACE}-{PARENT}-01  ",  # surrounding spaces are allowed
        f"01-{TRACE}-{PARENT}-01-future-field",  # a later version may append fields
    ],
)
def test_a_w3c_traceparent_gives_its_trace_id(header: str) -> None:
    assert logs.trace_id_from_traceparent(header) == TRACE


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        TRACE,  # a bare id is not a traceparent
        f"00-{TRACE.upper()}-{PARENT}-01",  # hex must be lowercase
        f"00-{TRACE}-{PARENT}",  # no flags
        f"00-{TRACE[:-1]}-{PARENT}-01",  # 31 digits
        f"00-{TRACE}0-{PARENT}-01",  # 33 digits
        f"00-{TRACE}-{PARENT[:-1]}-01",
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE}-{PARENT}-01",  # version ff is forbidden
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"00_{TRACE}_{PARENT}_01",
        f"00-{TRACE}-{PARENT}-0g",
    ],
)
def test_anything_not_w3c_shaped_is_ignored(header: str | None) -> None:
    assert logs.trace_id_from_traceparent(header) is None


@given(st.text(max_size=80))
def test_the_parser_never_raises_and_only_returns_trace_ids(header: str) -> None:
    found = logs.trace_id_from_traceparent(header)
    assert found is None or logs.valid_trace_id(found) == found


def test_new_trace_ids_are_valid_w3c_trace_ids_and_differ() -> None:
    a, b = logs.new_trace_id(), logs.new_trace_id()
    assert a != b
    assert logs.trace_id_from_traceparent(f"00-{a}-{PARENT}-01") == a


def test_start_trace_forgets_the_previous_unit_of_work() -> None:
    logs.bind(org_id="org-1", job_id="job-1", step="s1")
    started = logs.start_trace()
    assert logs.current() == logs.LogContext(trace_id=started)
    assert logs.valid_trace_id(started) == started


def test_bind_job_takes_the_jobs_own_trace_id_and_ignores_a_malformed_one() -> None:
    org_id, job_id = uuid.uuid4(), uuid.uuid4()
    logs.bind_job({"id": job_id, "org_id": org_id, "trace_id": TRACE}, "draft")
    assert logs.current() == logs.LogContext(TRACE, str(org_id), str(job_id), "draft")
    logs.start_trace("a" * 32)
    logs.bind_job({"id": job_id, "org_id": org_id, "trace_id": "not-a-trace"})
    assert logs.current_trace_id() == "a" * 32  # the task's trace stays
    with pytest.raises(TypeError, match="unknown log context fields"):
        logs.bind(user="x")


def test_the_context_belongs_to_its_thread() -> None:
    logs.start_trace(TRACE)
    seen: list[str | None] = []
    thread = threading.Thread(target=lambda: seen.append(logs.current_trace_id()))
    thread.start()
    thread.join()
    assert seen == [None] and logs.current_trace_id() == TRACE


def _record(msg: str = "step %s done", *args: object, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("proactive.test")
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, msg, args or ("s1",), None, extra=extra)
    logs.ContextFilter().filter(record)
    return record


def test_the_json_formatter_writes_one_object_per_line_with_the_context() -> None:
    logs.start_trace(TRACE)
    logs.bind(org_id="org-1", job_id="job-1", step="s1")
    line = logs.JsonFormatter().format(_record())
    assert "\n" not in line
    out = json.loads(line)
    assert out["message"] == "step s1 done" and out["level"] == "INFO" and out["logger"] == "proactive.test"
    assert (out["trace_id"], out["org_id"], out["job_id"], out["step"]) == (TRACE, "org-1", "job-1", "s1")
    assert out["ts"].endswith("+00:00")


def test_unknown_context_fields_are_left_out_and_extra_fields_win() -> None:
    logs.start_trace(TRACE)
    out = json.loads(logs.JsonFormatter().format(_record(job_id="job-9", attempts=2)))
    assert out["job_id"] == "job-9" and out["attempts"] == 2 and out["trace_id"] == TRACE
    assert "org_id" not in out and "step" not in out


def test_a_traceback_stays_inside_the_one_line() -> None:
    logger = logging.getLogger("proactive.test")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = logs.JsonFormatter().format(record)
    assert line.count("\n") == 0
    assert "ValueError: boom" in json.loads(line)["exc_info"]


def test_use_json_formats_a_loggers_handlers_once() -> None:
    logger = logging.getLogger(f"proactive.test.{uuid.uuid4().hex}")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    logs.use_json(logger)
    logs.use_json(logger)
    assert isinstance(handler.formatter, logs.JsonFormatter)
    assert sum(isinstance(f, logs.ContextFilter) for f in handler.filters) == 1


def test_the_celery_publish_hook_adds_the_current_trace_and_keeps_an_explicit_one() -> None:
    logs.start_trace(TRACE)
    headers: dict[str, object] = {}
    logs._add_trace_header(headers=headers)
    assert headers == {logs.TRACE_HEADER: TRACE}
    explicit = {logs.TRACE_HEADER: "b" * 32}
    logs._add_trace_header(headers=explicit)
    assert explicit == {logs.TRACE_HEADER: "b" * 32}


def test_a_task_starts_with_its_messages_trace_or_a_new_one() -> None:
    class Request:
        def __init__(self, trace: object) -> None:
            self.trace_id = trace

    class Task:
        def __init__(self, trace: object) -> None:
            self.request = Request(trace)

    logs.bind(job_id="previous-job")
    logs._start_task_trace(task=Task(TRACE))
    assert logs.current() == logs.LogContext(trace_id=TRACE)
    logs._start_task_trace(task=Task("DROP TABLE"))
    assert logs.current_trace_id() not in (TRACE, "DROP TABLE")
    assert logs.valid_trace_id(logs.current_trace_id()) is not None


def test_slack_metadata_names_the_trace_and_job() -> None:
    job_id = uuid.uuid4()
    assert slack_metadata(TRACE, job_id) == {
        "event_type": SLACK_METADATA_EVENT,
        "event_payload": {"trace_id": TRACE, "job_id": str(job_id)},
    }
    assert slack_metadata(TRACE, None) == {"event_type": SLACK_METADATA_EVENT, "event_payload": {"trace_id": TRACE}}
    assert slack_metadata(None, job_id) is None


def test_joining_a_jobs_trace_keeps_the_first_trace_as_the_origin() -> None:
    click, job, other = "c" * 32, "d" * 32, "e" * 32
    logs.start_trace(click)
    logs.join_trace(job, org_id="org", job_id="job")
    assert logs.current() == logs.LogContext(trace_id=job, org_id="org", job_id="job", origin_trace_id=click)
    logs.join_trace(job)  # the same trace again: nothing changes
    logs.join_trace(None)  # a job stored before trace ids: the trace stays
    logs.join_trace("not-a-trace")
    assert logs.current_trace_id() == job and logs.current().origin_trace_id == click
    logs.join_trace(other)  # joined twice: the first origin is kept
    assert logs.current() == logs.LogContext(trace_id=other, org_id="org", job_id="job", origin_trace_id=click)
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "clicked", None, None)
    logs.ContextFilter().filter(record)
    line = json.loads(logs.JsonFormatter().format(record))
    assert (line["trace_id"], line["origin_trace_id"]) == (other, click)
    logs.start_trace(TRACE)  # the next unit of work forgets it
    assert logs.current() == logs.LogContext(trace_id=TRACE)


def test_the_origin_travels_in_its_own_celery_header_to_the_task() -> None:
    click, job = "c" * 32, "d" * 32
    logs.start_trace(click)
    logs.join_trace(job)
    headers: dict[str, object] = {}
    logs._add_trace_header(headers=headers)
    assert headers == {logs.TRACE_HEADER: job, logs.ORIGIN_HEADER: click}

    class Task:
        class request:  # noqa: N801 - Celery's attribute name
            trace_id = job
            origin_trace_id = click

    logs.start_trace()
    logs._start_task_trace(task=Task())
    assert logs.current() == logs.LogContext(trace_id=job, origin_trace_id=click)
    Task.request.origin_trace_id = "DROP TABLE"
    logs._start_task_trace(task=Task())
    assert logs.current() == logs.LogContext(trace_id=job)
