"""A mergeable quantile sketch for the org metrics' percentiles (pure, no I/O).

Rolled-up days (worker/metrics/rollup.py) cannot keep every duration, yet a 90-day p95 must come
from all of them: each day keeps a sketch, and sketches add up. Values go into logarithmic buckets
whose bounds grow by `GAMMA` (the buckets of DDSketch), so any value is within `RELATIVE_ERROR` of
its bucket; each bucket also keeps the sum of its values, and a bucket stands for their mean. So a
percentile is within 1% of the exact one, and exact when each bucket involved holds one distinct
value (what hand-computed fixtures have). Quantiles interpolate between the closest ranks, as
PostgreSQL's `percentile_cont` does.

Stored as JSON: `{"<bucket>": [count, sum], ...}`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

# Every bucket's values are within this fraction of the bucket's mean.
RELATIVE_ERROR = 0.01
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(GAMMA)


def bucket_of(value: float) -> int:
    """The bucket of a value: 0 for values below 1 (durations of 0 ms), else 1 + ceil(log_gamma(value))."""
    if value < 1:
        return 0
    return 1 + math.ceil(math.log(value) / _LOG_GAMMA - 1e-9)


class Sketch:
    """Counts and sums of values per logarithmic bucket; `add`, `merge`, `quantile`."""

    __slots__ = ("buckets",)

    def __init__(self, buckets: dict[int, list[float]] | None = None) -> None:
        self.buckets: dict[int, list[float]] = buckets if buckets is not None else {}

    @classmethod
    def of(cls, values: Iterable[float]) -> Sketch:
        """A sketch holding `values`."""
        sketch = cls()
        for value in values:
            sketch.add(value)
        return sketch

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Sketch:
        """A sketch from its stored form (None: empty)."""
        return cls({int(key): [count, total] for key, (count, total) in (data or {}).items()})

    def to_json(self) -> dict[str, list[float]]:
        """The stored form: bucket (as text) -> [count, sum]."""
        return {str(key): [count, total] for key, (count, total) in sorted(self.buckets.items())}

    @property
    def count(self) -> int:
        return int(sum(count for count, _total in self.buckets.values()))

    def add(self, value: float) -> None:
        """Count one value (negative values count as 0)."""
        value = max(0.0, float(value))
        entry = self.buckets.setdefault(bucket_of(value), [0, 0.0])
        entry[0] += 1
        entry[1] += value

    def merge(self, other: Sketch | Mapping[str, Any] | None) -> None:
        """Add another sketch (or its stored form) into this one."""
        if other is None:
            return
        if isinstance(other, Sketch):
            items: Iterable[tuple[Any, Any]] = other.buckets.items()
        else:
            items = other.items()
        buckets = self.buckets
        for key, (count, total) in items:
            entry = buckets.get(int(key))
            if entry is None:
                buckets[int(key)] = [count, total]
            else:
                entry[0] += count
                entry[1] += total

    def quantile(self, q: float) -> float | None:
        """The `q`-th quantile (0 <= q <= 1), interpolated between the closest ranks; None when empty."""
        if not 0 <= q <= 1:
            raise ValueError(f"q must be within 0..1 (got {q})")
        n = self.count
        if n == 0:
            return None
        position = q * (n - 1)
        low = math.floor(position)
        high = min(low + 1, n - 1)
        low_value = high_value = None
        seen = 0
        for key in sorted(self.buckets):
            count, total = self.buckets[key]
            if count <= 0:
                continue
            seen += int(count)
            if low_value is None and low < seen:
                low_value = total / count
            if high < seen:
                high_value = total / count
                break
        assert low_value is not None and high_value is not None
        return low_value + (high_value - low_value) * (position - low)
