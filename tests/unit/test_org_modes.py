"""Which jobs run dry (worker/orgs.py): decided from the process setting, the source and the org's mode."""

from __future__ import annotations

import pytest

from worker.orgs import job_dry_run, org_dry_run


@pytest.mark.parametrize(
    ("settings", "dry"),
    [
        (None, False),
        ({}, False),
        ({"days_inactive": 7}, False),
        ({"dry_run": False}, False),
        ({"dry_run": "true"}, False),  # only a JSON true: a stray string must not silence an org
        ({"dry_run": 1}, False),
        ({"dry_run": True, "days_inactive": 7}, True),
    ],
)
def test_only_a_stored_true_puts_an_org_in_dry_run(settings, dry):
    assert org_dry_run(settings) is dry


def test_a_job_runs_dry_for_the_process_a_smoke_event_or_its_org():
    live = {"dry_run": False}
    assert job_dry_run(process_dry_run=False, source="api", org_settings=live) is False
    assert job_dry_run(process_dry_run=True, source="api", org_settings=live) is True
    assert job_dry_run(process_dry_run=False, source="smoke", org_settings=live) is True
    assert job_dry_run(process_dry_run=False, source="cron:morning", org_settings={"dry_run": True}) is True
