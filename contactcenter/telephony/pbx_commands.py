"""`contactcenter pbx apply`: what the bridge does after an admin's save, by hand (write the
queue configuration to CC_ASTERISK_CONF_DIR, `QueueReload` every Asterisk, record the outcome
for the admin page); `contactcenter pbx show`: the generated files on stdout."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from sqlalchemy import select

from .. import db
from ..clock import SYSTEM
from ..config import load_settings
from ..queues.directory import QueueInfo, fingerprint
from ..queues.models import Queue
from .pbx_config import actions_clients, apply, record
from .queues_conf import QUEUES_FILE, RULES_FILE, render_queues, render_rules


async def _queues(url: str) -> list[QueueInfo]:
    engine = db.make_engine(url)
    try:
        async with db.make_sessionmaker(engine)() as session:
            rows = (await session.execute(select(Queue))).scalars().all()
            return sorted((QueueInfo.from_row(q) for q in rows), key=lambda q: q.name)
    finally:
        await engine.dispose()


def cmd_show(args: argparse.Namespace) -> int:
    settings = load_settings(ini_path=args.config)
    queues = asyncio.run(_queues(settings.database_url))
    sys.stdout.write(f";;; {QUEUES_FILE}\n{render_queues(queues)}\n"
                     f";;; {RULES_FILE}\n{render_rules(queues)}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    settings = load_settings(ini_path=args.config)
    if not settings.asterisk_conf_dir:
        print("contactcenter pbx apply: CC_ASTERISK_CONF_DIR is not set (where Asterisk reads "
              "the generated queue files)", file=sys.stderr)
        return 1

    async def run() -> int:
        queues = await _queues(settings.database_url)
        endpoints = settings.ami_endpoints() if settings.ami_enabled else []
        async with actions_clients(endpoints, settings.ami_username, settings.ami_secret,
                                   settings.ami_action_timeout) as clients:
            outcomes = await apply(Path(settings.asterisk_conf_dir),
                                   queues, clients, timeout=settings.ami_action_timeout)
        engine = db.make_engine(settings.database_url)
        try:
            await record(db.make_sessionmaker(engine), outcomes, fingerprint(queues),
                         SYSTEM.now())
        finally:
            await engine.dispose()
        print(f"{len(queues)} queues written to {settings.asterisk_conf_dir}")
        for o in outcomes:
            print(f"  {o.server}: {'applied' if o.ok else 'NOT applied'} ({o.message})")
        return 0 if outcomes and all(o.ok for o in outcomes) else 1

    return asyncio.run(run())


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("pbx", help="the queue configuration Asterisk loads")
    pbx = p.add_subparsers(dest="pbx_command", metavar="ACTION", required=True)
    a = pbx.add_parser("apply", help="write the queue files and QueueReload every Asterisk")
    a.set_defaults(func=cmd_apply)
    s = pbx.add_parser("show", help="print the generated queue files")
    s.set_defaults(func=cmd_show)
