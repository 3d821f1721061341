"""Org metrics on PostgreSQL against a hand-computed fixture (rows inserted directly, exact times):
jobs awaiting approval, a best-effort failure inside a completed job, a timeout, a cancelled job,
an empty day, a DST change in the org's zone, another org's jobs; an org with no jobs. Then the
admin API (`GET /api/admin/metrics`, `POST /api/admin/smoke`) and `proactive metrics`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from tests.support.engine import TestOrg, make_org
from tests.support.metrics import Rows, at, berlin_org
from tests.support.workers import WorkerProcess
from webhooks import create_app
from worker.access.api_keys import create_key
from worker.config import reset_settings
from worker.db import transaction
from worker.metrics.report import org_metrics
from worker.metrics.rollup import roll_up
from worker.models import MetricsRollup, RejectedEvent, SlackOutbox, jobs

pytestmark = pytest.mark.postgres

outbox_table = SlackOutbox.__table__
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
# Berlin: summer time starts on Sunday 29 March 2026 (a 23-hour local day).
NOW = datetime(2026, 3, 31, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def env(pg) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADMIN_TOKEN", ADMIN_TOKEN)
        reset_settings()
        yield
    reset_settings()


LONG_ERROR = "crm rejected the update: " + "x" * 200


@pytest.fixture(scope="module")
def fixture(env) -> dict[str, Any]:
    """The org of the hand-computed numbers below, and another org whose rows must not count."""
    org = berlin_org()
    r = Rows(org)
    ids: dict[str, uuid.UUID] = {}
    # J1 completed in 10 s; a best-effort step failed inside it; its best-effort approval expired
    ids["j1"] = j1 = r.job("completed", at(25, 8), seconds=10)
    r.step(j1, "s_a", "succeeded", at(25, 8), duration_ms=2000)
    r.step(j1, "s_b", "failed", at(25, 8, 0, 3), duration_ms=500, error_class="permanent", error=LONG_ERROR)
    r.approval(j1, "expired", at(25, 8, 0, 4), approver=org.rep)
    r.message(j1, at(25, 8, 0, 2), "sent", at(25, 8, 0, 3))
    # J2 completed after an hour, 59.5 min of it awaiting approval: 30 s of work
    ids["j2"] = j2 = r.job("completed", at(26, 9), seconds=3600, paused_ms=3_570_000, source="webhook:gmail")
    r.step(j2, "s_a", "succeeded", at(26, 9), duration_ms=1000)
    r.approval(j2, "approved", at(26, 9, 0, 5), approver=org.rep, decided_s=60)
    r.message(j2, at(26, 9, 0, 5), "pending", None)
    # J3 failed after 20 s
    ids["j3"] = j3 = r.job("failed", at(27, 10), seconds=20, event_type="deal_risk_scan", source="cron")
    r.step(j3, "s_a", "failed", at(27, 10), duration_ms=4000, error_class="transient", error="crm unreachable")
    # J4 timed out after 15 min; 23:30 in Berlin on the 28th
    ids["j4"] = r.job(
        "timeout", at(28, 22, 30), seconds=900, event_type="deal_risk_scan", source="cron", error="job deadline passed"
    )
    # J5 cancelled (rejected after 2 min): the 29th in UTC, already the 30th in Berlin (summer time)
    ids["j5"] = j5 = r.job("cancelled", at(29, 22, 30), seconds=130)
    r.approval(j5, "rejected", at(29, 22, 30, 5), approver=org.rep, decided_s=120)
    # J6 awaiting approval (not stuck)
    ids["j6"] = j6 = r.job("awaiting_approval", at(31, 8))
    r.approval(j6, "pending", at(31, 8, 0, 10), approver=org.rep)
    r.message(j6, at(31, 8, 0, 10), "console", at(31, 8, 0, 11))
    # J7 awaiting an approval past its expiry (stuck), for the other rep
    ids["j7"] = j7 = r.job("awaiting_approval", at(25, 12))
    r.approval(j7, "pending", at(25, 12, 0, 5), approver=org.other_rep, expires_at=at(26, 12))
    # J8 running with no step progress since 09:00:01 (stuck); J9 running and moving
    ids["j8"] = j8 = r.job("running", at(31, 9))
    r.step(j8, "s_a", "running", at(31, 9), finished=False)
    ids["j9"] = j9 = r.job("running", at(31, 9, 50))
    r.step(j9, "s_a", "running", at(31, 9, 50), finished=False)
    # J10: 23:00 Berlin on the 24th, one hour before the 7-day window (counted in 30 days)
    ids["j10"] = j10 = r.job("completed", at(24, 22), seconds=1)
    r.message(j10, at(24, 22, 0, 1), "sent", at(24, 22, 0, 1))

    other = Rows(berlin_org())
    o1 = other.job("completed", at(30, 9), seconds=5)
    other.step(o1, "s_a", "failed", at(30, 9), duration_ms=9, error_class="transient", error="crm unreachable")
    other.message(o1, at(30, 9), "pending", None)
    other.job("running", at(20, 9))  # stuck, but not ours
    return {"org": org, "ids": ids, "other": other.org}


def metrics_of(org_id: uuid.UUID, days: int = 7) -> dict[str, Any]:
    with transaction() as conn:
        return org_metrics(conn, org_id, days, now=NOW)


def test_counts_rates_and_durations(fixture):
    m = metrics_of(fixture["org"].id)
    assert m["total_sequences"] == 9
    assert m["sequences_by_status"] == {
        "awaiting_approval": 2,
        "completed": 2,
        "running": 2,
        "cancelled": 1,
        "failed": 1,
        "timeout": 1,
    }
    assert m["sequences_by_source"] == {"api": 6, "cron": 2, "webhook:gmail": 1}
    assert m["sequences_by_type"] == {"meeting_ended": 7, "deal_risk_scan": 2}
    assert m["success_rate"] == 0.5  # 2 completed / (2 + 1 failed + 1 timeout); cancelled is not finished
    # finished durations 10 s, 30 s (approval wait excluded), 20 s, 900 s
    assert m["avg_duration_ms"] == 240_000
    assert m["p50_duration_ms"] == 25_000  # halfway between 20 s and 30 s
    assert m["p95_duration_ms"] == 769_500  # 30 000 + 0.85 * (900 000 - 30 000)


def test_daily_counts_are_local_days_zero_filled_across_the_dst_change(fixture):
    m = metrics_of(fixture["org"].id)
    assert m["window_start"] == "2026-03-24T23:00:00+00:00"  # 25 March, 00:00 in Berlin (winter time)
    assert m["daily_counts"] == [
        {"date": "2026-03-25", "total": 2, "completed": 1, "failed": 0},
        {"date": "2026-03-26", "total": 1, "completed": 1, "failed": 0},
        {"date": "2026-03-27", "total": 1, "completed": 0, "failed": 1},
        {"date": "2026-03-28", "total": 1, "completed": 0, "failed": 1},  # the timeout, 23:30 local
        {"date": "2026-03-29", "total": 0, "completed": 0, "failed": 0},  # the 23-hour day: empty
        {"date": "2026-03-30", "total": 1, "completed": 0, "failed": 0},  # J5: 29th in UTC
        {"date": "2026-03-31", "total": 3, "completed": 0, "failed": 0},
    ]
    assert sum(d["total"] for d in m["daily_counts"]) == m["total_sequences"]
    wider = metrics_of(fixture["org"].id, 30)
    assert len(wider["daily_counts"]) == 30 and wider["total_sequences"] == 10  # J10 joins
    assert wider["daily_counts"][-8] == {"date": "2026-03-24", "total": 1, "completed": 1, "failed": 0}


def test_stuck_jobs_are_quiet_running_jobs_and_approvals_past_expiry(fixture):
    ids = fixture["ids"]
    stuck = metrics_of(fixture["org"].id)["stuck_jobs"]
    assert [(s["job_id"], s["type"], s["since"]) for s in stuck] == [
        (str(ids["j7"]), "meeting_ended", "2026-03-26T12:00:00+00:00"),
        (str(ids["j8"]), "meeting_ended", "2026-03-31T09:00:01+00:00"),
    ]
    assert "pending past its expiry" in stuck[0]["why"]
    assert stuck[1]["why"] == "running, no step progress for 59 min"


def test_top_skills_and_error_summary(fixture):
    ids = fixture["ids"]
    m = metrics_of(fixture["org"].id)
    assert m["top_skills"] == [
        {"step": "approve", "runs": 5, "failed": 0, "failure_rate": 0.0, "p95_duration_ms": None},  # by name on a tie
        {"step": "s_a", "runs": 5, "failed": 1, "failure_rate": 0.2, "p95_duration_ms": 3800},
        {"step": "s_b", "runs": 1, "failed": 1, "failure_rate": 1.0, "p95_duration_ms": 500},
    ]
    assert m["error_summary"] == [
        {"error_class": "permanent", "message": LONG_ERROR[:100], "count": 1, "example_job_id": str(ids["j1"])},
        {"error_class": "timeout", "message": "job deadline passed", "count": 1, "example_job_id": str(ids["j4"])},
        {"error_class": "transient", "message": "crm unreachable", "count": 1, "example_job_id": str(ids["j3"])},
    ]


def test_hitl_and_slack(fixture):
    org = fixture["org"]
    m = metrics_of(org.id)
    hitl = m["hitl"]
    pending = hitl.pop("pending_by_rep")
    assert hitl == {
        "opened": 5,
        "decided": 2,
        "expired": 1,
        "pending": 2,
        "median_decision_ms": 90_000,
        "p90_decision_ms": 114_000,
    }
    assert pending == [
        {"user_id": str(org.other_rep), "name": "other_rep", "pending": 1, "oldest_age_ms": 511_195_000},
        {"user_id": str(org.rep), "name": "rep", "pending": 1, "oldest_age_ms": 7_190_000},
    ]
    assert m["slack"] == {
        "jobs_with_messages": 3,
        "first_message_queued_p50_ms": 5000,  # 2 s, 5 s, 10 s
        "first_message_queued_p95_ms": 9500,
        "first_message_sent_p50_ms": 7000,  # 3 s, 11 s
        "first_message_sent_p95_ms": 10_600,
        "outbox_pending": 1,
        "outbox_oldest_pending_age_ms": 435_595_000,  # J2's message, queued 26 March 09:00:05
    }


def test_another_orgs_rows_do_not_count_and_an_org_without_jobs_is_all_zeros(fixture):
    other = metrics_of(fixture["other"].id)
    assert other["total_sequences"] == 1 and other["stuck_jobs"][0]["since"].startswith("2026-03-20")
    empty = metrics_of(make_org().id)
    assert empty["total_sequences"] == 0 and empty["success_rate"] is None
    assert empty["avg_duration_ms"] is None and empty["p95_duration_ms"] is None
    assert empty["stuck_jobs"] == [] and empty["top_skills"] == [] and empty["error_summary"] == []
    assert [d["total"] for d in empty["daily_counts"]] == [0] * 7
    assert empty["hitl"]["opened"] == 0 and empty["hitl"]["median_decision_ms"] is None
    assert empty["slack"]["outbox_pending"] == 0 and empty["slack"]["outbox_oldest_pending_age_ms"] is None


def test_rolled_up_days_give_the_same_numbers_and_each_settled_job_is_folded_once(fixture):
    """The roll-up folds the settled jobs (final, finished 5 min ago, no message waiting) and the
    answer does not change: every field of the 7- and 30-day windows is the same before and after."""
    org, ids = fixture["org"], fixture["ids"]
    before = {days: metrics_of(org.id, days) for days in (7, 30)}
    assert roll_up(now=NOW) >= 5
    with transaction() as conn:
        rolled = {
            str(job_id)
            for (job_id,) in conn.execute(
                select(jobs.c.id).where(jobs.c.org_id == org.id, jobs.c.rolled_up_at.is_not(None))
            )
        }
        stored = conn.execute(
            select(func.count()).select_from(MetricsRollup).where(MetricsRollup.org_id == org.id)
        ).scalar_one()
    # J2's message is still pending; J6-J9 are not final
    assert rolled == {str(ids[j]) for j in ("j1", "j3", "j4", "j5", "j10")}
    assert stored > 0
    assert roll_up(now=NOW) == 0  # nothing folded twice
    after = {days: metrics_of(org.id, days) for days in (7, 30)}
    assert after == before


def test_a_job_is_folded_once_it_settles(fixture):
    """A job that finished a minute ago, and one whose message is still pending, wait; a later
    roll-up folds them once their time has come (the message sent) and the counts move by one."""
    org = make_org()
    r = Rows(org)
    recent = r.job("completed", NOW - timedelta(minutes=2), seconds=60)
    queued = r.job("completed", at(30, 9), seconds=5)
    r.message(queued, at(30, 9), "pending", None)
    roll_up(now=NOW)
    with transaction() as conn:
        unrolled = set(
            conn.execute(select(jobs.c.id).where(jobs.c.org_id == org.id, jobs.c.rolled_up_at.is_(None))).scalars()
        )
    assert unrolled == {recent, queued}
    first = metrics_of(org.id)
    with transaction() as conn:
        conn.execute(
            update(outbox_table).where(outbox_table.c.job_id == queued).values(status="sent", sent_at=at(30, 9, 0, 1))
        )
    roll_up(now=NOW + timedelta(minutes=10))
    later = metrics_of(org.id)
    with transaction() as conn:
        left = conn.execute(
            select(func.count()).where(jobs.c.org_id == org.id, jobs.c.rolled_up_at.is_(None))
        ).scalar_one()
    assert left == 0
    assert first["total_sequences"] == later["total_sequences"] == 2
    assert first["sequences_by_status"] == later["sequences_by_status"] == {"completed": 2}
    assert later["slack"]["first_message_sent_p50_ms"] == 1000 and first["slack"]["first_message_sent_p50_ms"] is None


# --------------------------------------------------------------------------- the admin API and the CLI


@pytest.fixture(scope="module")
def client(env) -> FlaskClient:
    return create_app().test_client()


@pytest.fixture(scope="module")
def recent(env) -> TestOrg:
    """An org with two jobs of the last hour (the API and the CLI measure up to the real now)."""
    org = berlin_org()
    r = Rows(org)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    r.job("completed", hour_ago, seconds=2)
    failed = r.job("failed", hour_ago, seconds=3, event_type="deal_risk_scan", source="cron")
    r.step(failed, "s_a", "failed", hour_ago, duration_ms=40, error_class="transient", error="crm unreachable")
    return org


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rejected_count() -> int:
    with transaction() as conn:
        return len(conn.execute(select(RejectedEvent.id)).all())


def test_admin_token_reads_any_org_and_an_org_key_only_its_own(client, recent, fixture):
    admin = client.get(f"/api/admin/metrics?org_id={recent.id}&range=30d", headers=bearer(ADMIN_TOKEN))
    assert admin.status_code == 200, admin.json
    assert admin.json["range_days"] == 30 and admin.json["total_sequences"] == 2 and admin.json["success_rate"] == 0.5
    key, _info = create_key(recent.id, "metrics", role="admin")
    own = client.get(f"/api/admin/metrics?org_id={recent.id}", headers=bearer(key))
    assert own.status_code == 200 and own.json["range_days"] == 7 and own.json["total_sequences"] == 2
    assert client.get("/api/admin/metrics", headers=bearer(key)).json["org_id"] == str(recent.id)  # its org by default
    before = rejected_count()
    theirs = client.get(f"/api/admin/metrics?org_id={fixture['org'].id}", headers=bearer(key))
    assert theirs.status_code == 404 and theirs.json["error"] == "not_found"
    assert rejected_count() == before + 1  # a refusal is recorded


@pytest.mark.parametrize(
    ("query", "token", "status", "code"),
    [
        ("org_id={org}&range=1y", ADMIN_TOKEN, 400, "bad_request"),
        ("range=30d", ADMIN_TOKEN, 400, "bad_request"),  # the admin names the org
        ("org_id=not-a-uuid", ADMIN_TOKEN, 404, "not_found"),
        (f"org_id={uuid.uuid4()}", ADMIN_TOKEN, 404, "not_found"),
        ("org_id={org}", None, 401, "unauthorized"),
        ("org_id={org}", "pk_unknown", 401, "unauthorized"),
    ],
    ids=["unknown-range", "admin-without-org", "malformed-org", "unknown-org", "no-token", "unknown-token"],
)
def test_refusals(client, recent, query, token, status, code):
    headers = {} if token is None else bearer(token)
    response = client.get(f"/api/admin/metrics?{query.format(org=recent.id)}", headers=headers)
    assert response.status_code == status and response.json["error"] == code
    assert "Traceback" not in response.get_data(as_text=True)
    if "range=1y" in query:
        assert response.json["accepted"] == ["7d", "30d", "90d"]
        assert "7d, 30d, 90d" in response.json["message"]


def test_openapi_documents_the_admin_endpoints(client):
    paths = client.get("/api/openapi.json").json["paths"]
    assert paths["/api/admin/metrics"]["get"]["parameters"][1]["schema"]["enum"] == ["7d", "30d", "90d"]
    assert "`ok` is false" in paths["/api/admin/smoke"]["post"]["description"]


def test_proactive_metrics_prints_a_table_and_json(recent):
    from worker.ops.cli import main, ms

    text = CliRunner().invoke(main, ["metrics", "--org", str(recent.id), "--range", "30d"])
    assert text.exit_code == 0, text.output
    assert "last 30 days (Europe/Berlin" in text.output and "jobs: 2" in text.output
    assert "success rate: 50.0 %" in text.output and "crm unreachable" in text.output
    shown = json.loads(
        CliRunner().invoke(main, ["metrics", "--org", str(recent.id), "--range", "30d", "--json"]).output
    )
    assert f"p50 duration: {ms(shown['p50_duration_ms'])}" in text.output  # the table shows what the JSON holds
    as_json = CliRunner().invoke(main, ["metrics", "--org", str(recent.id), "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.output)["total_sequences"] == 2
    bad = CliRunner().invoke(main, ["metrics", "--org", str(recent.id), "--range", "1y"])
    assert bad.exit_code == 2 and "1y" in bad.output


def test_proactive_metrics_rollup_folds_the_settled_jobs_with_progress_and_the_numbers_stay(recent):
    from worker.ops.cli import main

    def shown() -> dict[str, Any]:
        m = json.loads(
            CliRunner().invoke(main, ["metrics", "--org", str(recent.id), "--range", "30d", "--json"]).output
        )
        return {
            k: m[k] for k in ("total_sequences", "sequences_by_status", "top_skills", "error_summary", "daily_counts")
        }

    before = shown()
    run = CliRunner().invoke(main, ["metrics-rollup", "--batch", "100"])
    assert run.exit_code == 0, run.output
    assert "jobs not rolled up yet" in run.output and "jobs folded in" in run.output
    assert "folded (" in run.output  # a progress line per batch
    with transaction() as conn:
        waiting = conn.execute(
            select(func.count()).where(jobs.c.org_id == recent.id, jobs.c.rolled_up_at.is_(None))
        ).scalar_one()
    assert waiting == 0 and shown() == before
    again = CliRunner().invoke(main, ["metrics-rollup", "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["folded"] == 0
    bad = CliRunner().invoke(main, ["metrics-rollup", "--batch", "0"])
    assert bad.exit_code == 2 and "--batch" in bad.output


@pytest.fixture
def product_worker(pg, request) -> Iterator[WorkerProcess]:
    """A worker that runs the product's sequences only (the smoke test fires them)."""
    env = {**pg.env, "PROACTIVE_SEQUENCE_MODULES": "sequences"}
    worker = WorkerProcess(env, pg.log_dir, f"metrics-smoke-{uuid.uuid4().hex[:4]}", queues="steps,slow,edge").start()
    try:
        yield worker
    finally:
        worker.stop()


