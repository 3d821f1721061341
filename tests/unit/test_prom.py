"""worker/metrics/prom.py: bounded labels, elapsed seconds, the multiprocess directory's clean-up, the
exit hooks (gunicorn's child_exit, Celery's worker_process_shutdown), and recording into this
process's registry (no multiprocess directory in unit tests)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from worker.engine.payloads import Source
from worker.metrics import prom

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def value(name: str, **labels: str) -> float:
    """A sample of this process's registry (0 when never recorded)."""
    return prom.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("source", [*(s.value for s in Source), "slack:events", "oauth:google"])
def test_our_sources_are_labels(source: str):
    assert prom.source_label(source) == source


@pytest.mark.parametrize("source", ["", None, "API", "webhook:anything", "x" * 500, "api\n"])
def test_any_other_source_is_other(source: str | None):
    assert prom.source_label(source) == "other"


@pytest.mark.parametrize(
    "reason", ["InvalidEvent", "InvalidSignature", "PayloadTooLarge", "NotAuthorized", "OAuth2Error"]
)
def test_error_class_names_are_reasons(reason: str):
    assert prom.reason_label(reason) == reason


@pytest.mark.parametrize("reason", ["", None, "Invalid Event", "x" * 41, "Invalid\u00e9", "bad-input", "1Error"])
def test_anything_else_is_reason_other(reason: str | None):
    assert prom.reason_label(reason) == "other"


def test_seconds_between():
    assert prom.seconds_between(T0, T0 + timedelta(minutes=2, milliseconds=500)) == 120.5
    assert prom.seconds_between(T0 + timedelta(seconds=3), T0) == 0.0  # another machine's clock ahead
    assert prom.seconds_between(None, T0) is None


def test_clearing_the_directory_removes_value_files_only(tmp_path: Path):
    directory = tmp_path / "metrics"
    assert prom.clear_multiprocess_dir(directory) == 0 and directory.is_dir()  # made when missing
    for name in ("counter_101.db", "histogram_101.db", "gauge_livesum_7.db"):
        (directory / name).write_bytes(b"\0" * 8)
    (directory / "README").write_text("not ours")
    assert prom.clear_multiprocess_dir(directory) == 3
    assert sorted(p.name for p in directory.iterdir()) == ["README"]


def test_recording_counts_in_this_process():
    before = value("proactive_events_accepted_total", source="other", type="meeting_ended")
    prom.event_accepted("made-up source", "meeting_ended")
    prom.event_accepted("another", "meeting_ended")
    assert value("proactive_events_accepted_total", source="other", type="meeting_ended") == before + 2

    before = value("proactive_events_rejected_total", source="api", reason="other")
    prom.event_rejected("api", "not a class name")
    assert value("proactive_events_rejected_total", source="api", reason="other") == before + 1


def test_a_step_without_a_run_time_is_counted_but_not_timed():
    labels = {"sequence": "unit_prom", "step": "s1", "status": "failed"}
    prom.step_finished("unit_prom", "s1", "failed", None)
    prom.step_finished("unit_prom", "s1", "succeeded", 0.2)
    assert value("proactive_steps_finished_total", **labels) == 1
    assert value("proactive_step_duration_seconds_count", sequence="unit_prom") == 1
    assert value("proactive_step_duration_seconds_bucket", sequence="unit_prom", le="0.25") == 1
    assert value("proactive_step_duration_seconds_bucket", sequence="unit_prom", le="0.1") == 0


def test_an_expiry_is_counted_but_is_not_a_decision_time():
    prom.approval_decided("unit_kind", "expired", None)
    prom.approval_decided("unit_kind", "approved", 42.0)
    assert value("proactive_approvals_decided_total", kind="unit_kind", status="expired") == 1
    assert value("proactive_approval_decision_seconds_count", kind="unit_kind") == 1
    assert value("proactive_approval_decision_seconds_sum", kind="unit_kind") == 42.0


def test_sweeper_kinds_with_nothing_done_make_no_series():
    prom.sweeper_repaired({"unit_republished": 3, "unit_reclaimed": 0})
    assert value("proactive_sweeper_repairs_total", kind="unit_republished") == 3
    assert prom.REGISTRY.get_sample_value("proactive_sweeper_repairs_total", {"kind": "unit_reclaimed"}) is None


def test_a_metric_that_cannot_be_written_is_logged_not_raised(caplog: pytest.LogCaptureFixture):
    @prom._never_raises
    def broken() -> None:
        raise OSError("No space left on device")

    with caplog.at_level(logging.WARNING, logger="worker.metrics.prom"):
        broken()
    assert "metric broken not recorded: OSError: No space left on device" in caplog.text


@pytest.mark.parametrize("hook", ["gunicorn", "celery"])
def test_an_exited_process_loses_its_live_gauge_files_and_keeps_its_totals(
    hook: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from webhooks.gunicorn_conf import child_exit

    for name in ("gauge_livesum_4242.db", "gauge_liveall_4242.db", "counter_4242.db", "gauge_livesum_7.db"):
        (tmp_path / name).write_bytes(b"\0" * 8)
    monkeypatch.setenv(prom.MULTIPROC_ENV, str(tmp_path))
    if hook == "gunicorn":
        child_exit(None, SimpleNamespace(pid=4242))
    else:
        prom.mark_process_dead(4242)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db", "gauge_livesum_7.db"]


def test_without_a_directory_an_exited_process_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from webhooks.gunicorn_conf import child_exit

    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"\0" * 8)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(prom.MULTIPROC_ENV, raising=False)
    child_exit(None, SimpleNamespace(pid=4242))
    prom.mark_process_dead(4242)
    assert [p.name for p in tmp_path.iterdir()] == ["gauge_livesum_4242.db"]
