"""Rate limits (PostgreSQL + Redis): the per-org events limit at POST /api/events (a token bucket in
rate_slots shared by every web worker: 429 with Retry-After, recorded, counted; other orgs untouched;
a 422 does not use the budget), the bucket itself on both databases (`take` driven by its `now`),
the Instantly and LLM clients' shared pacing against their fakes, and a RateLimited step retried by a
real worker without using up its attempts (bounded by the job deadline instead)."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydantic import BaseModel
from sqlalchemy import create_engine, delete, update

from tests.conftest import Backend
from tests.fakes.instantly import API_KEY as INSTANTLY_KEY
from tests.fakes.instantly import FakeInstantly, campaign
from tests.fakes.llm import API_KEY as LLM_KEY
from tests.fakes.llm import PATH as LLM_PATH
from tests.fakes.llm import FakeLLM
from tests.fakes.server import Recorded, Reply
from tests.support import ratelimit_sequences as rl_dags
from tests.support.edge import latest_rejected
from tests.support.engine import TestOrg, event, job_row, make_org, reached, step_rows
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from webhooks import create_app
from worker import ratelimit
from worker.access.api_keys import create_key
from worker.clients import llm
from worker.clients.instantly import InstantlyClient
from worker.config import reset_settings
from worker.db import transaction
from worker.engine import registry
from worker.engine.events import fire_event
from worker.errors import RateLimited
from worker.metrics import prom
from worker.models import RateSlot

pytestmark = [pytest.mark.postgres]

ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
# The edge's bucket in these tests: 3 events at once, then one every 5 s (slow enough that a loaded
# machine never refills a token between two requests of a test).
RATE_PER_S, BURST = 0.2, 3
slots = RateSlot.__table__


@pytest.fixture(scope="module")
def limited_env(pg: Backend) -> Iterator[None]:
    """The pg backend with a small per-org events bucket and the admin token."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADMIN_TOKEN", ADMIN_TOKEN)
        mp.setenv("PROACTIVE_ORG_EVENTS_PER_S", str(RATE_PER_S))
        mp.setenv("PROACTIVE_ORG_EVENTS_BURST", str(BURST))
        reset_settings()
        yield
    reset_settings()


@pytest.fixture(scope="module")
def client(limited_env: None) -> FlaskClient:
    return create_app().test_client()


def org_with_key() -> tuple[TestOrg, str]:
    org = make_org()
    key, _info = create_key(org.id, "tests")
    return org, key


def post(client: FlaskClient, token: str, org: TestOrg, event_type: str = "deal_risk_scan") -> Any:
    body = {"type": event_type, "org_id": str(org.id), "payload": {}, "idempotency_key": uuid.uuid4().hex}
    return client.post("/api/events", json=body, headers={"Authorization": f"Bearer {token}"})


def rejected_count() -> float:
    return prom.EVENTS_REJECTED.labels("api", "RateLimited")._value.get()


def age_bucket(org: TestOrg, seconds: float) -> None:
    """As if `seconds` had passed for the org's events bucket (moves its clock, not ours)."""
    with transaction() as conn:
        conn.execute(
            update(slots).where(slots.c.key == f"events:{org.id}").values(next_at_s=slots.c.next_at_s - seconds)
        )


# --------------------------------------------------------------------------- the edge


def test_an_org_over_its_limit_gets_a_recorded_429_with_retry_after(client: FlaskClient, limited_env: None):
    org, key = org_with_key()
    other, other_key = org_with_key()
    counted = rejected_count()

    assert [post(client, key, org).status_code for _ in range(BURST)] == [202] * BURST
    refused = post(client, key, org)
    assert refused.status_code == 429, refused.get_data(as_text=True)
    retry_after = int(refused.headers["Retry-After"])
    next_token_s = 1 / RATE_PER_S  # 5 s after the burst began, less the time the burst took, rounded up
    assert retry_after in (next_token_s - 1, next_token_s), retry_after
    body = refused.get_json()
    assert body["error"] == "rate_limited" and body["retry_after_s"] == retry_after
    assert f"org {org.id} is over its events limit" in body["message"]
    row = latest_rejected()
    assert (row.source, row.error_type, row.org_id) == ("api:tests", "RateLimited", org.id)
    assert row.reason.startswith("429 rate_limited: ")
    assert rejected_count() == counted + 1

    # A refusal takes nothing: the next one asks for no longer a wait.
    again = post(client, key, org)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) <= retry_after

    # Another org has its own bucket; the admin token spends the org's (its events are the org's).
    assert post(client, other_key, other).status_code == 202
    assert post(client, ADMIN_TOKEN, org).status_code == 429

    age_bucket(org, retry_after)  # Retry-After seconds later: one event goes through, then 429 again
    assert post(client, key, org).status_code == 202
    assert post(client, key, org).status_code == 429


