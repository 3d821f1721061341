"""The caller's envelope: `POST /api/events` and `proactive fire` accept only `type, org_id,
user_id, payload, idempotency_key, delay_minutes, replace`; the fields only the system sets are
refused naming them; the source is the edge that received the event; a caller's idempotency keys
cannot take a cron's; `delay_minutes` makes a visible, cancellable job that starts when due.

Each test here reproduces one abuse observed on the old envelope (it failed there). PostgreSQL +
Redis, the Flask test client and the CLI in process; one real worker for the delayed job that runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support import sequences as test_dags
from tests.support.edge import db_counts, latest_rejected, refusal_delta
from tests.support.engine import TestOrg, job_row, make_org, settled, step_rows
from tests.support.waiting import wait_for
from webhooks import create_app
from worker.access.api_keys import create_key
from worker.config import reset_settings
from worker.db import transaction
from worker.engine import registry
from worker.engine.events import fire_event
from worker.metrics.prom import source_label
from worker.models import jobs, utcnow

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("env")]

ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
KEY_NAME = "crm-sync"
KEY_SOURCE = f"api:{KEY_NAME}"


@pytest.fixture(scope="module")
def env(pg) -> Iterator[dict[str, str]]:
    """PostgreSQL + Redis with the admin token; the engine test DAGs (permissive payloads) here."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADMIN_TOKEN", ADMIN_TOKEN)
        reset_settings()
        with registry.overridden(test_dags.ALL):
            yield {**pg.env, "ADMIN_TOKEN": ADMIN_TOKEN}
    reset_settings()


@pytest.fixture(scope="module")
def client(env) -> FlaskClient:
    return create_app().test_client()


