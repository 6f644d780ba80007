"""Browser tests: Debian's Chromium (/usr/bin/chromium) driven by Playwright, never a downloaded browser.

`browser` is one headless Chromium per test module; `page` a fresh context per test; `login(page,
url, token)` opens a console page and logs in; `shot(page, name)` saves a screenshot under
test-artifacts/screenshots/ (CI keeps the folder as the run's artefacts).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("TIANWANG_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


# One Playwright and one Chromium per test module, stopped when the module ends: Playwright's sync API
# runs an event loop on the main thread while it is open, and the other tests call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        msg = f"Chromium is not installed at {CHROMIUM} (make test installs Debian's chromium package)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    p = ctx.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.set_default_timeout(15_000)
    try:
        yield p
    finally:
        ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def login(page: Any, url: str, token: str) -> None:
    """Open `url` (a console page) and log in with `token`; waits until the page's content shows."""
    page.goto(url)
    page.fill("#tw-token", token)
    page.click("#tw-login-form button[type=submit]")
    page.wait_for_selector("#tw-main:not([hidden])")


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
