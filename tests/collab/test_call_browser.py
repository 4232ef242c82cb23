"""Two readers in two Chromium contexts with fake media devices: both join the session's call, and
each side's RTCPeerConnection statistics show inbound audio growing; one mutes and the other's
inbound audio level drops to silence; a chat message with the sender's view reaches the other reader,
whose click on it opens the same slice (the corner text says so)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.collab.conftest import log_in, open_reader
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.live import REPO

pytestmark = [pytest.mark.browser, pytest.mark.live]

#: Chromium answers the permission prompt itself and captures a test pattern and a beeping tone.
MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              "--autoplay-policy=no-user-gesture-required"]
SCREENSHOTS = REPO / "docs" / "screenshots"

#: The inbound audio of the page's one peer connection: bytes, total energy and the current level.
INBOUND = """async () => {
  const peer = [...crossreadSession.call.peers.values()][0];
  if (!peer) return null;
  let found = null;
  (await peer.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio")
      found = { bytes: r.bytesReceived || 0, energy: r.totalAudioEnergy || 0, level: r.audioLevel || 0,
                duration: r.totalSamplesDuration || 0 };
  });
  return found;
}"""


@pytest.fixture(scope="module")
def media_browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"needs chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *MEDIA_ARGS])
        try:
            yield instance
        finally:
            instance.close()


def inbound_over(page: Any, seconds: float) -> dict[str, float]:
    """How the page's inbound audio changed over ``seconds``: bytes, energy, and the highest level seen
    (once the connection reports an inbound audio stream: "connected" can come before its first packet)."""
    for _ in range(40):
        first = page.evaluate(INBOUND)
        if first is not None:
            break
        page.wait_for_timeout(250)
    assert first is not None, "no inbound audio stream after 10 s"
    highest = 0.0
    for _ in range(int(seconds / 0.25)):
        page.wait_for_timeout(250)
        highest = max(highest, page.evaluate(INBOUND)["level"])
    last = page.evaluate(INBOUND)
    return {"bytes": last["bytes"] - first["bytes"], "energy": last["energy"] - first["energy"], "level": highest}


def test_two_readers_talk_mute_and_point_at_a_slice(media_browser: Any, live_demo: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    one = open_reader(media_browser, live_demo, "reader1", errors, timeout=20_000)
    two = open_reader(media_browser, live_demo, "reader2", errors, timeout=20_000)
    try:
        expect(one.locator(".collab-call-note")).to_contain_text("local network only")
        expect(one.locator(".collab-call-controls")).not_to_contain_text("null")  # (nobody in the call yet)
        one.check("#collab-camera")  # reader1 with the camera, reader2 voice only
        one.click("#collab-join-audio")
        expect(one.locator("#collab-mute")).to_be_visible()
        expect(two.locator(".collab-call-controls")).to_contain_text("1 in the call")
        two.click("#collab-join-audio")
        for page in (one, two):
            page.wait_for_function("() => [...crossreadSession.call.peers.values()].some(p => p.pc.connectionState === 'connected')")
            expect(page.locator(".collab-tile")).to_have_count(2)

        # both ways, inbound audio bytes grow, and reader1 hears reader2's tone (and the reverse)
        heard = {name: inbound_over(page, 2.0) for name, page in (("one", one), ("two", two))}
        assert heard["one"]["bytes"] > 1000 and heard["two"]["bytes"] > 1000, heard
        assert heard["two"]["energy"] > 0 and heard["two"]["level"] > 0.01, heard
        expect(two.locator(".collab-tile[data-user='reader1'].has-video")).to_have_count(1)
        expect(two.locator(".collab-tile[data-user='reader1'].speaking")).to_have_count(1)
        two.screenshot(path=str(SCREENSHOTS / "collab-call.png"))

        # reader1 mutes: reader2 still receives packets, of silence
        one.click("#collab-mute")
        expect(one.locator("#collab-mute")).to_have_attribute("aria-pressed", "true")
        two.wait_for_timeout(1000)
        muted = inbound_over(two, 2.0)
        assert muted["bytes"] > 0, muted
        assert muted["level"] < 0.01 and muted["energy"] < heard["two"]["energy"] / 20, (heard, muted)
        expect(two.locator(".collab-tile[data-user='reader1'].speaking")).to_have_count(0)

        # "look here": reader1 on slice 5 sends a message with the view; reader2 opens it
        one.evaluate("crossread.app.viewports[0].setIndex(4)")
        expect(one.locator(".viewport[data-index='0'] .slice-label")).to_have_text("Im 5/8")
        box = one.locator(".viewport[data-index='0']").bounding_box()
        one.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=3)
        expect(two.locator(".viewport[data-index='0'] .slice-label")).not_to_have_text("Im 5/8")
        one.check("#collab-chat-look")
        one.fill("#collab-chat-text", "Look at <b>this</b> slice")
        one.press("#collab-chat-text", "Enter")
        message = two.locator(".collab-chat-list li[data-author='reader1']")
        expect(message).to_have_count(1)
        expect(message.locator(".collab-chat-text")).to_have_text("Look at <b>this</b> slice")  # as text, not HTML
        assert two.locator(".collab-chat-list b").count() == 0
        message.locator("button.collab-look").click()
        expect(two.locator(".viewport[data-index='0'] .slice-label")).to_have_text("Im 5/8")
        two.screenshot(path=str(SCREENSHOTS / "collab-chat-look-here.png"))

        one.click("#collab-leave-call")
        two.wait_for_function("() => crossreadSession.call.peers.size === 0")
    finally:
        one.context.close()
        two.context.close()
    assert not errors, errors


def test_the_organizer_allows_voice_in_a_blinded_session_from_the_lobby(media_browser: Any, live_demo: dict[str, Any]) -> None:
    """A blinded session has no call until its organizer ticks "Allow voice" in the lobby; the reader's
    panel offers "Join audio" as soon as that is saved, without a reload."""
    from playwright.sync_api import expect

    errors: list[str] = []
    reader = open_reader(media_browser, live_demo, "reader1", errors, mode="blinded", timeout=20_000)
    context = media_browser.new_context(base_url=live_demo["base"])
    organizer = context.new_page()
    organizer.on("pageerror", lambda error: errors.append(f"organizer: {error}"))
    try:
        expect(reader.locator(".collab-call-controls")).to_contain_text("Voice is off in this blinded session")
        expect(reader.locator("#collab-join-audio")).to_have_count(0)
        log_in(organizer, "organizer")
        session_id = live_demo["viewer"]["blinded"].split("session=")[1]
        organizer.goto(f"/sessions/{session_id}/")
        organizer.check("#collab-voice")
        expect(reader.locator("#collab-join-audio")).to_be_visible()
        organizer.reload()
        expect(organizer.locator("#collab-voice")).to_be_checked()
    finally:
        reader.context.close()
        context.close()
    assert not errors, errors
