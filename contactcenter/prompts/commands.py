"""`contactcenter prompts build` and `contactcenter prompts sync DIR`.

`build` gives the active menu version its audio when it has none (a new install's seeded
default menu; `contactcenter demo` runs it): speech made from the words, files written to
CC_SOUNDS_DIR, the names stored with the version. `sync DIR` writes every sound in use (the
active version, recent ones, announcements that have not ended) into DIR with the same layout,
atomically, and prunes our files there that nothing uses: for an Asterisk on another host
(then copy DIR over, e.g. `rsync -a --delete-after DIR/ asterisk:/var/lib/asterisk/sounds/`
— mind `--delete-after`: only with a DIR that is our sounds alone)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import db
from ..clock import SYSTEM, Clock
from ..config import Settings, load_settings
from ..ivr.menu import Problem
from ..ivr.models import MenuVersion
from .plugin import build
from .service import PromptService


async def build_active(service: PromptService, sessions: async_sessionmaker[AsyncSession],
                       *, force: bool = False) -> tuple[int | None, int, list[Problem]]:
    """(version, files written, problems) for the active version's audio."""
    async with sessions() as session:
        row = (await session.execute(select(MenuVersion).where(
            MenuVersion.status == "active").order_by(MenuVersion.version.desc()).limit(1))
        ).scalar_one_or_none()
    if row is None:
        return None, 0, []
    if row.sounds and not force:
        return row.version, await service.deliver(row.sounds), []
    sounds, problems = await service.prepare(row.data)
    if problems:
        return row.version, 0, problems
    written = await service.deliver(sounds)
    async with sessions() as session, session.begin():
        found = await session.get(MenuVersion, row.id)
        if found is not None:
            found.sounds = sounds
    return row.version, written, []


async def sync(service: PromptService, target: Path, clock: Clock = SYSTEM) -> tuple[int, int]:
    """(written, removed) in `target`."""
    keep, all_sounds = await service.kept(clock.now())
    written = 0
    for sounds in all_sounds:
        written += await service.deliver(sounds, target)
    from .delivery import prune

    removed = await asyncio.to_thread(prune, target, keep)
    return written, len(removed)


def _run_build(settings: Settings, force: bool) -> int:
    async def run() -> int:
        engine = db.make_engine(settings.database_url)
        try:
            service = build(settings, db.make_sessionmaker(engine))
            version, written, problems = await build_active(
                service, db.make_sessionmaker(engine), force=force)
        finally:
            await engine.dispose()
        if version is None:
            print("contactcenter prompts build: no active menu version", file=sys.stderr)
            return 1
        if problems:
            print(f"contactcenter prompts build: version {version} has no audio "
                  f"({len(problems)} problem(s)):", file=sys.stderr)
            for p in problems:
                print(f"  {p}", file=sys.stderr)
            return 1
        print(f"menu version {version}: {written} new sound file(s) in {settings.sounds_dir}")
        return 0

    return asyncio.run(run())


def cmd_build(args: argparse.Namespace) -> int:
    return _run_build(load_settings(ini_path=args.config), args.force)


def cmd_sync(args: argparse.Namespace) -> int:
    settings = load_settings(ini_path=args.config)
    target = Path(args.dir)

    async def run() -> tuple[int, int]:
        engine = db.make_engine(settings.database_url)
        try:
            return await sync(build(settings, db.make_sessionmaker(engine)), target)
        finally:
            await engine.dispose()

    try:
        target.mkdir(parents=True, exist_ok=True)
        written, removed = asyncio.run(run())
    except OSError as exc:
        print(f"contactcenter prompts sync: {target}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{written} sound file(s) written to {target}, {removed} no longer used removed")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("prompts", help="the IVR's sound files: build them, sync them elsewhere")
    ps = p.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    b = ps.add_parser("build", help="give the active menu version its audio (CC_SOUNDS_DIR)")
    b.add_argument("--force", action="store_true", help="make it again even if it has audio")
    b.set_defaults(func=cmd_build)
    s = ps.add_parser("sync", help="write every sound in use into DIR (<lang>/311/...)")
    s.add_argument("dir", metavar="DIR")
    s.set_defaults(func=cmd_sync)
