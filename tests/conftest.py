"""Shared fixtures: real PostgreSQL and Redis (a missing server fails, never skips), SQLite
stores in a temp dir, the captured Asterisk transcripts, and `until()` for polling."""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter import db, security

if "faketime" in os.environ.get("LD_PRELOAD", ""):
    # libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1 fails clock_nanosleep (EINVAL), so
    # time.sleep (and subprocess.run's timeout loop) raise; select() sleeps the same.
    import select

    def _sleep(seconds: float) -> None:
        select.select([], [], [], max(0.0, seconds))

    time.sleep = _sleep


def real_clock_env() -> dict[str, str]:
    """The environment without libfaketime, for third-party programs the tests start (chromium,
    a private redis-server): libfaketime hangs them, and their clocks are not under test."""
    drop = ("LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC")
    return {k: v for k, v in os.environ.items() if k not in drop}


ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CCTEST_SHARED_DIR", ROOT.parent / "shared"))
TRANSCRIPTS = SHARED / "asterisk-transcripts"
PG_ADMIN = os.environ.get("CCTEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CCTEST_REDIS_URL", "redis://127.0.0.1:6379/0")
STORE_ON_PG = os.environ.get("CCTEST_STORE_PG") == "1"
# Cheap argon2 for the suite (it signs in thousands of times); a hash carries its parameters, so
# tests that need the real cost make their hashes with `argon2.PasswordHasher()` themselves.
CHEAP_HASHING = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
security.set_hash_parameters(**CHEAP_HASHING)
# CC_HEALTH_API_KEY of the apps under test: /health shows its parts only with it (or to an admin)
HEALTH_KEY = "health-key-for-tests-Zq7Rk2Wm9Xp4Lv8N"
HEALTH = {"X-API-Key": HEALTH_KEY}
# A key that passes the CC_SECRET_KEY rule (32+ bytes, not predictable); never a real one.
SECRET_KEY = "test-secret-key-0123456789abcdef"

# `until` timeouts are sized for an idle machine; CI shares 2 cores with whatever else runs
TIMEOUT_SCALE = float(os.environ.get("CCTEST_TIMEOUT_SCALE", "3"))


# The product's default ports (HTTP, AMI, FastAGI). The suite holds them while it runs, so a test
# that binds one fails here just as it would beside a running `make demo`: servers in tests
# listen on port 0 and read the port back.
DEFAULT_PORTS = (8080, 5038, 4573)


@pytest.fixture(scope="session", autouse=True)
def _hold_default_ports() -> Iterator[None]:
    import socket

    held = []
    for port in DEFAULT_PORTS:
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen(1)
            held.append(sock)
        except OSError:  # taken already (a demo runs): just as good
            sock.close()
    yield
    for sock in held:
        sock.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # every browser test is `e2e`: `make test-fast` leaves them (and `slow`) out
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


def transcript(name: str) -> bytes:
    path = TRANSCRIPTS / name
    if not path.is_file():
        pytest.fail(f"missing capture {path}: shared/ must sit beside the project")
    return path.read_bytes()


async def until(
    fn: Callable[[], Any | Awaitable[Any]], timeout: float = 5.0, interval: float = 0.02
) -> Any:
    """Poll `fn` until it returns something truthy; fail with the last value after `timeout`
    (times `TIMEOUT_SCALE`: a passing test returns as soon as the condition holds, so the
    headroom only matters on a starved machine, where it keeps a slow pass from failing)."""
    timeout *= TIMEOUT_SCALE
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


