"""The line a purged job's views show instead of its cleared content (worker/ops/views.py purged_note)."""

from __future__ import annotations

from worker.ops.views import purged_note


def test_a_job_not_purged_has_no_note():
    assert purged_note(None, 90) is None


def test_the_note_names_the_day_and_the_retention():
    note = purged_note("2026-06-01T12:00:00+00:00", 30)
    assert note is not None and note.startswith("content purged on 2026-06-01 (retention 30 days): ")


def test_an_unknown_retention_is_left_out():
    assert purged_note("2026-06-01T12:00:00+00:00", None).startswith("content purged on 2026-06-01: ")
