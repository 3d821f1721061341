"""`proactive fleet`'s checks and honcho command line (worker/ops/fleet.py), without starting anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker.ops.fleet import REPO_ROOT, FleetError, find_procfile, plan_fleet, procfile_processes

PROCFILE = "web: gunicorn app\n# a comment\n\nworker: celery worker\nflower: celery flower --basic-auth=$X\n"


@pytest.fixture
def procfile(tmp_path: Path) -> Path:
    path = tmp_path / "Procfile"
    path.write_text(PROCFILE)
    return path


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A bin/ with an executable `honcho` (the plan only looks it up)."""
    d = tmp_path / "bin"
    d.mkdir()
    honcho = d / "honcho"
    honcho.write_text("#!/bin/sh\n")
    honcho.chmod(0o755)
    return d


def test_the_project_procfile_names_the_five_processes():
    assert procfile_processes((REPO_ROOT / "Procfile").read_text()) == ["web", "worker", "ticks", "beat", "flower"]
    assert procfile_processes(PROCFILE) == ["web", "worker", "flower"]


def test_the_procfile_is_taken_from_the_working_directory_first(procfile: Path, tmp_path: Path):
    assert find_procfile(tmp_path) == procfile.resolve()
    assert find_procfile(tmp_path / "elsewhere") == (REPO_ROOT / "Procfile").resolve()
    with pytest.raises(FleetError, match="no Procfile at /nope/Procfile"):
        find_procfile(tmp_path, "/nope/Procfile")


def test_the_venv_comes_first_on_path_and_processes_pass_through(procfile: Path, bin_dir: Path):
    plan = plan_fleet(
        procfile,
        ["web", "worker"],
        {"PATH": "/usr/bin"},
        bin_dir,
        state_dir=bin_dir.parent,
        concurrency="worker=3",
        port=5100,
    )
    assert plan.env["PATH"] == f"{bin_dir}{os.pathsep}/usr/bin"
    assert plan.argv == [
        str(bin_dir / "honcho"),
        "-f",
        str(procfile),
        "-d",
        str(procfile.parent),
        "start",
        "-p",
        "5100",
        "-c",
        "worker=3",
        "web",
        "worker",
    ]
    assert plan.processes == ["web", "worker"]
    assert plan.metrics_dir == bin_dir.parent / "prometheus"  # shared by web and workers


def test_an_operators_prometheus_directory_is_kept(procfile: Path, bin_dir: Path, tmp_path: Path):
    env = {"PATH": "", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    plan = plan_fleet(procfile, ["web"], env, bin_dir, state_dir=tmp_path / "state")
    assert plan.metrics_dir == tmp_path / "prom"


def test_flower_without_basic_auth_is_refused_with_the_fix(procfile: Path, bin_dir: Path):
    with pytest.raises(FleetError, match="FLOWER_BASIC_AUTH=user:password"):
        plan_fleet(procfile, [], {"PATH": ""}, bin_dir, state_dir=bin_dir)
    plan = plan_fleet(procfile, [], {"PATH": "", "FLOWER_BASIC_AUTH": "ops:pw"}, bin_dir, state_dir=bin_dir)
    assert plan.processes == ["web", "worker", "flower"]


def test_an_unknown_process_or_a_missing_honcho_says_what_to_do(procfile: Path, bin_dir: Path, tmp_path: Path):
    with pytest.raises(FleetError, match="unknown process\\(es\\) wrker; the Procfile has: web, worker, flower"):
        plan_fleet(procfile, ["wrker"], {"PATH": ""}, bin_dir, state_dir=bin_dir)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    with pytest.raises(FleetError, match=r"honcho is not installed: run .*pip install -e '\.\[fleet\]'"):
        plan_fleet(procfile, ["web"], {"PATH": str(empty)}, empty, state_dir=empty)
