"""`contactcenter apikey create NAME | list | revoke ID`: Open311 keys from the shell."""

from __future__ import annotations

import argparse
import asyncio
import getpass
from typing import Any

from .. import db
from ..config import load_settings
from .store import ApiKeys, CaseError


def _actor() -> str:
    try:
        return f"shell:{getpass.getuser()}"[:80]
    except (KeyError, OSError):
        return "shell"


async def _with_keys(args: argparse.Namespace, action: Any) -> int:
    settings = load_settings(ini_path=getattr(args, "config", None))
    engine = db.make_engine(settings.database_url)
    try:
        return int(await action(ApiKeys(db.make_sessionmaker(engine))))
    finally:
        await engine.dispose()


def cmd_create(args: argparse.Namespace) -> int:
    async def action(keys: ApiKeys) -> int:
        try:
            view, key = await keys.create(args.name, actor=_actor())
        except CaseError as exc:
            print(f"contactcenter: {exc}")
            return 1
        print(f"API key {view.id} ({view.name}) created. It is shown only now; keep it safe:")
        print(key)
        return 0

    return asyncio.run(_with_keys(args, action))


def cmd_list(args: argparse.Namespace) -> int:
    async def action(keys: ApiKeys) -> int:
        rows = await keys.list()
        print(f"{'ID':>4}  {'NAME':<30} {'PREFIX':<12} {'CREATED':<20} STATE")
        for k in rows:
            state = "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}"
            print(f"{k.id:>4}  {k.name[:30]:<30} {k.prefix:<12} "
                  f"{k.created_at:%Y-%m-%d %H:%M}     {state}")
        return 0

    return asyncio.run(_with_keys(args, action))


def cmd_revoke(args: argparse.Namespace) -> int:
    async def action(keys: ApiKeys) -> int:
        try:
            view = await keys.revoke(args.id, actor=_actor())
        except CaseError as exc:
            print(f"contactcenter: {exc}")
            return 1
        print(f"API key {view.id} ({view.name}) revoked.")
        return 0

    return asyncio.run(_with_keys(args, action))


def add_commands(sub: Any) -> None:
    p = sub.add_parser("apikey", help="Open311 API keys: create, list, revoke")
    keys = p.add_subparsers(dest="apikey_command", metavar="ACTION", required=True)
    q = keys.add_parser("create", help="make a key; prints it on the last line, once")
    q.add_argument("name")
    q.set_defaults(func=cmd_create)
    q = keys.add_parser("list", help="every key with its state")
    q.set_defaults(func=cmd_list)
    q = keys.add_parser("revoke", help="revoke a key by its id")
    q.add_argument("id", type=int)
    q.set_defaults(func=cmd_revoke)
