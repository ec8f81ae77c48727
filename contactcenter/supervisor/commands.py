"""`contactcenter reports rebuild`: restate the interval summary (and the IVR containment
summary) from `calls`/`call_legs`."""

from __future__ import annotations

import argparse
import asyncio
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from contactcenter import db
from contactcenter.config import SettingsError, load_settings

from . import containment, daily, intervals


def _day(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"--{name} must be a date as YYYY-MM-DD, got {raw[:40]!r}") from None


def cmd_rebuild(args: argparse.Namespace) -> int:
    settings = load_settings(ini_path=args.config)
    tz = ZoneInfo(settings.timezone)
    first, last = _day(args.from_, "from"), _day(args.to, "to")
    if first and last and first > last:
        raise SettingsError("--from is after --to")
    start = datetime(first.year, first.month, first.day, tzinfo=tz) if first else None
    end = None
    if last:
        after = last + timedelta(days=1)
        end = datetime(after.year, after.month, after.day, tzinfo=tz)

    async def run() -> tuple[int, int]:
        engine = db.make_engine(settings.database_url)
        try:
            sessions = db.make_sessionmaker(engine)
            n = await intervals.rebuild(sessions, settings.service_level_seconds, start, end)
            await daily.rebuild(sessions, tz, start, end)  # from the buckets just restated
            return n, await containment.rebuild(sessions, tz, start, end)
        finally:
            await engine.dispose()

    n, ivr = asyncio.run(run())
    what = f"{first or 'the first call'} to {last or 'the last call'}"
    print(f"interval summary rebuilt from {n} calls ({what}, days in {settings.timezone})")
    print(f"IVR containment summary rebuilt from {ivr} calls")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("reports", help="historical reports' interval summary")
    rsub = p.add_subparsers(dest="reports_command", metavar="ACTION", required=True)
    q = rsub.add_parser("rebuild", help="restate the 15-minute summaries from the calls "
                        "(after an upgrade, or a service-level threshold change)")
    q.add_argument("--from", dest="from_", metavar="DATE", help="first day (YYYY-MM-DD)")
    q.add_argument("--to", metavar="DATE", help="last day, inclusive (YYYY-MM-DD)")
    q.set_defaults(func=cmd_rebuild)
