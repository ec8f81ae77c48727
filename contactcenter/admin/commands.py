"""`contactcenter ivr export [--version N] FILE` and `contactcenter ivr import FILE`: menus as
JSON files, so they can live under version control. An import is validated like any draft
(the same `ivr.menu.validate` against the store) and becomes a draft; on problems nothing is
saved and the command exits 1 listing them. FILE may be `-` for stdout / stdin."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from .. import db
from ..config import load_settings
from ..ivr.menu import Problem, load_menu_json
from . import ivr_services as ivs

CLI_ACTOR = "cli"


def cmd_export(args: argparse.Namespace) -> int:
    settings = load_settings(ini_path=args.config)

    async def run() -> tuple[int, str]:
        engine = db.make_engine(settings.database_url)
        try:
            async with db.make_sessionmaker(engine)() as session:
                if args.version is not None:
                    try:
                        row = await ivs.get_version(session, args.version)
                    except ivs.VersionError as exc:
                        print(f"contactcenter ivr export: {exc}", file=sys.stderr)
                        return 1, ""
                else:
                    found = await ivs.active_version(session)
                    if found is None:
                        print("contactcenter ivr export: no active menu version",
                              file=sys.stderr)
                        return 1, ""
                    row = found
                return row.version, json.dumps(row.data, indent=2, ensure_ascii=False) + "\n"
        finally:
            await engine.dispose()

    version, text = asyncio.run(run())
    if not text:
        return 1
    if args.file == "-":
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text, encoding="utf-8")
        print(f"menu version {version} written to {args.file}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    settings = load_settings(ini_path=args.config)
    try:
        payload = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"contactcenter ivr import: cannot read {args.file}: {exc.strerror}",
              file=sys.stderr)
        return 1
    data, problems = load_menu_json(payload)

    async def run() -> tuple[int | None, list[Problem]]:
        engine = db.make_engine(settings.database_url)
        try:
            sessions = db.make_sessionmaker(engine)
            async with sessions() as session, session.begin():
                found = await ivs.problems_of(session, data, settings.general_queue)
                if found:
                    return None, found
                row = await ivs.create_draft(session, CLI_ACTOR, data or {},
                                             comment=f"imported from {args.file}",
                                             action="import")
                return row.version, []
        finally:
            await engine.dispose()

    version: int | None = None
    if data is not None and not problems:
        version, problems = asyncio.run(run())
    if problems or version is None:
        print(f"contactcenter ivr import: {args.file} was not imported "
              f"({len(problems)} problem{'s' if len(problems) != 1 else ''}):", file=sys.stderr)
        for p in problems:
            print(f"  {p.node_id or 'menu'}: {p.message}", file=sys.stderr)
        return 1
    print(f"imported {args.file} as draft version {version}; publish it in /admin/ivr")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ivr", help="export and import IVR menus as JSON")
    ivr = p.add_subparsers(dest="ivr_command", metavar="ACTION", required=True)
    e = ivr.add_parser("export", help="write the active (or a given) menu version to FILE")
    e.add_argument("--version", type=int, help="the version number (default: the active one)")
    e.add_argument("file", metavar="FILE", help="where to write; - for stdout")
    e.set_defaults(func=cmd_export)
    i = ivr.add_parser("import", help="validate FILE and store it as a new draft")
    i.add_argument("file", metavar="FILE", help="a menu JSON file; - for stdin")
    i.set_defaults(func=cmd_import)
