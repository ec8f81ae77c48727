from __future__ import annotations

from pathlib import Path
from typing import Any

from contactcenter.app import create_app
from contactcenter.config import load_settings


async def test_health_all_green_on_sqlite(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = load_settings(env={"CC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/h.db",
                                  "CC_AMI_ENABLED": "false", "CC_SPOOL_DIR": str(tmp_path),
                                  "CC_AGI_PORT": "0"})
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/health")
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
             "CC_AGI_PORT": "0"}
    )
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/health")
    body = await resp.json()
    assert resp.status == 503
    assert body["parts"]["db"]["ok"] is False
    assert "error" in body["parts"]["db"]


async def test_health_503_when_redis_is_down(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = load_settings(
        env={
            "CC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/h.db",
            "CC_REDIS_URL": "redis://127.0.0.1:1/0",
            "CC_AGI_PORT": "0",
        }
    )
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/health")
    assert resp.status == 503
    assert (await resp.json())["parts"]["bus"]["ok"] is False
