"""What a worker process loads at start: the modules `celery worker` imports (its task modules and the
sequences) bring in no Google client library (google-auth, httplib2, googleapiclient: about 16 MiB
per process) and no httpx; a step or a mailbox sync that talks to Google or a model loads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("google", "googleapiclient", "httplib2", "google_auth_httplib2", "httpx")
PROBE = """
import importlib, json, sys
from worker.celery_app import celery_app
for name in celery_app.conf.imports:
    importlib.import_module(name)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def _loaded_at_worker_start() -> set[str]:
    """Top-level packages in sys.modules once a fresh interpreter imported what the worker imports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROACTIVE_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_worker_starts_without_the_google_and_http_client_libraries() -> None:
    loaded = _loaded_at_worker_start()
    assert "worker" in loaded and "sequences" in loaded  # the probe did import the worker's modules
    assert sorted(loaded.intersection(HEAVY)) == []
