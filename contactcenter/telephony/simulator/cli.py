"""`contactcenter simulate`: the Asterisk stand-in on its own, against a running server."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

from ...config import load_settings
from .ami_server import AmiServer
from .clock import VirtualClock
from .generator import CallGenerator, Mix, add_simulated_agents, parse_rate, wait_idle
from .pbx import SimPbx
from .records import AsteriskRecords

log = logging.getLogger(__name__)


def add_commands(sub: Any) -> None:
    p = sub.add_parser("simulate", help="run the Asterisk simulator (AMI server + call generator)")
    p.add_argument("--ami-host", default=None, help="listen address (default CC_AMI_HOST)")
    p.add_argument("--ami-port", type=int, default=None, help="AMI port (default CC_AMI_PORT)")
    p.add_argument("--rate", default="0.5/s", help="arrivals, e.g. 2/s, 30/m (Poisson)")
    p.add_argument("--agents", type=int, default=8, help="simulated operators")
    p.add_argument("--queues", default="sanitation,potholes,general-311")
    p.add_argument("--agi", default=None, help="HOST:PORT of the FastAGI IVR (default CC_AGI_*)")
    p.add_argument("--calls", type=int, default=None, help="stop after N calls")
    p.add_argument("--duration", type=float, default=None, help="stop after S (virtual) seconds")
    p.add_argument("--scale", type=float, default=1.0, help="virtual clock speed-up")
    p.add_argument("--talk", type=float, default=90.0, help="mean talk seconds")
    p.add_argument("--patience", type=float, default=60.0, help="mean caller patience seconds")
    p.add_argument(
        "--no-language-menu",
        action="store_true",
        help="the IVR starts with its main menu (no 1 English / 2 Spanish first)",
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--queue-log", default=None, metavar="PATH",
                   help="append Asterisk's queue_log lines here (what the product reconciles "
                   "a gap from: CC_ASTERISK_RECORDS=file:PATH;cdr=CSV)")
    p.add_argument("--cdr", default=None, metavar="CSV",
                   help="with --queue-log: append CDR rows (cdr_pgsql's columns) here")
    p.add_argument(
        "--asterisk-conf", default=None, metavar="DIR",
        help="read queues.conf (or the generated contactcenter-queues.conf), queuerules.conf and "
        "extensions.conf's globals from DIR as Asterisk does, again on every QueueReload "
        "(e.g. CC_ASTERISK_CONF_DIR of the server the simulator stands in for)",
    )
    p.add_argument(
        "--wait-client",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="place no call until an AMI client has logged in (at most SECONDS), so a bridge "
        "started after the simulator misses none (soak tests)",
    )
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    settings = load_settings(ini_path=getattr(args, "config", None))
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    try:
        rate = parse_rate(args.rate)
        agi_host, agi_port = settings.agi_host, settings.agi_port
        if args.agi:
            host, _, port = args.agi.rpartition(":")
            agi_host, agi_port = host or "127.0.0.1", int(port)
        if args.agents < 1 or args.scale <= 0:
            raise ValueError("--agents must be >= 1 and --scale > 0")
    except ValueError as exc:
        print(f"contactcenter simulate: {exc}")
        return 2
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    if not queues:
        print("contactcenter simulate: --queues is empty")
        return 2
    username = settings.ami_username or "cc"
    secret = settings.ami_secret or "ccsecret"
    return asyncio.run(
        _run(
            args,
            rate,
            queues,
            agi_host,
            agi_port,
            username,
            secret,
            args.ami_host or settings.ami_host,
            settings.ami_port if args.ami_port is None else args.ami_port,
        )
    )


async def _run(
    args: argparse.Namespace,
    rate: float,
    queues: list[str],
    agi_host: str,
    agi_port: int,
    username: str,
    secret: str,
    host: str,
    port: int,
) -> int:
    pbx = SimPbx(VirtualClock(args.scale), agi_host=agi_host, agi_port=agi_port, seed=args.seed,
              config_dir=args.asterisk_conf)
    if args.queue_log:
        pbx.records = AsteriskRecords(Path(args.queue_log),
                                      Path(args.cdr) if args.cdr else None)
    add_simulated_agents(pbx, queues, args.agents)
    server = AmiServer(pbx, username, secret, host=host, port=port)
    await server.start()
    gen = CallGenerator(
        pbx,
        rate,
        Mix(
            talk_mean=args.talk,
            patience_mean=args.patience,
            language_menu=not args.no_language_menu,
        ),
        calls=args.calls,
        duration=args.duration,
        seed=args.seed,
    )
    print(
        f"simulated Asterisk on {host}:{server.port} (login {username}), "
        f"{args.agents} operators in {', '.join(queues)}, {rate:g} calls/s, "
        f"IVR agi://{agi_host}:{agi_port}/ivr",
        flush=True,
    )
    if args.wait_client > 0:
        for _ in range(max(1, round(args.wait_client / 0.05))):  # polled: no hook on log-in
            if any(c.authed for c in server.clients):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # its resync (CoreShowChannels, QueueStatus) goes first
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    t0 = time.monotonic()
    gen_task = loop.create_task(gen.run())
    stop_task = loop.create_task(stop.wait())
    try:
        await asyncio.wait([gen_task, stop_task], return_when=asyncio.FIRST_COMPLETED)
        if gen_task.done() and not stop.is_set():
            await wait_idle(pbx, 600 / args.scale + 30)
    finally:
        for t in (gen_task, stop_task):
            t.cancel()
        await asyncio.gather(gen_task, stop_task, return_exceptions=True)
        await server.close()
        await pbx.close()
        if pbx.records is not None:
            pbx.records.close()
    elapsed = time.monotonic() - t0
    outcomes: dict[str, int] = {}
    for c in pbx.calls:
        outcomes[c.outcome or "unfinished"] = outcomes.get(c.outcome or "unfinished", 0) + 1
    print(
        json.dumps(
            {
                "calls": gen.placed,
                "events": pbx.events,
                "seconds": round(elapsed, 2),
                "events_per_second": round(pbx.events / elapsed) if elapsed else 0,
                "outcomes": outcomes,
            }
        ),
        flush=True,
    )
    return 0
