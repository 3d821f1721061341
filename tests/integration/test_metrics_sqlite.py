"""Org metrics on the embedded default (SQLite): the same queries give the same numbers, ids in
their canonical form and approvers by name (SQLite keeps UUIDs as 32 hex digits), before and after
the roll-up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.metrics import Rows, at, berlin_org
from worker.db import transaction
from worker.metrics.report import org_metrics
from worker.metrics.rollup import roll_up

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True, scope="module")

NOW = datetime(2026, 3, 31, 10, 0, tzinfo=UTC)


def test_metrics_on_sqlite(backend):
    org = berlin_org()
    r = Rows(org)
    done = r.job("completed", at(29, 22, 30), seconds=10)  # the 30th in Berlin (summer time)
    r.step(done, "s_a", "failed", at(29, 22, 30), duration_ms=100, error_class="transient", error="crm unreachable")
    waiting = r.job("awaiting_approval", at(31, 8))
    r.approval(waiting, "pending", at(31, 8), approver=org.other_rep)
    r.message(waiting, at(31, 8, 0, 4), "pending", None)
    other = Rows(berlin_org())
    other.job("failed", at(30, 9), seconds=1)

    with transaction() as conn:
        m = org_metrics(conn, org.id, 7, now=NOW)
    assert m["total_sequences"] == 2 and m["success_rate"] == 1.0 and m["avg_duration_ms"] == 10_000
    assert [d["total"] for d in m["daily_counts"]] == [0, 0, 0, 0, 0, 1, 1]
    assert m["error_summary"] == [
        {"error_class": "transient", "message": "crm unreachable", "count": 1, "example_job_id": str(done)}
    ]
    assert m["top_skills"][0] == {
        "step": "approve",
        "runs": 1,
        "failed": 0,
        "failure_rate": 0.0,
        "p95_duration_ms": None,
    }
    assert m["top_skills"][1] == {"step": "s_a", "runs": 1, "failed": 1, "failure_rate": 1.0, "p95_duration_ms": 100}
    assert m["p95_duration_ms"] == 10_000
    pending = m["hitl"]["pending_by_rep"]
    assert pending == [{"user_id": str(org.other_rep), "name": "other_rep", "pending": 1, "oldest_age_ms": 7_200_000}]
    assert m["slack"]["jobs_with_messages"] == 1 and m["slack"]["first_message_queued_p50_ms"] == 4000
    assert m["slack"]["outbox_pending"] == 1
    assert roll_up(now=NOW) >= 2  # the two final jobs (the waiting one stays live)
    with transaction() as conn:
        assert org_metrics(conn, org.id, 7, now=NOW) == m
