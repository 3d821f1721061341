"""deal_risk_scan end to end on the seeded demo org, with a real worker on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tests.support.engine import reached, step_rows
from tests.support.waiting import wait_for
from worker.db import transaction
from worker.engine.events import fire_event
from worker.models import Deal, DealRiskScore, SlackOutbox, User
from worker.ops.seed import demo_id, seed_demo

pytestmark = pytest.mark.slow


def _scan(org_id, key: str):
    result = fire_event(
        {"type": "deal_risk_scan", "source": "cron:daily", "org_id": str(org_id), "idempotency_key": key}
    )
    assert wait_for(lambda: reached(result.job_id, "completed", "failed"), what="scan done") == "completed"
    return result


def test_scan_scores_open_deals_and_alerts_each_owner_once(backend, shared_worker, request):
    seed = seed_demo()
    with transaction() as conn:  # the demo org is the session's: another module's scan (smoke, the demo
        # loop) may have alerted these deals within the 7-day no-repeat window; this test is the first alert
        conn.execute(update(DealRiskScore.__table__).where(DealRiskScore.org_id == seed.org_id).values(alerted_at=None))
    key = f"scan-{backend.name}-{request.node.name}"
    first = _scan(seed.org_id, key)
    rows = step_rows(first.job_id)
    assert [
        rows[s].status for s in ("scan-active-deals", "score-deal-risks", "generate-risk-alerts", "deliver-risk-slack")
    ] == ["succeeded"] * 4
    with transaction() as conn:
        scores = {
            r.deal_id: r
            for r in conn.execute(select(DealRiskScore.__table__).where(DealRiskScore.job_id == first.job_id))
        }
        open_deals = set(
            conn.execute(
                select(Deal.id).where(Deal.org_id == seed.org_id, Deal.stage.not_in(["closed_won", "closed_lost"]))
            ).scalars()
        )
        messages = list(conn.execute(select(SlackOutbox.__table__).where(SlackOutbox.job_id == first.job_id)))
        names = dict(conn.execute(select(User.id, User.name).where(User.org_id == seed.org_id)).all())
    assert set(scores) == open_deals  # closed deals are not scanned
    hooli = scores[demo_id("deal", "hooli-rollout")]  # 21 days silent, single-threaded, 125k
    assert hooli.level == "high" and hooli.score >= 60 and hooli.alerted_at is not None
    vandelay = scores[demo_id("deal", "vandelay-starter")]  # active yesterday
    assert vandelay.level == "low" and vandelay.alerted_at is None
    alerted_owners = {r.user_id for r in messages}
    assert alerted_owners  # at least one owner was told
    assert len(messages) == len(alerted_owners)  # one message per owner
    for m in messages:
        assert m.kind == "deal_risk_alerts" and m.status == "console"
        assert names[m.user_id] in m.text or names[m.user_id] in str(m.blocks)

    again = fire_event(
        {"type": "deal_risk_scan", "source": "cron:daily", "org_id": str(seed.org_id), "idempotency_key": key}
    )
    assert again.duplicate and again.job_id == first.job_id

    second = _scan(seed.org_id, key + "-next")
    alerts = step_rows(second.job_id)["generate-risk-alerts"].output
    assert alerts["alerted"] == 0  # everything alerted a moment ago: not again within 7 days
