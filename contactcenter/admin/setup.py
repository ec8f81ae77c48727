"""`contactcenter setup FILE`: a production site from a small TOML file (README, "Setting up a
site"). It migrates the store, then creates what the file lists and the store lacks: agencies,
queues, service types (with their SLA), the default phone menu, the first administrator (the
password is read from standard input, never from the file). Idempotent: what exists is left as
it is (later changes are the admin pages' business), and a second run says "nothing to do".

The file is checked whole before anything is written: an unknown key, a wrong type, a service
type naming an agency or queue that is neither in the file nor in the store stops it with one
line per problem and nothing saved.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import db
from ..agency.models import Agency
from ..audit import audit
from ..config import Settings, load_settings
from ..queues.models import Queue, ServiceType
from ..security import hash_password
from ..seed import seed_ivr_menu
from ..web.models import User
from . import forms

ACTOR = "setup"

# key -> (type, required, check); checks return a problem or "".
_Check = Callable[[Any], str]


def _pattern(regex: Any, hint: str) -> _Check:
    return lambda v: "" if regex.fullmatch(v) else hint


def _choice(options: Sequence[str]) -> _Check:
    return lambda v: "" if v in options else f"one of {', '.join(options)}"


def _range(low: int, high: int) -> _Check:
    return lambda v: "" if low <= v <= high else f"between {low} and {high}"


_OK: _Check = lambda v: ""  # noqa: E731

SCHEMA: dict[str, dict[str, tuple[type, bool, _Check]]] = {
    "agencies": {
        "code": (str, True, _pattern(forms.CODE, "letters, digits, '.', '-', '_'")),
        "name": (str, True, _OK), "email": (str, False, _OK), "phone": (str, False, _OK),
    },
    "queues": {
        "name": (str, True, _pattern(forms.QUEUE_NAME, "letters, digits, '-', '_'")),
        "display_name": (str, True, _OK),
        "strategy": (str, False, _choice(forms.STRATEGIES)),
        "service_level_seconds": (int, False, _range(1, 3600)),
        "service_level_target": (float, False, lambda v: "" if 0 < v <= 1 else "0 < x <= 1"),
        "short_abandon_seconds": (int, False, _range(0, 120)),
        "max_wait_target_seconds": (int, False, _range(1, 7200)),
        "wrapup_seconds": (int, False, _range(0, 3600)),
        "ring_timeout_seconds": (int, False, _range(1, 600)),
        "retry_seconds": (int, False, _range(0, 600)),
        "joinempty": (str, False, _choice(forms.EMPTY_RULES)),
        "leavewhenempty": (str, False, _choice(forms.EMPTY_RULES)),
        "announce_frequency": (int, False, _range(0, 3600)),
        "announce_position": (bool, False, _OK),
        "announce_holdtime": (str, False, _choice(forms.HOLDTIME)),
        "periodic_announce": (str, False, _pattern(forms.SOUND, "a sound file name")),
        "periodic_announce_frequency": (int, False, _range(0, 3600)),
        "musicclass": (str, False, _pattern(forms.MUSICCLASS, "a musiconhold.conf class")),
        "weight": (int, False, _range(0, 100)),
        "language_wait_seconds": (int, False, _range(0, 3600)),
        "max_wait_seconds": (int, False, _range(0, 86400)),
        "timezone": (str, False, _OK),
        "group_name": (str, False, _pattern(forms.QUEUE_NAME, "letters, digits, '-', '_'")),
    },
    "service_types": {
        "code": (str, True, _pattern(forms.SERVICE_CODE, "letters, digits, '.', '-', '_'")),
        "name": (str, True, _OK), "description": (str, False, _OK),
        "group_name": (str, False, _OK), "keywords": (str, False, _OK),
        "agency": (str, True, _OK), "queue": (str, True, _OK),
        "sla_hours": (int, True, _range(1, 24 * 365)),
    },
    "admin": {
        "username": (str, True, _pattern(forms.USERNAME, "letters, digits, '.', '-', '_'")),
        "display_name": (str, False, _OK),
    },
    "menu": {"default": (bool, False, _OK)},
}
KEYS = {"agencies": "code", "queues": "name", "service_types": "code"}


def check(data: dict[str, Any]) -> list[str]:
    """Every problem of a parsed setup file (empty: fine)."""
    problems: list[str] = []
    for section in sorted(set(data) - set(SCHEMA)):
        problems.append(f"[{section}]: unknown section (known: {', '.join(SCHEMA)})")
    for section, fields in SCHEMA.items():
        if section not in data:
            continue
        rows = data[section]
        single = section in ("admin", "menu")
        if single != isinstance(rows, dict) or (not single and not isinstance(rows, list)):
            problems.append(f"{section}: write it as " +
                            (f"[{section}]" if single else f"[[{section}]] entries"))
            continue
        for i, row in enumerate([rows] if single else rows, 1):
            where = section if single else f"{section} #{i}"
            if not isinstance(row, dict):
                problems.append(f"{where}: not a table")
                continue
            for key in sorted(set(row) - set(fields)):
                problems.append(f"{where}: unknown key {key!r}")
            for key, (kind, required, rule) in fields.items():
                if key not in row:
                    if required:
                        problems.append(f"{where}: {key} is required")
                    continue
                value = row[key]
                if kind is float and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                    problems.append(f"{where}: {key} must be {kind.__name__}")
                    continue
                why = rule(value)
                if why:
                    problems.append(f"{where}: {key} {value!r}: {why}")
        if not single:
            names = [r.get(KEYS[section]) for r in rows if isinstance(r, dict)]
            for dup in sorted({n for n in names if n is not None and names.count(n) > 1}):
                problems.append(f"{section}: {dup!r} is listed twice")
    return problems


async def _current_revision(sessions: async_sessionmaker[AsyncSession]) -> str | None:
    async with sessions() as s:
        try:
            return (await s.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        except Exception:  # no table yet: an empty store
            return None


async def apply(sessions: async_sessionmaker[AsyncSession], data: dict[str, Any],
                password: str | None, settings: Settings) -> tuple[list[str], list[str]]:
    """(what was created, problems). One transaction: on a problem nothing is saved."""
    done: list[str] = []
    async with sessions() as s, s.begin():
        agencies = {a.code: a for a in (await s.execute(select(Agency))).scalars()}
        queues = {q.name: q for q in (await s.execute(select(Queue))).scalars()}
        for row in data.get("agencies", []):
            if row["code"] not in agencies:
                agencies[row["code"]] = Agency(**row)
                s.add(agencies[row["code"]])
                audit(s, ACTOR, "create", "agency", row["code"], dict(row))
                done.append(f"agency {row['code']}")
        for row in data.get("queues", []):
            if row["name"] not in queues:
                queues[row["name"]] = Queue(**row)
                s.add(queues[row["name"]])
                audit(s, ACTOR, "create", "queue", row["name"], dict(row))
                done.append(f"queue {row['name']}")
        await s.flush()
        problems: list[str] = []
        existing = set((await s.execute(select(ServiceType.code))).scalars())
        for row in data.get("service_types", []):
            if row["code"] in existing:
                continue
            agency, queue = agencies.get(row["agency"]), queues.get(row["queue"])
            if agency is None or queue is None:
                missing = "agency " + row["agency"] if agency is None else "queue " + row["queue"]
                problems.append(f"service type {row['code']}: no {missing} in the file or store")
                continue
            values = {k: v for k, v in row.items() if k not in ("agency", "queue")}
            s.add(ServiceType(**values, agency_id=agency.id, queue_id=queue.id))
            audit(s, ACTOR, "create", "service_type", row["code"], dict(row))
            done.append(f"service type {row['code']} (SLA {row['sla_hours']} h)")
        admin = data.get("admin")
        if admin is not None:
            user = (await s.execute(select(User).where(
                User.username == admin["username"]))).scalar_one_or_none()
            if user is None:
                if not password or len(password) < forms.MIN_PASSWORD:
                    problems.append(f"admin {admin['username']}: give a password of at least "
                                    f"{forms.MIN_PASSWORD} characters on standard input")
                else:
                    s.add(User(username=admin["username"], role="admin",
                               display_name=admin.get("display_name", admin["username"]),
                               password_hash=await asyncio.to_thread(hash_password, password)))
                    audit(s, ACTOR, "create", "user", admin["username"], {"role": "admin"})
                    done.append(f"administrator {admin['username']}")
        if problems:
            await s.rollback()
            return [], problems
    if data.get("menu", {}).get("default", True):
        try:
            version = await seed_ivr_menu(sessions, settings.general_queue)
        except ValueError as exc:  # the queues or services the default menu needs are missing
            return done, [f"menu: {exc}"]
        if version is not None:
            done.append(f"the default phone menu (active version {version})")
    return done, []


def cmd_setup(args: argparse.Namespace) -> int:
    settings = load_settings(ini_path=args.config)
    try:
        data = tomllib.loads(Path(args.file).read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"contactcenter setup: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        print(f"contactcenter setup: {args.file} is not TOML: {exc}", file=sys.stderr)
        return 1
    problems = check(data)
    if problems:
        print(f"contactcenter setup: {args.file}: nothing done ({len(problems)} problems):",
              file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    password = sys.stdin.readline().rstrip("\r\n") if "admin" in data else None

    async def run() -> tuple[str | None, str | None, list[str], list[str]]:
        engine = db.make_engine(settings.database_url)
        try:
            sessions = db.make_sessionmaker(engine)
            before = await _current_revision(sessions)
            await asyncio.to_thread(db.upgrade, settings.database_url, "head")
            after = await _current_revision(sessions)
            done, problems = await apply(sessions, data, password, settings)
            return before, after, done, problems
        finally:
            await engine.dispose()

    before, after, done, problems = asyncio.run(run())
    if before != after:
        print(f"store migrated: {before or 'empty'} -> {after}")
    for line in done:
        print(f"created {line}")
    if problems:
        print("contactcenter setup: not done:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    if before == after and not done:
        print("nothing to do: the store already has everything in " + args.file)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("setup", help="migrate and create a site's reference data from FILE")
    p.add_argument("file", metavar="FILE", help="a TOML file (README, 'Setting up a site')")
    p.set_defaults(func=cmd_setup)
