"""Live collaboration under load: N readers in one session over real websockets, two daphne processes, Redis.

Each reader sends ``--rate`` cursors a second for ``--seconds`` while reader1 creates one annotation a
second. Prints p50/p95/p99 delivery latency of annotations and cursors (send → receipt by every
reader, the sender's own confirmation included, for annotations; by every other reader for cursors; one
clock: all clients run on this machine), the slowest annotations, frames delivered per second, messages the server
dropped by its rate limit (each connection's ``pong`` counters), and the daphne processes' memory (RSS)
idle, with everyone connected, after the load, and after everyone left.

    .venv/bin/python bench/collab.py                 # 10 and 50 readers, 20 s each
    .venv/bin/python bench/collab.py --readers 50 --seconds 5
    .venv/bin/python bench/collab.py --readers 50 --runs 5          # and the deliveries of all five pooled
    .venv/bin/python bench/collab.py --database postgres   # a fresh database on the local server

Needs a Redis server on 127.0.0.1:6379 (it uses database 15).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import percentile  # noqa: F401  (puts the repository on sys.path)

from tests.collab.livesetup import prepare, ws_url
from tests.collab.wsclient import WebSocket
from tests.live import LiveSite

# redis-py 8 times reads out after 5 s unless told otherwise (see docs/collaboration.md).
REDIS_URL = "redis://127.0.0.1:6379/15"
POSTGRES_ADMIN = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
CLIENT_PROCESSES = 2
SETTLE = 2.0  # seconds between the last join and the load: the measurement is of a session in progress
#: Cursor latency is measured on every 4th ``cursors`` frame a client process receives (all are counted).
#: Parsing every one took a third of the clients' CPU, which on a real deployment lives in the readers'
#: browsers, not beside the servers; a quarter of 20,000 frames still gives about 240,000 deliveries.
CURSOR_SAMPLE = 4
CURSORS_FRAME = '{"type":"cursors"'


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def reader_loop(index: int, url: str, info: dict[str, Any], start_at: Any, seconds: float, rate: float,
                      connected: Any, stats: dict[str, Any]) -> None:
    name = f"reader{index}"
    await asyncio.sleep(index * 0.05)  # connect in turn, not 50 handshakes at once
    for attempt in range(5):
        try:
            ws = await WebSocket.connect(ws_url(url, info["session"]), cookie=info["cookies"][name], origin=url)
            break
        except (ConnectionError, asyncio.IncompleteReadError):
            await asyncio.sleep(0.5 * (attempt + 1))
    else:
        raise RuntimeError(f"{name} could not connect")
    json.loads(await ws.recv())  # session.state
    connected.put(1)
    start = end = float("inf")  # known once everyone is in and the joins have settled
    done = asyncio.Event()

    async def receive() -> None:
        while True:
            text = await ws.recv()
            now = time.time()
            stats["frames"] += 1
            if now < start or now > end + 1:
                if '"pong"' in text:
                    frame = json.loads(text)
                    stats["dropped"] += frame["dropped"]
                    done.set()
                continue
            if text.startswith(CURSORS_FRAME):  # counted; every CURSOR_SAMPLE-th one measured
                stats["types"]["cursors"] = stats["types"].get("cursors", 0) + 1
                if stats["types"]["cursors"] % CURSOR_SAMPLE == 0:
                    frame = json.loads(text)
                    stats["cursor_ms"].extend((now - start) * 1000 - c["x"] for c in frame["cursors"])
                continue
            frame = json.loads(text)
            kind = frame["type"]
            stats["types"][kind] = stats["types"].get(kind, 0) + 1
            if kind == "annotation.created":  # its label is the time it was sent, in ms after the start
                label = frame["annotation"]["label"]
                stats["by_annotation"].setdefault(label, []).append((now - start) * 1000 - float(label))

    receiver = asyncio.ensure_future(receive())
    while not start_at.value:
        await asyncio.sleep(0.05)
    start = start_at.value
    end = start + seconds

    async def send() -> None:
        await asyncio.sleep(max(0.0, start - time.time()) + (index % 10) / 10 / rate)
        period, sent, created = 1 / rate, 0, 0
        while time.time() < end:
            ms = (time.time() - start) * 1000
            await ws.send(json.dumps({"type": "cursor", "instance": info["instance"], "frame": 1, "x": ms, "y": index}))
            sent += 1
            if index == 1 and ms >= created * 1000:
                created += 1
                await ws.send(json.dumps({"type": "annotation.create", "ref": f"bench-{created}", "annotation": {
                    "instance": info["instance"], "frame": 1, "kind": "length", "points": [[1, 1], [9, 9]],
                    "label": f"{(time.time() - start) * 1000:.3f}"}}))
            next_at = start + (sent + 1) * period + (index % 10) / 10 / rate
            await asyncio.sleep(max(0.0, next_at - time.time()))
        stats["sent"] += sent

    await send()
    await asyncio.sleep(max(0.0, end + 1.5 - time.time()))
    await ws.send(json.dumps({"type": "ping", "ref": "end"}))
    try:
        await asyncio.wait_for(done.wait(), 60)
    except asyncio.TimeoutError:
        stats["no_pong"] = stats.get("no_pong", 0) + 1  # the server is still behind a minute later
    finally:
        receiver.cancel()
        await ws.close()


def new_stats() -> dict[str, Any]:
    """What a client process counts; ``by_annotation``: each annotation's delivery latencies (ms) by label."""
    return {"frames": 0, "sent": 0, "dropped": 0, "types": {}, "cursor_ms": [], "by_annotation": {}}


