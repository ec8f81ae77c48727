"""Housekeeping from the shell (`contactcenter retention`); the daily task inside the server is
cases/retention_plugin.py."""

from __future__ import annotations

import argparse
import asyncio
import logging

from . import db
from .cases.retention import BATCH_ROWS, count_personal_data, purge_in_batches
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
        sessions = db.make_sessionmaker(engine)
        try:
            if args.dry_run:
                run = await count_personal_data(sessions, days, SYSTEM.now())
            else:
                run = await purge_in_batches(sessions, days, SYSTEM.now(), batch=args.batch)
        finally:
            await engine.dispose()
        r = run.result
        what = f"{r.calls} calls, {r.cases} closed cases, {r.citizens} citizens"
        if args.dry_run:
            print(f"dry run: would erase personal data older than {days} days (ended before "
                  f"{run.cutoff.isoformat(timespec='seconds')}): {what}; nothing changed")
        else:
            print(f"erased personal data older than {days} days: {what} "
                  f"({run.batches} transactions, longest {run.longest_batch_seconds:.2f} s)")

    asyncio.run(run())
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("retention", help="erase personal data of old calls and closed cases")
    p.add_argument("--days", type=int, help="override CC_RETENTION_DAYS")
    p.add_argument("--dry-run", action="store_true",
                   help="only count what would be erased; change nothing")
    p.add_argument("--batch", type=int, default=BATCH_ROWS,
                   help=f"rows per transaction (default {BATCH_ROWS})")
    p.set_defaults(func=cmd_retention)