def test_a_refused_event_does_not_use_the_budget(client: FlaskClient, limited_env: None):
    org, key = org_with_key()
    for _ in range(BURST + 1):
        assert post(client, key, org, event_type="no_such_type").status_code == 422
    assert [post(client, key, org).status_code for _ in range(BURST + 1)] == [202] * BURST + [429]


def test_two_web_apps_on_one_database_share_the_bucket(limited_env: None):
    """Two app instances (as two gunicorn workers: the state is in the database) answered in parallel:
    the org gets exactly its burst, whichever app answers."""
    org, key = org_with_key()
    apps = [create_app(), create_app()]
    codes: list[int] = []
    lock = threading.Lock()

    def fire(app_index: int) -> None:
        tester = apps[app_index].test_client()
        for _ in range(3):
            code = post(tester, key, org).status_code
            with lock:
                codes.append(code)

    threads = [threading.Thread(target=fire, args=(i % 2,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(codes) == [202] * BURST + [429] * (12 - BURST)


# --------------------------------------------------------------------------- the bucket


@pytest.fixture(params=["postgres", "sqlite"])
def bucket_conn(request: pytest.FixtureRequest, limited_env: None, tmp_path) -> Iterator[Any]:
    """A connection to rate_slots on PostgreSQL (the session's database) or on a SQLite file."""
    if request.param == "postgres":
        with transaction() as conn:
            yield conn
        return
    engine = create_engine(f"sqlite:///{tmp_path / 'slots.db'}")
    slots.create(engine)
    with engine.begin() as conn:
        yield conn
    engine.dispose()


def test_take_gives_the_burst_then_one_token_per_interval_and_refusals_take_nothing(bucket_conn: Any):
    key, t0 = f"test:{uuid.uuid4().hex}", datetime(2026, 12, 1, 9, tzinfo=UTC)
    interval, burst_s = ratelimit.bucket(2.0, 3)  # 3 tokens, one more every 0.5 s
    assert (interval, burst_s) == (0.5, 1.5)

    def take(at: float, max_wait_s: float = 0.0) -> ratelimit.Take:
        return ratelimit.take(bucket_conn, key, interval, t0 + timedelta(seconds=at), burst_s, max_wait_s)

    assert [take(0).taken for _ in range(3)] == [True] * 3
    refused = [take(0), take(0), take(0.1)]
    assert [r.taken for r in refused] == [False] * 3
    assert [round(r.wait_s, 6) for r in refused] == [0.5, 0.5, 0.4]  # not pushed by the refusals
    assert take(0.5) == ratelimit.Take(True, 0.0)
    assert not take(0.5).taken
    assert [take(100).taken for _ in range(4)] == [True] * 3 + [False]  # never more than the burst

    # A caller that accepts a wait gets the next tokens in order, up to that wait, and nothing beyond.
    waits = [take(100, max_wait_s=1.2) for _ in range(3)]
    assert [(w.taken, round(w.wait_s, 6)) for w in waits] == [(True, 0.5), (True, 1.0), (False, 1.5)]

    ratelimit.give_back(bucket_conn, key, interval)  # the last token taken is back
    assert take(100, max_wait_s=1.2) == ratelimit.Take(True, 1.0)


# --------------------------------------------------------------------------- clients


@pytest.fixture
def fake_llm(limited_env: None) -> Iterator[FakeLLM]:
    """A fake LLM the client talks to, at 6 calls a minute (one token, the next 10 s later)."""
    with FakeLLM() as fake, pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLM_BASE_URL", fake.base_url)
        mp.setenv("LLM_API_KEY", LLM_KEY)
        mp.setenv("LLM_REQUESTS_PER_MIN", "6")
        reset_settings()
        with transaction() as conn:
            conn.execute(delete(slots).where(slots.c.key == llm.PACE_KEY))
        yield fake
    reset_settings()


class Ok(BaseModel):
    ok: bool


def test_llm_calls_are_paced_and_a_far_slot_is_rate_limited(fake_llm: FakeLLM):
    assert llm.complete_json(Ok, "s", "u").value.ok
    with pytest.raises(RateLimited, match=r"llm \(6 requests/min\)") as first:
        llm.complete_json(Ok, "s", "u")
    assert 2.0 < first.value.retry_after_s <= 10.0
    with pytest.raises(RateLimited) as second:
        llm.complete_json(Ok, "s", "u")
    assert second.value.retry_after_s <= first.value.retry_after_s  # the refusal took no slot
    assert len(fake_llm.requests_to("POST", re.escape(LLM_PATH))) == 1  # refused calls never left


def test_llm_429_is_rate_limited_with_its_retry_after(fake_llm: FakeLLM):
    fake_llm.script("POST", re.escape(LLM_PATH), Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "7"}))
    with pytest.raises(RateLimited) as info:
        llm.complete_json(Ok, "s", "u")
    assert info.value.retry_after_s == 7.0


def test_instantly_calls_are_paced_per_integration(limited_env: None):
    with FakeInstantly() as fake, pytest.MonkeyPatch.context() as mp:
        fake.campaigns = [campaign("c1", "Q4")]
        mp.setenv("INSTANTLY_REQUESTS_PER_S", "0.1")  # one token, the next 10 s later
        reset_settings()
        try:
            first, second = uuid.uuid4(), uuid.uuid4()
            with InstantlyClient(INSTANTLY_KEY, base_url=fake.base_url, integration_id=first) as a:
                assert [c.id for c in a.list_campaigns()] == ["c1"]
                with pytest.raises(RateLimited, match=f"instantly integration {first}") as info:
                    a.list_campaigns()
                assert 2.0 < info.value.retry_after_s <= 10.0
            with InstantlyClient(INSTANTLY_KEY, base_url=fake.base_url, integration_id=second) as b:
                assert [c.id for c in b.list_campaigns()] == ["c1"]  # another workspace, its own budget
            assert len(fake.requests_to("GET", r"/api/v2/campaigns")) == 2
            fake.script("GET", r"/api/v2/campaigns", Reply(429, {"message": "Too many"}, {"Retry-After": "3"}))
            with InstantlyClient(INSTANTLY_KEY, base_url=fake.base_url) as unpaced, pytest.raises(RateLimited) as hit:
                unpaced.list_campaigns()
            assert hit.value.retry_after_s == 3.0
        finally:
            reset_settings()


# --------------------------------------------------------------------------- the engine


@pytest.mark.slow
def test_a_rate_limited_step_does_not_use_up_its_attempts(pg: Backend, limited_env: None):
    """The fake LLM answers 429 more times than the step's max_attempts, then 200: the step succeeds
    on its first counted attempt. A Retry-After past the job's deadline fails the step at once."""
    limited = rl_dags.MAX_ATTEMPTS + 3
    answers: dict[str, int] = {}
    org = make_org()
    with FakeLLM() as fake:

        def slow_down(request: Recorded, match: re.Match[str]) -> Reply:
            prompt = (request.json or {}).get("messages", [{}, {}])[1].get("content", "")
            seen = answers[prompt] = answers.get(prompt, 0) + 1
            if prompt.endswith(":forever"):
                return Reply(429, {"error": {"message": "quota"}}, {"Retry-After": "3600"})
            if seen <= limited:
                return Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "0.1"})
            return fake._complete(request, match)

        fake.route("POST", re.escape(LLM_PATH), slow_down)
        fake._routes.insert(0, fake._routes.pop())  # before the fake's own answer
        env = {
            **pg.env,
            "PROACTIVE_SEQUENCE_MODULES": "sequences,tests.support.ratelimit_sequences",
            "LLM_BASE_URL": fake.base_url,
            "LLM_API_KEY": LLM_KEY,
        }
        worker = WorkerProcess(env, pg.log_dir, "rate-limited").start()
        try:
            with registry.overridden(rl_dags.SEQUENCES):
                retried = fire_event(event(org, rl_dags.EVENT_TYPE, {"tag": "retried"}))
                forever = fire_event(event(org, rl_dags.EVENT_TYPE, {"tag": "forever"}))
            assert wait_for(lambda: reached(retried.job_id, "completed", "failed"), timeout_s=60) == "completed"
            assert wait_for(lambda: reached(forever.job_id, "completed", "failed"), timeout_s=60) == "failed"
        finally:
            worker.stop()

    ask = step_rows(retried.job_id)["ask"]
    assert ask.status == "succeeded" and ask.attempt == 1  # no rate-limited attempt counted
    assert ask.output == {"ok": True, "attempt": 1}
    assert ask.error_class == "rate_limited"  # the timeline keeps why it was retried
    assert answers[f"job {retried.job_id}:retried"] == limited + 1

    stuck = step_rows(forever.job_id)["ask"]
    assert (stuck.status, stuck.error_class, stuck.attempt) == ("failed", "rate_limited", 1)
    assert answers[f"job {forever.job_id}:forever"] == 1  # not retried: its wait ends past the deadline
    assert job_row(forever.job_id).error_step == "ask"
