"""The test session itself: it cleans up after itself (a pytest subprocess on one small unit module)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _session(tmp: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PROACTIVE_KEEP_TEST_HOME"}
    env.update(TMPDIR=str(tmp), **extra)  # tempfile.mkdtemp puts the session's home under TMPDIR
    return subprocess.run(
        # -n 0: one process (the suite's addopts start three xdist workers, ~9 s more per session here)
        [sys.executable, "-m", "pytest", "tests/unit/test_states.py", "-q", "-p", "no:cacheprovider", "-n", "0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_session_removes_its_home_unless_asked_to_keep_it(tmp_path: Path):
    gone = tmp_path / "gone"
    gone.mkdir()
    done = _session(gone)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(gone.glob("proactive-tests-*")) == []

    kept = tmp_path / "kept"
    kept.mkdir()
    done = _session(kept, PROACTIVE_KEEP_TEST_HOME="1")
    assert done.returncode == 0, done.stdout + done.stderr
    homes = list(kept.glob("proactive-tests-*"))
    assert len(homes) == 1 and str(homes[0]) in done.stdout
