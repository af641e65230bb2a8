"""Browser fixtures: Playwright driving Debian's chromium (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "pw-secret-1"  # make_user's password
# The pages follow the browser's Accept-Language, and these tests find things by their
# English text: every context asks for English, whatever the machine's locale.
LOCALE = "en-US"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless chromium per test module; the tests skip loudly without one."""
    if not CHROMIUM.exists():
        message = (
            f"!!! {CHROMIUM} is missing: browser tests SKIPPED. "
            "Install Debian's chromium package (make test does so as root). !!!"
        )
        print(f"\n{message}")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running on this thread while it is
    # open, so Django would refuse the (synchronous) ORM calls of these tests and
    # their fixtures. Allowed only while the browser is open, i.e. in these modules.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()


@pytest.fixture(autouse=True)
def _no_rate_limit(settings: Any) -> None:
    settings.REVOCATION_API_READ_RATE = "100000/s"
    settings.REVOCATION_API_WRITE_RATE = "100000/s"


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """Return a function that saves a full-page screenshot under test-artifacts/e2e/.

    With `docs_name`, the picture also becomes docs/screenshots/<docs_name> when it is
    missing there or UPDATE_SCREENSHOTS=1 (so ordinary runs leave committed files alone).
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(page: Any, name: str, *, docs_name: str | None = None) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if docs_name:
            target = DOCS_SCREENSHOTS / docs_name
            if not target.exists() or os.environ.get("UPDATE_SCREENSHOTS") == "1":
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        return path

    return save


def log_in(context: Any, base_url: str, username: str, password: str = PASSWORD) -> Any:
    """Open a page in `context` and log in through the login form; return the page."""
    page = context.new_page()
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/sessions/")
    return page
