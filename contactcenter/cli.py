"""`contactcenter` command line: serve, demo, db upgrade|revision (and what features add)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import logging
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import db
from .app import ROLES
from .config import Settings, SettingsError, load_settings, require_production_secrets

log = logging.getLogger("contactcenter")

# Feature modules that add subcommands: each has `add_commands(subparsers) -> None`, and every
# subparser it adds sets `func(args) -> int`.
COMMAND_MODULES: list[str] = [
    "web.commands", "maintenance", "telephony.replay", "cases.cli", "admin.commands",
    "telephony.simulator.cli", "prompts.commands", "telephony.pbx_commands", "admin.setup",
    "supervisor.commands",
]

DEMO_DB = "sqlite+aiosqlite:///var/demo.db"


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # Alembic's INFO lines (plugins, one per migration step) drown what a new user needs to see.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(ini_path=getattr(args, "config", None))


def cmd_serve(args: argparse.Namespace) -> int:
    from .app import create_app, runs_in
    from .web import edge

    settings = _settings(args)
    require_production_secrets(settings)
    if args.role != "all" and not settings.redis_url:
        # a bridge alone would publish to nobody, a web process alone would hear nothing
        raise SettingsError(f"--role {args.role} needs CC_REDIS_URL (the bus between processes)")
    _logging(settings.log_level)
    settings = edge.fit_file_limit(
        settings, agi=settings.agi_enabled and runs_in("telephony.agi_plugin", args.role))
    edge.run(create_app(settings, role=args.role), settings)
    return 0


def demo_settings(base: Settings, explicit: set[str]) -> Settings:
    """The demo's defaults: SQLite under ./var, throw-away secrets, the simulator's AMI login."""
    changes: dict[str, Any] = {"demo": True}
    if "database_url" not in explicit:
        changes["database_url"] = DEMO_DB
    if not base.secret_key:
        changes["secret_key"] = secrets.token_urlsafe(32)
    if not base.ami_username:
        changes["ami_username"] = "cc"
    if not base.ami_secret:
        changes["ami_secret"] = "ccsecret"
    if "asterisk_conf_dir" not in explicit:
        changes["asterisk_conf_dir"] = "var/asterisk"  # the simulator reads it on QueueReload
    if "callback_channel" not in explicit:  # the simulator's citizens answer call-backs
        changes["callback_channel"] = "Local/{number}@sim-citizens"
        changes["callback_hours"] = "00:00-23:59"
    return base.replace(**changes)


def cmd_demo(args: argparse.Namespace) -> int:
    from .app import create_app
    from .prompts.commands import build_active
    from .prompts.plugin import build as build_prompts
    from .seed import seed_demo_users, seed_history, seed_reference
    from .web import edge

    explicit = {k[3:].lower() for k in os.environ if k.startswith("CC_")}
    settings = demo_settings(_settings(args), explicit)
    _logging(settings.log_level)
    db.upgrade(settings.database_url)

    async def _seed() -> list[tuple[str, str]]:
        engine = db.make_engine(settings.database_url)
        sessions = db.make_sessionmaker(engine)
        try:
            await seed_reference(sessions)
            logins = await seed_demo_users(sessions)
            await seed_history(sessions, default_sl=settings.service_level_seconds,
                               timezone=settings.timezone)
            # the default menu's words spoken into CC_SOUNDS_DIR (cached: instant after once)
            version, written, problems = await build_active(build_prompts(settings, sessions),
                                                            sessions)
            if problems:
                print("IVR prompts have no audio: " + "; ".join(map(str, problems[:3])),
                      file=sys.stderr)
            elif written:
                print(f"IVR menu version {version}: {written} prompt sound file(s) in "
                      f"{settings.sounds_dir}", flush=True)
            return logins
        finally:
            await engine.dispose()

    logins = asyncio.run(_seed())
    settings = edge.fit_file_limit(settings, agi=settings.agi_enabled)
    app = create_app(settings)
    from .telephony.simulator.demo import setup as simulator_setup

    simulator_setup(app)  # the Asterisk stand-in on CC_AMI_PORT, placing calls
    base = f"http://{settings.http_host}:{settings.http_port}"
    print(f"\ncontactcenter demo on {base}", flush=True)
    print(f"  {base}/            start page", flush=True)
    print(f"  {base}/health      ok or degraded (each part's state: signed in as admin)",
          flush=True)
    print("Demo logins (user / password): " + ", ".join(f"{u} / {p}" for u, p in logins),
          flush=True)
    edge.run(app, settings)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args)
    db.upgrade(settings.database_url, args.revision)
    print(f"database at {args.revision}: {settings.database_url.split('@')[-1]}")
    return 0


def cmd_db_revision(args: argparse.Namespace) -> int:
    settings = _settings(args)
    db.revision(settings.database_url, args.message, autogenerate=not args.empty)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contactcenter", description="A 3-1-1 contact center backend on Asterisk."
    )
    parser.add_argument("--config", help="an INI file with a [contactcenter] section")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("serve", help="run the server (needs CC_SECRET_KEY and AMI credentials)")
    p.add_argument(
        "--role", choices=ROLES, default="all",
        help="all: one process (default); bridge: AMI, FastAGI and the case writer; "
        "web: pages, consoles and the wallboard (several may run; needs CC_REDIS_URL)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="the whole product on SQLite with the simulator placing calls")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("db", help="database migrations")
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    q = dbsub.add_parser("upgrade", help="migrate the database to the newest schema")
    q.add_argument("revision", nargs="?", default="head")
    q.set_defaults(func=cmd_db_upgrade)
    q = dbsub.add_parser("revision", help="write a new migration from the models")
    q.add_argument("-m", "--message", required=True)
    q.add_argument("--empty", action="store_true", help="no autogenerate")
    q.set_defaults(func=cmd_db_revision)

    for name in COMMAND_MODULES:
        importlib.import_module(f"contactcenter.{name}").add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except SettingsError as exc:
        print(f"contactcenter: configuration error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        # e.g. a demo already running: one line, not a traceback
        print(f"contactcenter: {exc.strerror or exc}; is another contactcenter (or its demo) "
              "running? Set CC_HTTP_PORT, CC_AMI_PORT or CC_AGI_PORT to free ports.",
              file=sys.stderr)
        return 1
    except Exception as exc:
        problem = db.explain(exc)  # a database that is missing, unmigrated or unreachable
        if problem is None:
            raise
        if "no tables" in problem and os.path.isfile("var/demo.db"):
            # the commonest case: a shell command beside a running `make demo`
            problem += "; the demo's store is var/demo.db (CC_DATABASE_URL=sqlite:///var/demo.db)"
        print(f"contactcenter: {problem}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
