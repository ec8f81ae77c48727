"""FastAGI per-command latency under concurrent sessions (issue 10 wants p99 <= 10 ms).

The server (FastAGI + IVR engine + the real store on SQLite, seeded with the default menu)
runs in a child process; this process plays Asterisk with N callers in flight at all times, each
placing whole calls (language 1, option 1 -> sanitation: 11 commands) one after another, with a
random "think time" before each reply (Asterisk plays prompts; callers do not all answer in
the same millisecond). Two figures per command:
  client_*: from our reply leaving the client to the next command arriving (includes both
            event loops and the kernel: conservative);
  server_*: the server's own time from reading a reply to writing the next command
            (AgiStats.latencies, the figure /health shows), database lookups included.
Prints JSON.

    python -m bench.agi_latency [--sessions 200] [--calls 600] [--think-ms 20] [--store ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
from typing import Any

from contactcenter.clock import SYSTEM

BLOCK = (
    "agi_network: yes\nagi_network_script: ivr\nagi_request: agi://127.0.0.1:4573/ivr\n"
    "agi_channel: Local/311@from-citizen-00000000;2\nagi_language: en\nagi_type: Local\n"
    "agi_uniqueid: {uid}\nagi_version: 22\nagi_callerid: 787555{n:04d}\n"
    "agi_calleridname: Bench Caller\nagi_context: from-citizen\nagi_extension: 311\n"
    "agi_priority: 3\n\n"
)


def _serve(store_kind: str, db_path: str, conn: Any) -> None:
    async def main() -> None:
        from contactcenter import db
        from contactcenter.events import Event
        from contactcenter.ivr.engine import IvrEngine
        from contactcenter.ivr.services import IvrServices
        from contactcenter.seed import seed_reference
        from contactcenter.telephony.agi import FastAgiServer

        url = f"sqlite+aiosqlite:///{db_path}"
        await asyncio.to_thread(db.upgrade, url)
        engine = db.make_engine(url)
        sessions = db.make_sessionmaker(engine)
        await seed_reference(sessions)
        store: Any = IvrServices(sessions)
        if store_kind == "memory":
            from contactcenter.ivr.menu import default_menu
            from tests.ivr_support import FakeStore

            store = FakeStore(default_menu())

        async def publish(event: Event) -> None:
            return None

        ivr = IvrEngine(store, publish, clock=SYSTEM.now)
        server = FastAgiServer(ivr.run, "127.0.0.1", 0)
        await server.start()
        conn.send(server.port)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
        conn.send({**server.stats.latency_ms(), "errors": server.stats.errors,
                   "commands": server.stats.commands})
        await server.close()
        await engine.dispose()

    asyncio.run(main())


async def _call(port: int, n: int, lat: list[float], think: float) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    inputs = ["1", "1"]
    ok = False
    try:
        sent_at = time.perf_counter()
        writer.write(BLOCK.format(uid=f"bench.{n}", n=n % 10000).encode())
        while True:
            line = await asyncio.wait_for(reader.readline(), 10)
            if not line:
                break
            lat.append(time.perf_counter() - sent_at)
            cmd = line.decode().rstrip("\n")
            if cmd.startswith("GET DATA"):
                reply = f"200 result={inputs.pop(0)}\n"
            elif cmd.startswith("SET VARIABLE QUEUE"):
                ok = cmd.endswith('"sanitation"')
                reply = "200 result=1\n"
            elif cmd == "ANSWER":
                reply = "200 result=0\n"
            else:
                reply = "200 result=1\n"
            if think:
                await asyncio.sleep(random.uniform(0, think))
            sent_at = time.perf_counter()
            writer.write(reply.encode())
    finally:
        writer.close()
    return ok


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _drive(port: int, sessions: int, calls: int, think: float) -> dict[str, Any]:
    lat: list[float] = []
    ok = 0
    counter = iter(range(calls))
    in_flight = 0
    peak = 0

    async def caller() -> None:
        nonlocal ok, in_flight, peak
        # callers arrive spread over the first think period, not in one burst of `sessions`
        await asyncio.sleep(random.uniform(0, think))
        for n in counter:
            in_flight += 1
            peak = max(peak, in_flight)
            routed = await _call(port, n, lat, think)
            ok += routed
            in_flight -= 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(sessions)))
    elapsed = time.perf_counter() - started
    ms = [x * 1000 for x in lat]
    return {
        "calls": calls,
        "concurrent_sessions": peak,
        "routed_ok": ok,
        "commands": len(ms),
        "client_p50_ms": round(statistics.median(ms), 3),
        "client_p99_ms": round(_pct(ms, 99), 3),
        "client_max_ms": round(max(ms), 3),
        "calls_per_s": round(calls / elapsed, 1),
    }


def run(sessions: int = 200, calls: int = 600, think_ms: float = 20.0,
        store: str = "sqlite") -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        parent, child = mp.Pipe()
        proc = mp.get_context("spawn").Process(
            target=_serve, args=(store, os.path.join(tmp, "bench.db"), child), daemon=True)
        proc.start()
        try:
            if not parent.poll(60):
                raise RuntimeError("the FastAGI server did not start")
            port = parent.recv()
            result = asyncio.run(_drive(port, sessions, calls, think_ms / 1000))
            parent.send("stop")
            server = parent.recv() if parent.poll(30) else {}
            result.update({f"server_{k}": v for k, v in server.items()})
        finally:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    return {"bench": "agi_latency", "store": store, "think_ms": think_ms, **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--think-ms", type=float, default=20.0)
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.sessions, args.calls, args.think_ms, args.store)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
