"""The migrated schema equals the models (autogenerate finds nothing) on SQLite and PostgreSQL.
The models are the metadata of contactcenter/schema_registry.py, the list Alembic's env reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from contactcenter import db
from contactcenter.schema_registry import metadata


async def _diff(url: str) -> list[object]:
    await asyncio.to_thread(db.upgrade, url)
    engine = db.make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
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


@pytest.mark.store
async def test_the_registry_has_every_table_the_migrations_create(tmp_path: Path) -> None:
    # the diff above already reports a migrated table the metadata lacks (as a remove_table);
    # this names them, both ways, so a models module missing from the registry is plain
    url = f"sqlite+aiosqlite:///{tmp_path / 't.db'}"
    await asyncio.to_thread(db.upgrade, url)
    engine = db.make_engine(url)
    try:
        async with engine.connect() as conn:
            migrated = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    migrated.discard("alembic_version")
    assert {"cases", "calls", "users"} <= migrated  # the upgrade ran
    assert migrated - set(metadata.tables) == set(), "tables no models module declares"
    assert set(metadata.tables) - migrated == set(), "models with no migration"
