"""Housekeeping from the shell (`contactcenter retention`); the daily task inside the server is
cases/retention_plugin.py."""

from __future__ import annotations

import argparse
import asyncio
import logging

from . import db
from .cases.retention import purge_personal_data
from .clock import SYSTEM
from .config import load_settings

log = logging.getLogger(__name__)


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
