"""The orchestrator dashboard's pure parts: the daily activity chart's geometry (inline SVG drawn by
the template), bar widths for the breakdowns, and number formatting. No database, no Flask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The chart's drawing box (SVG user units; the SVG scales to its container's width).
CHART_W = 720
CHART_H = 180
PAD_LEFT = 40
PAD_RIGHT = 8
PAD_TOP = 10
PAD_BOTTOM = 28
# Auto-refresh interval of the page (seconds) and the bounds a `?refresh=` may ask for.
REFRESH_S = 30
REFRESH_MIN_S = 1
REFRESH_MAX_S = 3600


@dataclass(frozen=True)
class DayBar:
    """One day's bar: its total split into completed (bottom), failed, and the rest (top)."""

    date: str
    label: str  # axis label, '' for days left unlabelled
    x: float
    width: float
    completed_y: float
    completed_h: float
    failed_y: float
    failed_h: float
    other_y: float
    other_h: float
    title: str


@dataclass(frozen=True)
class Chart:
    """The daily activity chart: bars, the y axis ticks and a text summary for screen readers."""

    bars: list[DayBar]
    ticks: list[tuple[float, int]]  # (y, value)
    summary: str
    width: int = CHART_W
    height: int = CHART_H
    left: int = PAD_LEFT
    bottom: float = CHART_H - PAD_BOTTOM
    right: int = CHART_W - PAD_RIGHT


def nice_max(value: int) -> int:
    """The axis top: the smallest of 1, 2, 5 times 10^k that is at least value (at least 1)."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if step * top >= value:
                return step * top
        top *= 10


def daily_chart(days: list[dict[str, Any]]) -> Chart:
    """Bars per day of `daily_counts` rows ({date, total, completed, failed}); the rest of a day's
    total (running, paused, cancelled, skipped…) stacks on top in grey."""
    plot_h = CHART_H - PAD_TOP - PAD_BOTTOM
    plot_w = CHART_W - PAD_LEFT - PAD_RIGHT
    top = nice_max(max((d["total"] for d in days), default=0))
    slot = plot_w / max(len(days), 1)
    width = max(slot * 0.7, 1.0)
    every = 1 if len(days) <= 10 else (5 if len(days) <= 40 else 15)
    base = PAD_TOP + plot_h

    def height(n: int) -> float:
        return round(plot_h * n / top, 2)

    bars = []
    for i, d in enumerate(days):
        completed, failed = d["completed"], d["failed"]
        other = max(d["total"] - completed - failed, 0)
        ch, fh, oh = height(completed), height(failed), height(other)
        x = round(PAD_LEFT + i * slot + (slot - width) / 2, 2)
        last = i == len(days) - 1
        bars.append(
            DayBar(
                date=d["date"],
                label=d["date"][5:] if (i % every == 0 or last) else "",
                x=x,
                width=round(width, 2),
                completed_y=round(base - ch, 2),
                completed_h=ch,
                failed_y=round(base - ch - fh, 2),
                failed_h=fh,
                other_y=round(base - ch - fh - oh, 2),
                other_h=oh,
                title=f"{d['date']}: {d['total']} jobs, {completed} completed, {failed} failed",
            )
        )
    ticks = [(round(base - plot_h * v / top, 2), v) for v in sorted({0, top // 2, top}) if v or top]
    total = sum(d["total"] for d in days)
    busiest = max(days, key=lambda d: d["total"], default=None)
    summary = f"Daily jobs over {len(days)} days: {total} in all"
    if busiest and busiest["total"]:
        summary += f", most on {busiest['date']} ({busiest['total']})"
    return Chart(bars=bars, ticks=ticks, summary=summary + ".")


def shares(counts: dict[str, int]) -> list[tuple[str, int, float]]:
    """(name, count, percent of the largest) for horizontal bars, largest first as given."""
    top = max(counts.values(), default=0) or 1
    return [(name, n, round(100 * n / top, 1)) for name, n in counts.items()]


def percent(rate: float | None) -> str:
    """A 0-1 rate as a percentage (one decimal when not whole); an em dash when unknown."""
    if rate is None:
        return "—"
    value = rate * 100
    return f"{value:.0f}%" if value == int(value) else f"{value:.1f}%"


def refresh_seconds(value: str | None) -> int:
    """The auto-refresh interval asked for by `?refresh=` (seconds), bounded; the default otherwise."""
    try:
        asked = int(value) if value else REFRESH_S
    except ValueError:
        return REFRESH_S
    return min(max(asked, REFRESH_MIN_S), REFRESH_MAX_S)
