"""The engine over real sockets: one test per action and per failure, with the default 3-1-1
menu (English/Spanish) and an in-memory store whose parts can be made to fail."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from contactcenter.events import Event, IvrChoice
from contactcenter.ivr.services import CaseInfo
from tests.agi_fake import Caller
from tests.conftest import until
from tests.ivr_support import FakeStore, Recorder, file_menu, running_ivr

QUEUED_EN = ["QUEUE", "SERVICE", "LANG"]


async def call(store: FakeStore, caller: Caller, recorder: Recorder | None = None) -> Any:
    recorder = recorder or Recorder()
    async with running_ivr(store, recorder) as server:
        await caller.call(server.port)
        await until(lambda: recorder.results, timeout=5)
        stats = server.stats
    assert caller.closed_by_server or caller.hangup_at is not None
    return recorder.results[0], recorder, stats


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(file_menu())


@pytest.mark.parametrize(
    ("digit", "queue", "service"),
    [("1", "sanitation", "missed-pickup"), ("2", "potholes", "pothole"),
     ("3", "general-311", "general-inquiry"), ("0", "general-311", None)],
)
async def test_each_queue_option(store: FakeStore, digit: str, queue: str,
                                 service: str | None) -> None:
    caller = Caller(inputs=["1", digit])
    result, rec, _ = await call(store, caller)
    assert caller.without_trace()[:3] == ["ANSWER", "GET DATA 311/choose-language 4000 1",
                                   "GET DATA 311/en/main-menu 5000 1"]
    assert caller.variables.get("QUEUE") == queue
    assert caller.variables.get("SERVICE") == service
    assert caller.variables["LANG"] == "en" and "CHANNEL(language)" not in caller.variables
    assert caller.commands[-1] == 'VERBOSE "ivr done" 1'
    assert (result.outcome, result.queue) == ("queued", queue)
    choices = [(e.node, e.digit, e.action) for e in rec.events if isinstance(e, IvrChoice)]
    assert choices[0] == ("language", "1", "language:en")
    assert choices[1][:2] == ("main", digit)


async def test_spanish_sets_the_channel_language_and_plays_spanish_prompts(
    store: FakeStore,
) -> None:
    caller = Caller(inputs=["2", "2"])
    await call(store, caller)
    assert caller.without_trace()[2] == 'SET VARIABLE CHANNEL(language) "es"'
    assert caller.without_trace()[3] == "GET DATA 311/es/main-menu 5000 1"
    assert caller.variables["LANG"] == "es" and caller.variables["QUEUE"] == "potholes"


async def test_no_language_key_means_the_default_language(store: FakeStore) -> None:
    caller = Caller(inputs=["", "1"])
    await call(store, caller)
    assert caller.variables["LANG"] == "en" and caller.variables["QUEUE"] == "sanitation"


async def test_emergency_message_plays_and_ends(store: FakeStore) -> None:
    caller = Caller(inputs=["1", "7"])
    result, _, _ = await call(store, caller)
    assert 'STREAM FILE 311/en/emergency-dial-911 ""' in caller.commands
    assert caller.variables == {"IVROUTCOME": "self_served", "LANG": "en",
                                "IVRPATH": "lang:1,main:7,self_served"}
    assert caller.commands[-2:] == ['STREAM FILE 311/en/goodbye ""', "HANGUP"]
    assert result.outcome == "self_served"


async def test_transfer_external_with_a_number_sets_transfer() -> None:
    data = file_menu()
    data["nodes"][0]["options"].append({"digit": "8", "action": "transfer_external",
                                        "prompt": {"en": "a", "es": "b"}, "number": "911"})
    caller = Caller(inputs=["1", "8"])
    result, _, _ = await call(FakeStore(data), caller)
    assert caller.variables["TRANSFER"] == "911" and "QUEUE" not in caller.variables
    assert result.outcome == "transfer"


async def test_message_hangup() -> None:
    data = file_menu()
    data["nodes"][0]["options"].append({"digit": "5", "action": "message_hangup",
                                        "prompt": {"en": "311/en/hours", "es": "311/es/hours"}})
    caller = Caller(inputs=["2", "5"])
    await call(FakeStore(data), caller)
    assert 'STREAM FILE 311/es/hours ""' in caller.commands
    assert caller.variables["IVROUTCOME"] == "self_served" and caller.commands[-1] == "HANGUP"


async def test_repeat_plays_the_menu_again(store: FakeStore) -> None:
    caller = Caller(inputs=["1", "*", "2"])
    await call(store, caller)
    assert caller.commands.count("GET DATA 311/en/main-menu 5000 1") == 2
    assert caller.variables["QUEUE"] == "potholes"


def _with_submenu() -> dict[str, Any]:
    data = file_menu()
    data["nodes"][0]["options"].append({"digit": "4", "action": "submenu", "node": "streets"})
    data["nodes"].append({
        "id": "streets", "prompt": {"en": "311/en/streets", "es": "311/es/streets"},
        "options": [{"digit": "1", "action": "queue", "queue": "potholes",
                     "service": "streetlight-out"},
                    {"digit": "#", "action": "back"}],
    })
    return data


async def test_submenu_then_back_then_another_choice() -> None:
    caller = Caller(inputs=["1", "4", "#", "4", "1"])
    result, rec, _ = await call(FakeStore(_with_submenu()), caller)
    prompts = [c for c in caller.commands if c.startswith("GET DATA 311/en/")]
    assert prompts == ["GET DATA 311/en/main-menu 5000 1", "GET DATA 311/en/streets 5000 1",
                       "GET DATA 311/en/main-menu 5000 1", "GET DATA 311/en/streets 5000 1"]
    assert (result.queue, result.service) == ("potholes", "streetlight-out")
    assert [e.action for e in rec.events if isinstance(e, IvrChoice)][1:] == [
        "submenu:streets", "back", "submenu:streets", "queue:potholes/streetlight-out"]


async def test_timeouts_then_after_retries_routes_to_the_general_queue(store: FakeStore) -> None:
    caller = Caller(inputs=["1"])  # then silence
    result, rec, _ = await call(store, caller)
    assert caller.commands.count("GET DATA 311/en/main-menu 5000 1") == 3
    assert caller.variables["QUEUE"] == "general-311" and result.outcome == "queued"
    actions = [e.action for e in rec.events if isinstance(e, IvrChoice)]
    assert actions[1:] == ["timeout", "timeout", "timeout", "after_retries:queue:general-311"]


async def test_invalid_digit_plays_the_invalid_prompt_and_asks_again(store: FakeStore) -> None:
    caller = Caller(inputs=["1", "5", "2"])
    await call(store, caller)
    assert caller.without_trace()[3] == 'STREAM FILE 311/en/invalid-option ""'
    assert caller.variables["QUEUE"] == "potholes"


async def test_max_retries_of_invalid_digits(store: FakeStore) -> None:
    caller = Caller(inputs=["1", "5", "6", "8"])
    result, _, _ = await call(store, caller)
    assert caller.commands.count('STREAM FILE 311/en/invalid-option ""') == 2
    assert result.queue == "general-311"


async def test_announcement_of_the_day_plays_before_the_menu(store: FakeStore) -> None:
    store.announcement_prompt = {"en": "311/en/storm", "es": "311/es/storm"}
    caller = Caller(inputs=["2", "1"])
    await call(store, caller)
    assert caller.without_trace()[3:5] == ['STREAM FILE 311/es/storm ""',
                                    "GET DATA 311/es/main-menu 5000 1"]


# --- self-service ------------------------------------------------------------------------------

CASE = CaseInfo("311-2026-000423", "in_progress", date(2026, 12, 3), "pothole")


async def test_case_status_found_says_status_and_expected_date(store: FakeStore) -> None:
    store.cases[CASE.number] = CASE
    caller = Caller(inputs=["1", "9", "423"])
    result, rec, _ = await call(store, caller)
    plays = caller.without_trace()
    tail = plays[plays.index("GET DATA 311/en/enter-case-number 5000 6"):]
    assert tail[:8] == [
        "GET DATA 311/en/enter-case-number 5000 6",
        'SAY DIGITS 423 ""',
        'STREAM FILE 311/en/status-in-progress ""',
        # the status is said: served, even if the caller hangs up from here (containment)
        'SET VARIABLE IVROUTCOME "self_served"',
        'STREAM FILE 311/en/expected-by ""',
        'STREAM FILE digits/mon-11 ""',
        'SAY NUMBER 3 ""',
        "GET DATA 311/en/press-0-operator 5000 1",
    ]
    assert caller.variables["IVROUTCOME"] == "self_served"
    assert caller.variables["CASE"] == CASE.number and caller.commands[-1] == "HANGUP"
    assert result.outcome == "self_served" and result.case_number == CASE.number
    assert any(isinstance(e, IvrChoice) and e.case_number == CASE.number for e in rec.events)


async def test_a_case_waiting_on_the_caller_is_in_progress_without_a_date(
    store: FakeStore,
) -> None:
    waiting = CaseInfo("311-2026-000424", "waiting_citizen", date(2026, 12, 3), "pothole")
    store.cases[waiting.number] = waiting
    caller = Caller(inputs=["1", "9", "424"])
    await call(store, caller)
    plays = caller.without_trace()
    tail = plays[plays.index("GET DATA 311/en/enter-case-number 5000 6"):]
    assert tail[:5] == [
        "GET DATA 311/en/enter-case-number 5000 6",
        'SAY DIGITS 424 ""',
        'STREAM FILE 311/en/status-in-progress ""',
        'SET VARIABLE IVROUTCOME "self_served"',
        "GET DATA 311/en/press-0-operator 5000 1",
    ]


async def test_case_status_then_operator(store: FakeStore) -> None:
    store.cases[CASE.number] = CASE
    caller = Caller(inputs=["1", "9", "000423", "0"])
    await call(store, caller)
    assert caller.variables["QUEUE"] == "general-311"
    assert caller.variables["SERVICE"] == "general-inquiry"
    # set once the status was said, emptied when the caller asked for an operator: the
    # dialplan (`${IVROUTCOME}" != ""`) then queues the call
    assert caller.variables["CASE"] == CASE.number and caller.variables["IVROUTCOME"] == ""


async def test_case_not_found_goes_to_the_operator(store: FakeStore) -> None:
    caller = Caller(inputs=["1", "9", "999999"])
    await call(store, caller)
    assert 'STREAM FILE 311/en/case-not-found ""' in caller.commands
    assert caller.variables["QUEUE"] == "general-311" and "CASE" not in caller.variables


async def test_callers_open_case_is_offered_first(store: FakeStore) -> None:
    store.mine = [CASE]
    caller = Caller(inputs=["1", "9", ""], stream_digits=["", "1"])  # presses 1 during digits
    result, _, _ = await call(store, caller)
    i = caller.without_trace().index('STREAM FILE 311/en/press-1-status-of-request-ending-in "12"')
    assert caller.without_trace()[i + 1] == 'SAY DIGITS 423 "12"'
    assert caller.without_trace()[i + 2] == 'STREAM FILE 311/en/status-in-progress ""'
    assert not any("enter-case-number" in c for c in caller.commands)
    assert result.case_number == CASE.number


async def test_callers_open_case_declined_asks_for_a_number(store: FakeStore) -> None:
    store.mine = [CASE]
    store.cases["311-2026-000777"] = CaseInfo("311-2026-000777", "closed", None, None)
    caller = Caller(inputs=["1", "9", "2", "777"])
    await call(store, caller)
    assert "GET DATA 311/en/press-2-other-case 5000 1" in caller.commands
    assert 'STREAM FILE 311/en/status-closed ""' in caller.commands
    assert not any("expected-by" in c for c in caller.commands)  # closed: no date
    assert caller.variables["CASE"] == "311-2026-000777"


# --- office hours ------------------------------------------------------------------------------


async def test_closed_queue_caller_leaves_a_request(store: FakeStore) -> None:
    store.closed.add("sanitation")
    caller = Caller(inputs=["1", "1", "1"])
    result, rec, _ = await call(store, caller)
    assert 'STREAM FILE 311/en/office-closed ""' in caller.commands
    assert "GET DATA 311/en/press-1-leave-request 5000 1" in caller.commands
    assert 'SAY DIGITS 000042 ""' in caller.commands
    assert store.requests[0]["queue"] == "sanitation"
    assert store.requests[0]["service"] == "missed-pickup"
    assert store.requests[0]["caller_number"] == "7875550101"
    assert caller.variables["CASE"] == "311-2026-000042"
    assert caller.variables["IVROUTCOME"] == "self_served" and "QUEUE" not in caller.variables
    assert any(isinstance(e, IvrChoice) and e.action == "leave_request"
               and e.case_number == "311-2026-000042" for e in rec.events)
    assert result.outcome == "self_served"


async def test_closed_queue_caller_declines(store: FakeStore) -> None:
    store.closed.add("potholes")
    caller = Caller(inputs=["1", "2", ""])
    result, _, _ = await call(store, caller)
    assert caller.variables["IVROUTCOME"] == "closed" and result.outcome == "closed"
    assert not store.requests and caller.commands[-1] == "HANGUP"


# --- failures: never dead air -----------------------------------------------------------------


@pytest.mark.parametrize("part", ["active_menu", "announcement", "queue_open", "find_case"])
async def test_database_down_sends_the_caller_to_the_general_queue(
    store: FakeStore, part: str
) -> None:
    store.fail.add(part)
    caller = Caller(inputs=["1", "9" if part == "find_case" else "1", "123456"])
    result, _, stats = await call(store, caller)
    assert caller.variables["QUEUE"] == "general-311"
    assert caller.commands[-1] == 'VERBOSE "ivr fallback to the general queue" 1'
    assert result.outcome == "fallback" and "database down" in (result.error or "")
    assert stats.errors == 0  # handled by the engine, not leaked to the server


async def test_bus_failure_sends_the_caller_to_the_general_queue(store: FakeStore) -> None:
    class BrokenBus(Recorder):
        async def publish(self, event: Event) -> None:
            raise ConnectionError("redis down")

    caller = Caller(inputs=["1", "1"])
    result, _, _ = await call(store, caller, BrokenBus())
    assert caller.variables["QUEUE"] == "general-311" and result.outcome == "fallback"


async def test_a_menu_bug_falls_back(store: FakeStore) -> None:
    broken = copy.deepcopy(file_menu())
    broken["nodes"][0]["options"][0] = {"digit": "1", "action": "submenu", "node": "gone"}
    from contactcenter.ivr.menu import parse_menu

    menu, _ = parse_menu(broken)  # schema-valid, semantically broken: never publishable
    assert menu is not None
    store.active = type(store.active)(1, 1, menu)
    caller = Caller(inputs=["1", "1"])
    result, _, _ = await call(store, caller)
    assert result.outcome == "fallback" and caller.variables["QUEUE"] == "general-311"


FLOWS = {
    "queue": ["1", "1"],
    "case_status": ["1", "9", "423", ""],
    "closed": ["1", "1", "1"],
}


@pytest.mark.parametrize("style", ["media", "511", "eof"])
@pytest.mark.parametrize("flow", sorted(FLOWS))
async def test_hangup_at_every_step_ends_cleanly(flow: str, style: str) -> None:
    # first the whole call, to know its length; then hang up at each command in turn
    def make_store() -> FakeStore:
        s = FakeStore(file_menu())
        s.cases[CASE.number] = CASE
        if flow == "closed":
            s.closed.add("sanitation")
        return s

    full = Caller(inputs=list(FLOWS[flow]))
    await call(make_store(), full)
    assert len(full.commands) >= 6
    for at in range(len(full.commands)):
        caller = Caller(inputs=list(FLOWS[flow]), hangup_at=at, style=style)
        result, _, stats = await call(make_store(), caller)
        assert caller.commands[:at] == full.commands[:at]
        extra = len(caller.commands) - at - 1
        assert result.outcome in ("hangup", "self_served", "closed"), (at, result)
        assert stats.errors == 0 and stats.sessions_active == 0
        if style == "eof" or full.commands[at].startswith(("SET", "VERBOSE", "HANGUP",
                                                            "ANSWER")):
            assert extra == 0, (at, caller.commands)
        else:
            # result=-1 is ambiguous: one CHANNEL STATUS (answered HANGUP), then stop quietly
            assert extra <= 1 and (extra == 0 or caller.commands[-1] == "CHANNEL STATUS"), (
                at, caller.commands)
