"""The quantile sketch behind rolled-up percentiles (worker/metrics/sketch.py): exact where each
bucket holds one distinct value, within 1% of the exact percentile otherwise, and merging two
sketches is the same as sketching both lists."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.metrics import maths as mm
from worker.metrics.sketch import RELATIVE_ERROR, Sketch, bucket_of

durations = st.lists(st.integers(min_value=0, max_value=7 * 86_400_000), min_size=1, max_size=300)
quantiles = st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0])


def test_distinct_spread_values_give_percentile_cont_exactly():
    values = [10_000, 30_000, 20_000, 900_000]
    sketch = Sketch.of(values)
    assert sketch.quantile(0.5) == mm.percentile(values, 0.5) == 25_000
    assert sketch.quantile(0.95) == pytest.approx(769_500)


def test_empty_and_bad_quantiles():
    assert Sketch().quantile(0.5) is None
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        Sketch.of([1]).quantile(1.5)


def test_zero_and_sub_millisecond_values_share_the_zero_bucket():
    assert bucket_of(0) == bucket_of(0.4) == 0
    assert bucket_of(1) == 1 and bucket_of(2) > 1
    assert Sketch.of([0, 0, 0]).quantile(0.5) == 0


@given(durations, quantiles)
def test_any_quantile_is_within_the_relative_error(values, q):
    exact = mm.percentile(values, q)
    found = Sketch.of(values).quantile(q)
    assert found == pytest.approx(exact, rel=RELATIVE_ERROR, abs=1)


@given(durations, durations, quantiles)
def test_merged_sketches_equal_the_sketch_of_both_lists_through_their_stored_form(a, b, q):
    merged = Sketch.of(a)
    merged.merge(json.loads(json.dumps(Sketch.of(b).to_json())))  # as stored in metrics_rollups
    both = Sketch.of(a + b)
    assert merged.count == both.count == len(a) + len(b)
    assert merged.quantile(q) == pytest.approx(both.quantile(q))
    assert Sketch.from_json(both.to_json()).quantile(q) == pytest.approx(both.quantile(q))
