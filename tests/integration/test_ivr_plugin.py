"""The IVR wired into the app: the FastAGI server starts with the app, `/health` has an "agi"
part, calls publish `IvrChoice` on the app's bus."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from contactcenter import db
from contactcenter.app import create_app
from contactcenter.config import load_settings
from contactcenter.events import Event, IvrChoice
from contactcenter.keys import BUS, COUNTERS
from contactcenter.seed import seed_reference
from contactcenter.telephony.keys import AGI_SERVER
from tests.agi_fake import Caller, agi_block
from tests.conftest import HEALTH, HEALTH_KEY, until
from tests.ivr_support import activate, file_menu


@pytest.mark.store
async def test_app_runs_the_ivr_and_reports_health(aiohttp_client: Any, migrated_url: str) -> None:
    engine = db.make_engine(migrated_url)
    await seed_reference(db.make_sessionmaker(engine))
    await activate(db.make_sessionmaker(engine), file_menu(), version=2)
    await engine.dispose()
    settings = load_settings(env={"CC_DATABASE_URL": migrated_url, "CC_AGI_PORT": "0",
                                  "CC_AMI_ENABLED": "0", "CC_HEALTH_API_KEY": HEALTH_KEY})
    app = create_app(settings)
    client = await aiohttp_client(app)
    seen: list[Event] = []

    async def on_event(event: Event) -> None:
        seen.append(event)

    app[BUS].subscribe(on_event, types=(IvrChoice,))
    port = app[AGI_SERVER].port
    caller = await Caller(inputs=["2", "1"]).call(port)
    assert caller.variables == {"CHANNEL(language)": "es", "QUEUE": "sanitation",
                                "SERVICE": "missed-pickup", "LANG": "es",
                                "IVRPATH": "lang:2,main:1,sanitation"}
    await until(lambda: len(seen) == 2)
    assert [e.action for e in seen if isinstance(e, IvrChoice)] == [
        "language:es", "queue:sanitation/missed-pickup"]

    # an unknown script: we say so and close; the dialplan's fallback queues the caller
    other = await Caller(header=agi_block(request="agi://127.0.0.1:4573/other")).call(port)
    assert other.commands == ['VERBOSE "contactcenter: unknown AGI script /other" 1']

    resp = await client.get("/health", headers=HEALTH)
    body = await resp.json()
    agi, ivr = body["parts"]["agi"], body["parts"]["ivr"]
    assert resp.status == 200 and body["status"] == "ok"
    assert agi["ok"] is True and agi["listening"] is True and agi["port"] == port
    assert agi["sessions_total"] == 2 and agi["sessions_in_progress"] == 0 and agi["errors"] == 0
    assert ivr == {"ok": True, "sessions": 1, "fallbacks": 0, "last_error": None,
                   "missing_prompts": 0, "last_missing_prompt": None,
                   "missing_prompts_recently": False, "db_timeouts": 0,
                   "last_db_timeout": None}

    # a recording missing on the server: the caller reaches the general queue, /health says so
    lost = await Caller(inputs=["1"], missing={"311/choose-language"}).call(port)
    assert lost.variables["QUEUE"] == "general-311" and "CHANNEL STATUS" in lost.commands
    resp = await client.get("/health", headers=HEALTH)
    body = await resp.json()
    assert resp.status == 503 and body["status"] == "degraded"
    agi, ivr = body["parts"]["agi"], body["parts"]["ivr"]
    assert agi["ok"] is True and agi["listening"] is True  # the server is fine: the IVR is not
    assert ivr["ok"] is False and ivr["fallbacks"] == 1
    assert (ivr["missing_prompts"], ivr["last_missing_prompt"], ivr["missing_prompts_recently"]
            ) == (1, "311/choose-language", True)
    # and /metrics (registered for the supervisor's scrape, like the bridge's counters)
    counters = {name: value() for name, (_, value) in app[COUNTERS].items()}
    assert counters["cc_ivr_missing_prompts"] == 1.0 and counters["cc_ivr_fallbacks"] == 1.0


async def test_agi_disabled(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = load_settings(env={"CC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/d.db",
                                  "CC_AGI_ENABLED": "0", "CC_AMI_ENABLED": "0",
                                  "CC_HEALTH_API_KEY": HEALTH_KEY})
    client = await aiohttp_client(create_app(settings))
    body = await (await client.get("/health", headers=HEALTH)).json()
    assert body["parts"]["agi"] == {"ok": True, "enabled": False}


async def test_agi_port_in_use_fails_start_up_loudly(tmp_path: Path) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    settings = load_settings(env={"CC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/p.db",
                                  "CC_AGI_PORT": str(port), "CC_AMI_ENABLED": "0"})
    from aiohttp.test_utils import TestServer

    server = TestServer(create_app(settings))
    try:
        with pytest.raises(OSError):
            await server.start_server()
    finally:
        await server.close()
        blocker.close()
        await blocker.wait_closed()
