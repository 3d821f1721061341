"""Worker-side profiling hook for benchmarks: a CPU-time cProfile of each pool process.

With ``BENCH_CPROFILE_DIR`` set, every prefork pool process of a benchmark's worker profiles itself
from its start with ``time.process_time`` as the clock (so waits on PostgreSQL or Redis cost
nothing: unlike py-spy, which counts psycopg's waits as busy) and writes ``<dir>/<pid>.prof`` at most
every two seconds after a task, and so still after the benchmark's last task before the stop.
Without the variable this module does nothing. Read the files with ``python -m bench.child_profile
DIR`` (the processes' stats merged, top functions by own and by cumulative CPU).

Benchmarks list it in ``PROACTIVE_SEQUENCE_MODULES`` (bench.sequences ``--cprofile DIR``).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

from celery.signals import task_postrun, worker_process_init

DIR_ENV = "BENCH_CPROFILE_DIR"
DUMP_EVERY_S = 2.0


class _Profiling:
    """This pool process's profiler (None: not asked) and when it last wrote its stats."""

    profile: cProfile.Profile | None = None
    dumped = 0.0


@worker_process_init.connect(weak=False)
def _start(**_kwargs: object) -> None:
    """Start profiling this pool process (when the benchmark asked)."""
    if not os.environ.get(DIR_ENV):
        return
    _Profiling.profile, _Profiling.dumped = cProfile.Profile(time.process_time), time.monotonic()
    _Profiling.profile.enable()


@task_postrun.connect(weak=False)
def _dump(**_kwargs: object) -> None:
    """Write this process's stats so far (at most every DUMP_EVERY_S)."""
    profile = _Profiling.profile
    if profile is None or time.monotonic() - _Profiling.dumped < DUMP_EVERY_S:
        return
    profile.disable()
    profile.dump_stats(Path(os.environ[DIR_ENV]) / f"{os.getpid()}.prof")
    _Profiling.dumped = time.monotonic()
    profile.enable()


def main(argv: list[str]) -> int:
    """Print the merged stats of the files in a directory."""
    files = sorted(Path(argv[0]).glob("*.prof")) if argv else []
    if not files:
        print("usage: python -m bench.child_profile DIR (a directory of .prof files)", file=sys.stderr)
        return 2
    stats = pstats.Stats(str(files[0]))
    for f in files[1:]:
        stats.add(str(f))
    limit = int(argv[1]) if len(argv) > 1 else 40
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
