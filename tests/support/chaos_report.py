"""The fault suite's outcomes as the table of docs/RELIABILITY.md.

    .venv/bin/python -m tests.support.chaos_report [--since 2026-12-06T00:00] [FILE]

reads tests/artifacts/reliability.jsonl (one line per scenario run, written by
tests/support/chaos.py `record`) and prints one Markdown row per (scenario, broker): how many runs,
jobs, faults, and, summed over the runs, lost, stuck, failed and duplicated effects (at the fakes),
with the recovery p50 (median of the runs' p50) and p95 (worst run's p95).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.support.chaos import RESULTS

HEADER = (
    "| scenario | broker | runs | jobs | faults | lost | stuck | failed | duplicated | missing "
    "| recovery p50 | recovery p95 | s per run |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def table(rows: Iterable[dict[str, Any]]) -> str:
    """The Markdown table of `rows` (outcome rows), grouped by scenario and broker, first seen first."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["scenario"], row["broker"]), []).append(row)
    lines = [HEADER]
    for (scenario, broker), runs in groups.items():
        p50s = [r["recovery_p50_s"] for r in runs if r.get("recovery_p50_s") is not None]
        p95s = [r["recovery_p95_s"] for r in runs if r.get("recovery_p95_s") is not None]
        lines.append(
            f"| {scenario} | {broker} | {len(runs)} | {sum(r['jobs'] for r in runs)} "
            f"| {sum(r['faults'] for r in runs)} | {sum(r['lost'] for r in runs)} "
            f"| {sum(len(r['stuck']) for r in runs)} | {sum(len(r['failed']) for r in runs)} "
            f"| {sum(sum(r['duplicated'].values()) for r in runs)} "
            f"| {sum(sum(r['missing'].values()) for r in runs)} "
            f"| {_seconds(statistics.median(p50s) if p50s else None)} | {_seconds(max(p95s) if p95s else None)} "
            f"| {statistics.mean(r['seconds'] for r in runs):.0f} |"
        )
    return "\n".join(lines)


def read(path: Path, since: str = "") -> list[dict[str, Any]]:
    """The outcome rows of `path` recorded at or after `since` (an ISO prefix; "" for all)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("at", "") >= since]


def main() -> None:
    """Print the table (the command line above)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=RESULTS)
    parser.add_argument("--since", default="", help="only rows recorded at or after this ISO time")
    args = parser.parse_args()
    print(table(read(args.file, args.since)))


if __name__ == "__main__":
    main()
