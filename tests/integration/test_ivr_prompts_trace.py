"""Issue 17: a prompt that cannot play is an error, not a hang-up; the IVR leaves a trace
(`LANG` as soon as it is known, `IVRPATH` at each step). Over real sockets: the scripted caller
of agi_fake, and the simulator's Asterisk with a set of existing sound files."""

from __future__ import annotations

import logging

import pytest

from contactcenter.ivr.engine import TRACE_MAX, IvrEngine, trace_value
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.generator import wait_idle
from contactcenter.telephony.simulator.pbx import AgentBehaviour, SimPbx, SimQueueConfig
from tests.agi_fake import Caller
from tests.conftest import until
from tests.integration.test_simulator_queue import Recorder as PbxRecorder
from tests.ivr_support import CAPTURE_MENU, FakeStore, Recorder, file_menu, running_ivr

MENU_EN = "311/en/main-menu"


async def session(store: FakeStore, caller: Caller) -> tuple[Recorder, IvrEngine]:
    recorder = Recorder()
    async with running_ivr(store, recorder) as server:
        await caller.call(server.port)
        await until(lambda: recorder.results, timeout=5)
        assert server.stats.errors == 0
    return recorder, recorder.engine


# --- the trace --------------------------------------------------------------------------------


async def test_lang_and_ivrpath_are_set_in_order_as_the_caller_goes() -> None:
    caller = Caller(inputs=["2", "1"])  # Spanish, then sanitation
    recorder, _ = await session(FakeStore(file_menu()), caller)
    assert caller.sets == [
        ("CHANNEL(language)", "es"),
        ("LANG", "es"),  # before the menu is even played
        ("IVRPATH", "lang:2"),
        ("IVRPATH", "lang:2,main:1"),
        ("IVRPATH", "lang:2,main:1,sanitation"),
        ("QUEUE", "sanitation"),
        ("SERVICE", "missed-pickup"),
        ("LANG", "es"),
    ]
    first_menu = caller.commands.index("GET DATA 311/es/main-menu 5000 1")
    assert caller.commands.index('SET VARIABLE LANG "es"') < first_menu
    assert recorder.results[0].outcome == "queued"


async def test_a_caller_who_hangs_up_mid_menu_already_has_language_and_path() -> None:
    # English, a timeout at the main menu, then gone during the second main-menu prompt
    caller = Caller(inputs=["1", ""], hangup_at=6)
    recorder, _ = await session(FakeStore(file_menu()), caller)
    assert caller.commands[6] == "GET DATA 311/en/main-menu 5000 1", caller.commands
    assert caller.variables == {"LANG": "en", "IVRPATH": "lang:1,main:-"}
    assert "QUEUE" not in caller.variables  # gone: no fallback set on a dead channel
    assert recorder.results[0].outcome == "hangup"


def test_trace_value_is_compact_safe_and_bounded() -> None:
    assert trace_value(["lang:2", "main:1", "sanitation"]) == "lang:2,main:1,sanitation"
    # a comma or a quote cannot split an item or break the AGI argument
    assert trace_value(['we"ird,node:1']) == "we_ird_node:1"
    long = ["lang:1"] + [f"node{i:03d}:{i % 10}" for i in range(60)] + ["general-311"]
    value = trace_value(long)
    assert len(value) <= TRACE_MAX
    assert value.startswith("lang:1,..,") and value.endswith(",node059:9,general-311")
    assert all(len(item) <= 40 for item in trace_value(["x" * 300]).split(","))


# --- missing prompts --------------------------------------------------------------------------


async def test_a_missing_menu_prompt_is_an_error_and_the_caller_reaches_the_general_queue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caller = Caller(inputs=["1", "1"], missing={MENU_EN})
    with caplog.at_level(logging.ERROR, logger="contactcenter.ivr.engine"):
        recorder, engine = await session(FakeStore(file_menu()), caller)
    i = caller.commands.index(f"GET DATA {MENU_EN} 5000 1")
    assert caller.commands[i + 1] == "CHANNEL STATUS"  # -1: is the caller still there?
    assert caller.variables["QUEUE"] == "general-311"
    assert caller.variables["IVRPATH"] == "lang:1,general-311"
    assert caller.commands[-1] == 'VERBOSE "ivr fallback to the general queue" 1'
    result = recorder.results[0]
    assert result.outcome == "fallback" and result.error == f"missing prompt {MENU_EN}"
    assert (engine.missing_prompts, engine.last_missing_prompt) == (1, MENU_EN)
    assert engine.fallbacks == 1  # also in /health's ivr_fallbacks
    assert engine.prompts_failing() and not engine.prompts_failing(within=0)
    assert [r.levelno for r in caplog.records if MENU_EN in r.getMessage()] == [logging.ERROR]


