"""The orchestrator dashboard (`GET /admin/orchestrator`) through the Flask test client on
PostgreSQL, against the hand-computed metrics fixture of test_metrics.py: sign-in, org scoping,
the range switch and its refusal, the numbers on the cards, the stuck-jobs alert, empty states."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.integration.test_metrics import NOW, env, fixture  # noqa: F401 (fixtures)
from tests.support.engine import make_org
from webhooks import create_app
from webhooks.dashboard import daily_chart, nice_max, percent, refresh_seconds
from worker.access.admin_auth import create_link
from worker.config import reset_settings
from worker.metrics import report as metrics

pytestmark = pytest.mark.postgres

SECRET = "test-dashboard-session-" + uuid.uuid4().hex


@pytest.fixture(autouse=True)
def session_secret(env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:  # noqa: F811
    monkeypatch.setenv("ADMIN_SESSION_SECRET", SECRET)
    monkeypatch.setattr(metrics, "utcnow", lambda: NOW)  # the fixture's hand-computed "now"
    reset_settings()
    yield
    reset_settings()


@pytest.fixture
def client() -> FlaskClient:
    return create_app({"TESTING": True}).test_client()


def sign_in(client: FlaskClient, org_id: uuid.UUID | None) -> None:
    url = create_link(org_id).url
    assert client.get("/" + url.split("/", 3)[3]).status_code == 200


def card(html: str, name: str) -> str:
    """The value of the card with id `card-NAME`."""
    start = html.index(f'id="card-{name}"')
    return html[html.index("<dd>", start) + 4 : html.index("</dd>", start)]


def test_without_a_session_the_dashboard_redirects_to_the_how_to(client):
    response = client.get("/admin/orchestrator?range=30d")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/admin/login?next=")
    assert "proactive admin link" in client.get(response.headers["Location"]).text


def test_the_cards_show_the_fixtures_numbers_and_the_range_changes_them(client, fixture):  # noqa: F811
    org, ids = fixture["org"], fixture["ids"]
    sign_in(client, org.id)
    response = client.get("/admin/orchestrator")
    assert response.status_code == 200
    html = response.text
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert card(html, "total") == "9"
    assert card(html, "success") == "50%"  # 2 completed / 4 finished
    assert card(html, "p50") == "25.0 s"  # 20 s and 30 s of 10, 20, 30, 900 s
    assert "average 4.0 min" in html  # 240 000 ms
    assert card(html, "p95") == "12.8 min"  # 769 500 ms
    assert card(html, "stuck") == "2"
    for stuck in ("j7", "j8"):  # the alert links each stuck job's timeline
        assert f'href="/admin/jobs/{ids[stuck]}"' in html
    assert f'href="/admin/jobs/{ids["j1"]}">timeline' in html  # the permanent error's example job
    assert "crm unreachable" in html and "job deadline passed" in html
    assert "2026-03-28: 1 jobs, 0 completed, 1 failed" in html  # the timeout's day, as a bar's <title>
    assert 'role="img" aria-label="Daily jobs over 7 days: 9 in all, most on 2026-03-31 (3)."' in html
    assert "other_rep" in html and "1.5 min" in html  # pending by rep; decision median 90 s
    assert 'data-refresh-ms="30000"' in html and "/static/dashboard.js" in html

    wider = client.get("/admin/orchestrator?range=30d").text
    assert card(wider, "total") == "10" and card(wider, "success") == "60%"  # J10 joins
    assert 'aria-current="page">30 days' in wider
    assert 'data-refresh-ms="2000"' in client.get("/admin/orchestrator?refresh=2").text


def test_an_unknown_range_is_a_400_listing_the_accepted_ones(client, fixture):  # noqa: F811
    sign_in(client, fixture["org"].id)
    response = client.get("/admin/orchestrator?range=1y")
    assert response.status_code == 400
    assert "7d, 30d, 90d" in response.text


def test_an_org_session_sees_only_its_org(client, fixture):  # noqa: F811
    sign_in(client, fixture["org"].id)
    for other in (str(fixture["other"].id), "not-a-uuid"):
        response = client.get(f"/admin/orchestrator?org_id={other}")
        assert response.status_code == 404, other
        assert "Org not found" in response.text
    assert client.get(f"/admin/orchestrator?org_id={fixture['org'].id}").status_code == 200


def test_an_all_orgs_session_switches_orgs_and_an_empty_org_says_what_to_do(client, fixture):  # noqa: F811
    empty = make_org()
    sign_in(client, None)
    html = client.get(f"/admin/orchestrator?org_id={fixture['other'].id}").text
    assert card(html, "total") == "1"
    assert f"org_id={fixture['other'].id}" in html and 'aria-label="Org"' in html  # the switcher
    page = client.get(f"/admin/orchestrator?org_id={empty.id}").text
    assert card(page, "total") == "0" and card(page, "success") == "—"
    assert "No jobs in this window" in page and "proactive smoke" in page
    assert client.get(f"/admin/orchestrator?org_id={uuid.uuid4()}").status_code == 404


def test_the_chart_and_the_formatting_helpers():
    days: list[dict[str, Any]] = [
        {"date": "2026-03-01", "total": 3, "completed": 1, "failed": 1},
        {"date": "2026-03-02", "total": 0, "completed": 0, "failed": 0},
    ]
    chart = daily_chart(days)
    first = chart.bars[0]
    assert [nice_max(n) for n in (0, 1, 3, 7, 11, 60)] == [1, 1, 5, 10, 20, 100]
    assert first.completed_h == first.failed_h == first.other_h == round(142 / 5, 2)  # top 5, plot 142 high
    assert first.failed_y + first.failed_h == first.completed_y
    assert chart.bars[1].completed_h == 0 and chart.summary.endswith("3 in all, most on 2026-03-01 (3).")
    assert [v for _, v in chart.ticks] == [0, 2, 5]
    assert percent(None) == "—" and percent(0.5) == "50%" and percent(0.6667) == "66.7%"
    assert refresh_seconds(None) == 30 and refresh_seconds("2") == 2 and refresh_seconds("x") == 30
    assert refresh_seconds("0") == 1 and refresh_seconds("99999") == 3600


def test_a_link_without_a_page_lands_on_the_dashboard(client, fixture):  # noqa: F811
    url = create_link(fixture["org"].id).url
    assert (
        '<meta http-equiv="refresh" content="0; url=/admin/orchestrator">'
        in client.get("/" + url.split("/", 3)[3]).text
    )
    assert client.get("/admin").headers["Location"] == "/admin/orchestrator"
    assert 'href="/admin/orchestrator" aria-current="page">Orchestrator' in client.get("/admin/orchestrator").text
