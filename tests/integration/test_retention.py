"""Retention on PostgreSQL and SQLite (rows inserted directly with old timestamps): two orgs with
different retention lose exactly the content past theirs and keep the rows, their metadata and
`purged_at`; live jobs keep everything; log rows go after 30 days (a message whose job is not folded
into the metrics yet stays); a dry run changes nothing and counts what the purge then does; batches
are bounded; the metrics read the same before and after; the Beat entry; `proactive purge` and
`proactive org retention`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.schedules import crontab
from click.testing import CliRunner
from sqlalchemy import Table, insert, select

from tests.support.engine import TestOrg, make_org
from tests.support.metrics import Rows, at
from worker.celery_app import celery_app
from worker.config import reset_settings
from worker.db import transaction
from worker.metrics.report import org_metrics
from worker.metrics.rollup import roll_up
from worker.models import (
    AuditLog,
    Campaign,
    CampaignReply,
    CronRun,
    Effect,
    Email,
    GmailPush,
    Meeting,
    Org,
    Proposal,
    RejectedEvent,
    SlackOutbox,
    approvals,
    jobs,
    steps,
)
from worker.ops.cli import main
from worker.ops.retention import purge

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OLD, MID, NEW = NOW - timedelta(days=100), NOW - timedelta(days=60), NOW - timedelta(days=10)

effects, outbox = Effect.__table__, SlackOutbox.__table__


def _insert(table: Table, **values: Any) -> uuid.UUID:
    values.setdefault("id", uuid.uuid4())
    with transaction() as conn:
        conn.execute(insert(table).values(**values))
    return values["id"]


def _row(table: Table, row_id: uuid.UUID) -> Any:
    with transaction() as conn:
        return conn.execute(select(table).where(table.c.id == row_id)).one()


def job_with_content(org: TestOrg, created: datetime, status: str = "completed") -> dict[str, uuid.UUID]:
    """A job with a payload, a step output, an approval's draft and decision, an effect's result."""
    job = _insert(
        jobs,
        org_id=org.id,
        user_id=org.rep,
        event_type="email_received",
        source="api",
        payload={"text": "please send pricing"},
        idempotency_key=f"ret:{uuid.uuid4()}",
        status=status,
        created_at=created,
        started_at=created,
        finished_at=None if status == "awaiting_approval" else created + timedelta(seconds=5),
        updated_at=created,
    )
    step = _insert(
        steps,
        org_id=org.id,
        job_id=job,
        step="draft",
        status="succeeded",
        queued_at=created,
        output={"body": "Hi Dana, our pricing..."},
        follow_ups=[{"type": "calendar_find_times", "payload": {"text": "next week"}}],
        duration_ms=120,
        error="a warning kept",
    )
    approval = _insert(
        approvals,
        org_id=org.id,
        job_id=job,
        step_run_id=step,
        step="approve",
        kind="email_preview",
        status="pending" if status == "awaiting_approval" else "approved",
        approver_user_ids=[str(org.rep)],
        preview={"to": "dana@example.com", "body": "Hi Dana, our pricing..."},
        decision=None if status == "awaiting_approval" else "edit",
        decision_data=None if status == "awaiting_approval" else {"body": "Hi Dana! Pricing..."},
        decided_by=None if status == "awaiting_approval" else org.rep,
        expires_at=created + timedelta(days=1),
        created_at=created,
    )
    effect = _insert(
        effects,
        org_id=org.id,
        job_id=job,
        step="send",
        key=f"ret:{uuid.uuid4()}",
        status="done",
        result={"recorded": {"body": "Hi Dana! Pricing..."}},
        created_at=created,
    )
    return {"job": job, "step": step, "approval": approval, "effect": effect}


def crm_content(org: TestOrg, created: datetime, live_job: uuid.UUID | None = None) -> dict[str, uuid.UUID]:
    """An email, a meeting, a proposal (of `live_job` when given), a campaign reply and an audit row."""
    campaign = _insert(Campaign.__table__, org_id=org.id, external_id=f"c-{uuid.uuid4()}", name="Q3", metrics={})
    return {
        "email": _insert(
            Email.__table__,
            org_id=org.id,
            message_id=f"m-{uuid.uuid4()}",
            from_addr="dana@example.com",
            to_addrs=["rep@example.com"],
            subject="Pricing",
            snippet="Could you send...",
            body="Could you send pricing?",
            received_at=created,
            created_at=created,
        ),
        "meeting": _insert(
            Meeting.__table__,
            org_id=org.id,
            title="Discovery",
            start_at=created,
            attendees=[],
            attendees_count=2,
            transcript="Dana: we need SSO.",
            created_at=created,
        ),
        "proposal": _insert(
            Proposal.__table__,
            org_id=org.id,
            job_id=live_job,
            template="saas",
            title="Proposal for Acme",
            content={"summary": "Acme needs SSO"},
            status="draft",
            created_at=created,
        ),
        "reply": _insert(
            CampaignReply.__table__,
            org_id=org.id,
            campaign_id=campaign,
            external_id=f"r-{uuid.uuid4()}",
            from_email="lead@example.com",
            body="Interested, call me",
            created_at=created,
        ),
        "audit": _insert(
            AuditLog.__table__,
            org_id=org.id,
            actor="slack:U1",
            action="approval.edit",
            target_type="approval",
            target_id="x",
            data={"body": "Hi Dana! Pricing..."},
            created_at=created,
        ),
    }


def assert_job_purged(ids: dict[str, uuid.UUID], org: TestOrg) -> None:
    job = _row(jobs, ids["job"])
    assert job.payload == {} and job.purged_at == NOW
    assert (job.status, job.user_id, job.event_type, job.org_id) == ("completed", org.rep, "email_received", org.id)
    step = _row(steps, ids["step"])
    assert step.output is None and step.follow_ups is None and step.purged_at == NOW
    assert (step.status, step.duration_ms, step.error) == ("succeeded", 120, "a warning kept")
    approval = _row(approvals, ids["approval"])
    assert approval.preview == {} and approval.decision_data is None and approval.purged_at == NOW
    assert (approval.status, approval.decision, approval.decided_by) == ("approved", "edit", org.rep)
    assert _row(effects, ids["effect"]).result is None


def assert_job_kept(ids: dict[str, uuid.UUID]) -> None:
    job = _row(jobs, ids["job"])
    assert job.payload == {"text": "please send pricing"} and job.purged_at is None
    assert _row(steps, ids["step"]).output == {"body": "Hi Dana, our pricing..."}
    assert _row(approvals, ids["approval"]).preview["to"] == "dana@example.com"
    assert _row(effects, ids["effect"]).result is not None


def assert_crm(ids: dict[str, uuid.UUID], purged: bool) -> None:
    email = _row(Email.__table__, ids["email"])
    meeting = _row(Meeting.__table__, ids["meeting"])
    proposal = _row(Proposal.__table__, ids["proposal"])
    reply = _row(CampaignReply.__table__, ids["reply"])
    audit = _row(AuditLog.__table__, ids["audit"])
    assert email.subject == "Pricing" and meeting.title == "Discovery" and proposal.title == "Proposal for Acme"
    assert audit.action == "approval.edit" and reply.from_email == "lead@example.com"
    if purged:
        assert (email.body, email.snippet, email.purged_at) == (None, None, NOW)
        assert (meeting.transcript, meeting.purged_at) == (None, NOW)
        assert (proposal.content, proposal.purged_at) == ({}, NOW)
        assert (reply.body, reply.purged_at) == (None, NOW)
        assert (audit.data, audit.purged_at) == (None, NOW)
    else:
        assert email.body and email.snippet and email.purged_at is None
        assert meeting.transcript and meeting.purged_at is None
        assert proposal.content and proposal.purged_at is None
        assert reply.body and reply.purged_at is None
        assert audit.data and audit.purged_at is None


def test_each_org_loses_exactly_the_content_past_its_retention(backend):
    default, short = make_org(), make_org(retention_days=30)
    kept_90 = job_with_content(default, MID)
    gone_90 = job_with_content(default, OLD)
    gone_30 = job_with_content(short, MID)
    kept_30 = job_with_content(short, NEW)
    live = job_with_content(default, OLD, status="awaiting_approval")  # old, but still live
    crm_default_old, crm_default_mid = crm_content(default, OLD), crm_content(default, MID)
    crm_short_mid, crm_short_new = crm_content(short, MID), crm_content(short, NEW)
    of_live_job = crm_content(default, OLD, live_job=live["job"])["proposal"]

    for org in (default, short):
        report = purge(now=NOW, org_id=org.id)
        assert report.finished and report.rows["sequence_jobs"] == 1 and report.rows["step_runs"] == 1

    assert_job_purged(gone_90, default)
    assert_job_purged(gone_30, short)
    assert_job_kept(kept_90)
    assert_job_kept(kept_30)
    assert_job_kept(live)
    assert _row(jobs, live["job"]).status == "awaiting_approval"
    assert_crm(crm_default_old, purged=True)
    assert_crm(crm_short_mid, purged=True)
    assert_crm(crm_default_mid, purged=False)
    assert_crm(crm_short_new, purged=False)
    proposal = _row(Proposal.__table__, of_live_job)
    assert proposal.content == {"summary": "Acme needs SSO"} and proposal.purged_at is None

    again = purge(now=NOW, org_id=default.id)  # purged rows are not visited again
    assert again.total == 0


def test_a_dry_run_changes_nothing_and_counts_what_the_purge_does(backend):
    org = make_org(retention_days=45)
    for created in (OLD, MID, NEW):
        job_with_content(org, created)
        crm_content(org, created)
    job_with_content(org, OLD, status="awaiting_approval")

    dry = purge(now=NOW, org_id=org.id, dry_run=True)
    assert dry.dry_run and dry.rows["sequence_jobs"] == 2 and dry.rows["emails"] == 2
    assert purge(now=NOW, org_id=org.id, dry_run=True).rows == dry.rows  # nothing changed
    done = purge(now=NOW, org_id=org.id)
    assert done.rows == dry.rows
    assert {t: n for t, n in done.rows.items() if n} == {
        "sequence_jobs": 2,
        "step_runs": 2,
        "approvals": 2,
        "effects": 2,
        "emails": 2,
        "meetings": 2,
        "proposals": 2,
        "campaign_replies": 2,
        "audit_log": 2,
    }


def test_batches_are_bounded(backend):
    org = make_org()
    for _ in range(5):
        crm_content(org, OLD)
        job_with_content(org, OLD)
    seen: list[int] = []
    report = purge(now=NOW, org_id=org.id, batch=2, progress=lambda r: seen.append(r.rows["emails"]))
    assert report.rows["emails"] == 5 and report.batches["emails"] == 3
    assert report.rows["sequence_jobs"] == 5 and report.batches["sequence_jobs"] == 3
    assert report.rows["step_runs"] == 5
    assert 5 in seen and max(b - a for a, b in zip([0, *seen], seen, strict=False)) <= 2


def test_log_rows_go_after_30_days(backend):
    org = make_org()
    rolled = job_with_content(org, OLD)["job"]
    with transaction() as conn:
        conn.execute(jobs.update().where(jobs.c.id == rolled).values(rolled_up_at=OLD))
    unrolled = job_with_content(org, OLD)["job"]

    def message(created: datetime, status: str, job_id: uuid.UUID | None) -> uuid.UUID:
        return _insert(
            outbox,
            org_id=org.id,
            dedupe_key=f"ret:{uuid.uuid4()}",
            job_id=job_id,
            kind="meeting_debrief",
            text="hello",
            blocks=[],
            status=status,
            created_at=created,
        )

    gone = {
        "sent": message(MID, "sent", rolled),
        "console": message(MID, "console", None),
        "failed": message(MID, "failed", rolled),
    }
    kept = {
        "recent": message(NEW, "sent", rolled),
        "pending": message(MID, "pending", rolled),
        "not folded": message(MID, "sent", unrolled),
    }
    tag = uuid.uuid4().hex
    logs = {
        CronRun.__table__: ("started_at", {"task": "t", "slot_key": f"ret:{tag}:{{}}", "status": "done", "counts": {}}),
        GmailPush.__table__: ("received_at", {"message_id": f"ret:{tag}:{{}}"}),
        RejectedEvent.__table__: ("created_at", {"source": "api", "reason": "{}", "error_type": "invalid_json"}),
    }
    rows: dict[Table, dict[str, uuid.UUID]] = {}
    for table, (age, values) in logs.items():
        rows[table] = {
            when: _insert(
                table, **{age: at_, **{k: v.format(when) if isinstance(v, str) else v for k, v in values.items()}}
            )
            for when, at_ in (("old", MID), ("new", NEW))
        }

    dry = purge(now=NOW, dry_run=True)
    report = purge(now=NOW)
    assert report.rows == dry.rows and report.rows["slack_outbox"] >= 3

    with transaction() as conn:
        left = set(conn.execute(select(outbox.c.id).where(outbox.c.org_id == org.id)).scalars())
    assert left == set(kept.values()), {name for name, i in {**gone, **kept}.items() if i in left}
    for table, ids in rows.items():
        with transaction() as conn:
            found = set(conn.execute(select(table.c.id).where(table.c.id.in_(list(ids.values())))).scalars())
        assert found == {ids["new"]}, table.name


def test_the_metrics_read_the_same_before_and_after(backend):
    org = make_org()
    r = Rows(org)
    done = r.job("completed", at(2, 9), seconds=10)
    r.step(done, "draft", "succeeded", at(2, 9), duration_ms=300)
    r.approval(done, "approved", at(2, 9), approver=org.rep, decided_s=60)
    r.message(done, at(2, 9, 0, 4), "sent", at(2, 9, 0, 5))
    failed = r.job("failed", at(3, 9), seconds=2, error="crm unreachable")
    r.step(failed, "crm", "failed", at(3, 9), duration_ms=50, error_class="transient", error="crm unreachable")
    metrics_now, purge_now = datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)

    with transaction() as conn:
        before = org_metrics(conn, org.id, 7, now=metrics_now)
    assert purge(now=purge_now, org_id=org.id).rows["sequence_jobs"] == 2
    with transaction() as conn:
        assert org_metrics(conn, org.id, 7, now=metrics_now) == before  # live part: no content read
    roll_up(now=purge_now)
    assert purge(now=purge_now, org_id=org.id).rows["slack_outbox"] == 1  # folded now: the message goes
    with transaction() as conn:
        assert org_metrics(conn, org.id, 7, now=metrics_now) == before
        assert conn.execute(select(jobs.c.rolled_up_at).where(jobs.c.id == done)).scalar() is not None


def test_the_beat_entry_runs_daily_on_the_beat_queue(backend, tmp_path, monkeypatch):
    from beat_schedule import BEAT_SCHEDULE, ENTRIES

    task, when = ENTRIES["retention"]
    assert task == "proactive.retention" and when == crontab(hour=3, minute=41)
    assert BEAT_SCHEDULE["retention"]["options"] == {"queue": "beat"}
    assert celery_app.conf.task_routes["proactive.retention"] == {"queue": "beat"}
    assert "worker.ops.retention" in celery_app.conf.imports

    org = make_org()
    old, recent = job_with_content(org, OLD), job_with_content(org, MID)
    clock = tmp_path / "clock"  # the task reads "now" where the cron bodies do
    clock.write_text(NOW.isoformat())
    monkeypatch.setenv("PROACTIVE_CRON_CLOCK_FILE", str(clock))
    reset_settings()
    try:
        result = celery_app.tasks["proactive.retention"]()
    finally:
        monkeypatch.delenv("PROACTIVE_CRON_CLOCK_FILE")
        reset_settings()
    assert result["finished"] and result["rows"]["sequence_jobs"] >= 1
    assert _row(jobs, old["job"]).payload == {} and _row(jobs, recent["job"]).purged_at is None


def test_the_cli(backend):
    org = make_org()
    with transaction() as conn:
        name = conn.execute(select(Org.name).where(Org.id == org.id)).scalar_one()
    ids = crm_content(org, datetime.now(UTC) - timedelta(days=40))
    runner = CliRunner()

    bad = runner.invoke(main, ["org", "retention", "5", "--org", str(org.id)])
    assert bad.exit_code == 2 and "from 7 to 3650 days, not 5" in bad.output
    ok = runner.invoke(main, ["org", "retention", "30", "--org", name])
    assert ok.exit_code == 0, ok.output
    assert "content kept 30 days" in ok.output
    shown = runner.invoke(main, ["org", "show", "--org", str(org.id), "--json"])
    assert json.loads(shown.output)["retention_days"] == 30
    with transaction() as conn:
        audit = conn.execute(
            select(AuditLog.action, AuditLog.data).where(AuditLog.org_id == org.id, AuditLog.action == "org.retention")
        ).one()
    assert audit.data == {"before": None, "after": 30}

    dry = runner.invoke(main, ["purge", "--org", str(org.id), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    data = json.loads(dry.output)
    assert data["dry_run"] is True and data["rows"]["emails"] == 1 and data["orgs"][0]["retention_days"] == 30
    assert _row(Email.__table__, ids["email"]).body is not None

    text = runner.invoke(main, ["purge", "--org", name])
    assert text.exit_code == 0, text.output
    assert "retention 30 days" in text.output and "what went" in text.output
    assert any(line.split()[:2] == ["emails", "1"] for line in text.output.splitlines())
    assert _row(Email.__table__, ids["email"]).body is None
    assert runner.invoke(main, ["purge", "--org", "Nobody Inc"]).exit_code == 2


def test_a_purged_job_says_so_in_its_views(backend, monkeypatch):
    """After the purge, GET /api/jobs/<id>, `proactive job ID` and the admin page say the content was
    purged (when, under which retention) instead of showing an empty payload as the job's own."""
    from webhooks import create_app
    from worker.access.admin_auth import create_link

    token = "admin-" + uuid.uuid4().hex
    monkeypatch.setenv("ADMIN_TOKEN", token)
    monkeypatch.setenv("ADMIN_SESSION_SECRET", "test-retention-" + uuid.uuid4().hex)
    reset_settings()
    org = make_org(retention_days=30)
    gone, kept = job_with_content(org, MID), job_with_content(org, NEW)
    assert purge(now=NOW, org_id=org.id).finished
    client = create_app({"TESTING": True}).test_client()
    try:
        answer = client.get(f"/api/jobs/{gone['job']}", headers={"Authorization": f"Bearer {token}"})
        fresh = client.get(f"/api/jobs/{kept['job']}", headers={"Authorization": f"Bearer {token}"}).get_json()
        text = CliRunner().invoke(main, ["job", str(gone["job"]), "--outputs"])
        as_json = CliRunner().invoke(main, ["job", str(gone["job"]), "--json"])
        assert client.get("/" + create_link(None).url.split("/", 3)[3]).status_code == 200
        page, fresh_page = (client.get(f"/admin/jobs/{j['job']}").text for j in (gone, kept))
    finally:
        reset_settings()

    assert answer.status_code == 200, answer.text
    detail = answer.get_json()
    assert detail["purged_at"] == NOW.isoformat() and detail["retention_days"] == 30 and detail["payload"] == {}
    assert detail["purged"].startswith("content purged on 2026-06-01 (retention 30 days)")
    assert detail["steps"][0]["purged_at"] == NOW.isoformat() and detail["steps"][0]["output"] is None
    assert detail["approvals"][0]["purged_at"] == NOW.isoformat()
    assert fresh["purged_at"] is None and fresh["purged"] is None and fresh["retention_days"] is None
    assert fresh["steps"][0]["purged_at"] is None

    assert text.exit_code == 0, text.output
    assert "content purged on 2026-06-01 (retention 30 days)" in text.output
    assert "(output purged on 2026-06-01)" in text.output and "(draft purged on 2026-06-01)" in text.output
    assert json.loads(as_json.output)["purged_at"] == NOW.isoformat()

    assert 'id="purged"' in page and "Content purged on 2026-06-01 12:00:00 UTC (retention 30 days)" in page
    assert 'id="purged"' not in fresh_page and "Hi Dana! Pricing..." in fresh_page  # kept edits still shown
