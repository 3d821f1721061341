"""Folding jobs into metric cells, and cells into the org metrics' fields (pure, no I/O).

One definition serves both halves of `org_metrics` (worker/metrics/report.py): the roll-up
(worker/metrics/rollup.py) folds settled jobs into `metrics_rollups` rows once, and the read path
folds the window's jobs not rolled up yet the same way, then adds the stored rows. A cell is one
(local day, kind, key, detail) with a count, a failure count, a sum of milliseconds, a quantile
sketch and an example job. The kinds:

| kind | key / detail | n (failed, sum_ms, sketch) |
|---|---|---|
| status, source, type | the job's status / source / event type | jobs |
| job_ms | | finished jobs (completed, failed, timeout); sum and sketch of their durations |
| step | step name | step runs (failed runs; sketch of duration_ms) |
| error | error class / first 100 characters of the message | failed step runs and timed-out jobs (example job) |
| approval | approval status | approvals |
| decision_ms | | decided approvals (sketch of opening -> decision) |
| slack_queued, slack_sent | | jobs with a Slack message (sketch of created -> first message queued / sent) |
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from worker.metrics import maths as mm
from worker.metrics.sketch import Sketch

# Jobs whose duration counts and that count in the success rate.
FINISHED = frozenset({"completed", "failed", "timeout"})
# Error messages are grouped by their first this many characters.
ERROR_PREFIX_CHARS = 100
# Rows of `error_summary` and `top_skills`.
TOP_ERRORS = 10
TOP_SKILLS = 20
# Kinds whose cells carry a sketch.
SKETCHED = ("job_ms", "step", "decision_ms", "slack_queued", "slack_sent")
# A cell's span in days: a day; a local week (Monday to Sunday), kept for the sketched kinds only so
# that a 90-day window merges about 24 sketches per measure instead of 90.
DAY, WEEK = 1, 7


@dataclass(frozen=True)
class StepFacts:
    step: str
    status: str
    duration_ms: int | None
    error_class: str | None
    error: str | None


@dataclass(frozen=True)
class ApprovalFacts:
    status: str
    created_at: datetime
    decided_at: datetime | None


@dataclass
class JobFacts:
    """What the metrics need of one job: its row, its step runs, approvals and first Slack message."""

    id: str
    created_at: datetime
    source: str
    event_type: str
    status: str
    finished_at: datetime | None
    paused_ms: int
    message: str  # the job's error, else its reason ("" when neither)
    steps: list[StepFacts] = field(default_factory=list)
    approvals: list[ApprovalFacts] = field(default_factory=list)
    first_queued: datetime | None = None
    first_sent: datetime | None = None


@dataclass
class Cell:
    n: int = 0
    failed: int = 0
    sum_ms: float = 0.0
    sketch: Sketch | None = None
    example: str | None = None

    def add(self, n: int = 1, failed: int = 0, sum_ms: float = 0.0, example: str | None = None) -> None:
        """Count `n` more (and their failures, milliseconds, an example job: the smallest id kept)."""
        self.n += n
        self.failed += failed
        self.sum_ms += sum_ms
        if example is not None and (self.example is None or example < self.example):
            self.example = example

    def value(self, ms: float) -> None:
        """Put one measured value into the cell's sketch."""
        if self.sketch is None:
            self.sketch = Sketch()
        self.sketch.add(ms)


CellKey = tuple[date, str, str, str]  # (local day, kind, key, detail)


