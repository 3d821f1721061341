"""The retention setting and what is due (pure): valid days, an unreadable setting falls back to the
default (never purging more than it would), each org's cutoff, the 30-day log cutoff."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from worker.ops.retention import LOG_KEEP_DAYS, WHAT, OrgDue, PurgeReport, log_cutoff, org_plan
from worker.orgs import RETENTION_DEFAULT_DAYS, check_retention_days, org_retention_days

NOW = datetime(2026, 6, 1, 3, 41, tzinfo=UTC)


@pytest.mark.parametrize("days", [7, 30, 90, 3650])
def test_valid_days(days):
    assert check_retention_days(days) == days


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (6, "from 7 to 3650 days, not 6"),
        (3651, "from 7 to 3650 days, not 3651"),
        (0, "not 0"),
        (-30, "not -30"),
        ("90", "whole number of days from 7 to 3650, not '90'"),
        (90.0, "not 90.0"),
        (True, "not True"),
        (None, "not None"),
    ],
)
def test_invalid_days_say_what_is_wrong(value, message):
    with pytest.raises(ValueError, match="retention_days must be") as err:
        check_retention_days(value)
    assert message in str(err.value)


def test_the_setting_read_from_org_settings():
    assert org_retention_days(None) == (90, None)
    assert org_retention_days({}) == (90, None)
    assert org_retention_days({"retention_days": None}) == (90, None)
    assert org_retention_days({"retention_days": 30, "dry_run": True}) == (30, None)
    days, problem = org_retention_days({"retention_days": 1})
    assert days == RETENTION_DEFAULT_DAYS and problem is not None and "not 1; using 90" in problem
    assert org_retention_days({"retention_days": "forever"})[0] == 90


def test_each_org_gets_its_cutoff():
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    plan = org_plan([(a, "A", {}), (b, "B", {"retention_days": 7}), (c, "C", {"retention_days": "x"})], NOW)
    assert plan[0] == OrgDue(a, "A", 90, NOW - timedelta(days=90))
    assert plan[1] == OrgDue(b, "B", 7, datetime(2026, 5, 25, 3, 41, tzinfo=UTC))
    assert plan[2].days == 90 and plan[2].cutoff == NOW - timedelta(days=90) and plan[2].problem
    assert plan[1].as_dict()["cutoff"] == "2026-05-25T03:41:00+00:00"


def test_log_rows_are_kept_30_days():
    assert LOG_KEEP_DAYS == 30 and log_cutoff(NOW) == datetime(2026, 5, 2, 3, 41, tzinfo=UTC)


def test_a_report_adds_batches_per_table():
    report = PurgeReport(dry_run=False, orgs=[])
    assert set(report.rows) == set(WHAT) and report.total == 0
    report.add({"emails": 2, "meetings": 1})
    report.add({"emails": 3})
    assert report.rows["emails"] == 5 and report.total == 6
    assert report.as_dict()["rows"]["emails"] == 5
