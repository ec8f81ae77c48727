"""Screen-pop latency with many consoles connected: publish on the bus -> websocket receive.

`python -m bench.console_pop [--consoles 500] [--pops 200]` prints JSON. Everything runs in one
process on loopback (server, bus and the clients share one event loop, so the figures include the
clients' own reading). Measured:
- pop: AgentRinging for one operator among N connected -> that operator's socket has the pop
- pop_with_history: -> the pop's follow-up frame with the caller's history (one indexed query)
- broadcast: one BroadcastMessage -> every one of the N sockets has it (per-socket latency)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from argon2 import PasswordHasher

from contactcenter import db
from contactcenter.app import create_app
from contactcenter.clock import SYSTEM
from contactcenter.config import load_settings
from contactcenter.events import AgentRinging, BroadcastMessage
from contactcenter.keys import BUS
from contactcenter.seed import seed_reference
from contactcenter.web.models import User

PASSWORD = "bench-password"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 3),
            "p99_ms": round(pct(ms, 99), 3), "max_ms": round(max(ms), 3)}


class Console:
    def __init__(self, n: int) -> None:
        self.interface = f"PJSIP/{3000 + n}"
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.waiters: dict[tuple[str, str], asyncio.Future[float]] = {}

    def expect(self, kind: str, key: str) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[(kind, key)] = fut
        return fut

    async def read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            now = time.perf_counter()
            data = json.loads(msg.data)
            kind = data["type"]
            if kind == "call":
                kind = "history" if data["history"] else "pop"
                key = data["call_id"]
            elif kind == "broadcast":
                key = data["text"]
            else:
                continue
            fut = self.waiters.pop((kind, key), None)
            if fut is not None and not fut.done():
                fut.set_result(now)


async def login(http: aiohttp.ClientSession, base: str, username: str) -> str:
    """The session cookie of a signed-in user (cookies handled by hand: one jar-less client)."""
    resp = await http.get(f"{base}/login")
    page = await resp.text()
    cookie = resp.cookies["cc_session"].value
    token = page.split('name="_csrf" value="', 1)[1].split('"', 1)[0]
    resp = await http.post(
        f"{base}/login", data={"username": username, "password": PASSWORD, "_csrf": token},
        headers={"Cookie": f"cc_session={cookie}"}, allow_redirects=False,
    )
    assert resp.status == 302, await resp.text()
    return resp.cookies["cc_session"].value


async def run(consoles: int, pops: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="cc-bench-console-"))
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await asyncio.to_thread(db.upgrade, url)
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    await seed_reference(sessions)
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    async with sessions() as s, s.begin():
        s.add_all(User(username=f"op{n}", display_name=f"Operator {n}", role="operator",
                       password_hash=cheap, interface=f"PJSIP/{3000 + n}",
                       queues=["general-311"]) for n in range(consoles))
    await engine.dispose()

    settings = load_settings(env={
        "CC_DATABASE_URL": url, "CC_SECRET_KEY": secrets.token_urlsafe(32),
        "CC_AMI_ENABLED": "false", "CC_AGI_ENABLED": "false", "CC_SPOOL_DIR": str(tmp),
    })
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {"consoles": consoles, "pops": pops}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        started = time.perf_counter()
        cookies = []
        for n in range(consoles):  # sequential: the log-in rate limiter is per address
            cookies.append(await login(http, base, f"op{n}"))
        out["login_s"] = round(time.perf_counter() - started, 2)
        clients = [Console(n) for n in range(consoles)]
        readers = []
        for c, cookie in zip(clients, cookies, strict=True):
            c.ws = await http.ws_connect(f"{base}/console/ws", headers={
                "Cookie": f"cc_session={cookie}", "Origin": base})
            readers.append(asyncio.create_task(c.read()))
        await asyncio.sleep(1.0)  # the snapshots are read
        bus = app[BUS]
        rng = random.Random(7)
        pop_ms, hist_ms = [], []
        for i in range(pops):
            c = rng.choice(clients)
            call_id = f"default:bench.{i}"
            pop_f, hist_f = c.expect("pop", call_id), c.expect("history", call_id)
            t0 = time.perf_counter()
            await bus.publish(AgentRinging("default", f"bench.{i}", "general-311", c.interface,
                                           None, f"78755{i:05d}", "Bench Caller", SYSTEM.now()))
            pop_ms.append((await asyncio.wait_for(pop_f, 10) - t0) * 1000)
            hist_ms.append((await asyncio.wait_for(hist_f, 10) - t0) * 1000)
        out["pop"] = summary(pop_ms)
        out["pop_with_history"] = summary(hist_ms)
        bc_ms: list[float] = []
        for i in range(10):
            text = f"broadcast {i}"
            futs = [c.expect("broadcast", text) for c in clients]
            t0 = time.perf_counter()
            await bus.publish(BroadcastMessage("bench", text, SYSTEM.now()))
            done = await asyncio.wait_for(asyncio.gather(*futs), 20)
            bc_ms.extend((t - t0) * 1000 for t in done)
        out["broadcast_per_socket"] = summary(bc_ms)
        for c in clients:
            assert c.ws is not None
            await c.ws.close()
        for r in readers:
            r.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    await runner.cleanup()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--consoles", type=int, default=500)
    parser.add_argument("--pops", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.consoles, args.pops)), indent=2))


if __name__ == "__main__":
    main()
