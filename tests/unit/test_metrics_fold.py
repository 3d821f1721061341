"""Folding jobs into metric cells (worker/metrics/fold.py): the cells of a job, week cells from day
cells, and which weeks and days a window reads its sketches from."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from worker.metrics.fold import (
    ApprovalFacts,
    JobFacts,
    StepFacts,
    Totals,
    fold,
    sketch_periods,
    summarize,
    week_of,
    weekly,
)

T0 = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # a Wednesday


def job(n: int, created: datetime, status: str = "completed", seconds: float = 10, **kw) -> JobFacts:
    return JobFacts(
        id=f"00000000-0000-0000-0000-{n:012d}",
        created_at=created,
        source="api",
        event_type="meeting_ended",
        status=status,
        finished_at=created + timedelta(seconds=seconds) if status != "running" else None,
        paused_ms=0,
        message=kw.pop("message", ""),
        **kw,
    )


def utc_day(instant: datetime) -> date:
    return instant.date()


def test_a_job_becomes_cells_of_its_day():
    j = job(
        1,
        T0,
        steps=[
            StepFacts("s", "failed", 40, "transient", "crm unreachable"),
            StepFacts("s", "succeeded", 60, None, None),
        ],
        approvals=[ApprovalFacts("approved", T0, T0 + timedelta(seconds=30))],
        first_queued=T0 + timedelta(seconds=1),
    )
    cells = fold([j], utc_day)
    day = T0.date()
    assert cells[(day, "status", "completed", "")].n == 1
    assert cells[(day, "job_ms", "", "")].sum_ms == 10_000
    step = cells[(day, "step", "s", "")]
    assert (step.n, step.failed, step.sketch.count) == (2, 1, 2)
    error = cells[(day, "error", "transient", "crm unreachable")]
    assert (error.n, error.example) == (1, j.id)
    assert cells[(day, "decision_ms", "", "")].sketch.quantile(0.5) == 30_000
    assert (day, "slack_sent", "", "") not in cells  # queued, never sent


def test_week_cells_hold_the_sketched_kinds_summed_per_monday():
    jobs = [job(n, T0 + timedelta(days=n), seconds=n + 1) for n in range(7)]  # Wed .. Tue
    cells = weekly(fold(jobs, utc_day))
    assert {(day, kind) for day, kind, _key, _detail in cells} == {
        (date(2026, 3, 2), "job_ms"),  # Wed-Sun
        (date(2026, 3, 9), "job_ms"),  # Mon-Tue
    }
    assert cells[(date(2026, 3, 2), "job_ms", "", "")].n == 5
    assert cells[(date(2026, 3, 9), "job_ms", "", "")].sketch.count == 2
    assert week_of(date(2026, 3, 8)) == date(2026, 3, 2) and week_of(date(2026, 3, 9)) == date(2026, 3, 9)


def test_a_window_reads_its_whole_weeks_and_the_days_around_them():
    days = [date(2026, 3, 4) + timedelta(days=n) for n in range(20)]  # Wed 4 .. Mon 23
    weeks, edges = sketch_periods(days)
    assert weeks == [date(2026, 3, 9), date(2026, 3, 16)]
    assert edges == [date(2026, 3, 4), date(2026, 3, 5), date(2026, 3, 6), date(2026, 3, 7), date(2026, 3, 8),
                     date(2026, 3, 23)]  # fmt: skip
    assert sketch_periods(days[:5]) == ([], days[:5])


def test_totals_from_cells_give_the_fields():
    totals = Totals()
    totals.add_cells(fold([job(1, T0), job(2, T0, status="failed", seconds=30), job(3, T0, status="running")], utc_day))
    fields = summarize(totals, [T0.date()])
    assert fields["total_sequences"] == 3 and fields["success_rate"] == 0.5
    assert fields["avg_duration_ms"] == 20_000 and fields["p50_duration_ms"] == 20_000
    assert fields["daily_counts"] == [{"date": "2026-03-04", "total": 3, "completed": 1, "failed": 1}]
