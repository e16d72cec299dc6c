"""Browser tests: Debian's headless Chromium, driven by Playwright, against `make dev`'s stack in a process.

Playwright's own browser download is not reachable here, so the tests launch ``/usr/bin/chromium`` (``CHROMIUM``
names another). Without it they fail -- they never skip: CI installs it (``.ci/run``).
Screenshots of each key step, the stack's log and a Playwright trace of failing tests go to test-artifacts/browser/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Protocol

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Playwright, expect, sync_playwright

from tests.conftest import ROOT
from tests.stack_process import RunningStack, running_stack

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
# Generous: a slow CI machine must not fail a test that would pass. Nothing measures time.
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)


class Screenshot(Protocol):
    def __call__(self, step: str, show: Locator | None = None) -> Path: ...


@pytest.fixture(scope="session")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def stack(artifacts: Path) -> Iterator[RunningStack]:
    with running_stack(fake_piapi_delay_s=0.5, log_path=artifacts / "local-stack.log") as running:
        yield running


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: the browser tests need Debian's chromium "
            "(`apt-get install -y chromium`, as .ci/run does) or CHROMIUM=/path/to/chromium",
            pytrace=False,
        )
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser, request: pytest.FixtureRequest, artifacts: Path) -> Iterator[BrowserContext]:
    """A fresh browser profile per test (its own sessionStorage), traced; the trace is kept if the test fails."""
    # A fixed time zone: what a card says about a date ("Expires today") does not depend on the machine's.
    fresh = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="UTC")
    fresh.set_default_timeout(TIMEOUT_MS)
    fresh.tracing.start(screenshots=True, snapshots=True)
    yield fresh
    failed = getattr(request.node, "failed_call", False)
    fresh.tracing.stop(path=artifacts / f"{request.node.name}-trace.zip" if failed else None)
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """The page; any uncaught JavaScript error fails the test."""
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshots_of(page: Page, test_name: str, artifacts: Path) -> Screenshot:
    """``take("saved", show=card)`` keeps test-artifacts/browser/<test>-<n>-saved.png: what the screen shows (the
    page scrolls inside its own area, between the header and the notifications), with ``show`` scrolled into the
    middle of it."""
    taken: list[Path] = []

    def take(step: str, show: Locator | None = None) -> Path:
        if show is not None:
            show.evaluate("(element) => element.scrollIntoView({ block: 'center' })")
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{test_name}-{len(taken) + 1:02d}-{step}")
        path = artifacts / f"{name}.png"
        page.screenshot(path=path)
        taken.append(path)
        return path

    return take


@pytest.fixture
def screenshot(page: Page, request: pytest.FixtureRequest, artifacts: Path) -> Screenshot:
    """``screenshot("saved")`` keeps test-artifacts/browser/<test>-<n>-saved.png."""
    return screenshots_of(page, request.node.name, artifacts)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        item.failed_call = True  # type: ignore[attr-defined]
    return report
