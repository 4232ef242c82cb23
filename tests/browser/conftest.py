"""Browser tests: a real server (daphne) with the demo loaded, driven through Debian's chromium.

One site and one browser for the whole session; each test gets a fresh browser context (its own
cookies and cache) and logs in through the login page. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHROMIUM
from tests.live import REPO, LiveSite

ARTIFACTS = REPO / "test-artifacts" / "browser"
PASSWORDS = {"organizer": "demo-organizer-pass", "reader1": "demo-reader1-pass", "reader2": "demo-reader2-pass"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.live)
            if not shutil.which(CHROMIUM):
                item.add_marker(pytest.mark.skip(reason=f"needs chromium at {CHROMIUM} (apt-get install chromium)"))


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo project (120-slice phantom and the corpus files) served by daphne."""
    root = tmp_path_factory.mktemp("browser-site")
    site = LiveSite.create(root)
    site.manage("load_demo", "--slices", "120")
    url = site.start(1)[0]
    truth = json.loads((root / "data" / "phantom" / "phantom.json").read_text())
    try:
        yield {"site": site, "url": url, "truth": truth}
    finally:
        site.stop()


@pytest.fixture
def page(browser: Any, demo_site: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=demo_site["url"])
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


def login(page: Any, username: str = "reader1") -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORDS[username])
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
