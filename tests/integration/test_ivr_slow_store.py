"""The IVR never waits on history: every database call it makes has a time limit
(CC_IVR_DB_TIMEOUT_MS), after which the caller goes to the general queue and it is counted.
The store here is deliberately slow: every statement that reads cases sleeps first."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.config import load_settings
from contactcenter.ivr.services import IvrServices, IvrStoreTimeout
from contactcenter.seed import seed_ivr_menu
from tests.agi_fake import Caller
from tests.conftest import app_settings, until
from tests.ivr_support import Recorder, running_ivr

pytestmark = pytest.mark.store
SLOW = 30.0  # far beyond any limit: a test that waited for it would visibly hang


class SlowCaseReads(AsyncSession):
    """A session whose statements about cases take SLOW seconds (a store busy with history)."""

    async def execute(self, statement: Any, *args: Any, **kw: Any) -> Any:
        if " cases" in str(statement):
            await asyncio.sleep(SLOW)
        return await super().execute(statement, *args, **kw)


def slow(seeded: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(seeded.kw["bind"], class_=SlowCaseReads, expire_on_commit=False)


async def test_each_store_call_gives_up_at_its_limit(
    seeded: async_sessionmaker[AsyncSession],
) -> None:
    services = IvrServices(slow(seeded), db_timeout=0.05)
    for call in (lambda: services.find_case("3112026000001", "7875550101"),
                 lambda: services.find_case("423", "7875550101"),
                 lambda: services.open_cases("7875550101")):
        with pytest.raises(IvrStoreTimeout, match="took longer than 50 ms"):
            await asyncio.wait_for(call(), 10)  # the guard: never the 30 s of the slow store
    assert services.timeouts == 3 and services.last_timeout == "open_cases"
    # what does not read cases is not slowed, and the limit does not touch it
    await seed_ivr_menu(seeded)
    assert (await services.active_menu()) is not None and services.timeouts == 3


async def test_a_slow_case_lookup_sends_the_caller_to_an_operator(
    seeded: async_sessionmaker[AsyncSession],
) -> None:
    await seed_ivr_menu(seeded)
    services = IvrServices(slow(seeded), db_timeout=0.1)
    recorder = Recorder()
    caller = Caller(inputs=["1", "9", "423", ""])  # caller ID 7875550101
    async with running_ivr(services, recorder) as server:
        await caller.call(server.port)
        await until(lambda: recorder.results, timeout=10)
    result = recorder.results[0]
    assert result.outcome == "fallback" and caller.variables["QUEUE"] == "general-311"
    assert "took longer than 100 ms" in (result.error or "")
    assert services.timeouts == 1 and recorder.engine.fallbacks == 1


def test_the_setting_and_its_check() -> None:
    from contactcenter.config import SettingsError

    assert load_settings(env={}).ivr_db_timeout_ms == 1500
    assert app_settings("sqlite+aiosqlite:///x.db", ivr_db_timeout_ms="250").ivr_db_timeout_ms \
        == 250
    with pytest.raises(SettingsError, match="CC_IVR_DB_TIMEOUT_MS"):
        app_settings("sqlite+aiosqlite:///x.db", ivr_db_timeout_ms="0")
