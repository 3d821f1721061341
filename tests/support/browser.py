"""Headless Chromium for the browser tests: Debian's `chromium` and `chromium-driver`, installed with
apt when missing (as services.py starts services), driven by Selenium.

No browser is downloaded from anywhere else: the driver is /usr/bin/chromedriver, the browser
/usr/bin/chromium, so Selenium Manager never runs. A failed install fails the test with the command
to run; it never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_COMMAND = "apt-get update && apt-get install -y chromium chromium-driver"
# One apt step (seconds): the packages are about 100 MB; another test session may hold the dpkg lock.
# Update + install fit in INSTALL_BUDGET_S, the deadline a test module using `chromium` gives its tests
# (the first test's deadline includes this session fixture's install).
APT_TIMEOUT_S = 240
# How long apt waits for another apt or dpkg to release its lock (seconds), within APT_TIMEOUT_S.
DPKG_LOCK_WAIT_S = 120
INSTALL_BUDGET_S = 2 * APT_TIMEOUT_S + 120
# A page load or script in a test (seconds): the pages are small and served locally.
PAGE_LOAD_TIMEOUT_S = 30
# Chromium without a display, a sandbox (root in CI), a GPU, or anything that calls home.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # small /dev/shm in containers
    "--window-size=1366,900",  # a laptop screen
)


@dataclass(frozen=True)
class Chromium:
    """Where the browser and its driver are."""

    browser: Path
    driver: Path


def _installed() -> bool:
    return all(p.exists() and os.access(p, os.X_OK) for p in (CHROMIUM, CHROMEDRIVER))


def _apt(*args: str) -> str | None:
    """Run apt-get with `args`; None when it worked, else what went wrong in one line."""
    command = ["apt-get", "-o", f"DPkg::Lock::Timeout={DPKG_LOCK_WAIT_S}", *args]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=APT_TIMEOUT_S, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`{' '.join(command)}` failed: {exc}"
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return f"`{' '.join(command)}` exited {done.returncode}: {lines[-1] if lines else 'no output'}"


def ensure_chromium() -> Chromium:
    """Chromium and chromedriver from Debian's packages, installed with apt-get when missing; the
    calling test fails with one line saying what to run when that is not possible."""
    if not _installed():
        if os.environ.get("PROACTIVE_TEST_NO_START"):  # as services.py: install nothing, say what to run
            pytest.fail(f"Chromium for the browser tests is missing; run as root: {INSTALL_COMMAND}", pytrace=False)
        problem = _apt("update") or _apt("install", "-y", "chromium", "chromium-driver")
        if problem or not _installed():
            pytest.fail(
                f"Chromium for the browser tests is missing ({problem or 'not found after the install'}); "
                f"run as root: {INSTALL_COMMAND}",
                pytrace=False,
            )
    return Chromium(CHROMIUM, CHROMEDRIVER)


@pytest.fixture(scope="session")
def chromium() -> Chromium:
    """Debian's Chromium and chromedriver, installed once per session when missing."""
    return ensure_chromium()


@contextmanager
def chrome(installed: Chromium) -> Iterator[WebDriver]:
    """A headless Chromium with a fresh profile (no cookies), its console log readable through
    `driver.get_log("browser")`; quit and its profile removed at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="proactive-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(installed.browser)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(installed.driver)))
    try:
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
