"""Issue 10's production shape as real processes: one `serve --role bridge` and two
`serve --role web` on PostgreSQL and Redis, the simulated Asterisk in a process of its own.

An operator signed in on web process 2 gets the screen pop of a call only the bridge saw; the
`/api/queues` figures are the same on both web processes; each call lands once in `calls`."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, update

from bench import stack as S
from contactcenter import db
from contactcenter.cases.models import Call
from contactcenter.queues.models import Queue
from contactcenter.seed import seed_demo_users


async def sign_in(base: str, username: str, password: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # 127.0.0.1
    page = await (await http.get(base + "/login")).text()
    match = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert match, "no CSRF token on the log-in form"
    resp = await http.post(base + "/login", allow_redirects=False, data={
        "username": username, "password": password, "_csrf": match.group(1)})
    assert resp.status in (302, 303), await resp.text()
    return http


async def api_queues(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with http.get(base + "/api/queues", timeout=aiohttp.ClientTimeout(total=5)) as r:
        assert r.status == 200
        return dict(await r.json())


@pytest.mark.store
@pytest.mark.slow  # seconds of real-time waiting (an outage, a burst): `make test`, not test-fast
async def test_bridge_and_two_web_processes(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(db.upgrade, pg_url)
    operators = await S.seed(pg_url, 2)  # op0, op1 on Local/4000@agents/n, Local/4001@...
    engine = db.make_engine(pg_url)
    await seed_demo_users(db.make_sessionmaker(engine))  # the supervisor account
    async with engine.begin() as conn:  # wrap-up short enough to see it end
        await conn.execute(update(Queue).where(Queue.name == "sanitation")
                           .values(wrapup_seconds=2))
    agi_port = S.free_port()
    sim = S.SimProcess(agi_port, operators=len(operators), max_seconds=120)
    procs: list[S.Proc] = []
    sessions: list[aiohttp.ClientSession] = []
    try:
        ami_port = await sim.start()
        kw: dict[str, Any] = {"ami_port": ami_port, "agi_port": agi_port, "workdir": tmp_path,
                              "redis_url": redis_url, "channel": f"cc:test:{uuid.uuid4().hex}"}
        # Web processes first: they hear everything the bridge publishes from its first resync.
        procs += [S.serve("web1", "web", pg_url, **kw), S.serve("web2", "web", pg_url, **kw)]
        await S.wait_healthy(procs, timeout=60)
        procs.insert(0, S.serve("bridge", "bridge", pg_url, **kw))
        await S.wait_healthy(procs[:1], timeout=60)
        bridge, web1, web2 = procs

        # the roles: the bridge has AMI events and AGI, web processes an actions-only AMI session
        async with aiohttp.ClientSession() as http:
            hb = await S.health(bridge, http)
            hw = await S.health(web2, http)
        assert "agi" in hb["parts"] and "console" not in hb["parts"]
        assert hw["parts"]["ami"]["mode"] == "actions only" and "agi" not in hw["parts"]
        assert "writer" not in hw["parts"]

        op1 = await sign_in(web2.base, "op1", "operator")
        sessions.append(op1)
        ws = await op1.ws_connect(web2.base + "/console/ws", headers={"Origin": web2.base})
        boss1 = await sign_in(web1.base, "supervisor", "supervisor")
        boss2 = await sign_in(web2.base, "supervisor", "supervisor")
        sessions += [boss1, boss2]

        # two calls half a second apart, each operator talks 3 s: one rings op1
        assert (await sim.ask(cmd="calls", rate=2, seconds=1, prefix="5599", prewait=0.3,
                              talk=3.0, patience=60))["ok"]
        pop: dict[str, Any] | None = None
        deadline = time.monotonic() + 30
        while pop is None and time.monotonic() < deadline:
            msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            if data.get("type") == "call" and data.get("status") == "ringing":
                pop = data
        assert pop is not None, "no screen pop on web process 2"
        assert pop["queue"] == "sanitation" and pop["caller_number"].startswith("5599")
        assert pop["call_id"].startswith("default:")
        await ws.close()

        # each call once in the store
        async def rows() -> list[tuple[str, str]]:
            async with engine.connect() as conn:
                return [tuple(r) for r in (await conn.execute(
                    select(Call.server, Call.linkedid).where(
                        Call.caller_number.like("5599%")))).all()]

        deadline = time.monotonic() + 30
        found: list[tuple[str, str]] = []
        while time.monotonic() < deadline:
            found = await rows()
            if len(found) >= 2:
                break
            await asyncio.sleep(0.2)
        assert len(found) == 2 and len(set(found)) == 2, found
        assert pop["call_id"].split(":", 1)[1] in {lid for _, lid in found}
        async with engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(Call))).scalar_one()
        assert total == 2

        # the wallboard's figures agree on both web processes
        one = two = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            one, two = await api_queues(boss1, web1.base), await api_queues(boss2, web2.base)
            san = [q for q in one["queues"] if q["name"] == "sanitation"]
            if one == two and san and san[0]["answered"] == 2:
                break
            await asyncio.sleep(0.2)
        assert one == two
        (san,) = [q for q in one["queues"] if q["name"] == "sanitation"]
        assert (san["offered"], san["answered"]) == (2, 2)

        # Both web processes hear each AgentComplete, but one of them pauses the operator for
        # wrap-up, unpauses after it and records the wrap time: once per call, not per process.
        deadline = time.monotonic() + 15
        actions: dict[str, int] = {}
        while time.monotonic() < deadline:
            actions = (await sim.ask(cmd="stats"))["actions"]
            if actions.get("queuepause:off", 0) >= 2:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # a late duplicate would arrive now
        actions = (await sim.ask(cmd="stats"))["actions"]
        assert (actions.get("queuepause:on"), actions.get("queuepause:off")) == (2, 2), actions
        wraps: list[float | None] = []
        deadline = time.monotonic() + 10  # written with the console's next flush (1 s ticks)
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                wraps = list((await conn.execute(select(Call.wrap_seconds).where(
                    Call.caller_number.like("5599%")))).scalars().all())
            if all(w is not None for w in wraps):
                break
            await asyncio.sleep(0.2)
        assert len(wraps) == 2 and all(w is not None and 1.5 <= w <= 4 for w in wraps), wraps
    finally:
        for http in sessions:
            await http.close()
        S.stop(S.Stack("production", pg_url, agi_port, procs))
        await sim.close()
        await engine.dispose()
