"""Fault injection for the issue 11 tests: a TCP proxy we control in front of a real server
(PostgreSQL, the FastAGI port), and a simulated 3-1-1 center (the simulator's Asterisk: AMI
server + FastAGI client) wired to a real app (bridge + writer + IVR)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from contactcenter.app import create_app
from contactcenter.cases.models import Call
from contactcenter.events import CallEnded, Event
from contactcenter.keys import BUS, SESSIONS
from contactcenter.telephony.keys import AGI_SERVER
from contactcenter.telephony.simulator.ami_server import AmiServer
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.generator import add_simulated_agents
from contactcenter.telephony.simulator.pbx import CitizenCall, SimPbx
from tests.conftest import HEALTH, app_settings

log = logging.getLogger(__name__)


class TcpProxy:
    """A tiny asyncio forwarder on 127.0.0.1.

    - `refuse()`: stop listening and cut every connection (a stopped server: connect is refused)
    - `restore()`: listen again on the same port
    - `blackhole()`: cut every connection, then accept new ones and never answer (a port
      closed by a firewall that drops packets: nothing is refused, everything waits)
    - `delay`: seconds added before each client->server chunk is forwarded (a slow server: every
      round trip is `delay` longer, as a database whose every statement takes that long)
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.delay = 0.0
        self.stalled = False
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def refuse(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def restore(self) -> None:
        self.stalled = False
        if self._server is None:
            assert self.port, "start() first"
            await self.start()

    def blackhole(self) -> None:
        self.stalled = True
        for w in list(self._writers):
            w.transport.abort()

    async def close(self) -> None:
        await self.refuse()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def url(self, url: str) -> str:
        """`url` (a database URL) pointed at this proxy."""
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(
            hide_password=False)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self._writers.add(writer)
        if self.stalled:  # hold the socket open, say nothing
            try:
                await reader.read()  # until the client gives up (or close() aborts it)
            finally:
                writer.transport.abort()
                self._writers.discard(writer)
                self._tasks.discard(task)
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            self._tasks.discard(task)
            return
        self._writers.add(up_w)
        try:
            await asyncio.gather(self._pump(reader, up_w, slow=True),
                                 self._pump(up_r, writer, slow=False))
        finally:
            for w in (writer, up_w):
                w.transport.abort()
                self._writers.discard(w)
            self._tasks.discard(task)

    async def _pump(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, *, slow: bool) -> None:
        try:
            while data := await r.read(65536):
                if slow and self.delay:
                    await asyncio.sleep(self.delay)
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass  # the other side went away: both directions end (finally above)
        finally:
            w.transport.abort()


# --- a simulated center around a real app -------------------------------------------------------


@dataclass
class Center:
    client: Any
    pbx: SimPbx
    ami: AmiServer
    ended: list[Event] = field(default_factory=list)  # CallEnded in bus order

    @property
    def app(self) -> Any:
        return self.client.server.app

    async def health(self) -> dict[str, Any]:
        resp = await self.client.get("/health", headers=HEALTH)
        body = dict(await resp.json())
        body["http_status"] = resp.status
        return body

    async def stored(self) -> int:
        async with self.app[SESSIONS]() as db:
            return int((await db.execute(select(func.count()).select_from(Call))).scalar())

    async def rows(self) -> list[Call]:
        async with self.app[SESSIONS]() as db:
            return list((await db.execute(select(Call).order_by(Call.id))).scalars())

    def call(self, n: int, answers: list[str], patience: float = 60.0,
             name: str = "") -> CitizenCall:
        return self.pbx.originate_citizen(f"78755501{n:02d}", name or f"Caller {n}", "",
                                          patience, prewait=0.5, answers=answers)

    def finished(self, calls: list[CitizenCall]) -> bool:
        return all(c.where == "ended" for c in calls)


@contextlib.asynccontextmanager
async def center(
    aiohttp_client: Any, database_url: str, tmp_path: Path, *, scale: float = 20.0,
    agents: int = 3, **overrides: str,
) -> AsyncIterator[Center]:
    """The simulator's Asterisk (AMI + FastAGI client, `agents` simulated operators in the three
    seeded queues) and a real app with the bridge, the writer and the IVR on it."""
    pbx = SimPbx(VirtualClock(scale), agi_port=1, seed=11)
    add_simulated_agents(pbx, ["sanitation", "potholes", "general-311"], agents)
    ami = AmiServer(pbx, "cc", "s3", port=0)
    await ami.start()
    with socket.socket() as probe:  # a fixed port, so a restarted FastAGI server is found again
        probe.bind(("127.0.0.1", 0))
        agi_port = probe.getsockname()[1]
    settings = app_settings(
        database_url, timezone="UTC", ami_enabled="true", ami_port=str(ami.port),
        ami_username="cc", ami_secret="s3", agi_enabled="true", agi_port=str(agi_port),
        spool_dir=str(tmp_path / "spool"), **overrides,
    )
    try:
        client = await aiohttp_client(create_app(settings))
        c = Center(client, pbx, ami)
        pbx.agi_port = c.app[AGI_SERVER].port

        async def collect(event: Event) -> None:
            c.ended.append(event)

        sub = c.app[BUS].subscribe(collect, types=(CallEnded,), name="test-collector")
        try:
            yield c
        finally:
            await sub.close()
            await pbx.close()
    finally:
        await ami.close()
