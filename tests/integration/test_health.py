from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contactcenter.app import create_app
from contactcenter.cases.store import ApiKeys
from contactcenter.config import load_settings
from contactcenter.keys import SESSIONS
from tests.conftest import HEALTH, HEALTH_KEY, app_settings, login


async def test_health_all_green_on_sqlite(
    aiohttp_client: Any, tmp_path: Path, migrated_url: str
) -> None:
    # migrated: the wallboard part is green only once it has rebuilt today from the store
    settings = load_settings(env={"CC_DATABASE_URL": migrated_url,
                                  "CC_AMI_ENABLED": "false", "CC_SPOOL_DIR": str(tmp_path),
                                  "CC_AGI_PORT": "0", "CC_HEALTH_API_KEY": HEALTH_KEY})
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/health", headers=HEALTH)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["status"] == "ok"
    assert body["parts"]["db"]["ok"] is True
    assert body["parts"]["bus"]["ok"] is True
    assert body["parts"]["ami"] == {"ok": True, "state": "disabled"}
    assert body["parts"]["writer"]["ok"] is True


async def test_health_503_when_the_database_is_down(aiohttp_client: Any) -> None:
    # a PostgreSQL port where nothing listens: the database part is down, the page still answers
    settings = load_settings(
        env={"CC_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/none",
             "CC_AGI_PORT": "0", "CC_HEALTH_API_KEY": HEALTH_KEY}
    )
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/health", headers=HEALTH)  # the key needs no database
    body = await resp.json()
    assert resp.status == 503
    assert body["parts"]["db"]["ok"] is False
    assert "error" in body["parts"]["db"]
    # issue 20: anyone else learns "degraded", not the hosts, ports and errors
    for headers in ({}, {"X-API-Key": "cc_not-a-key"}):
        resp = await client.get("/health", headers=headers)
        assert resp.status == 503
        assert await resp.json() == {"status": "degraded"}


async def test_health_503_when_redis_is_down(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = load_settings(
        env={
            "CC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/h.db",
            "CC_REDIS_URL": "redis://127.0.0.1:1/0",
            "CC_AGI_PORT": "0", "CC_HEALTH_API_KEY": HEALTH_KEY,
        }
    )
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/health", headers=HEALTH)
    assert resp.status == 503
    assert (await resp.json())["parts"]["bus"]["ok"] is False


@pytest.mark.store
async def test_health_details_only_for_admins_and_api_keys(
    aiohttp_client: Any, migrated_url: str, seeded: Any
) -> None:
    """Issue 20: /health was public and showed internal hosts, ports and error texts."""
    client = await aiohttp_client(create_app(app_settings(
        migrated_url, redis_url="redis://10.9.8.7:6390/0", ami_enabled="true",
        ami_host="10.9.8.6", ami_port="5039")))
    anonymous = await client.get("/health")
    text = await anonymous.text()
    assert await anonymous.json() == {"status": "degraded"} and anonymous.status == 503
    assert "10.9.8" not in text and "6390" not in text and "5039" not in text
    _view, key = await ApiKeys(client.server.app[SESSIONS]).create("monitor", actor="test")
    for headers in ({"X-API-Key": key}, HEALTH):
        body = await (await client.get("/health", headers=headers)).json()
        assert set(body["parts"]) >= {"db", "bus", "ami"}
    await login(client, "operator")
    assert "parts" not in await (await client.get("/health")).json()
    client.session.cookie_jar.clear()
    await login(client, "admin")
    assert "parts" in await (await client.get("/health")).json()
