"""The simulator reads Asterisk's files as Asterisk does: the shipped asterisk-config/ (queues.conf
with its #tryinclude of the generated file, queuerules.conf, extensions.conf's globals), again
on every QueueReload. With it configured like the shipped Asterisk: "available" on the console
means Asterisk rings (one wrap-up), and a Spanish caller goes to Spanish speakers first."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contactcenter.queues.directory import QueueInfo
from contactcenter.queues.languages import member_penalty
from contactcenter.telephony.pbx_config import write_files
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.generator import wait_idle
from contactcenter.telephony.simulator.pbx import AgentBehaviour, SimMember, SimPbx, SimPbxError
from tests.conftest import ROOT
from tests.integration.test_simulator_queue import Recorder, called

pytestmark = pytest.mark.asyncio

CONF = ROOT / "asterisk-config"
SCALE = 50.0


def shipped(tmp_path: Path, queues: list[QueueInfo] | None = None) -> Path:
    """A copy of asterisk-config/ (the generated files replaced when `queues` is given)."""
    conf = tmp_path / "asterisk"
    shutil.copytree(CONF, conf)
    if queues is not None:
        write_files(conf, queues)
    return conf


async def test_the_shipped_config_gives_the_seeded_queues(tmp_path: Path) -> None:
    pbx = SimPbx(VirtualClock(SCALE), config_dir=shipped(tmp_path))
    assert set(pbx.queues) == {"sanitation", "potholes", "general-311"}
    cfg = pbx.queues["sanitation"].config
    assert (cfg.strategy, cfg.timeout, cfg.retry, cfg.wrapuptime) == ("rrmemory", 15, 5, 0)
    assert pbx.globals["LANG_PENALTY_es"] == "1"
    assert pbx.rules["lang-sanitation"][0].after == 30


async def test_queue_reload_adds_changes_and_removes_keeping_members(tmp_path: Path) -> None:
    conf = shipped(tmp_path, [QueueInfo("sanitation", strategy="rrmemory"),
                              QueueInfo("potholes")])
    pbx = SimPbx(VirtualClock(SCALE), config_dir=conf)
    pbx.queue_add("sanitation", "PJSIP/1001", "Ana", 0, "PJSIP/1001")
    write_files(conf, [QueueInfo("sanitation", strategy="ringall", ring_timeout_seconds=9),
                       QueueInfo("graffiti", strategy="linear", retry_seconds=2)])
    pbx.reload_config()
    assert set(pbx.queues) == {"sanitation", "graffiti"}  # potholes deleted in the store
    assert pbx.queues["sanitation"].config.strategy == "ringall"
    assert pbx.queues["sanitation"].config.timeout == 9
    assert "PJSIP/1001" in pbx.queues["sanitation"].members  # dynamic members stay
    assert pbx.queues["graffiti"].config.retry == 2


async def test_an_unreadable_file_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    conf = shipped(tmp_path)
    pbx = SimPbx(VirtualClock(SCALE), config_dir=conf)
    (conf / "contactcenter-queues.conf").write_text("[broken\nstrategy=ringall\n")
    with pytest.raises(SimPbxError, match="Error encountered while reloading queue"):
        pbx.reload_config()
    assert set(pbx.queues) == {"sanitation", "potholes", "general-311"}


# --- one wrap-up -----------------------------------------------------------------------------


async def test_ready_on_the_console_means_asterisk_rings(tmp_path: Path) -> None:
    """Configured like the shipped Asterisk (the seeded queues: the product's wrap-up is 30 s),
    an operator who just finished a call and is not paused is rung by the next caller at once:
    Asterisk adds no wrap-up of its own."""
    pbx = SimPbx(VirtualClock(SCALE), agi_port=1, config_dir=shipped(tmp_path))  # no IVR: general
    rec = Recorder(pbx)
    ana = "Local/2001@agents/n"
    pbx.behaviour = lambda m: AgentBehaviour(0.5, 1)
    pbx.queue_add("general-311", ana, "Ana", 0, "Local/2001@agents")
    pbx.originate_citizen("7875550101", "Maria Lopez", "", 60)
    assert await wait_idle(pbx, 10)
    ended = pbx.clock.now()
    member = pbx.queues["general-311"].members[ana]
    assert pbx.available(member)  # the console shows her available (not paused): so does app_queue
    pbx.originate_citizen("7875550102", "Luis Rivera", "", 60)
    assert await wait_idle(pbx, 10)
    assert called(rec) == [ana, ana]
    second = rec.named("AgentCalled")[1]
    # rung as soon as the caller reached the queue (the IVR fallback takes ~3 s), not 30 s later
    assert float(second["Timestamp"]) - ended < 10


# --- language routing --------------------------------------------------------------------------


@pytest.fixture
async def ivr_spanish() -> AsyncIterator[int]:
    """A FastAGI IVR that routes every caller to sanitation in Spanish (QUEUE, LANG)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():
            pass  # the agi_* block
        for cmd in (b"SET VARIABLE QUEUE sanitation\n", b"SET VARIABLE LANG es\n"):
            writer.write(cmd)
            await writer.drain()
            await reader.readline()
        writer.close()

    server = await asyncio.start_server(script, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def spanish_pbx(tmp_path: Path, port: int, wait: int) -> tuple[SimPbx, Recorder]:
    conf = shipped(tmp_path, [QueueInfo("sanitation", strategy="ringall",
                                        ring_timeout_seconds=4, retry_seconds=1,
                                        language_wait_seconds=wait)])
    pbx = SimPbx(VirtualClock(SCALE), agi_port=port, config_dir=conf)
    return pbx, Recorder(pbx)


def join(pbx: SimPbx, exten: str, languages: list[str]) -> str:
    iface = f"Local/{exten}@agents/n"
    # the console's QueueAdd: the penalty is the operator's language band
    pbx.queue_add("sanitation", iface, f"Op {exten}", member_penalty(languages, ["es"]),
                  f"Local/{exten}@agents")
    return iface


async def test_a_spanish_caller_is_offered_to_spanish_speakers_first(
        tmp_path: Path, ivr_spanish: int) -> None:
    pbx, rec = spanish_pbx(tmp_path, ivr_spanish, wait=30)
    english = join(pbx, "2001", ["en"])
    spanish = join(pbx, "2002", ["en", "es"])
    pbx.behaviour = lambda m: AgentBehaviour(1, 1)
    pbx.originate_citizen("7875550101", "Maria Lopez", "", 60)
    assert await wait_idle(pbx, 10)
    assert called(rec) == [spanish]  # ringall, yet only the Spanish speaker
    assert english not in called(rec)


async def test_after_the_language_wait_anyone_may_answer(
        tmp_path: Path, ivr_spanish: int) -> None:
    pbx, rec = spanish_pbx(tmp_path, ivr_spanish, wait=6)
    english = join(pbx, "2001", ["en"])
    spanish = join(pbx, "2002", ["es"])
    table: dict[str, AgentBehaviour | None] = {english: AgentBehaviour(1, 1), spanish: None}

    def behaviour(m: SimMember) -> AgentBehaviour | None:
        return table[m.interface]

    pbx.behaviour = behaviour
    pbx.queue_pause("sanitation", spanish, True, "lunch")  # the only Spanish speaker is away
    pbx.originate_citizen("7875550101", "Maria Lopez", "", 60)
    assert await wait_idle(pbx, 10)
    assert called(rec) == [english]
    join_ev = rec.named("QueueCallerJoin")[0]
    rung = rec.named("AgentCalled")[0]
    # not before the queue's language wait (6 s), then the English speaker takes the call
    assert float(rung["Timestamp"]) - float(join_ev["Timestamp"]) >= 6
    assert pbx.calls[0].outcome == "answered"


async def test_callers_of_the_site_language_go_to_non_speakers_first(tmp_path: Path) -> None:
    """No IVR (LANG unset): no penalty window, and app_queue tries the lowest penalty first,
    which keeps the Spanish speaker free for Spanish callers."""
    conf = shipped(tmp_path, [QueueInfo("general-311", strategy="ringall")])
    pbx = SimPbx(VirtualClock(SCALE), agi_port=1, config_dir=conf)
    rec = Recorder(pbx)
    pbx.queue_add("general-311", "Local/2001@agents/n", "En", 0, "Local/2001@agents")
    pbx.queue_add("general-311", "Local/2002@agents/n", "Es", 1, "Local/2002@agents")
    pbx.behaviour = lambda m: AgentBehaviour(1, 1)
    pbx.originate_citizen("7875550101", "Ann Smith", "", 60)
    assert await wait_idle(pbx, 10)
    assert called(rec) == ["Local/2001@agents/n"]
