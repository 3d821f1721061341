"""`proactive fleet`: run the Procfile (web, worker, ticks, beat, flower) with honcho, with this
installation's programs first on PATH.

`honcho start` alone runs each Procfile line in a shell whose PATH is the caller's: from a shell that
has not activated the venv, `celery`, `gunicorn` and `proactive` are "not found". This command puts
the directory of the running interpreter (the venv's bin/) first on PATH, checks what the Procfile
needs before anything starts (one line for each problem), then replaces itself with honcho, so a
Ctrl-C or SIGTERM reaches honcho, which stops every process it started.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


# Where the fleet's processes write their Prometheus values unless PROMETHEUS_MULTIPROC_DIR is set
# (below the state directory): without one shared directory /metrics would count only the web process.
METRICS_SUBDIR = "prometheus"


@dataclass(frozen=True)
class FleetPlan:
    """What `proactive fleet` will exec: honcho's argv and the environment it runs with."""

    argv: list[str]
    env: dict[str, str]
    procfile: Path
    processes: list[str]

    @property
    def metrics_dir(self) -> Path:
        """The directory the processes share for Prometheus (emptied before they start)."""
        return Path(self.env["PROMETHEUS_MULTIPROC_DIR"])


class FleetError(Exception):
    """The fleet cannot start; the message says what to do (printed as one line)."""


def find_procfile(cwd: Path, explicit: str | None = None) -> Path:
    """The Procfile to run: the one given, else ./Procfile, else the one beside the installed code."""
    candidates = [Path(explicit)] if explicit else [cwd / "Procfile", REPO_ROOT / "Procfile"]
    for path in candidates:
        if path.is_file():
            return path.resolve()
    raise FleetError(f"no Procfile at {candidates[0]}: run from the project directory or pass --procfile")


def procfile_processes(text: str) -> list[str]:
    """Process names of a Procfile, in order (`name: command` lines; comments and blanks skipped)."""
    names = []
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*\S", line)
        if match and not line.lstrip().startswith("#"):
            names.append(match.group(1))
    return names


def plan_fleet(
    procfile: Path,
    processes: Sequence[str],
    env: Mapping[str, str],
    bin_dir: Path,
    *,
    state_dir: Path,
    concurrency: str | None = None,
    port: int | None = None,
) -> FleetPlan:
    """Check the Procfile's needs and build honcho's command line; raises FleetError with the fix.
    The processes share PROMETHEUS_MULTIPROC_DIR (default: `state_dir`/prometheus)."""
    honcho = shutil.which("honcho", path=str(bin_dir)) or shutil.which("honcho", path=env.get("PATH", ""))
    if honcho is None:
        raise FleetError(f"honcho is not installed: run {bin_dir / 'pip'} install -e '.[fleet]'")
    known = procfile_processes(procfile.read_text())
    unknown = [p for p in processes if p not in known]
    if unknown:
        raise FleetError(f"unknown process(es) {', '.join(unknown)}; the Procfile has: {', '.join(known)}")
    chosen = list(processes) or known
    if "flower" in chosen:
        if not env.get("FLOWER_BASIC_AUTH"):
            raise FleetError(
                "Flower needs FLOWER_BASIC_AUTH=user:password (it refuses to start without it); "
                "set it, or name the processes to run without flower: proactive fleet web worker ticks beat"
            )
        if shutil.which("celery", path=str(bin_dir)) and not _has_module(bin_dir, "flower"):
            raise FleetError(f"flower is not installed: run {bin_dir / 'pip'} install -e '.[fleet]'")
    run_env = dict(env)
    run_env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")]).rstrip(os.pathsep)
    run_env["PROMETHEUS_MULTIPROC_DIR"] = env.get("PROMETHEUS_MULTIPROC_DIR") or str(state_dir / METRICS_SUBDIR)
    argv = [honcho, "-f", str(procfile), "-d", str(procfile.parent), "start"]
    if port is not None:
        argv += ["-p", str(port)]
    if concurrency:
        argv += ["-c", concurrency]
    return FleetPlan(argv + list(processes), run_env, procfile, chosen)


def _has_module(bin_dir: Path, name: str) -> bool:
    """Whether the interpreter in `bin_dir` (this one, normally) can import `name`."""
    if Path(sys.executable).parent == bin_dir:
        import importlib.util

        return importlib.util.find_spec(name) is not None
    return True  # another interpreter: let the Procfile line say so


def exec_fleet(plan: FleetPlan) -> None:
    """Empty the shared Prometheus directory (values of a previous run would be counted again), then
    replace this process with honcho (signals then go straight to it)."""
    # the metrics module loads the database layer: only when the fleet starts, not with every `proactive` command
    from worker.metrics.prom import clear_multiprocess_dir

    clear_multiprocess_dir(plan.metrics_dir)
    os.execve(plan.argv[0], plan.argv, plan.env)
