"""coaching_weekly end to end: a rep's week of recorded calls becomes one stored report and a digest DM."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, select

from sequences.skills.coaching.rules import iso_week_bounds, iso_week_of
from tests.integration.sequences.conftest import World, wait_delivered, wait_job
from tests.support.engine import step_rows
from worker.db import transaction
from worker.engine.events import fire_event
from worker.models import CoachingReport, Meeting
from worker.ops.seed import demo_id

pytestmark = pytest.mark.slow
STEPS = ("aggregate-weekly-metrics", "correlate-win-loss", "generate-coaching-digest", "deliver-coaching-slack")
ALICE_TZ = "America/New_York"


@pytest.fixture
def week(w: World) -> Iterator[str]:
    """The ISO week (alice's clock) of her seeded discovery call, with no coaching report stored for it yet."""
    with transaction() as conn:
        start = conn.execute(
            select(Meeting.start_at).where(Meeting.id == demo_id("meeting", "globex-discovery"))
        ).scalar_one()
    label = iso_week_of(start, ALICE_TZ)
    _forget_reports(w, label)
    yield label
    _forget_reports(w, label)


def _alices(w: World, week: str) -> Any:
    """The WHERE clause of alice's coaching reports for `week`."""
    r = CoachingReport.__table__.c
    return (r.org_id == w.org_id) & (r.user_id == w.user("alice")) & (r.week == week)


def _forget_reports(w: World, week: str) -> None:
    with transaction() as conn:
        conn.execute(delete(CoachingReport.__table__).where(_alices(w, week)))


def _recorded_meetings(w: World, week: str) -> list[uuid.UUID]:
    """Alice's meetings with a transcript that start in `week` (what can be coached on)."""
    start, end = iso_week_bounds(week, ALICE_TZ)
    with transaction() as conn:
        rows = conn.execute(
            select(Meeting.id, Meeting.transcript).where(
                Meeting.org_id == w.org_id,
                Meeting.user_id == w.user("alice"),
                Meeting.start_at >= start,
                Meeting.start_at < end,
            )
        ).all()
    return [r.id for r in rows if (r.transcript or "").strip()]


def _reports(w: World, week: str) -> list[Any]:
    with transaction() as conn:
        return list(conn.execute(select(CoachingReport.__table__).where(_alices(w, week))))


def _fire(w: World, week: str) -> uuid.UUID:
    return fire_event(w.event("coaching_weekly", {"week": week}, user="alice")).job_id


def test_the_week_is_aggregated_stored_and_sent_to_the_rep(w: World, week: str):
    meetings = _recorded_meetings(w, week)
    assert demo_id("meeting", "globex-discovery") in meetings

    job = _fire(w, week)
    assert wait_job(job) == "completed"
    rows = step_rows(job)
    assert [rows[s].status for s in STEPS] == ["succeeded"] * 4
    weekly = rows["aggregate-weekly-metrics"].output
    assert (weekly["week"], weekly["timezone"]) == (week, ALICE_TZ)
    metrics = weekly["metrics"]
    assert metrics["meetings"] == len(meetings)
    standup = demo_id("meeting", "team-standup")  # internal, not a sales call; the others are discovery/demo calls
    assert metrics["sales_meetings"] == len([m for m in meetings if m != standup]) >= 1
    assert 0 < metrics["talk_ratio"] < 1 and metrics["questions_per_meeting"] > 0
    assert metrics["best_meeting_id"] in {str(m) for m in meetings}

    [report] = _reports(w, week)
    assert report.job_id == job and report.metrics == metrics
    assert report.digest.startswith(f"Coaching digest for Alice Moreau, week {week}")
    assert rows["deliver-coaching-slack"].output["report_id"] == str(report.id)

    wait_delivered(job)
    assert [(c.method, c.params.get("users") or c.params.get("channel")) for c in w.slack.calls()] == [
        ("conversations.open", "U0ALICE"),
        ("chat.postMessage", w.dm("alice")),
    ]
    posted = w.slack.calls("chat.postMessage")[0].params
    fields = [f["text"] for b in posted["blocks"] if b["type"] == "section" for f in b.get("fields") or []]
    assert posted["blocks"][0]["text"]["text"] == f":mortar_board: Coaching digest · {week}"
    assert f"*Meetings*\n{len(meetings)}" in fields
    assert f"*Talk ratio*\n{metrics['talk_ratio'] * 100:.0f} %" in fields
    assert not [b for b in posted["blocks"] if b["type"] == "actions"]  # information only


def test_a_second_job_for_the_same_week_keeps_one_report(w: World, week: str):
    first = _fire(w, week)
    assert wait_job(first) == "completed"
    second = _fire(w, week)
    assert wait_job(second) == "completed"

    [report] = _reports(w, week)
    assert report.job_id == first
    assert step_rows(second)["deliver-coaching-slack"].output["report_id"] == str(report.id)
    wait_delivered(first)
    wait_delivered(second)
    assert len(w.slack.calls("chat.postMessage", channel=w.dm("alice"))) == 2  # each job still sends its digest
