"""The job timeline page's pure parts: bar geometry on the job's time axis, status and duration
words, and where a sign-in link may lead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from webhooks.timeline import MIN_BAR, SCALE, bar, duration_text, status_label, tone, window
from worker.access.admin_auth import HOME_PATH, safe_next

T0 = datetime(2026, 12, 5, 14, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def step(status: str, queued: float | None, started: float | None, finished: float | None, **extra: object) -> dict:
    return {
        "step": "draft",
        "status": status,
        "queued_at": at(queued) if queued is not None else None,
        "started_at": at(started) if started is not None else None,
        "finished_at": at(finished) if finished is not None else None,
        **extra,
    }


def test_a_finished_step_waits_then_runs_on_the_jobs_axis():
    b = bar(step("succeeded", 0, 2, 6), T0, T0 + timedelta(seconds=10))
    queue, run = b.segments
    assert (queue.x, queue.width, queue.tone) == (0, 200, "queue")
    assert (run.x, run.width, run.tone) == (200, 400, "ok")
    assert b.label == "draft: succeeded; queued 14:00:00.0, started 14:00:02.0, finished 14:00:06.0 (UTC)"


def test_a_step_awaiting_a_person_runs_to_the_end_of_the_axis():
    b = bar(step("awaiting_approval", 1, 1, None), T0, T0 + timedelta(seconds=4))
    run = b.segments[-1]
    assert run.tone == "wait" and run.x == 250 and run.x + run.width == SCALE
    assert "awaiting a decision" in b.label


def test_an_approval_steps_time_is_drawn_as_waiting_for_a_person():
    b = bar(step("succeeded", 0, 1, 3), T0, T0 + timedelta(seconds=4), asks_a_person=True)
    assert [s.tone for s in b.segments] == ["queue", "wait"]
    assert b.label.endswith("finished 14:00:03.0, asked a person (UTC)")
    failed = bar(step("failed", 0, 1, 3), T0, T0 + timedelta(seconds=4), asks_a_person=True)
    assert failed.segments[-1].tone == "bad"


def test_a_skipped_step_has_no_bar_and_says_why():
    b = bar(step("skipped", 3, None, None, reason="not_booking"), T0, T0 + timedelta(seconds=4))
    assert b.segments == ()
    assert b.label.endswith("never ran (not booking) (UTC)")


def test_a_queued_step_waits_until_now():
    (queue,) = bar(step("queued", 2, None, None), T0, T0 + timedelta(seconds=4)).segments
    assert (queue.x, queue.width) == (500, 500)


def test_tiny_and_late_segments_stay_visible_inside_the_axis():
    b = bar(step("failed", 10, 10, 10.001), T0, T0 + timedelta(seconds=10))
    for seg in b.segments:
        assert seg.width >= MIN_BAR and seg.x + seg.width <= SCALE
    assert b.segments[-1].tone == "bad"


def test_the_axis_runs_from_creation_to_the_end_or_now():
    now = T0 + timedelta(minutes=5)
    running = {"created_at": at(0), "finished_at": None, "steps": [step("running", 0, 1, None)]}
    assert window(running, now) == (T0, now)
    done = {"created_at": at(0), "finished_at": at(8), "steps": [step("succeeded", 0, 1, 9)]}
    assert window(done, now) == (T0, T0 + timedelta(seconds=9))  # a step that ended after the job


@pytest.mark.parametrize(
    ("status", "errors", "label"),
    [
        ("completed", 0, "completed"),
        ("completed", 1, "completed · 1 error"),
        ("completed", 3, "completed · 3 errors"),
        ("failed", 2, "failed"),
    ],
)
def test_a_completed_job_with_failed_steps_never_reads_clean(status, errors, label):
    assert status_label(status, errors) == label


def test_durations_and_tones_read_at_a_glance():
    assert [duration_text(v) for v in (None, 850, 2400, 186_000, 9_000_000)] == [
        "—",
        "850 ms",
        "2.4 s",
        "3.1 min",
        "2.5 h",
    ]
    assert (tone("succeeded"), tone("awaiting_approval"), tone("failed"), tone("whatever")) == (
        "ok",
        "wait",
        "bad",
        "muted",
    )


def test_a_sign_in_leads_to_an_admin_page_only():
    assert safe_next("/admin/jobs/123?status=failed") == "/admin/jobs/123?status=failed"
    for bad in (
        "https://evil.example/admin",
        "//evil.example/admin",
        "/admin//evil.example",
        "/api/jobs",
        "/admin\\x",
        "/admin/x\r\nSet-Cookie:",
        "",
        None,
    ):
        assert safe_next(bad) == HOME_PATH
