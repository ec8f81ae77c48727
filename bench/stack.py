"""Start and stop the product for a benchmark or a test: a store (SQLite file or a fresh
PostgreSQL database), seeded with the reference data and N operators, and the processes of one
shape (`embedded`: one `serve --role all`; `production`: a bridge and two web processes on
PostgreSQL and Redis). Every process listens on 127.0.0.1; every wait is bounded."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import fernet
from sqlalchemy import insert

from contactcenter import db
from contactcenter.web.auth import cookie_key

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("CC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = secrets.token_urlsafe(32)  # one per run: serve refuses a predictable key
HEALTH_KEY = secrets.token_urlsafe(32)  # /health shows its parts (event lag...) with it
AMI_USER, AMI_SECRET = "cc", "ccsecret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def operator_interface(i: int) -> str:
    return f"Local/{4000 + i}@agents/n"


# --- the store -----------------------------------------------------------------------------------


async def _pg_exec(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_store(kind: str, workdir: Path) -> str:
    """A migrated, empty store; returns its async URL."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    else:
        name = f"ccbench_{uuid.uuid4().hex[:10]}"
        await _pg_exec(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        url = f"{base}/{name}"
    await asyncio.to_thread(db.upgrade, url)
    return url


async def drop_store(url: str) -> None:
    if url.startswith("postgresql"):
        name = url.rsplit("/", 1)[1]
        await _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def seed(url: str, operators: int) -> list[dict[str, Any]]:
    """Reference data, the default menu, and `operators` operator accounts (one password hash
    shared by all: hashing 500 passwords with argon2 would be the slowest part of the bench)."""
    from contactcenter.security import hash_password
    from contactcenter.seed import seed_reference
    from contactcenter.web.models import User

    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    try:
        await seed_reference(sessions)
        pw = hash_password("operator")
        rows = [{"username": f"op{i}", "display_name": f"Operator {i}", "password_hash": pw,
                 "role": "operator", "interface": operator_interface(i),
                 "queues": ["sanitation"], "active": True} for i in range(operators)]
        async with engine.begin() as conn:
            if rows:
                await conn.execute(insert(User), rows)
        from sqlalchemy import select

        from contactcenter.clock import SYSTEM
        from contactcenter.web.sessions import open_session

        async with sessions() as s, s.begin():
            users = (await s.execute(select(User).where(User.role == "operator"))).scalars()
            # a signed-in session each (server-side: the cookie alone signs nobody in)
            return [{"id": u.id, "password_hash": u.password_hash, "role": u.role,
                     "interface": u.interface, "sid": await open_session(s, u.id, SYSTEM.now())}
                    for u in users.all()]
    finally:
        await engine.dispose()


def session_cookie(user: dict[str, Any], secret: str = SECRET) -> str:
    """The cookie of `user`'s session opened by `seed` (aiohttp-session's encrypted cookie with
    the server's key), as the log-in form would have set it. The benchmark measures pops, not
    argon2."""
    import hashlib

    ver = hashlib.sha256(f"{user['password_hash']}|{user['role']}".encode()).hexdigest()[:16]
    data = {"created": int(time.time()),
            "session": {"sid": user["sid"], "ver": ver, "csrf": secrets.token_urlsafe(24)}}
    key = fernet.Fernet(base64.urlsafe_b64encode(cookie_key(secret)))
    return key.encrypt(json.dumps(data).encode()).decode()


# --- processes -----------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    role: str
    http_port: int
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def rss_mb(self) -> float:
        with open(f"/proc/{self.popen.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        return float("nan")


@dataclass
class Stack:
    shape: str  # embedded | production
    url: str
    agi_port: int
    procs: list[Proc] = field(default_factory=list)

    @property
    def bridge(self) -> Proc:
        return self.procs[0]

    @property
    def webs(self) -> list[Proc]:
        return [p for p in self.procs if p.role in ("all", "web")]


def serve(name: str, role: str, url: str, *, ami_port: int, agi_port: int, workdir: Path,
          redis_url: str = "", channel: str = "", extra: dict[str, str] | None = None) -> Proc:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    env.update({
        "CC_DATABASE_URL": url, "CC_SECRET_KEY": SECRET, "CC_HTTP_PORT": str(port),
        "CC_HEALTH_API_KEY": HEALTH_KEY,
        # 500 consoles from one address, as from one NAT: above the default per-address cap
        "CC_HTTP_MAX_CONNECTIONS_PER_ADDRESS": "2048",
        "CC_HTTP_HOST": "127.0.0.1", "CC_AMI_HOST": "127.0.0.1", "CC_AMI_PORT": str(ami_port),
        "CC_AMI_USERNAME": AMI_USER, "CC_AMI_SECRET": AMI_SECRET, "CC_AGI_HOST": "127.0.0.1",
        "CC_AGI_PORT": str(agi_port), "CC_SPOOL_DIR": str(workdir / f"spool-{name}"),
        "CC_LOG_LEVEL": "WARNING", "CC_REDIS_URL": redis_url, "CC_BUS_CHANNEL": channel,
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    log = workdir / f"{name}.log"
    popen = subprocess.Popen(
        [sys.executable, "-m", "contactcenter", "serve", "--role", role], cwd=ROOT, env=env,
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    return Proc(name, role, port, popen, log)


async def wait_healthy(procs: list[Proc], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        for p in procs:
            while True:
                if p.popen.poll() is not None:
                    raise RuntimeError(f"{p.name} exited: {p.log.read_text()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with http.get(p.base + "/health",
                                        timeout=aiohttp.ClientTimeout(total=3)) as r:
                        if r.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{p.name} not healthy in {timeout}s: "
                                       f"{p.log.read_text()[-2000:]}")
                await asyncio.sleep(0.2)


async def start_shape(shape: str, url: str, ami_port: int, workdir: Path) -> Stack:
    agi_port = free_port()
    stack = Stack(shape, url, agi_port)
    common = {"ami_port": ami_port, "agi_port": agi_port, "workdir": workdir}
    if shape == "embedded":
        stack.procs.append(serve("all", "all", url, **common))
    else:
        channel = f"cc:bench:{uuid.uuid4().hex[:8]}"
        kw = {**common, "redis_url": REDIS_URL, "channel": channel}
        stack.procs.append(serve("bridge", "bridge", url, **kw))
        stack.procs.append(serve("web1", "web", url, **kw))
        stack.procs.append(serve("web2", "web", url, **kw))
    try:
        await wait_healthy(stack.procs)
    except BaseException:
        stop(stack)
        raise
    return stack


def stop(stack: Stack, timeout: float = 10.0) -> None:
    for p in stack.procs:
        if p.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.popen.send_signal(signal.SIGINT)
    deadline = time.monotonic() + timeout
    for p in stack.procs:
        try:
            p.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait(5)


async def health(proc: Proc, http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.get(proc.base + "/health", timeout=aiohttp.ClientTimeout(total=5),
                        headers={"X-API-Key": HEALTH_KEY}) as r:
        return dict(await r.json())


# --- consoles ------------------------------------------------------------------------------------


class Consoles:
    """N operators' consoles (websockets), spread over the web processes; records each pop's
    latency: receipt time minus the call's `rang_at` (the AgentCalled `Timestamp` the simulated
    Asterisk wrote, same machine clock)."""

    def __init__(self) -> None:
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.sessions: list[aiohttp.ClientSession] = []
        self.readers: list[asyncio.Task[None]] = []
        self.pops_ms: list[float] = []
        self.seen: set[str] = set()
        self.by_web: dict[str, int] = {}

    async def connect(self, users: list[dict[str, Any]], webs: list[Proc]) -> None:
        for i, user in enumerate(users):
            web = webs[i % len(webs)]
            if len(self.sessions) < len(webs):
                self.sessions.append(aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0)))
            http = self.sessions[i % len(webs)]
            ws = await http.ws_connect(
                web.base + "/console/ws", headers={
                    "Origin": web.base, "Cookie": f"cc_session={session_cookie(user)}"},
                timeout=aiohttp.ClientWSTimeout(ws_close=5), heartbeat=None)
            self.sockets.append(ws)
            self.by_web[web.name] = self.by_web.get(web.name, 0) + 1
            self.readers.append(asyncio.get_running_loop().create_task(self._read(ws)))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            now = time.time()
            data = json.loads(msg.data)
            if data.get("type") == "call" and data.get("status") == "ringing":
                key = f"{data['call_id']}|{id(ws)}"
                if key in self.seen:
                    continue  # the same pop again, with the caller's history
                self.seen.add(key)
                from datetime import datetime

                rang = datetime.fromisoformat(data["rang_at"]).timestamp()
                self.pops_ms.append((now - rang) * 1000)

    async def close(self) -> None:
        for t in self.readers:
            t.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        for ws in self.sockets:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)
        for s in self.sessions:
            await s.close()


# --- the simulator process ----------------------------------------------------------------------


class SimProcess:
    """`python -m bench.sim` driven over its stdin/stdout, one JSON line each way."""

    def __init__(self, agi_port: int, operators: int, max_seconds: float) -> None:
        self.cfg = {"agi_port": agi_port, "operators": operators, "username": AMI_USER,
                    "secret": AMI_SECRET, "max_seconds": max_seconds}
        self.proc: asyncio.subprocess.Process | None = None
        self.ami_port = 0
        self.asked = 0

    async def start(self) -> int:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.sim", json.dumps(self.cfg), cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        self.ami_port = int((await self._read())["ami_port"])
        return self.ami_port

    async def _read(self, timeout: float = 30) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("the simulator process ended")
        return dict(json.loads(line))

    async def ask(self, timeout: float = 30, **cmd: Any) -> dict[str, Any]:
        """One command; its reply (matched by id: a reply that came too late to an earlier ask
        is skipped). TimeoutError when an overloaded simulator does not answer in time."""
        assert self.proc is not None and self.proc.stdin is not None
        self.asked += 1
        cmd["id"] = self.asked
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        deadline = time.monotonic() + timeout
        while True:
            reply = await self._read(max(0.1, deadline - time.monotonic()))
            if reply.get("id") == self.asked:
                return reply

    async def close(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ask(cmd="quit"), 5)
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
