"""Shared fixtures: real PostgreSQL and Redis (a missing server fails, never skips), SQLite
stores in a temp dir, the captured Asterisk transcripts, and `until()` for polling."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter import db

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CC_SHARED_DIR", ROOT.parent / "shared"))
TRANSCRIPTS = SHARED / "asterisk-transcripts"
PG_ADMIN = os.environ.get("CC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
STORE_ON_PG = os.environ.get("CC_TEST_STORE_PG") == "1"


def transcript(name: str) -> bytes:
    path = TRANSCRIPTS / name
    if not path.is_file():
        pytest.fail(f"missing capture {path}: shared/ must sit beside the project")
    return path.read_bytes()


async def until(
    fn: Callable[[], Any | Awaitable[Any]], timeout: float = 5.0, interval: float = 0.02
) -> Any:
    """Poll `fn` until it returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = fn()
        if asyncio.iscoroutine(last) or isinstance(last, Awaitable):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
        await asyncio.sleep(interval)


def _pg_create() -> str:
    import psycopg2

    name = f"cc_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg2.connect(PG_ADMIN, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN} ({exc}); `make test` starts it")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name


def _pg_drop(name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN, connect_timeout=3)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def _pg_async_url(name: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (asyncpg URL), dropped afterwards."""
    name = _pg_create()
    try:
        yield _pg_async_url(name)
    finally:
        _pg_drop(name)


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """The store under test: SQLite by default, PostgreSQL when CC_TEST_STORE_PG=1."""
    if STORE_ON_PG:
        name = _pg_create()
        try:
            yield _pg_async_url(name)
        finally:
            _pg_drop(name)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
async def migrated_url(db_url: str) -> str:
    await asyncio.to_thread(db.upgrade, db_url)
    return db_url


@pytest.fixture
async def sessions(migrated_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = db.make_engine(migrated_url)
    try:
        yield db.make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); `make test` starts it")
    finally:
        client.close()
    return REDIS_URL