async def test_a_missing_invalid_input_prompt_is_skipped_and_the_menu_goes_on() -> None:
    caller = Caller(inputs=["1", "8", "1"], missing={"311/en/invalid-option"})
    recorder, engine = await session(FakeStore(file_menu()), caller)
    assert caller.commands.count(f"GET DATA {MENU_EN} 5000 1") == 2  # asked again
    assert caller.variables["QUEUE"] == "sanitation"
    assert caller.variables["IVRPATH"] == "lang:1,main:8,main:1,sanitation"
    assert recorder.results[0].outcome == "queued"
    assert engine.missing_prompts == 1  # still an error of the recordings, counted


async def test_a_real_hang_up_is_not_counted_as_a_missing_prompt() -> None:
    caller = Caller(inputs=["1"], hangup_at=4)  # -1 on the main menu, then HANGUP
    recorder, engine = await session(FakeStore(file_menu()), caller)
    assert caller.commands[4:] == [f"GET DATA {MENU_EN} 5000 1", "CHANNEL STATUS"]
    assert recorder.results[0].outcome == "hangup"
    assert engine.missing_prompts == 0 and not engine.prompts_failing()


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("200 result=6\n", "fallback"), ("200 result=4\n", "fallback"),
     ("200 result=0\n", "hangup"), ("200 result=-1\n", "hangup"),
     ("HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n", "hangup")],
    ids=["up", "ring", "down", "no-channel", "hangup-511"],
)
async def test_the_channel_status_decides_between_missing_prompt_and_hang_up(
    status: str, outcome: str,
) -> None:
    caller = Caller(inputs=["1"], missing={MENU_EN}, status_reply=status)
    recorder, engine = await session(FakeStore(file_menu()), caller)
    assert recorder.results[0].outcome == outcome
    assert engine.missing_prompts == (1 if outcome == "fallback" else 0)
    assert ("QUEUE" in caller.variables) == (outcome == "fallback")
    assert caller.commands.count("CHANNEL STATUS") == 1


# --- end to end with the simulator's Asterisk -------------------------------------------------


@pytest.mark.parametrize("present", [True, False], ids=["file-exists", "file-missing"])
async def test_simulator_plays_only_the_sound_files_that_exist(present: bool) -> None:
    recorder = Recorder()
    async with running_ivr(FakeStore(CAPTURE_MENU), recorder) as server:
        pbx = SimPbx(VirtualClock(50.0), agi_port=server.port,
                  sound_files=frozenset({"hello-world"} if present else ()))
        events = PbxRecorder(pbx)
        for queue in ("sanitation", "general-311"):
            pbx.add_queue(SimQueueConfig(queue, "ringall"))
            pbx.queue_add(queue, "Local/2001@agents/n", "Ana", 0, "Local/2001@agents")
        pbx.behaviour = lambda m: AgentBehaviour(1, 2)
        try:
            pbx.originate_citizen("7875550101", "Maria Lopez", "1", 30)
            assert await wait_idle(pbx, 10)
        finally:
            await pbx.close()
    engine = recorder.engine
    varsets = {e["Variable"]: e["Value"] for e in events.named("VarSet")}
    joined = [e["Queue"] for e in events.named("QueueCallerJoin")]
    if present:
        assert joined == ["sanitation"] and varsets["IVRPATH"] == "main:1,sanitation"
        assert engine.missing_prompts == 0
    else:
        # Asterisk's -1 for the missing file, the channel still up: the caller is not lost
        assert joined == ["general-311"] and varsets["IVRPATH"] == "general-311"
        assert recorder.results[0].error == "missing prompt hello-world"
        assert engine.missing_prompts == 1 and engine.prompts_failing()
    assert varsets["LANG"] == "en" and pbx.calls[0].outcome == "answered"
