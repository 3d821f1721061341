"""The admin pages in a real browser: headless Chromium (Debian's packages, driven by Selenium) against
the real app served over HTTP by werkzeug's server, on PostgreSQL + Redis with a real `celery
worker` running the jobs.

A person signs in through a `proactive admin link` URL and reads a finished job's timeline (steps,
the approval and who decided it, its Slack message, the trace id); another org's job is not found,
a used link is refused, a browser without a session is told how to get a link, the Cancel button
works through its CSRF-protected form. No page logs a console error, and every page passes axe-core's
automated accessibility check (WCAG 2.0/2.1 A and AA and best practices; axe-core is vendored under
tests/support/vendor). Screenshots of every page a
test reaches are written under tests/artifacts/ (git-ignored) on every run.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.conftest import Backend, apply_env
from tests.integration.conftest import TEST_ENGINE_ENV
from tests.support.axe import axe_violations, format_violations
from tests.support.browser import INSTALL_BUDGET_S, Chromium, chrome, chromium  # noqa: F401 (chromium: the fixture)
from tests.support.engine import TestOrg, event, job_row, make_org, pending_approval, reached, settled
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from webhooks import create_app
from worker.access.admin_auth import create_link
from worker.config import reset_settings
from worker.engine.approvals import decide
from worker.engine.events import fire_event

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.usefixtures("test_sequences"),
    pytest.mark.timeout(INSTALL_BUDGET_S),  # the first test may wait for apt to install Chromium
]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SECRET = "e2e-admin-session-" + uuid.uuid4().hex
# How long a page may take to appear after a navigation or a click (seconds).
PAGE_S = 15.0
# A job of the test DAGs through its worker, approval included (seconds).
JOB_S = 30.0


@pytest.fixture(scope="module")
def env(postgres_backend: Backend) -> Iterator[dict[str, str]]:
    """PostgreSQL + Redis and the sign-in secret, for this process (the server runs in it) and the worker."""
    chosen = {**postgres_backend.env, **TEST_ENGINE_ENV, "ADMIN_SESSION_SECRET": SECRET}
    with pytest.MonkeyPatch.context() as mp:
        apply_env(mp, chosen)
        yield chosen
    reset_settings()


@pytest.fixture(scope="module")
def worker(env: dict[str, str], tmp_home: Path) -> Iterator[WorkerProcess]:
    w = WorkerProcess(env, tmp_home / "logs-e2e", "admin-pages").start()
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def server(env: dict[str, str]) -> Iterator[str]:
    """The app from `create_app()` behind werkzeug's threaded HTTP server; APP_URL points at it."""
    http = make_server("127.0.0.1", 0, create_app(), threaded=True)
    url = f"http://127.0.0.1:{http.server_port}"
    thread = threading.Thread(target=http.serve_forever, name="admin-pages-http", daemon=True)
    thread.start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("APP_URL", url)
            reset_settings()
            yield url
    finally:
        http.shutdown()
        thread.join(timeout=10)
        reset_settings()


@pytest.fixture(scope="module")
def org_a(env: dict[str, str]) -> TestOrg:
    return make_org()


