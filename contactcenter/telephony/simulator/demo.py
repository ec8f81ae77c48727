"""The simulator inside `contactcenter demo`: an Asterisk stand-in on CC_AMI_PORT that the
product's AMI bridge connects to like any Asterisk, placing calls through our FastAGI IVR."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from ...agents.keys import SIM_PHONES
from ...keys import SETTINGS
from .ami_server import AmiServer
from .clock import VirtualClock
from .generator import CallGenerator, Mix
from .pbx import SimPbx, SimQueueConfig
from .phones import PhoneControl

log = logging.getLogger(__name__)

# One simulated operator per seeded queue keeps callers waiting, so the demo shows a queue
# with callers and rings the human operator (PJSIP/1001) as soon as they log in.
DEMO_AGENTS = [
    ("sanitation", "Local/2001@agents/n", "Ben Operator"),
    ("potholes", "Local/2002@agents/n", "Carla Operator"),
    ("general-311", "Local/2003@agents/n", "Eve Operator"),
]
DEMO_RATE = 1 / 6  # calls per second
DEMO_MIX = Mix(patience_mean=90, talk_mean=45, talk_min=15, ring_min=2, ring_max=5)


def build(settings_queues: Sequence[Mapping[str, Any]], agi_host: str, agi_port: int,
          sounds_dir: str | None = None) -> SimPbx:
    # the prompts it "plays" must exist in CC_SOUNDS_DIR, as on a real Asterisk
    pbx = SimPbx(VirtualClock(1.0), agi_host=agi_host, agi_port=agi_port, sounds_dir=sounds_dir)
    for q in settings_queues:
        pbx.add_queue(
            SimQueueConfig(
                str(q["name"]),
                str(q.get("strategy", "ringall")),
                timeout=float(q.get("ring_timeout_seconds", 15)),
                retry=2,
                wrapuptime=float(q.get("wrapup_seconds", 0)) / 6,
            )
        )
    for queue, iface, name in DEMO_AGENTS:
        if queue in pbx.queues:
            pbx.queue_add(queue, iface, name, 0, iface.rsplit("/", 1)[0])
    return pbx


async def simulator_ctx(app: web.Application) -> AsyncIterator[None]:
    from ...seed import QUEUES

    settings = app[SETTINGS]
    pbx = build(QUEUES, settings.agi_host, settings.agi_port, settings.sounds_dir)
    # citizens called back about their closed requests: most say fixed, some not, a few never
    # answer
    pbx.citizen_default = lambda number: pbx.rng.choice(["1", "1", "1", "2", None])
    if settings.asterisk_conf_dir:
        # the bridge writes the store's queues there and sends QueueReload: the simulator
        # then reads them as Asterisk does (the seeded copy above only bridges the start)
        pbx.config_dir = Path(settings.asterisk_conf_dir)
    server = AmiServer(
        pbx,
        settings.ami_username,
        settings.ami_secret,
        host=settings.ami_host,
        port=settings.ami_port,
    )
    await server.start()
    phones = PhoneControl(pbx)
    for u in _human_interfaces():
        phones.mark_human(u)
    app[SIM_PHONES] = phones
    gen = CallGenerator(pbx, DEMO_RATE, DEMO_MIX)
    task = asyncio.get_running_loop().create_task(gen.run())
    log.info(
        "simulated Asterisk: AMI on %s:%s, calls every ~%.0fs through agi://%s:%s/ivr",
        settings.ami_host,
        server.port,
        1 / DEMO_RATE,
        settings.agi_host,
        settings.agi_port,
    )
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.close()
        await pbx.close()


def _human_interfaces() -> list[str]:
    from ...seed import DEMO_USERS

    return [str(u["interface"]) for u in DEMO_USERS if u.get("interface")]


def setup(app: web.Application) -> None:
    """Start the simulator before the AMI bridge so its first connection succeeds."""
    app.cleanup_ctx.insert(0, simulator_ctx)
