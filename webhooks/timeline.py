"""What the job timeline page draws, decided from a job's detail (`worker.ops.views.job_detail`) and the
time: no I/O, so the geometry is unit-tested with plain values.

Each step becomes one bar on a shared time axis from the job's creation to its end (or now while it
runs): a pale part while it waited in the queue (queued → started) and a coloured part while it ran
(started → finished; still open for a running step or one awaiting a person). Positions are in
`SCALE` units of an SVG `viewBox`, so the page needs no script and no inline style.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

SCALE = 1000  # SVG viewBox width of a bar row
MIN_BAR = 3  # narrowest drawn segment (viewBox units), so a 2 ms step is still visible
UNKNOWN = "\N{EM DASH}"  # what a page shows for a time or duration not known (yet)

# How each status is drawn: a CSS class per meaning (colour is never the only cue: the status word
# stands next to the bar).
TONES = {
    "succeeded": "ok",
    "completed": "ok",
    "approved": "ok",
    "sent": "ok",
    "console": "ok",
    "done": "ok",
    "running": "run",
    "queued": "run",
    "pending": "wait",
    "started": "wait",
    "awaiting_approval": "wait",
    "failed": "bad",
    "timeout": "bad",
    "expired": "bad",
    "rejected": "stop",
    "cancelled": "stop",
    "superseded": "muted",
    "skipped": "muted",
}


@dataclass(frozen=True)
class Segment:
    """One part of a bar: where it starts and how wide it is (viewBox units)."""

    x: float
    width: float
    tone: str


@dataclass(frozen=True)
class Bar:
    """A step's row: its waiting and running segments and a sentence saying the same in words."""

    segments: tuple[Segment, ...]
    label: str


def parse_time(value: str | None) -> datetime | None:
    """An ISO timestamp from a job detail, or None."""
    return datetime.fromisoformat(value) if value else None


def duration_text(ms: float | None) -> str:
    """A duration for people: 850 ms, 2.4 s, 3.1 min, 2.5 h; UNKNOWN when not known."""
    if ms is None:
        return UNKNOWN
    if ms < 1000:
        return f"{int(ms)} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def clock(value: datetime | None) -> str:
    """A time of day in UTC to the tenth of a second, e.g. 14:03:07.2."""
    return f"{value:%H:%M:%S}.{value.microsecond // 100_000}" if value else UNKNOWN


def tone(status: str | None) -> str:
    """The CSS tone of a status (unknown statuses are neutral)."""
    return TONES.get(status or "", "muted")


def status_label(status: str, errors: int) -> str:
    """A job's status with its failed steps counted ("completed · 2 errors"), so a run whose
    best-effort steps failed never reads like a clean one (a failed job names its error instead)."""
    if not errors or status == "failed":
        return status
    return f"{status} · {errors} error{'s' if errors != 1 else ''}"


def window(job: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """The time axis of a job: from its creation to its end (the last step's end if later), or now."""
    start = parse_time(job["created_at"]) or now
    ends = [parse_time(job.get("finished_at")) or now]
    ends += [t for s in job.get("steps", []) if (t := parse_time(s.get("finished_at")))]
    return start, max(max(ends), start)


def bar(step: dict[str, Any], start: datetime, end: datetime, *, asks_a_person: bool = False) -> Bar:
    """The bar of one step on the axis [start, end]. An approval step (`asks_a_person`) spends its
    running time waiting for a decision, so that part is drawn in the waiting tone unless it failed."""
    span_s = max((end - start).total_seconds(), 0.001)

    def x(t: datetime) -> float:
        return round(min(max((t - start).total_seconds() / span_s, 0.0), 1.0) * SCALE, 1)

    def segment(a: datetime, b: datetime, tone_: str) -> Segment:
        left = min(x(a), SCALE - MIN_BAR)
        return Segment(left, round(max(x(b) - left, MIN_BAR), 1), tone_)

    queued, started = parse_time(step.get("queued_at")), parse_time(step.get("started_at"))
    finished = parse_time(step.get("finished_at"))
    status = step["status"]
    segments: list[Segment] = []
    words: list[str] = []
    if started is not None or (queued is not None and status not in ("skipped", "cancelled")):
        queued = queued or started
        assert queued is not None
        words.append(f"queued {clock(queued)}")
        segments.append(segment(queued, started or finished or end, "queue"))
    if started is not None:
        words.append(f"started {clock(started)}")
        run_tone = "wait" if asks_a_person and tone(status) in ("ok", "run") else tone(status)
        segments.append(segment(started, finished or end, run_tone))
    if finished is not None:
        words.append(f"finished {clock(finished)}")
    elif started is not None:
        words.append("awaiting a decision" if status == "awaiting_approval" else "still running")
    if asks_a_person:
        words.append("asked a person")
    if not segments:
        words.append("never ran" + (f" ({step['reason'].replace('_', ' ')})" if step.get("reason") else ""))
    return Bar(tuple(segments), f"{step['step']}: {status.replace('_', ' ')}; {', '.join(words)} (UTC)")
