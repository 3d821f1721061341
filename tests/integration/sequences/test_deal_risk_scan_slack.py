"""deal_risk_scan with Slack on: one deal_risk_alerts DM per owner of high-risk deals, opened and posted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete, select

from tests.integration.sequences.conftest import World, wait_delivered, wait_job
from tests.support.engine import step_rows
from worker.db import transaction
from worker.engine.events import fire_event
from worker.models import Contact, Deal, DealRiskScore, SlackOutbox, utcnow

pytestmark = pytest.mark.slow
STEPS = ("scan-active-deals", "score-deal-risks", "generate-risk-alerts", "deliver-risk-slack")
# key: owner, stage, value, days silent, close date in days, with the silent contact as primary contact.
# Fresh deals (never alerted), because an alert mutes a deal for 7 days.
DEALS = {
    "alice-big": ("alice", "negotiation", 90_000, 30, -5, True),  # 25 + 20 + 15 + 15 + 5 = 80, high
    "alice-soon": ("alice", "discovery", 20_000, 20, 3, True),  # 25 + 20 + 10 + 15 + 5 = 75, high
    "bruno-late": ("bruno", "proposal", 50_000, 15, -2, True),  # 25 + 20 + 15 + 15 + 5 = 80, high
    "maya-fresh": ("maya", "qualification", 5_000, 0, 60, False),  # no emails 25 + single-threaded 10 = 35, low
}
OWNERS = ("alice", "bruno")  # the owners of high-risk DEALS


@pytest.fixture
def deals(w: World) -> Iterator[dict[str, tuple[uuid.UUID, str]]]:
    """DEALS in the demo org, by key: (id, name); removed afterwards with their scores."""
    now = utcnow()
    tag = uuid.uuid4().hex[:6]
    contact_id = uuid.uuid4()
    made = {key: (uuid.uuid4(), f"Risk {key} {tag}") for key in DEALS}
    with transaction() as conn:
        conn.execute(
            Contact.__table__.insert().values(
                id=contact_id, org_id=w.org_id, name="Quiet Buyer", email=f"quiet-{tag}@buyer.example"
            )
        )
        for key, (owner, stage, value, silent_d, close_in_d, with_contact) in DEALS.items():
            deal_id, name = made[key]
            conn.execute(
                Deal.__table__.insert().values(
                    id=deal_id, org_id=w.org_id, name=name, stage=stage, value=Decimal(value), currency="USD",
                    owner_id=w.user(owner), primary_contact_id=contact_id if with_contact else None,
                    close_date=(now + timedelta(days=close_in_d)).date(),
                    last_activity_at=now - timedelta(days=silent_d), stage_changed_at=now - timedelta(days=40),
                    created_at=now - timedelta(days=60),
                )
            )  # fmt: skip
    yield made
    with transaction() as conn:
        conn.execute(delete(Deal.__table__).where(Deal.id.in_([d for d, _ in made.values()])))
        conn.execute(delete(Contact.__table__).where(Contact.id == contact_id))


def _scan(w: World, deal_ids: list[uuid.UUID]) -> uuid.UUID:
    payload = {"deal_ids": [str(d) for d in deal_ids]}
    return fire_event(w.event("deal_risk_scan", payload, user=None, source="cron:daily")).job_id


def test_one_alert_dm_per_owner_of_high_risk_deals(w: World, deals: dict[str, tuple[uuid.UUID, str]]):
    ids = {key: deal_id for key, (deal_id, _) in deals.items()}
    job = _scan(w, list(ids.values()))
    assert wait_job(job) == "completed"
    rows = step_rows(job)
    assert [rows[s].status for s in STEPS] == ["succeeded"] * 4

    with transaction() as conn:
        scores = {
            r.deal_id: r for r in conn.execute(select(DealRiskScore.__table__).where(DealRiskScore.job_id == job))
        }
    assert {key: (scores[i].score, scores[i].level, scores[i].alerted_at is not None) for key, i in ids.items()} == {
        "alice-big": (80, "high", True),
        "alice-soon": (75, "high", True),
        "bruno-late": (80, "high", True),
        "maya-fresh": (35, "low", False),
    }
    alerts = rows["generate-risk-alerts"].output
    assert alerts["alerted"] == 3
    assert {owner: sorted(d["deal_id"] for d in items) for owner, items in alerts["by_owner"].items()} == {
        str(w.user("alice")): sorted([str(ids["alice-big"]), str(ids["alice-soon"])]),
        str(w.user("bruno")): [str(ids["bruno-late"])],
    }
    delivered = rows["deliver-risk-slack"].output
    assert delivered["messages"] == 2 and sorted(delivered["owners"]) == sorted(str(w.user(k)) for k in OWNERS)

    outbox = wait_delivered(job)
    calls = w.slack.calls()
    assert sorted(c.params["users"] for c in calls if c.method == "conversations.open") == ["U0ALICE", "U0BRUNO"]
    assert sorted(c.method for c in calls) == ["chat.postMessage"] * 2 + ["conversations.open"] * 2
    posts = {c.params["channel"]: c for c in calls if c.method == "chat.postMessage"}
    assert set(posts) == {w.dm("alice"), w.dm("bruno")}
    alice, bruno = posts[w.dm("alice")].params, posts[w.dm("bruno")].params
    assert alice["text"] == "2 deals at risk for Alice Moreau (2 high)"
    assert bruno["text"] == "1 deal at risk for Bruno Keller (1 high)"
    name = {key: deal_name for key, (_, deal_name) in deals.items()}
    alice_shows, bruno_shows = str(alice["blocks"]), str(bruno["blocks"])
    assert 0 <= alice_shows.index(name["alice-big"]) < alice_shows.index(name["alice-soon"])  # riskiest first
    assert name["bruno-late"] in bruno_shows and name["alice-big"] not in bruno_shows
    assert name["maya-fresh"] not in alice_shows + bruno_shows
    assert {(r.kind, r.status, r.user_id, r.channel, r.ts) for r in outbox} == {
        ("deal_risk_alerts", "sent", w.user(key), w.dm(key), posts[w.dm(key)].response["ts"]) for key in OWNERS
    }


def test_a_deal_alerted_today_is_not_alerted_again(w: World, deals: dict[str, tuple[uuid.UUID, str]]):
    ids = [deal_id for deal_id, _ in deals.values()]
    first = _scan(w, ids)
    assert wait_job(first) == "completed"
    wait_delivered(first)
    assert len(w.slack.calls("chat.postMessage")) == 2

    again = _scan(w, ids)
    assert wait_job(again) == "completed"
    rows = step_rows(again)
    assert [rows[s].status for s in STEPS] == ["succeeded"] * 4
    assert [d["previous_score"] for d in rows["score-deal-risks"].output["scored"]] == [
        d["score"] for d in step_rows(first)["score-deal-risks"].output["scored"]
    ]
    assert rows["generate-risk-alerts"].output == {"by_owner": {}, "alerted": 0}
    assert rows["deliver-risk-slack"].output == {"messages": 0, "owners": []}
    with transaction() as conn:
        assert conn.execute(select(SlackOutbox.id).where(SlackOutbox.job_id == again)).all() == []
    assert len(w.slack.calls("chat.postMessage")) == 2  # still only the first scan's two