@pytest.fixture
def key(org: TestOrg) -> str:
    return create_key(org.id, KEY_NAME)[0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def envelope(org: TestOrg, event_type: str = "deal_risk_scan", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": event_type, "org_id": str(org.id), "payload": {}}
    if event_type not in ("deal_risk_scan", "campaign_daily_check"):
        body["user_id"] = str(org.rep)
    return {**body, **extra}


def post(client: FlaskClient, token: str, body: Any, query: str = "") -> Any:
    return client.post(f"/api/events{query}", json=body, headers=bearer(token))


def jobs_of(org: TestOrg) -> list[Any]:
    with transaction() as conn:
        return list(conn.execute(select(jobs).where(jobs.c.org_id == org.id).order_by(jobs.c.created_at)))


def refused_naming(response: Any, before: dict[str, int], field: str) -> dict[str, Any]:
    """A 422 whose errors name `field` as set by the server; one rejected row under the key's
    source; no job."""
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    named = {e["field"]: e["message"] for e in body["errors"]}
    assert field in named, named
    assert "set by the server" in named[field]
    assert refusal_delta(before) == {"rejected": 1}
    assert latest_rejected().source == KEY_SOURCE
    return body


# --------------------------------------------------------------------------- internal fields


def test_a_smoke_source_is_refused_not_a_dry_run(client, org, key):
    """Observed: "source": "smoke" turned on dry-run (approve completed with dry_run, nothing sent)."""
    before = db_counts()
    refused_naming(post(client, key, envelope(org, source="smoke")), before, "source")
    assert jobs_of(org) == []
    fired = post(client, key, envelope(org))  # without it: a live job, recorded under the key
    assert fired.status_code == 202
    job = job_row(uuid.UUID(fired.get_json()["job_id"]))
    assert job.dry_run is False and job.source == KEY_SOURCE


@pytest.mark.parametrize("source", ["chain", "cron:morning", "slack:action", "webhook:gmail", "api", "cli"])
def test_any_source_a_caller_names_is_refused(client, org, key, source):
    """Observed: each of these was stored and counted under that source."""
    before = db_counts()
    refused_naming(post(client, key, envelope(org, source=source)), before, "source")
    assert jobs_of(org) == []


def test_the_source_is_the_edge_that_received_the_event(client, org, key):
    by_key = post(client, key, envelope(org, idempotency_key="by-key")).get_json()
    by_admin = post(client, ADMIN_TOKEN, envelope(org, idempotency_key="by-admin")).get_json()
    assert job_row(uuid.UUID(by_key["job_id"])).source == KEY_SOURCE
    assert job_row(uuid.UUID(by_admin["job_id"])).source == "api"
    assert source_label(KEY_SOURCE) == "api"  # one Prometheus series for every key


def test_a_long_key_name_makes_a_source_that_fits_the_metrics_roll_up(client, org):
    long_key = create_key(org.id, "n" * 100)[0]
    fired = post(client, long_key, envelope(org)).get_json()
    assert job_row(uuid.UUID(fired["job_id"])).source == "api:" + "n" * 96  # metrics_rollups.key is 100


def test_a_chain_depth_is_refused_and_cannot_take_the_crons_key(client, org, key):
    """Observed: "depth": 6 made a skipped chain_too_deep job holding the day's deal_risk_scan key,
    so the real cron run was a duplicate and its alerts were suppressed."""
    before = db_counts()
    refused_naming(post(client, key, envelope(org, depth=6)), before, "depth")
    cron = fire_event({"type": "deal_risk_scan", "source": "cron:daily", "org_id": str(org.id), "payload": {}})
    assert cron.duplicate is False and cron.status == "queued"


def test_another_orgs_parent_job_is_refused(client, org, key):
    """Observed: parent_job_id of another org's job was stored."""
    other = make_org()
    theirs = post(client, ADMIN_TOKEN, envelope(other)).get_json()["job_id"]
    before = db_counts()
    refused_naming(post(client, key, envelope(org, parent_job_id=theirs)), before, "parent_job_id")
    before = db_counts()
    refused_naming(post(client, key, envelope(org, item_index=0)), before, "item_index")
    assert jobs_of(org) == []


def test_every_internal_field_is_named_at_once(client, org, key):
    bad = envelope(org, source="chain", depth=1, parent_job_id=str(uuid.uuid4()), item_index=3)
    before = db_counts()
    body = refused_naming(post(client, key, bad), before, "source")
    assert {e["field"] for e in body["errors"]} == {"source", "depth", "parent_job_id", "item_index"}


# --------------------------------------------------------------------------- idempotency namespace


@pytest.mark.parametrize(
    ("event_type", "cron_source"),
    [("deal_risk_scan", "cron:daily"), ("coaching_weekly", "cron:weekly")],
)
def test_a_caller_cannot_take_a_crons_key(client, org, key, event_type, cron_source):
    """Observed: a caller event took the cron's key of the day/week first; the cron's run was then a
    duplicate. Neither the type's default key nor that key spelled out reaches the cron's."""
    default = post(client, key, envelope(org, event_type)).get_json()
    cron_event = {"type": event_type, "source": cron_source, "org_id": str(org.id), "payload": {}}
    if event_type == "coaching_weekly":
        cron_event["user_id"] = str(org.rep)
    cron = fire_event(cron_event)
    assert cron.duplicate is False and cron.job_id != uuid.UUID(default["job_id"])
    cron_key = job_row(cron.job_id).idempotency_key
    spelled = post(client, key, envelope(org, event_type, idempotency_key=cron_key)).get_json()
    # the cron's key spelled out is the caller's own default key again (its namespace), never the cron's job
    assert spelled == {**default, "duplicate": True} and spelled["job_id"] != str(cron.job_id)
    assert job_row(uuid.UUID(spelled["job_id"])).idempotency_key == "caller:" + cron_key
    assert fire_event(cron_event).duplicate is True  # the cron still dedupes with itself


def test_a_caller_repeating_its_own_key_gets_its_job(client, org, key):
    first = post(client, key, envelope(org, idempotency_key="crm:4711")).get_json()
    again = post(client, key, envelope(org, idempotency_key="crm:4711"))
    assert again.status_code == 202 and again.get_json() == {**first, "duplicate": True}
    by_default = post(client, key, envelope(org)).get_json()  # the type's default key, in the caller's space
    assert by_default["duplicate"] is False
    assert post(client, ADMIN_TOKEN, envelope(org)).get_json() == {**by_default, "duplicate": True}


# --------------------------------------------------------------------------- delay_minutes


def test_a_delayed_event_is_a_visible_scheduled_job_that_waits(client, org, key):
    """Observed: "delay_minutes": 60 was accepted and ignored (the job ran at once)."""
    before = utcnow()
    body = post(client, key, envelope(org, "campaign_daily_check", delay_minutes=60)).get_json()
    assert body["status"] == "queued" and "scheduled_for" in body
    job_id = uuid.UUID(body["job_id"])
    job = job_row(job_id)
    assert before + timedelta(minutes=59) < job.scheduled_for < utcnow() + timedelta(minutes=61)
    first = step_rows(job_id)["s1"]
    assert first.status == "queued" and first.not_before == job.scheduled_for

    detail = client.get(f"/api/jobs/{job_id}", headers=bearer(key)).get_json()
    assert detail["scheduled_for"] == job.scheduled_for.isoformat()
    from worker.ops.cli import main

    listed = CliRunner().invoke(main, ["jobs", "--org", str(org.id)])
    assert listed.exit_code == 0 and f"[scheduled for {job.scheduled_for.isoformat()[:16]}]" in listed.output

    cancelled = client.post(f"/api/jobs/{job_id}/cancel", headers=bearer(key))
    assert cancelled.status_code == 200
    assert cancelled.get_json() == {"job_id": str(job_id), "status": "cancelled", "immediate": True}
    assert step_rows(job_id)["s1"].status == "skipped"


def test_a_delayed_event_runs_when_due_and_not_before(client, org, key, workers):
    workers()
    hour = envelope(org, "campaign_daily_check", delay_minutes=60, idempotency_key="in-an-hour")
    later = uuid.UUID(post(client, key, hour).get_json()["job_id"])
    soon = envelope(org, "campaign_daily_check", delay_minutes=0.03, idempotency_key="in-2-s")
    body = post(client, key, soon).get_json()
    job_id = uuid.UUID(body["job_id"])
    assert wait_for(lambda: settled(job_id), timeout_s=30, what="delayed job settled") == "completed"
    job = job_row(job_id)
    assert job.started_at >= job.scheduled_for  # not before its time
    # meanwhile the worker left the 60-minute one alone
    assert job_row(later).status == "queued" and job_row(later).started_at is None
    assert step_rows(later)["s1"].attempt == 0


def test_a_delayed_jobs_step_delivered_early_does_not_start_the_job(client, org, key):
    """A message for the held first step arriving before `scheduled_for` (a re-publish, a broker
    redelivery) leaves the job queued: its deadline does not start early and no attempt is used."""
    from worker.engine import driver as engine

    later = uuid.UUID(post(client, key, envelope(org, "campaign_daily_check", delay_minutes=30)).get_json()["job_id"])
    step = step_rows(later)["s1"]
    assert engine.execute(step.id) == []
    job = job_row(later)
    assert (job.status, job.started_at, job.deadline_at) == ("queued", None, None)
    assert step_rows(later)["s1"].attempt == 0


def test_cancel_needs_the_jobs_org(client, org, key):
    job_id = post(client, ADMIN_TOKEN, envelope(make_org(), delay_minutes=5)).get_json()["job_id"]
    before = db_counts()
    response = client.post(f"/api/jobs/{job_id}/cancel", headers=bearer(key))
    assert response.status_code == 404 and refusal_delta(before) == {"rejected": 1}
    assert job_row(uuid.UUID(job_id)).status == "queued"
    assert client.post(f"/api/jobs/{uuid.uuid4()}/cancel").status_code == 401


def test_delay_minutes_out_of_range_is_422(client, org, key):
    for delay in (-1, 60 * 24 * 30 + 1, "soon"):
        response = post(client, key, envelope(org, delay_minutes=delay))
        assert response.status_code == 422
        assert [e["field"] for e in response.get_json()["errors"]] == ["delay_minutes"]


# --------------------------------------------------------------------------- the CLI edge


def test_proactive_fire_is_the_cli_edge(org):
    from worker.ops.cli import main

    runner = CliRunner()
    done = runner.invoke(main, ["fire", "deal_risk_scan", "--org", str(org.id), "--key", "k1", "--json"])
    assert done.exit_code == 0, done.output
    job = job_row(uuid.UUID(json.loads(done.stdout)["job_id"]))
    assert (job.source, job.idempotency_key, job.dry_run) == ("cli", "caller:k1", False)

    delayed = runner.invoke(main, ["fire", "deal_risk_scan", "--org", str(org.id), "--delay-minutes", "30"])
    assert delayed.exit_code == 0 and "scheduled for" in delayed.output

    gone = runner.invoke(main, ["fire", "deal_risk_scan", "--org", str(org.id), "--source", "smoke"])
    assert gone.exit_code == 2 and "--source" in gone.output  # no such option any more
