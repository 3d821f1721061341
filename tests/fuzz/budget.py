"""How many cases each fuzzer runs: one budget for every fuzzer of the suite, in one place.

CI (the default run) gives the fuzzers about `CI_CASES` cases in all, `pytest --soak` about
`SOAK_CASES` (by hand). A fuzzer asks for its share of the CI budget (`fuzz_settings(ci=50)`);
under --soak every share is multiplied by the same factor. tests/fuzz/conftest.py sets the mode
from the `--soak` option before the fuzzers' modules are imported (their decorators read it).

Shares, CI / --soak: tests/fuzz/test_edge_fuzz.py, 5 properties x 50 = 250 / 5,000;
tests/fuzz/test_api_schema.py, 7 operations x 24 with valid credentials = 168 / 3,360, 7 x 6
without = 42 / 840, and 8 / 160 stateful scenarios of at most 5 calls = 40 / 800: 500 / 10,000.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CI_CASES = 500
SOAK_CASES = 10_000
SOAK_FACTOR = SOAK_CASES // CI_CASES

_mode = {"soak": False}


def set_soak(soak: bool) -> None:
    """Choose the long (`--soak`) or the CI budget for the fuzzers imported from now on."""
    _mode["soak"] = soak


def is_soak() -> bool:
    """True when the fuzzers run their --soak budget."""
    return _mode["soak"]


def cases(ci: int) -> int:
    """A fuzzer's number of cases: its CI share, times SOAK_FACTOR under --soak."""
    return ci * SOAK_FACTOR if is_soak() else ci


def fuzz_settings(ci: int) -> settings:
    """Hypothesis settings of a fuzzer with a CI share of `ci` cases: no deadline (a request on
    PostgreSQL takes what it takes), derandomized unless FUZZ_RANDOM=1 (CI reproduces a failure
    run to run), and no example database (nothing written under the working directory)."""
    return settings(
        max_examples=cases(ci),
        deadline=None,
        derandomize=os.environ.get("FUZZ_RANDOM") != "1",
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
