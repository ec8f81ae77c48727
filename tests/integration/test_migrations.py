"""The migrated schema equals the models (autogenerate finds nothing) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from contactcenter import db
from contactcenter.cases.models import Base


async def _diff(url: str) -> list[object]:
    await asyncio.to_thread(db.upgrade, url)
    engine = db.make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()


@pytest.mark.store
async def test_sqlite_schema_matches_models(tmp_path: Path) -> None:
    assert await _diff(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}") == []


@pytest.mark.store
async def test_postgresql_schema_matches_models(pg_url: str) -> None:
    assert await _diff(pg_url) == []


@pytest.mark.store
async def test_upgrade_is_repeatable(db_url: str) -> None:
    await asyncio.to_thread(db.upgrade, db_url)
    await asyncio.to_thread(db.upgrade, db_url)