def fold(jobs: Iterable[JobFacts], day_of: Callable[[datetime], date]) -> dict[CellKey, Cell]:
    """The cells of `jobs`, each job counted on the local day (`day_of`) of its creation."""
    cells: dict[CellKey, Cell] = defaultdict(Cell)
    for job in jobs:
        day = day_of(job.created_at)
        cells[(day, "status", job.status, "")].add()
        cells[(day, "source", job.source, "")].add()
        cells[(day, "type", job.event_type, "")].add()
        if job.status in FINISHED and job.finished_at is not None:
            ms = mm.elapsed_ms(job.created_at, job.finished_at, job.paused_ms or 0)
            cell = cells[(day, "job_ms", "", "")]
            cell.add(sum_ms=ms)
            cell.value(ms)
        if job.status == "timeout":
            cells[(day, "error", "timeout", job.message[:ERROR_PREFIX_CHARS])].add(example=job.id)
        for s in job.steps:
            failed = s.status == "failed"
            cell = cells[(day, "step", s.step, "")]
            cell.add(failed=int(failed))
            if s.duration_ms is not None:
                cell.value(s.duration_ms)
            if failed:
                error_key = (s.error_class or "unknown", (s.error or "")[:ERROR_PREFIX_CHARS])
                cells[(day, "error", *error_key)].add(example=job.id)
        for a in job.approvals:
            cells[(day, "approval", a.status, "")].add()
            if a.decided_at is not None:
                cells[(day, "decision_ms", "", "")].add()
                cells[(day, "decision_ms", "", "")].value(mm.elapsed_ms(a.created_at, a.decided_at))
        if job.first_queued is not None:
            cells[(day, "slack_queued", "", "")].add()
            cells[(day, "slack_queued", "", "")].value(mm.elapsed_ms(job.created_at, job.first_queued))
            if job.first_sent is not None:
                cells[(day, "slack_sent", "", "")].add()
                cells[(day, "slack_sent", "", "")].value(mm.elapsed_ms(job.created_at, job.first_sent))
    return dict(cells)


def week_of(day: date) -> date:
    """The Monday that starts `day`'s week."""
    return day - timedelta(days=day.weekday())


def weekly(cells: Mapping[CellKey, Cell]) -> dict[CellKey, Cell]:
    """The week cells of day cells: the sketched kinds summed per (week, kind, key, detail)."""
    weeks: dict[CellKey, Cell] = defaultdict(Cell)
    for (day, kind, key, detail), cell in cells.items():
        if kind not in SKETCHED:
            continue
        week = weeks[(week_of(day), kind, key, detail)]
        week.add(cell.n, cell.failed, cell.sum_ms, cell.example)
        if cell.sketch is not None:
            if week.sketch is None:
                week.sketch = Sketch()
            week.sketch.merge(cell.sketch)
    return dict(weeks)


def sketch_periods(days: Sequence[date]) -> tuple[list[date], list[date]]:
    """How to read a window's sketches: the Mondays of the weeks wholly inside `days` (read as week
    cells) and the days outside those weeks (read as day cells)."""
    inside = set(days)
    weeks = sorted({week_of(d) for d in days if all(week_of(d) + timedelta(days=n) in inside for n in range(7))})
    covered = {w + timedelta(days=n) for w in weeks for n in range(7)}
    return weeks, [d for d in days if d not in covered]


