"""contactcenter.audit.audit: the one writer of audit rows, on a migrated store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.audit import NAME_LIMIT, AuditLog, audit

pytestmark = pytest.mark.store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_a_row_commits_with_its_change_and_keeps_business_time(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as db, db.begin():
        audit(db, "ana", "update", "queue", 7, {"changes": {"weight": [0, 1]}}, at=T0)
        audit(db, "system", "retention.purge", "personal_data")
    async with sessions() as db:
        first, second = (await db.execute(select(AuditLog).order_by(AuditLog.id))).scalars()
    assert (first.actor, first.action, first.entity, first.entity_id) == (
        "ana", "update", "queue", "7")
    assert first.detail == {"changes": {"weight": [0, 1]}}
    assert first.at.replace(tzinfo=UTC) == T0
    assert second.entity_id is None and second.detail == {} and second.at is not None


async def test_a_long_actor_or_id_is_cut_not_refused(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    # audit_log columns are String(80): PostgreSQL would refuse the whole change otherwise
    async with sessions() as db, db.begin():
        audit(db, "x" * 300, "create", "announcement", "y" * 300, at=T0)
    async with sessions() as db:
        row = (await db.execute(select(AuditLog))).scalar_one()
    assert row.actor == "x" * NAME_LIMIT and row.entity_id == "y" * NAME_LIMIT


async def test_a_rolled_back_change_leaves_no_row(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(RuntimeError):
        async with sessions() as db, db.begin():
            audit(db, "ana", "delete", "queue", "potholes", at=T0)
            raise RuntimeError("the change failed")
    async with sessions() as db:
        assert (await db.execute(select(AuditLog))).first() is None
