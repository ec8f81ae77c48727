"""Wires the Asterisk edge into the app: the case writer, then the AMI bridge, and the `Pbx`.

Order matters: the writer subscribes to the bus before the bridge can publish a `CallEnded`,
and on shutdown the bridge stops (handing its last events to the bus) before the writer drains.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ..cases.writer import CallWriter
from ..keys import BUS, CLOCK, COUNTERS, HEALTH, PBX, SESSIONS, SETTINGS
from ..queues.directory import QUEUE_DIRECTORY
from .ami import AmiPbx
from .bridge import Bridge
from .pbx_config import PbxConfig

WRITER = web.AppKey("call_writer", CallWriter)
BRIDGE = web.AppKey("ami_bridge", Bridge)
PBX_CONFIG = web.AppKey("pbx_config", PbxConfig)


async def writer_ctx(app: web.Application) -> AsyncIterator[None]:
    writer = CallWriter(app[SESSIONS], app[SETTINGS].spool_dir, clock=app[CLOCK],
                        default_sl=app[SETTINGS].service_level_seconds,
                        tz=ZoneInfo(app[SETTINGS].timezone))
    await writer.start(app[BUS])
    app[WRITER] = writer

    async def check() -> dict[str, Any]:
        return writer.health()

    app[HEALTH]["writer"] = check
    yield
    await writer.close()


async def bridge_ctx(app: web.Application) -> AsyncIterator[None]:
    bridge = Bridge(app[SETTINGS], app[BUS], clock=app[CLOCK])
    bridge.follow(app[QUEUE_DIRECTORY])
    if app[SETTINGS].bridge_lease == "off":  # else reconcile_plugin starts it with the lease
        await bridge.start()
    app[BRIDGE] = bridge
    app[PBX] = bridge.pbx

    async def check() -> dict[str, Any]:
        return bridge.health()

    app[HEALTH]["ami"] = check
    app[COUNTERS]["cc_ami_bad_fields"] = (
        "AMI number fields refused (inf, nan, negative, too large) since start",
        lambda: float(bridge.bad_fields()),
    )
    conf: PbxConfig | None = None
    if app[SETTINGS].asterisk_conf_dir:
        # the bridge process writes the queue configuration and reloads every Asterisk
        conf = PbxConfig(app[SETTINGS].asterisk_conf_dir,
                         {name: link.client for name, link in bridge.links.items()},
                         app[SESSIONS], clock=app[CLOCK])
        await conf.start()
        conf.follow(app[QUEUE_DIRECTORY])
        app[PBX_CONFIG] = conf

        async def conf_check() -> dict[str, Any]:
            assert conf is not None
            return conf.health()

        app[HEALTH]["queue_config"] = conf_check
    yield
    if conf is not None:
        await conf.close()
    await bridge.close()


async def _disabled() -> dict[str, Any]:
    return {"ok": True, "state": "disabled"}


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(writer_ctx)
    if app[SETTINGS].ami_enabled:
        app.cleanup_ctx.append(bridge_ctx)
    else:
        app[PBX] = AmiPbx({})  # every action raises PbxError("... AMI is disabled")
        app[HEALTH]["ami"] = _disabled