class Totals:
    """Cells of one window added up: per (kind, key, detail) over the window, and job statuses per day."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str, str], Cell] = defaultdict(Cell)
        self.status_by_day: dict[date, Counter[str]] = defaultdict(Counter)

    def add(
        self,
        day: date | None,
        kind: str,
        key: str,
        detail: str,
        n: int,
        failed: int = 0,
        sum_ms: float = 0.0,
        example: str | None = None,
    ) -> None:
        """Add one cell's numbers (`day` is needed for `status` cells only)."""
        self.cells[(kind, key, detail)].add(n, failed, sum_ms, example)
        if kind == "status" and day is not None:
            self.status_by_day[day][key] += n

    def add_sketch(self, kind: str, key: str, sketch: Sketch | Mapping[str, Any] | None) -> None:
        """Merge one cell's sketch (a Sketch or its stored JSON) into the window's."""
        cell = self.cells[(kind, key, "")]
        if cell.sketch is None:
            cell.sketch = Sketch()
        cell.sketch.merge(sketch)

    def add_cells(self, cells: Mapping[CellKey, Cell]) -> None:
        """Add folded cells (the window's jobs not rolled up yet)."""
        for (day, kind, key, detail), cell in cells.items():
            self.add(day, kind, key, detail, cell.n, cell.failed, cell.sum_ms, cell.example)
            if cell.sketch is not None:
                self.add_sketch(kind, key, cell.sketch)

    def counts(self, kind: str) -> Counter[str]:
        """n per key of one kind."""
        found: Counter[str] = Counter()
        for (k, key, _detail), cell in self.cells.items():
            if k == kind:
                found[key] += cell.n
        return found

    def top_steps(self) -> list[str]:
        """The TOP_SKILLS most run steps (then by name)."""
        return list(mm.top(self.counts("step"), TOP_SKILLS))

    def cell(self, kind: str, key: str = "", detail: str = "") -> Cell:
        return self.cells.get((kind, key, detail)) or Cell()

    def quantiles(self, kind: str, key: str, *qs: float) -> list[int | None]:
        """Quantiles of one kind's sketch, in whole ms (None when it holds nothing)."""
        sketch = self.cell(kind, key).sketch
        return [mm.rounded(sketch.quantile(q) if sketch else None) for q in qs]


def summarize(totals: Totals, days: Sequence[date]) -> dict[str, Any]:
    """The metrics' job-based fields from a window's totals (docs/metrics.md has the definitions)."""
    by_status = totals.counts("status")
    durations = totals.cell("job_ms")
    p50, p95 = totals.quantiles("job_ms", "", 0.5, 0.95)
    index = {day: n for n, day in enumerate(days)}
    per_day = {index[day]: counts for day, counts in totals.status_by_day.items() if day in index}
    steps = totals.counts("step")
    top_skills = []
    for name in totals.top_steps():
        cell = totals.cell("step", name)
        top_skills.append(
            {
                "step": name,
                "runs": steps[name],
                "failed": cell.failed,
                "failure_rate": mm.rate(cell.failed, steps[name]),
                "p95_duration_ms": totals.quantiles("step", name, 0.95)[0],
            }
        )
    errors = [
        (key, detail, cell.n, cell.example)
        for (kind, key, detail), cell in totals.cells.items()
        if kind == "error" and cell.n
    ]
    errors.sort(key=lambda e: (-e[2], e[0], e[1]))
    approvals = totals.counts("approval")
    median, p90 = totals.quantiles("decision_ms", "", 0.5, 0.9)
    queued_p50, queued_p95 = totals.quantiles("slack_queued", "", 0.5, 0.95)
    sent_p50, sent_p95 = totals.quantiles("slack_sent", "", 0.5, 0.95)
    return {
        "total_sequences": sum(by_status.values()),
        "sequences_by_source": mm.top(totals.counts("source")),
        "sequences_by_type": mm.top(totals.counts("type")),
        "sequences_by_status": mm.top(by_status),
        "avg_duration_ms": mm.rounded(durations.sum_ms / durations.n if durations.n else None),
        "p50_duration_ms": p50,
        "p95_duration_ms": p95,
        "success_rate": mm.success_rate(by_status["completed"], by_status["failed"], by_status["timeout"]),
        "daily_counts": mm.daily_rows(days, per_day),
        "top_skills": top_skills,
        "error_summary": [
            {"error_class": cls, "message": msg, "count": n, "example_job_id": example}
            for cls, msg, n, example in errors[:TOP_ERRORS]
        ],
        "hitl": {
            "opened": sum(approvals.values()),
            "decided": totals.cell("decision_ms").n,
            "expired": approvals["expired"],
            "pending": approvals["pending"],
            "median_decision_ms": median,
            "p90_decision_ms": p90,
        },
        "slack": {
            "jobs_with_messages": totals.cell("slack_queued").n,
            "first_message_queued_p50_ms": queued_p50,
            "first_message_queued_p95_ms": queued_p95,
            "first_message_sent_p50_ms": sent_p50,
            "first_message_sent_p95_ms": sent_p95,
        },
    }
