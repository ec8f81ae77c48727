"""Reports run in a worker process (supervisor/offloop.py), never on the serving loop: the work
runs in another process with its own engine on the same database, errors come back, and the
reports page of a running app goes through it."""

from __future__ import annotations

import os
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.app import create_app
from contactcenter.keys import PBX
from contactcenter.queues.models import ServiceType
from contactcenter.supervisor import reports
from contactcenter.supervisor.keys import SUPERVISOR
from contactcenter.supervisor.offloop import OffLoop, shareable
from tests.conftest import app_settings, login
from tests.integration.supervisor.conftest import FakePbx

pytestmark = pytest.mark.store


async def where_and_what(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with sessions() as s:
        n = (await s.execute(select(func.count()).select_from(ServiceType))).scalar_one()
    return os.getpid(), int(n)


async def fails(sessions: async_sessionmaker[AsyncSession], why: str) -> None:
    raise reports.ReportError(why)


async def test_work_runs_in_another_process_on_the_same_data(
    migrated_url: str, seeded: Any,
) -> None:
    worker = OffLoop(migrated_url)
    await worker.start()
    try:
        pid, services = await worker.run(where_and_what)
        assert pid != os.getpid()
        async with seeded() as s:
            assert services == (await s.execute(
                select(func.count()).select_from(ServiceType))).scalar_one() > 0
        assert (await worker.run(where_and_what))[0] == pid  # the same worker, kept
        with pytest.raises(reports.ReportError, match="bad range"):
            await worker.run(fails, "bad range")
    finally:
        await worker.close()
    with pytest.raises(RuntimeError, match="before start"):
        await worker.run(where_and_what)


def test_only_a_database_another_process_can_see_is_shared() -> None:
    assert shareable("sqlite+aiosqlite:////tmp/x.db")
    assert shareable("postgresql+asyncpg://u@h/db")
    assert not shareable("sqlite+aiosqlite://") and not shareable("sqlite+aiosqlite:///:memory:")


async def test_the_reports_page_uses_the_worker(
    aiohttp_client: Any, migrated_url: str, seeded: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(app_settings(migrated_url))
    app[PBX] = FakePbx()
    client = await aiohttp_client(app)
    await login(client, "supervisor")
    worker = app[SUPERVISOR].offloop
    assert worker is not None
    ran: list[str] = []
    real = worker.run

    async def spy(fn: Any, *args: Any) -> Any:
        ran.append(fn.__name__)
        return await real(fn, *args)

    monkeypatch.setattr(worker, "run", spy)
    day = date(2026, 11, 20).isoformat()
    resp = await client.get(f"/reports?from={day}&to={day}")
    assert resp.status == 200 and "By queue" in await resp.text()
    assert (await client.get(f"/reports/summary.csv?from={day}&to={day}")).status == 200
    assert ran == ["page_work", "summary_work"]
