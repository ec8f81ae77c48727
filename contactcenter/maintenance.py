"""Housekeeping that runs inside the server (daily) and from the shell."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from . import db
from .cases.retention import purge_personal_data
from .clock import SYSTEM
from .config import load_settings
from .keys import CLOCK, SESSIONS, SETTINGS

log = logging.getLogger(__name__)
RETENTION_INTERVAL = 24 * 3600


async def retention_ctx(app: web.Application) -> AsyncIterator[None]:
    """Erase old personal data once a day when CC_RETENTION_DAYS is set."""
    days = app[SETTINGS].retention_days
    task: asyncio.Task[None] | None = None
    if days > 0:
        async def loop() -> None:
            while True:
                try:
                    result = await purge_personal_data(app[SESSIONS], days, app[CLOCK].now())
                    log.info("retention (%d days): %s", days, result)
                except Exception:
                    log.exception("retention purge failed; retrying tomorrow")
                await asyncio.sleep(RETENTION_INTERVAL)

        task = asyncio.get_running_loop().create_task(loop(), name="retention")
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def cmd_retention(args: argparse.Namespace) -> int:
    settings = load_settings(ini_path=args.config)
    days = args.days if args.days is not None else settings.retention_days
    if days <= 0:
        print("retention is off (CC_RETENTION_DAYS=0 and no --days): nothing erased")
        return 0

    async def run() -> None:
        engine = db.make_engine(settings.database_url)
        try:
            result = await purge_personal_data(db.make_sessionmaker(engine), days, SYSTEM.now())
        finally:
            await engine.dispose()
        print(f"erased personal data older than {days} days: {result.calls} calls, "
              f"{result.cases} closed cases, {result.citizens} citizens")

    asyncio.run(run())
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("retention", help="erase personal data of old calls and closed cases")
    p.add_argument("--days", type=int, help="override CC_RETENTION_DAYS")
    p.set_defaults(func=cmd_retention)
