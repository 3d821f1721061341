"""One live job per (rep, deal) for each deal-bound sequence (worker/engine/one_live.py):
a second event while one is queued, running or awaiting approval becomes a visible `skipped` job
`already_live` naming the live one, unless it says `replace: true`. Race-safe by a partial unique
index: concurrent fires (threads, each its own transaction) leave exactly one live job.

PostgreSQL + Redis; the engine test DAGs (calendar_find_times pauses for an approval); the Flask
test client, the CLI and `fire_event` in process; a real worker where a job must reach its approval.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support import sequences as test_dags
from tests.support.edge import db_counts, refusal_delta
from tests.support.engine import TestOrg, approvals_of, job_row, settled
from tests.support.waiting import wait_for
from webhooks import create_app
from worker.access.api_keys import create_key
from worker.db import transaction
from worker.engine import registry
from worker.engine.events import FireResult, fire_event, fire_public_event
from worker.engine.one_live import LIVE_STATUSES, live_key_of
from worker.models import AuditLog, jobs

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("env")]


@pytest.fixture(scope="module")
def env(pg) -> Iterator[None]:
    with registry.overridden(test_dags.ALL):
        yield


@pytest.fixture(scope="module")
def client(env) -> FlaskClient:
    return create_app().test_client()


@pytest.fixture
def key(org: TestOrg) -> str:
    return create_key(org.id, "crm-sync")[0]


def body(org: TestOrg, event_type: str = "proposal_generation", deal: uuid.UUID | None = None, **extra: Any) -> dict:
    payload: dict[str, Any] = {"deal_id": str(deal)} if deal else {}
    if event_type == "calendar_find_times":
        payload["scheduling_text"] = "30 minutes next week"
    return {
        "type": event_type,
        "org_id": str(org.id),
        "user_id": str(org.rep),
        "payload": payload,
        "idempotency_key": uuid.uuid4().hex,
        **extra,
    }


def post(client: FlaskClient, key: str, data: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/events", json=data, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def live_jobs(org: TestOrg, deal: uuid.UUID) -> list[Any]:
    """The jobs of `org` holding a live key of `deal` now."""
    with transaction() as conn:
        return list(
            conn.execute(
                select(jobs).where(
                    jobs.c.org_id == org.id,
                    jobs.c.live_key.like(f"%:{deal}"),
                    jobs.c.status.in_(LIVE_STATUSES),
                    jobs.c.cancel_requested.is_(False),
                )
            )
        )


# --------------------------------------------------------------------------- the rule


def test_live_keys_of_the_deal_bound_types_only():
    rep, deal = uuid.uuid4(), uuid.uuid4()
    assert live_key_of("proposal_generation", rep, {"deal_id": str(deal)}) == f"proposal_generation:{rep}:{deal}"
    assert live_key_of("stale_deal_revival", rep, {"deal_id": deal}) == f"stale_deal_revival:{rep}:{deal}"
    assert live_key_of("calendar_find_times", rep, {"deal_id": str(deal), "scheduling_text": "x"}) is not None
    assert live_key_of("calendar_find_times", rep, {"scheduling_text": "x"}) is None  # not from a deal
    assert live_key_of("deal_risk_scan", None, {"deal_ids": [str(deal)]}) is None
    assert live_key_of("proposal_generation", None, {"deal_id": str(deal)}) is None


def test_a_second_event_for_a_live_deal_is_a_visible_skip_naming_the_live_job(client, org, key):
    deal = uuid.uuid4()
    first = post(client, key, body(org, deal=deal))
    assert first["status"] == "queued"
    second = post(client, key, body(org, deal=deal))
    assert second["status"] == "skipped" and second["reason"] == "already_live"
    assert second["live_job_id"] == first["job_id"] and second["job_id"] != first["job_id"]
    row = job_row(uuid.UUID(second["job_id"]))
    assert (row.status, row.reason, str(row.live_job_id)) == ("skipped", "already_live", first["job_id"])

    detail = client.get(f"/api/jobs/{second['job_id']}", headers={"Authorization": f"Bearer {key}"}).get_json()
    assert detail["live_job_id"] == first["job_id"]
    from worker.ops.cli import main

    shown = CliRunner().invoke(main, ["job", second["job_id"]])
    assert shown.exit_code == 0 and f"job {first['job_id']}" in shown.output

    # the same key again is still the duplicate answer, not another skip
    repeated = {**body(org, deal=deal), "idempotency_key": "again"}
    assert post(client, key, repeated)["reason"] == "already_live"
    assert post(client, key, repeated)["duplicate"] is True

    # another deal, another rep, another deal-bound type, or no deal: not the same live job
    assert post(client, key, body(org, deal=uuid.uuid4()))["status"] == "queued"
    assert post(client, key, {**body(org, deal=deal), "user_id": str(org.other_rep)})["status"] == "queued"
    assert post(client, key, body(org, "stale_deal_revival", deal=deal))["status"] == "queued"
    assert post(client, key, body(org, "calendar_find_times"))["status"] == "queued"
    assert post(client, key, body(org, "calendar_find_times"))["status"] == "queued"


def test_the_systems_own_events_meet_the_live_job_too(client, org, key):
    deal = uuid.uuid4()
    live = post(client, key, body(org, "stale_deal_revival", deal=deal))
    cron = fire_event(
        {
            "type": "stale_deal_revival",
            "source": "cron:daily",
            "org_id": str(org.id),
            "user_id": str(org.rep),
            "payload": {"deal_id": str(deal)},
        }
    )
    assert (cron.status, cron.reason, str(cron.live_job_id)) == ("skipped", "already_live", live["job_id"])


def test_the_deal_is_free_again_once_the_live_job_ends(client, org, key):
    deal = uuid.uuid4()
    first = post(client, key, body(org, deal=deal))
    cancelled = client.post(f"/api/jobs/{first['job_id']}/cancel", headers={"Authorization": f"Bearer {key}"})
    assert cancelled.get_json()["status"] == "cancelled"
    assert post(client, key, body(org, deal=deal))["status"] == "queued"


def test_replace_cancels_the_live_job_and_starts_the_new_one(client, org, key):
    deal = uuid.uuid4()
    first = post(client, key, body(org, deal=deal))
    second = post(client, key, body(org, deal=deal, replace=True))
    assert second["status"] == "queued" and "reason" not in second
    old = job_row(uuid.UUID(first["job_id"]))
    assert (old.status, old.reason, old.cancel_requested) == ("cancelled", "cancel_requested", True)  # no step ran
    assert [j.id for j in live_jobs(org, deal)] == [uuid.UUID(second["job_id"])]
    with transaction() as conn:
        audit = conn.execute(
            select(AuditLog.actor, AuditLog.data).where(
                AuditLog.org_id == org.id, AuditLog.action == "job.cancel", AuditLog.target_id == first["job_id"]
            )
        ).one()
    assert audit.actor == "event:api:crm-sync" and audit.data == {"replaced_by": second["job_id"]}


def test_a_repeated_replacing_request_answers_its_job_and_cancels_nothing(client, org, key):
    deal = uuid.uuid4()
    post(client, key, body(org, deal=deal))
    request = body(org, deal=deal, replace=True)
    first = post(client, key, request)
    again = post(client, key, request)  # a client retrying the same request (same key)
    assert again == {**first, "duplicate": True}
    assert job_row(uuid.UUID(first["job_id"])).status == "queued"
    assert [j.id for j in live_jobs(org, deal)] == [uuid.UUID(first["job_id"])]


def test_replace_is_refused_on_an_event_with_nothing_to_replace(client, org, key):
    for data in (body(org, "deal_risk_scan", replace=True), body(org, "calendar_find_times", replace=True)):
        before = db_counts()
        response = client.post("/api/events", json=data, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 422 and refusal_delta(before) == {"rejected": 1}
        assert [e["field"] for e in response.get_json()["errors"]] == ["replace"]


def test_a_job_awaiting_approval_is_live_and_replace_cancels_it(client, org, key, workers):
    workers()
    deal = uuid.uuid4()
    first = post(client, key, body(org, "calendar_find_times", deal=deal))
    first_id = uuid.UUID(first["job_id"])
    assert wait_for(lambda: job_row(first_id).status == "awaiting_approval", what="first job paused")
    skipped = post(client, key, body(org, "calendar_find_times", deal=deal))
    assert (skipped["reason"], skipped["live_job_id"]) == ("already_live", first["job_id"])

    second = post(client, key, body(org, "calendar_find_times", deal=deal, replace=True))
    assert job_row(first_id).status == "cancelled"  # idle at its approval: cancelled at once
    assert [a.status for a in approvals_of(first_id)] == ["cancelled"]
    second_id = uuid.UUID(second["job_id"])
    assert wait_for(lambda: settled(second_id), what="second job paused") == "awaiting_approval"


# --------------------------------------------------------------------------- races


def _fire_together(count: int, make: Any) -> list[FireResult]:
    """`count` fires released at once (a barrier), each in its own thread and transaction."""
    barrier = threading.Barrier(count)

    def one(i: int) -> FireResult:
        data = make(i)
        barrier.wait(timeout=10)
        return fire_public_event(data, source="api:race")

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_fires_for_one_deal_make_exactly_one_live_job(org):
    deal = uuid.uuid4()
    results = _fire_together(12, lambda i: body(org, deal=deal))
    live = [r for r in results if r.status == "queued"]
    assert len(live) == 1
    skipped = [r for r in results if r.status == "skipped"]
    assert len(skipped) == 11
    assert all(r.reason == "already_live" and r.live_job_id == live[0].job_id for r in skipped)
    assert [j.id for j in live_jobs(org, deal)] == [live[0].job_id]


def test_concurrent_replacing_fires_leave_exactly_one_live_job(org):
    deal = uuid.uuid4()
    original = fire_public_event(body(org, deal=deal), source="api:race")
    results = _fire_together(8, lambda i: body(org, deal=deal, replace=True))
    survivors = live_jobs(org, deal)
    assert len(survivors) == 1 and survivors[0].id in {r.job_id for r in results}
    assert job_row(original.job_id).status == "cancelled"
    for r in results:  # every other one was replaced in turn, or met a live one
        if r.job_id != survivors[0].id:
            assert job_row(r.job_id).status in ("cancelled", "skipped")
