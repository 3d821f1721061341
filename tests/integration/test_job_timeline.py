"""One job's timeline shows the same facts everywhere: `job_detail` (the API), `proactive job ID` and
the admin page list its trace id, its effects, its parent and its follow-up jobs (PostgreSQL and
SQLite)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import insert

from tests.conftest import Backend
from tests.support.engine import event, make_org
from webhooks import create_app
from worker.access.admin_auth import create_link
from worker.config import reset_settings
from worker.db import transaction
from worker.engine.events import fire_event
from worker.models import Effect, utcnow
from worker.ops.cli import main
from worker.ops.views import job_detail


@pytest.fixture(autouse=True)
def session_secret(backend: Backend) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADMIN_SESSION_SECRET", "test-timeline-" + uuid.uuid4().hex)
        reset_settings()
        yield
    reset_settings()


@pytest.fixture
def family() -> tuple[uuid.UUID, uuid.UUID]:
    """A parent job with one recorded (dry-run) email effect, and a follow-up job it fired."""
    org = make_org()
    parent = fire_event(event(org, "campaign_daily_check")).job_id
    child = fire_event(event(org, "campaign_daily_check", parent_job_id=str(parent), depth=1)).job_id
    request = {"to": ["lena@example.com"], "subject": "Rollout plan", "body": "secret body text"}
    with transaction() as conn:
        conn.execute(
            insert(Effect.__table__).values(
                id=uuid.uuid4(),
                org_id=org.id,
                job_id=parent,
                step="s1",
                key=f"{parent}:s1:0:send-email",
                status="done",
                attempt=1,
                result={"dry_run": True, "request": request},
                created_at=utcnow(),
                done_at=utcnow(),
            )
        )
    return parent, child


def test_job_detail_links_parent_and_follow_ups_and_lists_effects(family):
    parent, child = family
    with transaction() as conn:
        up, down = job_detail(conn, parent), job_detail(conn, child)
    assert up["trace_id"] and up["parent"] is None
    assert [f["id"] for f in up["follow_ups"]] == [str(child)]
    assert down["parent"]["id"] == str(parent) and down["follow_ups"] == []
    (effect,) = up["effects"]
    assert effect["name"] == "send-email" and effect["dry_run"] and effect["subject"] == "Rollout plan"
    assert effect["recipients"] == ["lena@example.com"]
    assert "body" not in str(effect) and "secret body text" not in str(effect)  # the stored request stays stored
    assert all(s["queued_at"] for s in up["steps"])


def test_the_cli_prints_the_same_facts(family):
    parent, child = family
    with transaction() as conn:
        trace = job_detail(conn, parent)["trace_id"]
    out = CliRunner().invoke(main, ["job", str(parent)])
    assert out.exit_code == 0, out.output
    assert f"trace {trace}" in out.output
    assert "effect send-email" in out.output and "lena@example.com: Rollout plan" in out.output
    assert "recorded (dry-run)" in out.output
    assert f"follow-up campaign_daily_check job {child}" in out.output
    back = CliRunner().invoke(main, ["job", str(child)])
    assert f"follow-up of campaign_daily_check job {parent}" in back.output


def test_the_page_links_parent_and_follow_ups_and_shows_effects(family):
    parent, child = family
    client = create_app({"TESTING": True}).test_client()
    assert client.get("/" + create_link(None).url.split("/", 3)[3]).status_code == 200
    page = client.get(f"/admin/jobs/{parent}").text
    assert f'href="/admin/jobs/{child}"' in page
    assert "lena@example.com: Rollout plan" in page and "recorded, not made" in page
    assert "secret body text" not in page
    assert f'href="/admin/jobs/{parent}"' in client.get(f"/admin/jobs/{child}").text
