"""Shared fixtures. Domain-core tests (tests/imaging, tests/deid, tests/annotations) need no database."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = ["tests.factories.models"]


@pytest.fixture(autouse=True)
def _data_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test that touches Django settings stores its files in a fresh folder."""
    if "settings" not in request.fixturenames and "db" not in request.fixturenames and not any(
        name in request.fixturenames for name in ("transactional_db", "live_server")
    ):
        return
    settings = request.getfixturevalue("settings")
    settings.DATA_DIR = tmp_path_factory.mktemp("data")


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # Real hashing costs ~0.3 s per user; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Debian's chromium, driven by Playwright (it cannot download its own browser here). One browser per
# test module, closed at its end: Playwright's sync API cannot run twice at once in one thread, and
# while it runs, the thread has an event loop (asyncio.run in later tests would fail).
CHROMIUM = os.environ.get("CROSSREAD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"needs chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
