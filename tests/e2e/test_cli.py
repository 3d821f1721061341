"""The `proactive` CLI as an operator uses it: subprocesses on the embedded default (SQLite database
+ SQLite broker in a fresh directory), a real worker started with `proactive worker`."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
PROACTIVE = [sys.executable, "-m", "worker.ops.cli"]


@dataclass
class Home:
    path: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PROACTIVE, *args], cwd=self.path, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def rejected_count(self) -> int:
        with sqlite3.connect(self.path / ".proactive" / "proactive.db") as conn:
            return conn.execute("select count(*) from rejected_events").fetchone()[0]

    def sql(self, query: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.path / ".proactive" / "proactive.db") as conn:
            return conn.execute(query, params).fetchall()


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "BROKER_URL", "PROACTIVE_HOME"))}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def test_demo_runs_end_to_end_in_a_fresh_directory(tmp_path: Path):
    env = _clean_env(PROACTIVE_SEQUENCE_MODULES="sequences")
    done = subprocess.run([*PROACTIVE, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for event_type in (
        "meeting_ended",
        "pre_meeting_90min",
        "email_received",
        "proposal_generation",
        "calendar_find_times",
        "stale_deal_revival",
        "campaign_daily_check",
        "coaching_weekly",
        "deal_risk_scan",
    ):
        assert f"fired {event_type}" in out
    assert "chose “More options”" in out and "chose “Send invite”" in out and "chose “Cancel”" in out
    assert "Debrief: Discovery call" in out and "— owner: Alice" in out  # every message of the run, debrief too
    assert "source chain" in out  # the meeting's promises became follow-up jobs
    assert "Inbox (what Slack would show" in out
    assert "success rate 100%" in out and "unexpected end states" not in out
    assert "failed" not in out.split("numbers:")[1]
    assert (tmp_path / ".proactive" / "proactive.db").exists() and (tmp_path / ".proactive" / "broker.db").exists()
    again = subprocess.run([*PROACTIVE, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already seeded" in again.stdout


def test_smoke_runs_all_nine_sequences_on_the_embedded_default(tmp_path: Path):
    env = _clean_env(PROACTIVE_SEQUENCE_MODULES="sequences")
    seeded = subprocess.run(
        [*PROACTIVE, "seed", "--demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert seeded.returncode == 0, seeded.stderr
    done = subprocess.run(
        [*PROACTIVE, "smoke", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    outcomes = {r["event_type"]: (r["outcome"], r["detail"]) for r in report["results"]}
    assert len(outcomes) == 9
    assert outcomes["deal_risk_scan"][0] == "passed" and outcomes["campaign_daily_check"][0] == "passed"
    assert outcomes["calendar_find_times"] == ("paused", "calendar_slots")
    assert outcomes["proposal_generation"] == ("paused", "proposal_review")
    assert report["summary"].endswith("0 skipped, 0 failed")
    for r in report["results"]:
        assert 0 < r["steps_completed"] <= r["steps_total"]
    only = subprocess.run(
        [*PROACTIVE, "smoke", "--sequences", "deal_risk_scan,coaching_weekly"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert only.returncode == 0 and only.stdout.strip().endswith("2 passed, 0 paused, 0 skipped, 0 failed")
    bad = subprocess.run(
        [*PROACTIVE, "smoke", "--sequences", "nope"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "unknown sequence(s): nope" in bad.stderr


def test_fire_wait_without_a_worker_says_so_and_a_later_smoke_keeps_the_leftover_apart(tmp_path: Path):
    h = Home(tmp_path, _clean_env(PROACTIVE_SEQUENCE_MODULES="sequences"))
    assert h.run("seed", "--demo").returncode == 0
    ghost = {"meeting_id": str(uuid.uuid4())}  # fails at its first step once a worker runs it
    fired = h.run("fire", "meeting_ended", "--user", "alice@northwind.example", "--payload", json.dumps(ghost))
    assert fired.returncode == 0 and "queued" in fired.stdout  # no --wait: queued is the answer
    waited = h.run("fire", "deal_risk_scan", "--wait", "1")
    left = fired.stdout.split()[1]
    assert waited.returncode == 1, waited.stdout + waited.stderr
    waited_id = waited.stdout.split()[1]
    assert waited.stderr.strip() == (
        f"error: no worker picked up job {waited_id} within 1 s — is a worker running? "
        "start one with `proactive worker`"
    )

    smoke = h.run("smoke", "--sequences", "coaching_weekly", "--json")  # its in-process worker drains the queue
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    report = json.loads(smoke.stdout)
    assert [r["event_type"] for r in report["results"]] == ["coaching_weekly"]
    leftovers = {j["job_id"]: j["status"] for j in report["leftovers"]}
    assert set(leftovers) == {left, waited_id} and leftovers[left] == "failed"  # its first step fails
    assert "meeting" not in smoke.stderr and "ERROR" not in smoke.stderr  # the leftover's failure is not ours

    another = {"meeting_id": str(uuid.uuid4())}  # the same meeting would be the same job (its idempotency key)
    again = h.run("fire", "meeting_ended", "--user", "alice@northwind.example", "--payload", json.dumps(another))
    text = h.run("smoke", "--sequences", "coaching_weekly")
    assert text.returncode == 0 and "ERROR" not in text.stderr
    again_id = again.stdout.split()[1]
    also = next(line for line in text.stdout.splitlines() if line.startswith("also ran "))
    assert f"{again_id} meeting_ended failed" in also
    # on a loaded machine an earlier job's message may still be in the queue (a re-publish of a step
    # that was slow to start, delivered at least once): this smoke's worker takes it and names that job
    # too. What matters: only jobs fired before it, never one of its own.
    named = set(re.findall(r"[0-9a-f]{8}-[0-9a-f-]{27}", also))
    assert again_id in named and named <= {again_id, waited_id, left}, also
    assert text.stdout.strip().endswith("1 passed, 0 paused, 0 skipped, 0 failed")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """A seeded embedded home with `proactive worker` running on it."""
    path = tmp_path_factory.mktemp("cli-home")
    h = Home(path, _clean_env(PROACTIVE_SEQUENCE_MODULES="sequences,tests.support.sequences"))
    seeded = h.run("seed", "--demo")
    assert seeded.returncode == 0, seeded.stderr
    log = open(path / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [*PROACTIVE, "worker", "-c", "2"],
        cwd=path,
        env=h.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: "ready." in (path / "worker.log").read_text(errors="replace") or proc.poll() is not None,
            timeout_s=30,
            what="proactive worker ready",
        )
        assert proc.poll() is None, (path / "worker.log").read_text()
        yield h
    finally:
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_fire_wait_then_timeline_and_jobs(home: Home):
    done = home.run("fire", "deal_risk_scan", "--key", f"cli-{uuid.uuid4().hex}", "--wait", "30", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "completed" and result["duplicate"] is False
    timeline = home.run("job", result["job_id"])
    assert timeline.returncode == 0
    for step in ("scan-active-deals", "score-deal-risks", "generate-risk-alerts", "deliver-risk-slack"):
        assert step in timeline.stdout
    listed = home.run("jobs", "--status", "completed", "--json")
    assert result["job_id"] in {j["id"] for j in json.loads(listed.stdout)}
    inbox = home.run("inbox")
    assert inbox.returncode == 0 and "deal risk alert" in inbox.stdout
    messages = json.loads(home.run("inbox", "--json", "--limit", "50").stdout)
    mine = [m for m in messages if m["job_id"] == result["job_id"]]
    assert mine and mine[0]["kind"] == "deal_risk_alerts" and mine[0]["text"] and mine[0]["created_at"]


def test_pause_approve_and_the_decision_rules(home: Home):
    alice, bruno, maya = "alice@northwind.example", "bruno@northwind.example", "maya@northwind.example"
    fired = home.run("fire", "calendar_find_times", "--user", alice, "--wait", "30", "--json")
    job = json.loads(fired.stdout)
    assert job["status"] == "awaiting_approval", fired.stdout + fired.stderr
    assert fired.returncode == 0  # a pause for a person is a legitimate end of a wait
    approval_id = home.sql("select id from approvals where job_id = ?", uuid.UUID(job["job_id"]).hex)[0][0]
    approval_id = str(uuid.UUID(approval_id))

    refused = home.rejected_count()
    bogus = home.run("approve", approval_id, "--as", alice, "--decision", "bogus")
    assert bogus.returncode == 2
    assert home.rejected_count() == refused + 1  # bad input is recorded, not only refused
    assert "'bogus' is not a decision of a calendar_slots approval; one of: send_invite, send_times" in bogus.stderr
    assert "more" in bogus.stderr and "reject --decision handle|reject" in bogus.stderr
    not_a_stop = home.run("reject", approval_id, "--as", alice, "--decision", "send_invite")
    assert not_a_stop.returncode == 2 and "one of: handle, reject" in not_a_stop.stderr
    before = home.rejected_count()

    nope = home.run("approve", approval_id, "--as", bruno)  # a rep who is neither approver nor admin
    assert nope.returncode == 2 and "may not decide this approval" in nope.stderr
    assert home.rejected_count() == before + 1

    ok = home.run("approve", approval_id, "--as", alice, "--data", '{"slot": "tomorrow 10:00"}')
    assert ok.returncode == 0, ok.stderr
    late = home.run("reject", approval_id, "--as", maya)
    assert late.returncode == 1 and "already approved by Alice Moreau" in late.stderr  # a refusal, not bad usage

    wait_for(
        lambda: home.run("job", job["job_id"], "--json").stdout.count('"status": "completed"') >= 1,
        timeout_s=30,
        what="job completed after approval",
    )
    detail = json.loads(home.run("job", job["job_id"], "--json").stdout)
    assert detail["status"] == "completed"
    act = next(s for s in detail["steps"] if s["step"] == "act")
    assert act["output"]["saw_data"] == {"slot": "tomorrow 10:00"}
    assert detail["approvals"][0]["decided_by"] == "Alice Moreau"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fire", "no_such_type"], "invalid event: type"),
        (["fire", "stale_deal_revival"], "user_id is required for stale_deal_revival"),
        (["fire", "deal_risk_scan", "--payload", '{"deal_ids": "x"}'], "payload.deal_ids"),
        (
            ["fire", "deal_risk_scan", "--payload", '{"colour": "red"}'],
            "payload.colour: Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_events_exit_2_and_are_recorded(home: Home, args: list[str], message: str):
    before = home.rejected_count()
    done = home.run(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert home.rejected_count() == before + 1
    newest = json.loads(home.run("rejected", "--json", "--limit", "1").stdout)
    assert len(newest) == 1 and message in newest[0]["reason"] and newest[0]["source"] == "cli"


def test_unknown_things_exit_2_with_what_to_do(home: Home):
    missing = str(uuid.uuid4())
    assert "unknown org" in home.run("fire", "deal_risk_scan", "--org", missing).stderr
    no_approval = home.run("approve", missing, "--as", "alice@northwind.example")
    assert no_approval.returncode == 2 and f"approval {missing} not found" in no_approval.stderr
    bad_json = home.run("fire", "deal_risk_scan", "--payload", "{nope")
    assert bad_json.returncode == 2 and "--payload is not valid JSON" in bad_json.stderr
    no_job = home.run("job", missing)
    assert no_job.returncode == 2 and f"job {missing} not found" in no_job.stderr


def test_decision_on_an_expired_approval_is_refused_and_recorded(home: Home):
    fired = home.run("fire", "calendar_find_times", "--user", "alice@northwind.example", "--wait", "30", "--json")
    job_hex = uuid.UUID(json.loads(fired.stdout)["job_id"]).hex
    approval_id = str(uuid.UUID(home.sql("select id from approvals where job_id = ?", job_hex)[0][0]))
    home.sql("update approvals set expires_at = '2020-01-01 00:00:00.000000' where id = ?", uuid.UUID(approval_id).hex)
    before = home.rejected_count()
    done = home.run("approve", approval_id, "--as", "alice@northwind.example")
    assert done.returncode == 2 and "this approval expired at 2020-01-01" in done.stderr
    assert home.rejected_count() == before + 1
    assert home.sql("select status from approvals where id = ?", uuid.UUID(approval_id).hex) == [("pending",)]
