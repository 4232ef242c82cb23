"""/healthz and /readyz (crossread.health) through the site's ASGI application: JSON, no login, any Host,
nothing but the checks' outcomes; a check that fails makes /readyz a 503 and /healthz stays alive.
(An unreachable database: tests/test_deployment.py, on a real PostgreSQL.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator

from tests.live import free_port

pytestmark = pytest.mark.django_db(transaction=True)  # the checks use their own thread's connection


def get(path: str, method: str = "GET", host: bytes = b"testserver", app: Any = None) -> tuple[int, dict[str, str], bytes]:
    from crossread.asgi import application

    communicator = HttpCommunicator(app or application, method, path, headers=[(b"host", host)])
    response = async_to_sync(communicator.get_response)(timeout=30)
    headers = {name.decode().lower(): value.decode() for name, value in response["headers"]}
    return response["status"], headers, response.get("body", b"")


def fresh() -> Any:
    """The health routes alone, with no remembered result (the site's reuses one for a second)."""
    from crossread.health import HealthRoutes

    async def not_here(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the health routes answered nothing")

    return HealthRoutes(not_here)


def test_healthz_says_alive_without_login_or_a_known_host():
    status, headers, body = get("/healthz", host=b"10.0.0.7:8000")  # a probe that sends the address
    assert status == 200 and json.loads(body) == {"status": "alive"}
    assert headers["content-type"] == "application/json" and headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff" and "set-cookie" not in headers


def test_readyz_reports_each_check_and_nothing_else():
    status, headers, body = get("/readyz", host=b"10.0.0.7:8000", app=fresh())
    assert status == 200 and headers["cache-control"] == "no-store"
    assert json.loads(body) == {"status": "ready", "checks": {"database": "ok", "channel_layer": "not used", "storage": "ok"}}
    assert get("/readyz", "HEAD", app=fresh())[::2] == (200, b"")
    assert get("/readyz", "POST", app=fresh())[0] == 405
    assert get("/healthz/")[0] == 404  # only the exact paths (this one is Django's 404)


def test_readyz_fails_when_redis_is_unreachable(settings, caplog):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": [{"address": closed}]}}}
    status, _, body = get("/readyz", app=fresh())
    assert status == 503
    assert json.loads(body) == {"status": "not ready", "checks": {"database": "ok", "channel_layer": "failed", "storage": "ok"}}
    assert closed.rsplit(":", 1)[1] not in body.decode() and "127.0.0.1" not in body.decode()  # the cause is logged only
    assert "readiness: a check failed" in caplog.text
    assert get("/healthz", app=fresh())[0] == 200  # alive all the same


def test_readyz_passes_with_a_running_redis(settings):
    from tests.collab.test_live import redis_running

    if not redis_running():
        pytest.skip("needs a Redis server on 127.0.0.1:6379")
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:6379/3"}]}}}
    status, _, body = get("/readyz", app=fresh())
    assert status == 200 and json.loads(body)["checks"]["channel_layer"] == "ok"


def test_readyz_fails_when_the_storage_is_not_writable(settings, tmp_path: Path):
    (tmp_path / "data").write_text("a file where the data folder should be")
    settings.DATA_DIR = tmp_path / "data"
    status, _, body = get("/readyz", app=fresh())
    assert status == 503 and json.loads(body)["checks"] == {"database": "ok", "channel_layer": "not used", "storage": "failed"}


def test_a_flood_of_probes_runs_the_checks_once_a_second(monkeypatch):
    from crossread import health

    runs = []
    real = health.run_checks

    async def counted() -> dict[str, str]:
        runs.append(1)
        return await real()

    monkeypatch.setattr(health, "run_checks", counted)
    app = fresh()

    async def many() -> list[int]:
        import asyncio

        answers = await asyncio.gather(*(HttpCommunicator(app, "GET", "/readyz").get_response(timeout=30) for _ in range(20)))
        return [a["status"] for a in answers]

    assert async_to_sync(many)() == [200] * 20
    assert get("/readyz", app=app)[0] == 200
    assert len(runs) == 1
