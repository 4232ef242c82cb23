"""The deployment of docs/deployment.md, run: Debian's nginx with deploy/nginx.conf (TLS, the upstream of
two daphne processes, websocket upgrades, X-Forwarded-For and X-Forwarded-Proto), PostgreSQL
(DATABASE_URL, a fresh database) and Redis (REDIS_URL). Through nginx: a login (whose audit event has
the client's address, not a forged one), the worklist page and its hashed script, QIDO-RS and a
rendered frame, the health routes, and a live annotation between two readers whose websockets are on
different daphne processes; /readyz says "not ready" once the database refuses connections."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.collab.livesetup import prepare
from tests.collab.test_live import redis_running, until
from tests.collab.wsclient import WebSocket
from tests.live import REPO, LiveSite, free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None)
CONFIG = REPO / "deploy" / "nginx.conf"
REDIS_URL = "redis://127.0.0.1:6379/3"  # (0: the collab live tests, 15: bench/collab.py)
POSTGRES = "postgres://postgres@127.0.0.1:5432/"


def test_the_deployment_page_shows_the_tested_nginx_config():
    doc = (REPO / "docs" / "deployment.md").read_text()
    assert f"```nginx\n{CONFIG.read_text()}```" in doc


def nginx_site_config(daphne_ports: list[int], http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """deploy/nginx.conf with this test's ports and certificate: nothing else changed."""
    text = CONFIG.read_text()
    replacements = {
        "    server 127.0.0.1:8001;\n    server 127.0.0.1:8002;\n":
            "".join(f"    server 127.0.0.1:{port};\n" for port in daphne_ports),
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",  # (nginx 1.22, Debian 12)
        "/etc/letsencrypt/live/crossread.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/crossread.example.org/privkey.pem": str(key),
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"deploy/nginx.conf no longer has {old!r}: update this test"
        text = text.replace(old, new)
    return text


def main_config(folder: Path) -> str:
    """The nginx.conf around it: everything in ``folder``, in the foreground, no system paths."""
    temp = " ".join(f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
error_log {folder / "error.log"} warn;
pid {folder / "nginx.pid"};
events {{ worker_connections 256; }}
http {{
    access_log {folder / "access.log"};
    {temp}
    include {folder / "crossread.conf"};
}}
"""


@pytest.fixture
def database() -> Iterator[str]:
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES + "postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust)")
    name = f"crossread_deploy_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}:\n{log.read_text() if log.exists() else ''}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("nginx did not listen")


@pytest.fixture
def deployment(tmp_path: Path, database: str) -> Iterator[dict[str, Any]]:
    if NGINX is None:
        pytest.skip("needs nginx (apt-get install nginx)")
    if not redis_running():
        pytest.skip("needs a Redis server on 127.0.0.1:6379")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    http_port, https_port = free_port(), free_port()
    public = f"https://127.0.0.1:{https_port}"
    site = LiveSite.create(  # migrate and collectstatic, as docs/deployment.md runs them
        tmp_path / "site", database_url=POSTGRES + database,
        DJANGO_DEBUG="0", DJANGO_SECRET_KEY="deployment-test-" + "d" * 40, DJANGO_ALLOWED_HOSTS="127.0.0.1",
        CROSSREAD_TLS="1", CROSSREAD_PUBLIC_URL=public, CROSSREAD_TRUSTED_PROXIES="127.0.0.1", REDIS_URL=REDIS_URL,
    )
    info = prepare(site, readers=2)
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    cert, key = nginx_dir / "cert.pem", nginx_dir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    nginx = None
    try:
        daphnes = site.start(2)
        ports = [int(url.rsplit(":", 1)[1]) for url in daphnes]
        (nginx_dir / "crossread.conf").write_text(nginx_site_config(ports, http_port, https_port, cert, key))
        (nginx_dir / "nginx.conf").write_text(main_config(nginx_dir))
        nginx = subprocess.Popen(
            [NGINX, "-p", str(nginx_dir), "-e", str(nginx_dir / "error.log"), "-c", str(nginx_dir / "nginx.conf"),
             "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=open(nginx_dir / "stderr.log", "wb"),
        )
        _wait_for_port(https_port, nginx, nginx_dir / "stderr.log")
        yield {"site": site, "url": public, "http_port": http_port, "cert": cert, "info": info, "database": database,
               "logs": {port: tmp_path / "site" / f"daphne-{port}.log" for port in ports}}
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=10)
        site.stop()
        redis.Redis.from_url(REDIS_URL).flushdb()


class FromAddress(HTTPAdapter):
    """Connections from another loopback address: a client that is not the proxy."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


def log_in(d: dict[str, Any], username: str, source: str = "127.0.0.1", **headers: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # (REQUESTS_CA_BUNDLE in the environment would replace verify)
    session.verify = str(d["cert"])
    session.mount("https://", FromAddress(source))
    page = session.get(f"{d['url']}/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        f"{d['url']}/accounts/login/", allow_redirects=False, timeout=30,
        data={"username": username, "password": f"{username}-pass-123", "csrfmiddlewaretoken": token},
        headers={"Origin": d["url"], "Referer": f"{d['url']}/accounts/login/", **headers},
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/", answer.text[:500]
    assert session.cookies["sessionid"]
    return session


def wsconnects(d: dict[str, Any]) -> dict[int, int]:
    return {port: log.read_text().count("WSCONNECT ") for port, log in d["logs"].items()}


@pytest.mark.live
def test_two_daphnes_behind_nginx_with_postgresql_and_redis(deployment: dict[str, Any]) -> None:
    d, info = deployment, deployment["info"]
    url = d["url"]

    # Plain HTTP is sent to HTTPS by nginx.
    plain = requests.get(f"http://127.0.0.1:{d['http_port']}/projects/live/", allow_redirects=False, timeout=30)
    assert plain.status_code == 301 and plain.headers["Location"] == "https://127.0.0.1/projects/live/"

    # A login from 127.0.0.2 that forges X-Forwarded-For: the audit trail has the address nginx saw.
    reader1 = log_in(d, "reader1", source="127.0.0.2", **{"X-Forwarded-For": "203.0.113.66"})
    out = d["site"].manage("shell", "-c", "from audit.models import AuditEvent; "
                           "print(AuditEvent.objects.filter(action='login', actor_name='reader1').latest('at').source_ip)")
    assert out.split()[-1] == "127.0.0.2"
    reader2 = log_in(d, "reader2")

    # The worklist page, its script by hashed name (cached for good, compressed), and the studies.
    page = reader1.get(f"{url}/projects/live/", timeout=30)
    assert page.status_code == 200 and page.headers["Strict-Transport-Security"].startswith("max-age=")
    (script,) = re.findall(r'src="(/static/viewer/worklist\.[0-9a-f]{12}\.js)"', page.text)
    module = reader1.get(url + script, headers={"Accept-Encoding": "br"}, timeout=30, stream=True)
    assert module.status_code == 200 and module.headers["Content-Encoding"] == "br"
    assert "immutable" in module.headers["Cache-Control"]
    study = info["instance"].rsplit(".", 2)[0]
    studies = reader1.get(f"{url}/projects/live/dicomweb/studies", timeout=30).json()
    assert [s["0020000D"]["Value"] for s in studies] == [[study]]
    (series,) = reader1.get(f"{url}/projects/live/dicomweb/studies/{study}/series", timeout=30).json()
    series_uid = series["0020000E"]["Value"][0]
    frame = reader1.get(f"{url}/projects/live/dicomweb/studies/{study}/series/{series_uid}/instances/"
                        f"{info['instance']}/frames/1/rendered", timeout=30)
    assert frame.status_code == 200 and frame.headers["Content-Type"].startswith("image/") and len(frame.content) > 100
    assert requests.get(f"{url}/projects/live/dicomweb/studies", verify=str(d["cert"]), timeout=30).status_code == 401

    # The health routes through nginx.
    assert reader1.get(f"{url}/healthz", timeout=30).json() == {"status": "alive"}
    ready = reader1.get(f"{url}/readyz", timeout=30)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "channel_layer": "ok", "storage": "ok"}}

    # Two readers' websockets through nginx, on different daphne processes.
    tls = ssl.create_default_context(cafile=str(d["cert"]))
    ws_url = url.replace("https://", "wss://") + f"/ws/sessions/{info['session']}/"

    async def connect(session: requests.Session, avoid: int | None) -> tuple[WebSocket, int]:
        for _ in range(8):
            before = wsconnects(d)
            ws = await WebSocket.connect(ws_url, cookie=f"sessionid={session.cookies['sessionid']}", origin=url, tls=tls)
            state = json.loads(await ws.recv())
            assert state["type"] == "session.state"
            deadline = time.monotonic() + 10
            while (after := wsconnects(d)) == before and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            (port,) = [p for p in after if after[p] > before[p]]
            if port != avoid:
                return ws, port
            await ws.close()
        raise AssertionError("nginx kept sending the websocket to the same daphne process")

    async def scenario() -> None:
        r1, port1 = await connect(reader1, None)
        r2, port2 = await connect(reader2, port1)
        assert port1 != port2
        try:
            await r1.send(json.dumps({"type": "annotation.create", "ref": "from-1", "annotation": {
                "instance": info["instance"], "frame": 1, "kind": "length", "points": [[1, 1], [9, 1]]}}))
            mine = await until(r1, lambda f: f.get("ref") == "from-1")
            seen = await until(r2, lambda f: f["type"] == "annotation.created" and f["annotation"]["author"] == "reader1")
            assert seen["annotation"] == mine["annotation"] and seen["annotation"]["measurements"]["length"] == 4.0
            await r2.send(json.dumps({"type": "annotation.create", "ref": "from-2", "annotation": {
                "instance": info["instance"], "frame": 1, "kind": "length", "points": [[2, 2], [2, 8]]}}))
            back = await until(r1, lambda f: f["type"] == "annotation.created" and f["annotation"]["author"] == "reader2")
            assert back["annotation"]["measurements"]["length"] == 3.0 and "ref" not in back
        finally:
            await r1.close()
            await r2.close()

    asyncio.run(scenario())
    logs = "".join(log.read_text() for log in d["logs"].values())
    assert "Traceback" not in logs, logs

    # The database refuses connections: /readyz says so (and no more), /healthz is still alive.
    import psycopg

    with psycopg.connect(POSTGRES + "postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{d["database"]}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [d["database"]])
    time.sleep(1.1)  # past the reuse of the last result
    down = requests.get(f"{url}/readyz", verify=str(d["cert"]), timeout=30)
    assert down.status_code == 503
    assert down.json() == {"status": "not ready", "checks": {"database": "failed", "channel_layer": "ok", "storage": "ok"}}
    assert requests.get(f"{url}/healthz", verify=str(d["cert"]), timeout=30).status_code == 200
