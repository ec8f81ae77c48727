"""Issue 18: a queue's maximum wait is the admin's, not one dialplan global. The IVR hands it
to the dialplan as QUEUE_TIMEOUT (only for a queue that has one), the shipped dialplan gives it
to Queue(), and the simulator times the caller out after it, as app_queue does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from contactcenter import db
from contactcenter.app import create_app
from contactcenter.config import load_settings
from contactcenter.queues.directory import QUEUE_DIRECTORY
from contactcenter.queues.models import Queue
from contactcenter.seed import seed_reference
from contactcenter.telephony.keys import AGI_SERVER
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.pbx import SimPbx
from contactcenter.telephony.simulator.scenarios import capture_queues
from tests.agi_fake import Caller
from tests.conftest import HEALTH_KEY, IVR_DB_TIMEOUT_MS, ROOT, until

pytestmark = pytest.mark.store


async def test_the_ivr_hands_a_queues_own_maximum_wait_to_the_dialplan(
        aiohttp_client: Any, migrated_url: str) -> None:
    engine = db.make_engine(migrated_url)
    sessions = db.make_sessionmaker(engine)
    await seed_reference(sessions)
    async with sessions() as s, s.begin():
        await s.execute(update(Queue).where(Queue.name == "sanitation")
                        .values(max_wait_seconds=240))
    await engine.dispose()
    settings = load_settings(env={"CC_DATABASE_URL": migrated_url, "CC_AGI_PORT": "0",
                                  "CC_AMI_ENABLED": "0", "CC_HEALTH_API_KEY": HEALTH_KEY,
                                  "CC_IVR_DB_TIMEOUT_MS": IVR_DB_TIMEOUT_MS})
    app = create_app(settings)
    await aiohttp_client(app)
    await until(lambda: (q := app[QUEUE_DIRECTORY].get("sanitation")) is not None
                and q.max_wait_seconds == 240)
    port = app[AGI_SERVER].port
    caller = await Caller(inputs=["1", "1"]).call(port)  # English, missed pickup: sanitation
    assert caller.variables["QUEUE"] == "sanitation"
    assert caller.variables["QUEUE_TIMEOUT"] == "240"
    # a queue without its own keeps the dialplan's QUEUE_MAX_WAIT: nothing is set
    other = await Caller(inputs=["1", "2"]).call(port)
    assert other.variables["QUEUE"] != "sanitation" and "QUEUE_TIMEOUT" not in other.variables


def test_the_shipped_dialplan_gives_it_to_queue() -> None:
    conf = (ROOT / "asterisk-config" / "extensions.conf").read_text()
    assert 'Set(QWAIT=${IF($["${QUEUE_TIMEOUT}" != ""]?${QUEUE_TIMEOUT}:${QUEUE_MAX_WAIT})})' \
        in conf
    assert "Queue(${QUEUE},t,,,${QWAIT},,,${QRULE})" in conf


async def test_the_simulator_times_the_caller_out_after_it() -> None:
    pbx = SimPbx(VirtualClock(scale=20.0), agi_port=1)
    capture_queues(pbx)
    seen: list[bytes] = []
    pbx.listeners.append(seen.append)
    call = pbx.originate_citizen("5075550111", "Ana", "", 120.0, prewait=0.2)
    call.ch2.vars["QUEUE_TIMEOUT"] = "5"  # as the IVR would set it
    await pbx.queue_app(call, "sanitation", 1)  # nobody logged in: nobody answers
    text = b"".join(seen).decode()
    assert "AppData: sanitation,t,,,5\r\n" in text
    assert "Variable: QUEUESTATUS\r\nValue: TIMEOUT\r\n" in text
    abandon = text.split("Event: QueueCallerAbandon\r\n", 1)[1].split("\r\n\r\n", 1)[0]
    assert abandon.endswith("HoldTime: 5")  # the timeout came after 5 s, not the 60 s default
    await pbx.close()