@pytest.fixture(scope="module")
def decided_job(org_a: TestOrg, worker: WorkerProcess) -> uuid.UUID:
    """A finished job of org A whose approval the rep decided ("Send invite")."""
    job_id = fire_event(event(org_a, "calendar_find_times")).job_id
    assert wait_for(lambda: settled(job_id), timeout_s=JOB_S, what="job paused") == "awaiting_approval"
    approval = pending_approval(job_id)
    decide(approval.id, "send_invite", user_id=org_a.rep, data={"slot": "2026-12-01T15:00:00Z"})
    assert wait_for(lambda: reached(job_id, "completed", "failed"), timeout_s=JOB_S, what="job done") == "completed"
    return job_id


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh headless Chromium (no cookies) per test; a screenshot of its last page is kept."""
    installed: Chromium = request.getfixturevalue("chromium")  # installed with apt once per session
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chrome(installed) as driver:
        try:
            yield driver
        finally:
            driver.save_screenshot(str(ARTIFACTS / f"{request.node.name}-last.png"))


def screenshot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"admin-{name}.png"))


def console_errors(driver: Any, *expected_statuses: int) -> list[str]:
    """The page's console errors, less the browser's note on an error status the test expects."""
    allowed = tuple(f"status of {s} " for s in expected_statuses)
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and not any(a in e["message"] for a in allowed)
    ]


def open_page(driver: Any, url: str, path: str) -> None:
    """Go to `url` and wait until the browser shows `path` (a sign-in page moves on by itself)."""
    driver.get(url)
    wait_for(
        lambda: (
            driver.current_url.split("://", 1)[1].split("/", 1)[1] == path.lstrip("/")
            and driver.execute_script("return document.readyState") == "complete"
        ),
        timeout_s=PAGE_S,
        what=f"the browser at {path} (it is at {driver.current_url})",
    )


def assert_accessible(driver: Any) -> None:
    """The page the browser shows passes axe-core's check (WCAG 2.0/2.1 A and AA, best practices);
    a failure lists each violation with the elements it found."""
    violations = axe_violations(driver)
    assert not violations, format_violations(violations, url=driver.current_url)


def text_of(driver: Any, css: str) -> list[str]:
    """The visible text of the elements matching `css` ([] while the page is being replaced).

    While a form post navigates, an element found a moment ago can leave the document before its
    text is read: Selenium says so as a stale reference, or chromedriver passes on DevTools'
    "Node with given id does not belong to the document". Both mean "ask again"."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By

    try:
        return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]
    except StaleElementReferenceException:
        return []
    except WebDriverException as exc:
        if "does not belong to the document" in (exc.msg or ""):
            return []
        raise


def test_a_login_link_opens_the_jobs_timeline(browser, server, org_a, decided_job):
    from selenium.webdriver.common.by import By

    page = f"/admin/jobs/{decided_job}"
    link = create_link(org_a.id, next_path=page)
    open_page(browser, link.url, page)
    screenshot(browser, "timeline")

    assert text_of(browser, "h1")[0].lower().startswith("calendar find times")
    assert text_of(browser, "#job-status") == ["completed"]
    assert [r.get_attribute("data-step") for r in browser.find_elements(By.CSS_SELECTOR, "tr.step")] == [
        "prepare",
        "review",
        "act",
    ]
    for row in browser.find_elements(By.CSS_SELECTOR, "tr.step"):
        bar = row.find_element(By.CSS_SELECTOR, "svg.bar")
        assert "succeeded" in bar.get_attribute("aria-label") and "finished" in bar.get_attribute("aria-label")
        drawn = "wait" if row.get_attribute("data-step") == "review" else "ok"  # review waited for the rep
        assert row.find_elements(By.CSS_SELECTOR, f"rect.seg.{drawn}"), row.text
    (approval,) = text_of(browser, "tr.approval")
    assert "calendar slots" in approval and "approved" in approval and "Send invite" in approval
    assert "rep" in approval and "2026-12-01T15:00:00Z" in approval  # who decided, and what they chose
    assert text_of(browser, "tr.message"), "the approval's Slack message is listed"
    assert text_of(browser, "#trace-id") == [job_row(decided_job).trace_id]
    assert console_errors(browser) == []
    assert_accessible(browser)

    browser.find_element(By.LINK_TEXT, "Jobs").click()
    wait_for(lambda: browser.current_url.endswith("/admin/jobs"), timeout_s=PAGE_S, what="the job list")
    screenshot(browser, "jobs")
    assert any("calendar find times" in row and "completed" in row for row in text_of(browser, "table.jobs tbody tr"))
    assert console_errors(browser) == []
    assert_accessible(browser)


def test_another_orgs_job_is_not_found(browser, server, org_a, worker):
    theirs = fire_event(event(make_org(), "campaign_daily_check")).job_id
    page = f"/admin/jobs/{theirs}"
    open_page(browser, create_link(org_a.id, next_path=page).url, page)
    screenshot(browser, "not-found")
    assert text_of(browser, "h1") == ["Job not found"]
    assert str(theirs) in browser.page_source and "campaign" not in text_of(browser, "main")[0]
    assert console_errors(browser, 404) == []
    assert_accessible(browser)


