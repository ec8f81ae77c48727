"""The engine and session factory; Alembic migrations run from here too."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

ROOT = Path(__file__).resolve().parent
# inside the package, so an installed (not editable) contactcenter can migrate its database
MIGRATIONS = ROOT / "migrations"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """SQLite gets WAL, foreign keys and a busy timeout; its folder is created if missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def explain(exc: BaseException) -> str | None:
    """One line for a shell user when `exc` says the database is unmigrated or unreachable;
    None for anything else (a real bug keeps its traceback)."""
    from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

    if not isinstance(exc, DBAPIError):
        return None
    text_ = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
    lowered = text_.lower()
    if isinstance(exc, OperationalError | ProgrammingError) and (
        "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered)
    ):
        return (f"the database has no tables yet ({text_}): run `contactcenter db upgrade` "
                "(with the same CC_DATABASE_URL)")
    return f"cannot use the database ({type(exc).__name__}: {text_}); check CC_DATABASE_URL"


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine, timeout: float = 2.0) -> None:
    async def _ping() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    await asyncio.wait_for(_ping(), timeout)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Run migrations (blocking; call from a thread inside an event loop)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def revision(url: str, message: str, autogenerate: bool = True) -> None:
    from alembic import command

    command.revision(alembic_config(url), message=message, autogenerate=autogenerate)