def test_smoke_endpoint_runs_the_smoke_test_and_answers_its_report(client, product_worker):
    org = make_org()
    forbidden = client.post("/api/admin/smoke", headers=bearer(create_key(org.id, "smoke")[0]))
    assert forbidden.status_code == 403
    bad = client.post("/api/admin/smoke", json={"timeout": 0}, headers=bearer(ADMIN_TOKEN))
    assert bad.status_code == 400 and "timeout" in bad.json["message"]
    unknown = client.post(
        "/api/admin/smoke", json={"org_id": str(org.id), "sequences": "nope"}, headers=bearer(ADMIN_TOKEN)
    )
    assert unknown.status_code == 422 and "nope" in unknown.json["message"]
    assert client.post("/api/admin/smoke", json={"org_id": "x"}, headers=bearer(ADMIN_TOKEN)).status_code == 404
    body = {"org_id": str(org.id), "sequences": ["coaching_weekly", "deal_risk_scan"], "timeout": 60}
    response = client.post("/api/admin/smoke", json=body, headers=bearer(ADMIN_TOKEN))
    assert response.status_code == 200, response.json
    report = response.json
    assert report["ok"] is True and report["org_id"] == str(org.id), report
    assert [r["event_type"] for r in report["results"]] == ["coaching_weekly", "deal_risk_scan"]
    assert all(r["outcome"] in ("passed", "paused", "skipped") for r in report["results"]), report
    assert report["summary"].endswith("0 failed")
