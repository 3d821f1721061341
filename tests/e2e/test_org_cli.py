"""`proactive org` on the embedded default, as an operator uses it: a seeded demo org starts in dry-run,
`org live` turns it live (audited) and a later `seed --demo` keeps that; bad input exits 2."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.test_cli import Home, _clean_env

pytestmark = pytest.mark.slow


def test_a_seeded_demo_org_is_dry_run_until_an_admin_turns_it_live(tmp_path: Path):
    h = Home(tmp_path, _clean_env(PROACTIVE_SEQUENCE_MODULES="sequences"))
    assert h.run("seed", "--demo").returncode == 0
    shown = h.run("org", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    mode = json.loads(shown.stdout)
    assert mode["dry_run"] is True and mode["name"] == "Northwind Demo"
    assert "dry-run" in h.run("org", "show").stdout

    live = h.run("org", "live", "--org", mode["org_id"])
    assert live.returncode == 0, live.stderr
    assert "live" in live.stdout and "keep the mode they started in" in live.stdout
    assert h.run("seed", "--demo").returncode == 0  # reseeding keeps the admin's choice
    assert json.loads(h.run("org", "show", "--json").stdout)["dry_run"] is False
    with sqlite3.connect(tmp_path / ".proactive" / "proactive.db") as conn:
        actions = [r[0] for r in conn.execute("select action from audit_log where target_type = 'org'")]
    assert actions == ["org.dry_run_off"]

    fired = h.run("fire", "deal_risk_scan", "--org", mode["org_id"], "--json")
    assert fired.returncode == 0, fired.stderr
    job = json.loads(h.run("job", json.loads(fired.stdout)["job_id"], "--json").stdout)
    assert job["dry_run"] is False  # a live org's job

    assert h.run("org", "dry-run").returncode == 0
    fired = h.run("fire", "deal_risk_scan", "--key", "again", "--json")
    job = json.loads(h.run("job", json.loads(fired.stdout)["job_id"], "--json").stdout)
    assert job["dry_run"] is True
    assert "[dry-run]" in h.run("jobs", "--limit", "1").stdout

    unknown = h.run("org", "show", "--org", "Nobody Inc")
    assert unknown.returncode == 2 and "unknown org 'Nobody Inc'" in unknown.stderr
