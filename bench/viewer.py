"""The viewer in a real browser: time to first image and frames per second while holding ↓.

Starts daphne with the demo (the 120-slice phantom CT), drives Debian's chromium through
Playwright and, for each added round trip (0 ms and 150 ms by default, Chrome DevTools network
emulation via CDP ``Network.emulateNetworkConditions``), in a fresh browser context (cold cache):

- first image: from navigation start (the HTML request included) to the first frame drawn on the
  viewer's canvas;
- cold scroll: frames per second while ↓ is held right after the first image (prefetch just
  started: what a reader who scrolls at once sees);
- warm scroll: the same once the prefetch queue is empty ("once prefetch has warmed");

and counts the frames shown (distinct slices drawn) while ↓ is held, the key repeating at
``--repeat`` Hz (a fast OS key repeat; the viewer draws a frame per key press when it has it).

MPR (``--mpr-runs``, 0 to skip): in a fresh context, the study opened and Shift+4 pressed as soon as
the first image is drawn and the modes are in (a reader who asks for MPR at once): the time from the
key press to the first reformatted image drawn, and to all three (axial, sagittal, coronal). The first MPR run of
each series is "cold": the server has not reformatted it yet (its volume is assembled from the slices
the viewer's prefetch has had decoded by then, the others decoded on demand): the follow-up at the
largest added round trip, the baseline at the smallest. The other runs are on the baseline, whose
volume the server keeps ("warm"; the browser cache is cold in each).

Usage: .venv/bin/python bench/viewer.py [--latency 0 150] [--repeat 60] [--hold 2.0] [--server daphne]
Targets (docs/viewer.md): first image < 1 s and >= 20 frames/s warm, at 150 ms round trip; the first
reformatted image < 1 s at 150 ms round trip.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: F401  (puts the repository on sys.path)

from tests.live import LiveSite

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def hold_down(page, seconds: float, repeat_hz: float) -> dict[str, float]:
    """Hold ↓ (key repeats at `repeat_hz`) from slice 1; frames shown per second while held."""
    page.locator(".viewport[data-index='0']").focus()
    page.keyboard.press("Home")
    page.wait_for_selector(".viewport[data-index='0'][data-shown-index='0']")
    start_log = page.evaluate("crossread.app.frameLog.length")
    started = page.evaluate("performance.now()")
    deadline = time.perf_counter() + seconds
    presses = 0
    next_at = time.perf_counter()
    while time.perf_counter() < deadline:
        page.keyboard.down("ArrowDown")
        presses += 1
        next_at += 1 / repeat_hz
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    page.keyboard.up("ArrowDown")
    ended = page.evaluate("performance.now()")
    log = page.evaluate(f"crossread.app.frameLog.slice({start_log}).filter(e => e[2] === 0)")
    shown = [entry for entry in log if started <= entry[0] <= ended and entry[1] > 0]
    reached = max((entry[1] for entry in shown), default=0)
    elapsed = (ended - started) / 1000
    if reached >= 119 and shown:  # the end of the stack came before the key was let go
        elapsed = (shown[-1][0] - started) / 1000
    return {"fps": len(shown) / elapsed if elapsed else 0.0, "frames": len(shown), "reached": reached + 1,
            "presses": presses, "seconds": elapsed}


def logged_in_at(context, study: str, latency_ms: float):
    """A page of ``context`` logged in as reader1, opening ``study`` with ``latency_ms`` added to each request."""
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", "reader1")
    page.fill("#id_password", "demo-reader1-pass")
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": latency_ms, "downloadThroughput": -1, "uploadThroughput": -1})
    page.goto(f"/projects/demo/studies/{study}/")
    return page


def run_condition(browser, url: str, study: str, latency_ms: float, args: argparse.Namespace) -> dict[str, float]:
    results: dict[str, float] = {}
    for phase in ("cold", "warm"):
        context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=url)
        page = logged_in_at(context, study, latency_ms)
        page.wait_for_selector("body[data-first-image]", timeout=30_000)
        if phase == "cold":
            results["first_image_ms"] = float(page.evaluate("crossread.app.firstImageAt"))
            results["html_ms"] = float(page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd"))
        else:
            deadline = time.perf_counter() + 60
            while page.evaluate("crossread.loader.pending()") and time.perf_counter() < deadline:
                time.sleep(0.1)
            results["warmup_s"] = (float(page.evaluate("performance.now()")) - float(page.evaluate("crossread.app.firstImageAt"))) / 1000
        scroll = hold_down(page, args.hold, args.repeat)
        results[f"{phase}_fps"] = scroll["fps"]
        results[f"{phase}_frames"] = scroll["frames"]
        results[f"{phase}_reached"] = scroll["reached"]
        results[f"{phase}_seconds"] = scroll["seconds"]
        context.close()
    return results


def first_reformatted(browser, url: str, study: str, latency_ms: float) -> dict[str, float]:
    """Open ``study``, press Shift+4 at once: ms from the key press to the first and to all three
    reformatted images drawn."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=url)
    page = logged_in_at(context, study, latency_ms)
    page.wait_for_selector("body[data-first-image][data-modes]", timeout=30_000)
    page.evaluate("""document.addEventListener('keydown', (e) => {
        if (e.code === 'Digit4' && e.shiftKey && !window.mprPressedAt) window.mprPressedAt = performance.now(); }, true)""")
    page.keyboard.press("Shift+Digit4")
    page.wait_for_function("() => crossread.app.viewports.slice(0, 3).every((v) => v.stack && v.stack.source && v.shown)",
                           timeout=60_000)
    times = page.evaluate("""() => {
        const log = crossread.app.frameLog.filter((e) => e[0] >= window.mprPressedAt && e[2] < 3);
        const first = {};
        for (const [t, , vp] of log) if (!(vp in first)) first[vp] = t;
        const all = Object.values(first);
        return [Math.min(...all) - window.mprPressedAt, Math.max(...all) - window.mprPressedAt];
    }""")
    context.close()
    return {"mpr_first_ms": float(times[0]), "mpr_all_ms": float(times[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, nargs="+", default=[0, 150], help="added round trips, ms")
    parser.add_argument("--repeat", type=float, default=60, help="key repeat rate while ↓ is held, Hz")
    parser.add_argument("--hold", type=float, default=2.0, help="seconds ↓ is held")
    parser.add_argument("--server", default="daphne", choices=["daphne", "uvicorn"])
    parser.add_argument("--runs", type=int, default=3, help="runs per condition; medians are printed")
    parser.add_argument("--json", action="store_true", help="print every run as JSON too")
    parser.add_argument("--mpr-runs", type=int, default=3, help="MPR runs per condition (0: none)")
    parser.add_argument("--mpr-only", action="store_true", help="only the MPR figures")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="crossread-bench-viewer-") as folder:
        root = Path(folder)
        site = LiveSite.create(root)
        print("Loading the demo (120-slice phantom CT) ...", flush=True)
        site.manage("load_demo", "--slices", "120")
        truth = json.loads((root / "data" / "phantom" / "phantom.json").read_text())
        study = truth["studies"]["baseline"]["study_instance_uid"]
        followup = truth["studies"]["followup"]["study_instance_uid"]
        url = site.start(1, server=args.server)[0]
        table = {}
        mpr: dict[str, list[dict[str, float]]] = {}
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                if args.mpr_runs:  # each series' first MPR run is the cold one (the server keeps volumes)
                    mpr["cold"] = [first_reformatted(browser, url, followup, max(args.latency)),
                                   first_reformatted(browser, url, study, min(args.latency))]
                    for latency in args.latency:
                        mpr[f"{latency:g}"] = [first_reformatted(browser, url, study, latency) for _ in range(args.mpr_runs)]
                for latency in [] if args.mpr_only else args.latency:
                    table[latency] = [run_condition(browser, url, study, latency, args) for _ in range(args.runs)]
                browser.close()
        finally:
            site.stop()
    if mpr:
        print(f"\nMPR in the viewer, 120-slice 512x512 CT, {args.server}, chromium headless: Shift+4 as soon as the"
              " first image is drawn, each run in a fresh browser context")
        print(f"{'added RTT':>10} {'server':>7} {'first reformatted':>18} {'all three':>10}   (runs)")
        colds = mpr.pop("cold")
        for latency, cold in zip((max(args.latency), min(args.latency)), colds, strict=True):
            print(f"{latency:>8.0f} ms {'cold':>7} {cold['mpr_first_ms']:>15.0f} ms {cold['mpr_all_ms']:>7.0f} ms   (1)")
        cold = colds[0]
        for latency, results in mpr.items():
            first = statistics.median(r["mpr_first_ms"] for r in results)
            every = statistics.median(r["mpr_all_ms"] for r in results)
            print(f"{float(latency):>8.0f} ms {'warm':>7} {first:>15.0f} ms {every:>7.0f} ms   "
                  "(" + ", ".join(f"{r['mpr_first_ms']:.0f}" for r in results) + ")")
        worst = max(cold["mpr_first_ms"], statistics.median(r["mpr_first_ms"] for r in mpr[f"{max(args.latency):g}"]))
        print(f"Target at {max(args.latency):.0f} ms: first reformatted image < 1000 ms: "
              f"{'met' if worst < 1000 else 'MISSED'} ({worst:.0f} ms, the slower of cold and warm)")
        if args.json:
            print(json.dumps(mpr, indent=2))
    if args.mpr_only:
        return
    runs = table
    table = {latency: {key: statistics.median(run[key] for run in results) for key in results[0]}
             for latency, results in runs.items()}
    print(f"\nViewer, 120-slice 512x512 CT, {args.server}, chromium headless; ↓ held {args.hold:g} s at {args.repeat:g} Hz;"
          f" medians of {args.runs} runs, each in a fresh browser context (cold cache)")
    print(f"{'added RTT':>10} {'HTML':>8} {'first image':>12} {'cold fps':>9} {'warm-up':>8} {'warm fps':>9}")
    for latency, r in table.items():
        print(f"{latency:>8.0f} ms {r['html_ms']:>5.0f} ms {r['first_image_ms']:>9.0f} ms {r['cold_fps']:>9.1f} "
              f"{r['warmup_s']:>6.1f} s {r['warm_fps']:>9.1f}")
    worst = table[max(table)]
    print(f"\nTargets at {max(table):.0f} ms: first image < 1000 ms: {'met' if worst['first_image_ms'] < 1000 else 'MISSED'}"
          f" ({worst['first_image_ms']:.0f} ms); >= 20 frames/s warm: {'met' if worst['warm_fps'] >= 20 else 'MISSED'}"
          f" ({worst['warm_fps']:.1f})")
    if args.json:
        print(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