def annotation_ms(stats: dict[str, Any]) -> list[float]:
    return [ms for deliveries in stats["by_annotation"].values() for ms in deliveries]


def client_process(indices: list[int], urls: list[str], info: dict[str, Any], start_at: Any, seconds: float,
                   rate: float, connected: Any, results: Any) -> None:
    stats = new_stats()

    async def main() -> None:
        await asyncio.gather(*(
            reader_loop(i, urls[i % len(urls)], info, start_at, seconds, rate, connected, stats) for i in indices
        ))

    asyncio.run(main())
    results.put(stats)


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """``sqlite`` (the site's own file) or ``postgres``: a fresh database on the local server, dropped after."""
    if kind == "sqlite":
        yield ""
        return
    import psycopg

    name = f"bench_collab_{os.getpid()}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(readers: int, seconds: float, rate: float, db: str, logs: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-collab-") as tmp, database(db) as database_url:
        site = LiveSite.create(Path(tmp), database_url, REDIS_URL=REDIS_URL)
        try:
            info = prepare(site, readers=readers)
            urls = site.start(2)
            pids = [p.pid for p in site.processes]
            memory = {"idle": sum(rss_mib(p) for p in pids)}
            connected, results, start_at = mp.Queue(), mp.Queue(), mp.Value("d", 0.0)
            groups = [list(range(1, readers + 1))[k::CLIENT_PROCESSES] for k in range(CLIENT_PROCESSES)]
            workers = [mp.Process(target=client_process, args=(g, urls, info, start_at, seconds, rate, connected, results))
                       for g in groups]
            for w in workers:
                w.start()
            joining = time.time()
            for _ in range(readers):
                connected.get(timeout=120)
            joined = time.time() - joining
            start = start_at.value = time.time() + SETTLE
            if logs:  # the epoch the load starts at, to line the logs up with the latencies
                logs.mkdir(parents=True, exist_ok=True)
                (logs / "load-start").write_text(repr(start))
            time.sleep(max(0.0, start - time.time() - 0.5))
            memory["connected"] = sum(rss_mib(p) for p in pids)
            time.sleep(max(0.0, start - time.time()))
            cpu = {"servers": [cpu_seconds(p) for p in pids], "clients": [cpu_seconds(w.pid) for w in workers],
                   "load": os.getloadavg()[0]}
            time.sleep(max(0.0, start + seconds - time.time()))
            cpu["servers"] = [cpu_seconds(p) - c for p, c in zip(pids, cpu["servers"])]
            cpu["clients"] = [cpu_seconds(w.pid) - c for w, c in zip(workers, cpu["clients"])]
            memory["after load"] = sum(rss_mib(p) for p in pids)
            merged = new_stats()
            for _ in workers:
                stats = results.get(timeout=300)
                merged["no_pong"] = merged.get("no_pong", 0) + stats.get("no_pong", 0)
                for key in ("frames", "sent", "dropped"):
                    merged[key] += stats[key]
                merged["cursor_ms"] += stats["cursor_ms"]
                for label, values in stats["by_annotation"].items():
                    merged["by_annotation"].setdefault(label, []).extend(values)
                for kind, count in stats["types"].items():
                    merged["types"][kind] = merged["types"].get(kind, 0) + count
            for w in workers:
                w.join(30)
            time.sleep(1)
            memory["after leaving"] = sum(rss_mib(p) for p in pids)
        finally:
            site.stop()
            if logs:
                logs.mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).glob("daphne-*.log"):
                    shutil.copy(log, logs / log.name)
    report(readers, seconds, rate, merged, memory, joined, cpu, db)
    return merged