def _pg_create(template: str | None = None) -> str:
    import psycopg2

    name = f"cc_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg2.connect(PG_ADMIN, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN} ({exc}); `make test` starts it")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
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
    """The store under test: SQLite by default, PostgreSQL when CCTEST_STORE_PG=1."""
    if STORE_ON_PG:
        name = _pg_create()
        try:
            yield _pg_async_url(name)
        finally:
            _pg_drop(name)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrate once per run; each test gets a copy (a file copy on SQLite, CREATE DATABASE ...
    TEMPLATE on PostgreSQL): migrating per test cost seconds a test on PostgreSQL."""
    if STORE_ON_PG:
        name = _pg_create()
        try:
            db.upgrade(_pg_async_url(name))
            yield name
        finally:
            _pg_drop(name)
    else:
        path = tmp_path_factory.mktemp("template") / "store.db"
        db.upgrade(f"sqlite+aiosqlite:///{path}")
        yield str(path)


@pytest.fixture
def migrated_url(_migrated_template: str, tmp_path: Path) -> Iterator[str]:
    """A store at the newest schema, its own copy for this test."""
    if STORE_ON_PG:
        name = _pg_create(template=_migrated_template)
        try:
            yield _pg_async_url(name)
        finally:
            _pg_drop(name)
    else:
        import shutil

        path = tmp_path / "store.db"
        shutil.copyfile(_migrated_template, path)  # WAL is checkpointed when migrations end
        yield f"sqlite+aiosqlite:///{path}"


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


# --- web helpers --------------------------------------------------------------------------------


# Prompts' audio: one synthesis cache for the whole run (speech is the same for the same words),
# and a sounds directory of its own for each app (what Asterisk would read).
AUDIO_TMP = tempfile.mkdtemp(prefix="cc-test-audio-")
atexit.register(shutil.rmtree, AUDIO_TMP, True)


IVR_DB_TIMEOUT_MS = "20000"


def app_settings(database_url: str, **overrides: str) -> Any:
    """Settings for an app under test: AMI/AGI off unless a test turns them on."""
    from contactcenter.config import load_settings

    env = {
        "CC_DATABASE_URL": database_url,
        "CC_SECRET_KEY": SECRET_KEY,
        "CC_HEALTH_API_KEY": HEALTH_KEY,
        "CC_AMI_ENABLED": "false",
        "CC_AGI_ENABLED": "false",
        "CC_PROMPTS_DIR": os.path.join(AUDIO_TMP, "library"),
        "CC_SOUNDS_DIR": tempfile.mkdtemp(prefix="sounds-", dir=AUDIO_TMP),
        # each app its own spool and journal: a record one test left behind is replayed into
        # the next test's store otherwise (the default is ./var/spool, shared by every test)
        "CC_SPOOL_DIR": tempfile.mkdtemp(prefix="spool-", dir=AUDIO_TMP),
        # a starved CI machine can take over the product's 1.5 s for one SQLite read, and the
        # caller would be routed to the general queue; only test_ivr_slow_store tests that limit
        "CC_IVR_DB_TIMEOUT_MS": IVR_DB_TIMEOUT_MS,
        **{f"CC_{k.upper()}": v for k, v in overrides.items()},
    }
    return load_settings(env=env)


@pytest.fixture
async def seeded(
    sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """A migrated store with the reference data and the three demo users (password = name).
    The seeded menu (version 1) plays the sound files of old (`311/en/main-menu`...) as if
    published with them: making its audio is the prompts tests' business, not every test's."""
    from sqlalchemy import update

    from contactcenter.ivr.models import MenuVersion
    from contactcenter.seed import seed_demo_users, seed_reference
    from tests.ivr_support import file_sounds

    await seed_reference(sessions)
    await seed_demo_users(sessions)
    async with sessions() as session, session.begin():
        await session.execute(update(MenuVersion).where(MenuVersion.version == 1)
                              .values(sounds=file_sounds()))
    return sessions


async def login_csrf(client: Any) -> str:
    """The CSRF token the log-in form carries (an anonymous session's)."""
    page = await (await client.get("/login")).text()
    match = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert match, "no CSRF token on the log-in form"
    return match.group(1)


async def login(client: Any, username: str, password: str | None = None) -> str:
    """Sign in through the form; returns the session's CSRF token for later POSTs."""
    resp = await client.post(
        "/login",
        data={"username": username, "password": password or username,
              "_csrf": await login_csrf(client)},
        allow_redirects=False,
    )
    assert resp.status == 302, await resp.text()
    page = await (await client.get("/", headers={"Accept": "text/html"})).text()
    match = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert match, "no CSRF token on the start page after log-in"
    return match.group(1)
