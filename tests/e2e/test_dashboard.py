"""The orchestrator dashboard in headless Chromium (Debian's packages, driven by Selenium) against the
real app over HTTP on PostgreSQL: a person signs in through a login link, reads the cards, switches
the range, follows a stuck job's link to its timeline, and sees a new job appear by the page's own
auto-refresh (1 s here through `?refresh=1`). No console error, and the page passes axe-core's
accessibility check with data and in an org's empty state; the page's screenshot is written to
tests/artifacts/dashboard.png (and copied by hand to docs/dashboard.png for the README)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.e2e.test_admin_pages import (  # noqa: F401 (env, server, browser: fixtures)
    ARTIFACTS,
    PAGE_S,
    assert_accessible,
    browser,
    console_errors,
    env,
    open_page,
    server,
    text_of,
)
from tests.support.browser import INSTALL_BUDGET_S, chromium  # noqa: F401 (chromium: the fixture)
from tests.support.engine import TestOrg, make_org
from tests.support.metrics import Rows
from tests.support.waiting import wait_for
from worker.access.admin_auth import create_link
from worker.models import utcnow

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(INSTALL_BUDGET_S)]


def seeded_org() -> tuple[TestOrg, Rows, dict[str, uuid.UUID]]:
    """An org with, in the last 7 days, a completed job (its approval decided, its Slack message
    sent), a failed one and a stuck running one (an approval and a message pending); and a completed
    job 10 days ago (in the 30-day window only)."""
    org = make_org()
    r = Rows(org)
    now = utcnow()
    ids = {}
    ids["done"] = done = r.job("completed", now - timedelta(hours=2), seconds=10, source="webhook:gmail")
    r.step(done, "draft_reply", "succeeded", now - timedelta(hours=2), duration_ms=1200)
    ids["failed"] = failed = r.job("failed", now - timedelta(hours=3), seconds=20, event_type="deal_risk_scan")
    err = {"error_class": "transient", "error": "crm unreachable"}
    r.step(failed, "load_deals", "failed", now - timedelta(hours=3), duration_ms=900, **err)
    ids["stuck"] = stuck = r.job("running", now - timedelta(hours=2))
    r.step(stuck, "draft_reply", "running", now - timedelta(hours=2), finished=False)
    r.approval(done, "approved", now - timedelta(hours=2, seconds=-3), approver=org.rep, decided_s=90)
    r.approval(stuck, "pending", now - timedelta(minutes=100), approver=org.other_rep)
    r.message(done, now - timedelta(hours=2, seconds=-2), "sent", now - timedelta(hours=2, seconds=-3))
    r.message(stuck, now - timedelta(minutes=100), "pending", None)
    ids["old"] = r.job("completed", now - timedelta(days=10), seconds=30, source="cron")
    return org, r, ids


def card(driver, name: str) -> str:
    values = text_of(driver, f"#card-{name} dd")
    return values[0] if values else ""


def test_the_dashboard_in_a_browser(browser, server):  # noqa: F811
    from selenium.webdriver.common.by import By

    org, rows, ids = seeded_org()
    page = "/admin/orchestrator"
    open_page(browser, create_link(org.id, next_path=page).url, page)
    assert text_of(browser, "h1")[0].startswith("Orchestrator")
    assert card(browser, "total") == "3"
    assert card(browser, "success") == "50%"
    assert card(browser, "p50") == "15.0 s"  # 10 s and 20 s
    assert card(browser, "stuck") == "1"
    assert (
        browser.find_element(By.CSS_SELECTOR, "svg.daily")
        .get_attribute("aria-label")
        .startswith("Daily jobs over 7 days: 3 in all")
    )
    assert "crm unreachable" in text_of(browser, "table.errors")[0]
    assert "other_rep" in text_of(browser, "#hitl-h + dl + table")[0]  # pending by rep
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1366, height + 140)  # the whole page in one picture (window chrome included)
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    browser.set_window_size(1366, 900)
    assert console_errors(browser) == []
    assert_accessible(browser)

    browser.find_element(By.LINK_TEXT, "30 days").click()
    wait_for(lambda: card(browser, "total") == "4", timeout_s=PAGE_S, what="the 30-day cards")
    assert card(browser, "success") == "66.7%"  # 2 completed of 3 finished
    assert console_errors(browser) == []

    browser.find_element(By.CSS_SELECTOR, ".stuck a").click()
    wait_for(lambda: browser.current_url.endswith(f"/admin/jobs/{ids['stuck']}"), timeout_s=PAGE_S, what="the timeline")
    wait_for(lambda: text_of(browser, "#job-status") == ["running"], timeout_s=PAGE_S, what="the stuck job's status")
    assert console_errors(browser) == []
    assert_accessible(browser)  # a running job's timeline

    refreshing = f"{page}?range=7d&refresh=1"
    open_page(browser, server + refreshing, refreshing)
    assert card(browser, "total") == "3"
    rows.job("completed", utcnow(), seconds=1)  # a new job: the page picks it up by itself
    wait_for(lambda: card(browser, "total") == "4", timeout_s=PAGE_S, what="the refreshed total")
    assert console_errors(browser) == []

    empty = make_org()  # an org without jobs: the dashboard's empty state, in the same browser
    open_page(browser, create_link(empty.id, next_path=page).url, page)
    assert text_of(browser, "#empty")[0].startswith("No jobs in this window.")
    assert card(browser, "total") == "0"
    assert console_errors(browser) == []
    assert_accessible(browser)
