"""`contactcenter user add|list|passwd`: accounts from the shell."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import secrets
import sys

from sqlalchemy import select

from .. import db
from ..agency.models import Agency
from ..config import load_settings
from ..security import hash_password
from .auth import ROLES
from .models import User


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, generated?)"""
    if args.password_stdin:
        pw = sys.stdin.readline().rstrip("\n")
    elif args.generate or not sys.stdin.isatty():
        return secrets.token_urlsafe(12), True
    else:
        pw = getpass.getpass("password: ")
        if pw != getpass.getpass("again: "):
            raise SystemExit("passwords differ")
    if len(pw) < 8:
        raise SystemExit("password too short: at least 8 characters")
    return pw, False


def cmd_user_add(args: argparse.Namespace) -> int:
    settings = load_settings(ini_path=args.config)
    if args.role not in ROLES:
        print(f"unknown role {args.role!r}: one of {', '.join(ROLES)}", file=sys.stderr)
        return 2
    agencies = [a for a in (args.agencies or "").split(",") if a]
    if args.role == "agency" and not agencies:
        print("an agency user needs --agencies (agency codes, e.g. DPW,SAN)", file=sys.stderr)
        return 2
    password, generated = _password(args)

    async def run() -> int:
        engine = db.make_engine(settings.database_url)
        try:
            async with db.make_sessionmaker(engine)() as session, session.begin():
                exists = (
                    await session.execute(select(User).where(User.username == args.name))
                ).scalar_one_or_none()
                if exists is not None:
                    print(f"user {args.name!r} already exists", file=sys.stderr)
                    return 1
                known = set((await session.execute(select(Agency.code))).scalars())
                unknown = [a for a in agencies if a not in known]
                if unknown:
                    print(f"unknown agencies: {', '.join(unknown)} (known: "
                          f"{', '.join(sorted(known))})", file=sys.stderr)
                    return 1
                session.add(User(
                    username=args.name, display_name=args.display_name or args.name,
                    role=args.role, interface=args.interface or None,
                    queues=[q for q in (args.queues or "").split(",") if q],
                    agencies=agencies,
                    password_hash=hash_password(password),
                ))
        finally:
            await engine.dispose()
        print(f"user {args.name} added ({args.role})")
        if generated:
            print(f"password: {password}")
        return 0

    return asyncio.run(run())


def cmd_user_list(args: argparse.Namespace) -> int:
    settings = load_settings(ini_path=args.config)

    async def run() -> None:
        engine = db.make_engine(settings.database_url)
        try:
            async with db.make_sessionmaker(engine)() as session:
                for u in (await session.execute(select(User).order_by(User.username))).scalars():
                    print(f"{u.username}\t{u.role}\t{u.interface or '-'}\t"
                          f"{'active' if u.active else 'disabled'}"
                          + (f"\t{','.join(u.agencies or [])}" if u.role == "agency" else ""))
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("user", help="operator, supervisor, admin and agency accounts")
    us = p.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    a = us.add_parser("add", help="create an account")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=ROLES)
    a.add_argument("--interface", help="the operator's phone, e.g. PJSIP/1001")
    a.add_argument("--queues", help="comma-separated queues the operator logs in to")
    a.add_argument("--agencies", help="agency users: comma-separated agency codes (SAN,DPW)")
    a.add_argument("--display-name")
    a.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    a.add_argument("--generate", action="store_true", help="generate and print a password")
    a.set_defaults(func=cmd_user_add)
    a = us.add_parser("list", help="list accounts")
    a.set_defaults(func=cmd_user_list)
