"""A production server as docs/deployment.md starts it (DJANGO_DEBUG=0, migrate, collectstatic, daphne),
with no proxy in front: the browser logs in, lists the demo studies and sees an image, every script
and style coming from the server itself under hashed names (crossread.staticfiles), cached for good
and compressed when asked; the health routes answer."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORDS, screenshot
from tests.browser.test_mpr_viewer import not_blank
from tests.live import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.live]

HASHED = re.compile(r"\.[0-9a-f]{12}\.(js|css)$")
#: Relative module specifiers in import/export statements and import() calls of a collected module.
SPECIFIER = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}/[^"']+)["']""")


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("production")
    site = LiveSite.create(  # migrate and collectstatic, as the deployment does
        root, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="production-test-" + "p" * 40, DJANGO_ALLOWED_HOSTS="127.0.0.1",
    )
    site.manage("load_demo", "--slices", "40")
    (url,) = site.start()
    truth = json.loads((root / "data" / "phantom" / "phantom.json").read_text())
    try:
        yield {"site": site, "url": url, "truth": truth, "static_root": root / "data" / "static-root"}
    finally:
        site.stop()
    log = b"".join(path.read_bytes() for path in root.glob("daphne-*.log")).decode()
    assert "Traceback" not in log and "Warning" not in log, log


def test_the_collected_modules_import_each_other_by_hashed_name(production):
    root: Path = production["static_root"]
    manifest = json.loads((root / "staticfiles.json").read_text())["paths"]
    ours = [name for name in manifest if name.endswith(".js") and not name.startswith("admin/")]
    assert "viewer/viewer.js" in ours and len(ours) > 30
    unhashed = []
    for name in ours:
        text = (root / manifest[name]).read_text()
        for specifier in SPECIFIER.findall(text):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), specifier))
            if target not in manifest.values():
                unhashed.append(f"{manifest[name]}: {specifier}")
    assert not unhashed, unhashed
    assert (root / (manifest["viewer/viewer.js"] + ".br")).is_file() and (root / (manifest["viewer/viewer.js"] + ".gz")).is_file()


def test_a_static_file_is_hashed_cached_for_good_and_compressed(production):
    url = production["url"]
    page = requests.get(f"{url}/accounts/login/", timeout=30)
    assert page.status_code == 200
    (css,) = re.findall(r'href="(/static/css/crossread\.[0-9a-f]{12}\.css)"', page.text)
    for encoding in ("br", "gzip"):
        answer = requests.get(url + css, headers={"Accept-Encoding": encoding}, timeout=30, stream=True)
        assert answer.status_code == 200 and answer.headers["Content-Encoding"] == encoding
        assert answer.headers["Cache-Control"] == "max-age=315360000, public, immutable"
        assert "Accept-Encoding" in answer.headers["Vary"] and answer.headers["X-Content-Type-Options"] == "nosniff"
    plain = requests.get(url + css, headers={"Accept-Encoding": "identity"}, timeout=30)
    assert "Content-Encoding" not in plain.headers and plain.text.strip()
    assert int(answer.headers["Content-Length"]) < len(plain.content)
    # The original name stays (for new URL("./x.css", import.meta.url)), cached for a minute only.
    assert requests.get(f"{url}/static/css/crossread.css", timeout=30).headers["Cache-Control"] == "max-age=60, public"
    assert requests.get(f"{url}/healthz", timeout=30).json() == {"status": "alive"}
    assert requests.get(f"{url}/readyz", timeout=30).json()["status"] == "ready"


def test_log_in_see_the_worklist_and_an_image(browser, production):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=production["url"])
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    statics: list[tuple[str, int]] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("response", lambda r: statics.append((r.url, r.status)) if "/static/" in r.url else None)
    try:
        page.goto("/accounts/login/")
        page.fill("#id_username", "reader1")
        page.fill("#id_password", PASSWORDS["reader1"])
        page.click("button[type=submit]")
        page.wait_for_url("**/")
        page.click("text=Crossread demo")
        phantom = page.locator("#wl-rows tr", has_text="PHANTOM-001")
        expect(phantom).to_have_count(2)
        expect(page.locator("#wl-status")).to_have_text(re.compile(r"^\d+ studies\.$"))
        page.wait_for_function(  # rendered thumbnails, not black squares
            "() => [...document.querySelectorAll('#wl-rows img.thumb')].slice(0, 4).every(i => i.complete && i.naturalWidth > 0)"
        )
        screenshot(page, "production-worklist")

        study = production["truth"]["studies"]["baseline"]["study_instance_uid"]
        page.goto(f"/projects/demo/studies/{study}/")
        page.wait_for_selector("body[data-first-image][data-modes]")
        expect(page.locator(".viewport[data-index='0'] .slice-label")).to_have_text("Im 1/40")
        expect(page.locator(".viewport[data-index='0']")).not_to_have_class(re.compile(r"\bloading\b"))
        assert not_blank(page, 0) > 10
        screenshot(page, "production-viewer")
    finally:
        context.close()
    assert not errors, errors
    assert statics and all(status in (200, 304) for _, status in statics), statics
    # Every script and style by its hashed name, each once: one module instance per module.
    paths = [url.split("/static/", 1)[1] for url, _ in statics]
    assert all(HASHED.search(path) for path in paths), [p for p in paths if not HASHED.search(p)]
    # (toolbox.js and toolbox.css are two files: the extension stays in the name compared)
    assert len({HASHED.sub(r".\1", path) for path in paths}) == len(set(paths))