def test_a_used_link_is_refused(browser, server, org_a):
    link = create_link(org_a.id)
    open_page(browser, link.url, "/admin/orchestrator")  # a link without a page lands on the dashboard
    browser.delete_all_cookies()
    browser.get(link.url)
    screenshot(browser, "link-used")
    assert text_of(browser, "h1") == ["Sign in to the admin pages"]
    assert "already used" in text_of(browser, "[role=alert]")[0]
    assert console_errors(browser, 401) == []
    assert_accessible(browser)


def test_without_a_session_the_page_says_how_to_get_a_link(browser, server, decided_job):
    page = f"/admin/jobs/{decided_job}"
    browser.get(server + page)
    wait_for(lambda: "/admin/login" in browser.current_url, timeout_s=PAGE_S, what="the sign-in page")
    screenshot(browser, "sign-in")
    assert text_of(browser, "h1") == ["Sign in to the admin pages"]
    assert text_of(browser, "pre.command") == [f"proactive admin link --next '{page}'"]
    assert console_errors(browser, 401) == []
    assert_accessible(browser)


def test_the_cancel_button_cancels_a_paused_job(browser, server, org_a, worker):
    from selenium.webdriver.common.by import By

    job_id = fire_event(event(org_a, "calendar_find_times")).job_id
    assert wait_for(lambda: settled(job_id), timeout_s=JOB_S, what="job paused") == "awaiting_approval"
    page = f"/admin/jobs/{job_id}"
    open_page(browser, create_link(org_a.id, next_path=page).url, page)
    assert text_of(browser, "#job-status") == ["awaiting approval"]
    assert_accessible(browser)  # the timeline with its Cancel form
    csrf = browser.find_element(By.CSS_SELECTOR, "input[name=csrf_token]").get_attribute("value")
    assert re.fullmatch(r"[\w.\-]+", csrf)
    browser.find_element(By.CSS_SELECTOR, "button.danger").click()
    wait_for(lambda: text_of(browser, "#job-status") == ["cancelled"], timeout_s=PAGE_S, what="the job cancelled")
    screenshot(browser, "cancelled")
    assert job_row(job_id).status == "cancelled"
    assert not browser.find_elements(By.CSS_SELECTOR, "button.danger")  # nothing left to cancel
    assert console_errors(browser) == []


def test_every_control_and_chart_is_labelled(browser, server, org_a, decided_job):
    """A quick accessibility pass besides axe-core's: one h1, labelled form controls, charts with a
    text alternative, a language and a title on every page reached."""
    from selenium.webdriver.common.by import By

    page = f"/admin/jobs/{decided_job}"
    open_page(browser, create_link(org_a.id, next_path=page).url, page)
    for path in (page, "/admin/jobs", "/admin/orchestrator"):
        open_page(browser, server + path, path)
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        assert browser.title.endswith("· Proactive admin")
        assert len(browser.find_elements(By.TAG_NAME, "h1")) == 1
        for svg in browser.find_elements(By.CSS_SELECTOR, "svg[role=img]"):
            assert svg.get_attribute("aria-label")
        for control in browser.find_elements(By.CSS_SELECTOR, "select, input:not([type=hidden])"):
            assert browser.find_elements(By.CSS_SELECTOR, f"label[for='{control.get_attribute('id')}']")
        assert console_errors(browser) == []
    browser.set_window_size(1024, 768)  # a small laptop: the page itself never scrolls sideways
    open_page(browser, server + page, page)
    screenshot(browser, "timeline-1024")
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    open_page(browser, server + "/admin/orchestrator", "/admin/orchestrator")
    screenshot(browser, "dashboard-1024")
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


def test_a_browser_that_cannot_be_installed_fails_the_test_with_the_command_to_run(tmp_path, monkeypatch):
    from tests.support import browser as support

    monkeypatch.setattr(support, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get either
    with pytest.raises(pytest.fail.Exception) as failed:
        support.ensure_chromium()
    message = str(failed.value)
    assert "\n" not in message and message.endswith(f"run as root: {support.INSTALL_COMMAND}")
    assert "apt-get" in message.split(";")[0]  # and why the install did not work