def pcts(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"p50 {percentile(values, 50):6.1f} ms  p95 {percentile(values, 95):6.1f} ms  "
            f"p99 {percentile(values, 99):6.1f} ms  ({len(values)} deliveries)")


def report(readers: int, seconds: float, rate: float, m: dict[str, Any], memory: dict[str, float],
           joined: float, cpu: dict[str, Any], db: str) -> None:
    expected_annotations = int(seconds) * readers
    print(f"\n{readers} readers, {rate:g} cursors/s each for {seconds:g} s, 2 daphne processes + Redis, {db}")
    print(f"  all joined in {joined:.1f} s (one every 50 ms); the load started {SETTLE:g} s later")
    print(f"  annotation delivery  {pcts(annotation_ms(m))}; expected ~{expected_annotations}")
    slowest = sorted(m["by_annotation"].items(), key=lambda item: -max(item[1]))[:3]
    print("  slowest annotations (sent at: median / slowest delivery): " + "; ".join(
        f"{float(label) / 1000:.1f} s: {percentile(values, 50):.0f} / {max(values):.0f} ms" for label, values in slowest))
    print(f"  cursor delivery      {pcts(m['cursor_ms'])}")
    print(f"  cursors sent {m['sent']} ({m['sent'] / seconds:.0f}/s); frames delivered {m['types'].get('cursors', 0) + sum(v for k, v in m['types'].items() if k != 'cursors')} "
          f"({sum(m['types'].values()) / seconds:.0f}/s): " + ", ".join(f"{k} {v}" for k, v in sorted(m["types"].items())))
    print(f"  dropped by the rate limit: {m['dropped']}" + (f"; {m['no_pong']} connections still backlogged a minute after the load" if m.get("no_pong") else ""))
    print("  CPU during the load (share of one core): daphne " + " + ".join(f"{c / seconds:.0%}" for c in cpu["servers"])
          + ", bench clients " + " + ".join(f"{c / seconds:.0%}" for c in cpu["clients"])
          + f"; load average before {cpu['load']:.1f} on {os.cpu_count()} cores")
    print("  daphne RSS (both) " + ", ".join(f"{k} {v:.1f} MiB" for k, v in memory.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", default="10,50")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=30)
    parser.add_argument("--database", default="sqlite", choices=("sqlite", "postgres"),
                        help=f"postgres: a fresh database on {POSTGRES_ADMIN.rsplit('/', 1)[0]}")
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat each reader count this often (a fresh site each time) and pool the deliveries")
    parser.add_argument("--logs", type=Path, help="copy the daphne processes' logs and the load's start time "
                        "into a folder per run below this one")
    args = parser.parse_args()
    for readers in (int(r) for r in args.readers.split(",")):
        runs = [run(readers, args.seconds, args.rate, args.database, args.logs and args.logs / f"{readers}-readers-run-{k + 1}")
                for k in range(args.runs)]
        if len(runs) > 1:
            pooled = [ms for m in runs for ms in annotation_ms(m)]
            print(f"\n{readers} readers, {len(runs)} runs pooled ({sum(len(m['by_annotation']) for m in runs)} annotations)")
            print(f"  annotation delivery  {pcts(pooled)}")
            print(f"  cursor delivery      {pcts([ms for m in runs for ms in m['cursor_ms']])}")
            print("  annotation p99 of each run: " + ", ".join(f"{percentile(annotation_ms(m), 99):.0f}" for m in runs)
                  + " ms")


if __name__ == "__main__":
    main()
