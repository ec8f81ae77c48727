"""Screen-pop routing and command authorization in the hub (fake sockets, no I/O)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contactcenter.agents import presence as P
from contactcenter.agents.console import ConsoleHub, parse_command
from contactcenter.agents.services import OperatorService
from contactcenter.events import (
    AgentCallCompleted,
    AgentRingNoAnswer,
    AgentStateChanged,
    BroadcastMessage,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallRecord,
    QueueMembersSynced,
)
from contactcenter.web.auth import Principal
from tests.console_helpers import T0, FakePbx, FakePhones, FakeWs, later, ringing

ANA = Principal(1, "ana", "operator", "Ana", "PJSIP/1001", ("potholes", "sanitation"))
BEN = Principal(2, "ben", "operator", "Ben", "PJSIP/1002", ("potholes",))
NOPHONE = Principal(3, "sam", "operator", "Sam", None, ())


class FakeHistory:
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.forgotten: list[str] = []

    async def get(self, call_id: str, **kw: Any) -> dict[str, Any]:
        self.asked.append(call_id)
        return {"calls": [], "cases": [], "repeat": False, "recent_calls": 1,
                "keyed_case": None}

    def forget(self, call_id: str) -> None:
        self.forgotten.append(call_id)

    async def close(self) -> None:
        return None


class FakeWork:
    def __init__(self) -> None:
        self.done: list[tuple[str, dict[str, Any]]] = []
        self.ended: list[str] = []

    async def create_case(self, user: Principal, **kw: Any) -> Any:
        self.done.append(("case", kw))

        class Case:
            number = "311-2026-000001"

        return Case()

    async def add_note(self, user: Principal, **kw: Any) -> str:
        self.done.append(("note", kw))
        return str(kw["number"])

    async def set_on_call(self, **kw: Any) -> bool:
        self.done.append(("call", kw))
        return True

    def later(self, **kw: Any) -> None:
        self.done.append(("later", kw))

    def call_ended(self, call_id: str) -> None:
        self.ended.append(call_id)

    async def flush(self, now: Any) -> int:
        return 0


@pytest.fixture
async def hub() -> Any:
    presence = P.Presence({"potholes": 30})
    pbx = FakePbx()
    h = ConsoleHub(presence, OperatorService(presence, lambda: pbx), FakeHistory(),  # type: ignore[arg-type]
                   FakeWork(), phones=lambda: None, clock=lambda: T0)  # type: ignore[arg-type]
    h.pbx = pbx  # type: ignore[attr-defined]
    yield h
    await h.close()


async def settle(hub: ConsoleHub) -> None:
    for _ in range(5):
        await asyncio.sleep(0)
    await asyncio.gather(*hub._tasks, return_exceptions=True)
    for _ in range(50):  # let the writer tasks empty the outboxes
        if all(conn.outbox.empty() for conn in hub.conns):
            break
        await asyncio.sleep(0)
    await asyncio.sleep(0)


def calls(ws: FakeWs) -> list[dict[str, Any]]:
    return [f for f in ws.frames if f["type"] in ("call", "call.clear")]


async def test_pop_goes_only_to_the_rung_operators_every_socket(hub: ConsoleHub) -> None:
    ana1, ana2, ben, sam = FakeWs(), FakeWs(), FakeWs(), FakeWs()
    hub.connect(ana1, ANA)  # type: ignore[arg-type]
    hub.connect(ana2, ANA)  # type: ignore[arg-type]
    hub.connect(ben, BEN)  # type: ignore[arg-type]
    hub.connect(sam, NOPHONE)  # type: ignore[arg-type]
    await settle(hub)
    await hub.on_event(ringing("PJSIP/1001"))
    await settle(hub)
    for ws in (ana1, ana2):
        pops = ws.of("call")
        assert pops and pops[0]["caller_number"] == "7875550101"
        assert pops[0]["status"] == "ringing"
        assert pops[-1]["history"] is not None  # the history follows the first pop
    assert calls(ben) == [] and calls(sam) == []


async def test_ringall_pops_every_rung_operator_and_clears_the_others_on_answer(
    hub: ConsoleHub,
) -> None:
    ana, ben = FakeWs(), FakeWs()
    hub.connect(ana, ANA)  # type: ignore[arg-type]
    hub.connect(ben, BEN)  # type: ignore[arg-type]
    await hub.on_event(ringing("PJSIP/1001"))
    await hub.on_event(ringing("PJSIP/1002"))
    await settle(hub)
    assert ana.of("call")[0]["call_id"] == ben.of("call")[0]["call_id"] == "default:1700000000.1"
    await hub.on_event(CallAnswered("default", "1700000000.1", "potholes", "PJSIP/1002", "Ben",
                                    3.0, 2.0, later(3)))
    await settle(hub)
    assert ana.of("call.clear")[-1]["reason"] == "answered elsewhere"
    assert ben.of("call")[-1]["status"] == "connected"
    assert ben.of("call.clear") == []
    # Ana can no longer act on it; Ben can
    ana_conn = next(c for c in hub.conns if c.ws is ana)
    reply = await hub.handle(ana_conn, json.dumps(
        {"type": "disposition", "call_id": "default:1700000000.1", "disposition": "resolved"}))
    assert reply["ok"] is False and "not on your console" in reply["error"]
    ben_conn = next(c for c in hub.conns if c.ws is ben)
    reply = await hub.handle(ben_conn, json.dumps(
        {"type": "disposition", "call_id": "default:1700000000.1", "disposition": "resolved"}))
    assert reply["ok"] is True


async def test_an_operator_never_receives_another_operators_pop(hub: ConsoleHub) -> None:
    ana, ben = FakeWs(), FakeWs()
    hub.connect(ana, ANA)  # type: ignore[arg-type]
    hub.connect(ben, BEN)  # type: ignore[arg-type]
    for i in range(20):
        await hub.on_event(ringing("PJSIP/1001", f"17.{i}", number=f"555{i}"))
    await hub.on_event(BroadcastMessage("sup", "storm warning", T0))
    await settle(hub)
    assert calls(ben) == []
    assert {f["call_id"] for f in calls(ana)} == {f"default:17.{i}" for i in range(20)}
    assert ben.of("broadcast")[0]["text"] == "storm warning"  # broadcasts go to everyone
    # and Ben's reconnect snapshot holds none of them either
    ben2 = FakeWs()
    hub.connect(ben2, BEN)  # type: ignore[arg-type]
    await settle(hub)
    assert calls(ben2) == []
    assert ben2.of("broadcast")[0]["text"] == "storm warning"


async def test_pop_clears_on_abandon_no_answer_and_end(hub: ConsoleHub) -> None:
    ana, ben = FakeWs(), FakeWs()
    hub.connect(ana, ANA)  # type: ignore[arg-type]
    hub.connect(ben, BEN)  # type: ignore[arg-type]
    await hub.on_event(ringing("PJSIP/1001", "1.1"))
    await hub.on_event(CallAbandoned("default", "1.1", "potholes", 1, 1, 8.0, later(8)))
    await hub.on_event(ringing("PJSIP/1001", "2.2"))
    await hub.on_event(AgentRingNoAnswer("default", "2.2", "potholes", "PJSIP/1001", 4.0,
                                         later(12)))
    await hub.on_event(ringing("PJSIP/1002", "3.3"))
    rec = CallRecord("default", "3.3", "1", None, T0, later(20), "abandoned")
    await hub.on_event(CallEnded(rec))
    await settle(hub)
    assert [(f["call_id"], f["reason"]) for f in ana.of("call.clear")] == [
        ("default:1.1", "abandoned"), ("default:2.2", "missed")]
    assert [(f["call_id"], f["reason"]) for f in ben.of("call.clear")] == [
        ("default:3.3", "ended")]
    assert hub.book.calls == {} and hub.book.rung == {}
    assert "default:3.3" in hub.history.forgotten  # type: ignore[attr-defined]


async def test_reconnect_gets_state_and_the_call_in_progress(hub: ConsoleHub) -> None:
    await hub.on_event(AgentStateChanged("default", "potholes", "PJSIP/1001", "Ana",
                                         "not_in_use", False, None, T0))
    await hub.on_event(ringing("PJSIP/1001"))
    await hub.on_event(CallAnswered("default", "1700000000.1", "potholes", "PJSIP/1001",
                                    "Ana", 3.0, 2.0, later(3)))
    await settle(hub)
    ws = FakeWs()
    hub.connect(ws, ANA)  # type: ignore[arg-type]
    await settle(hub)
    assert [f["type"] for f in ws.frames[:3]] == ["hello", "state", "link"]
    assert ws.of("state")[0]["state"] == "available"
    first, *_, call = ws.of("call")  # the snapshot, then the history it asked for
    assert first["status"] == call["status"] == "connected" and call["history"] is not None


async def test_wrapup_pauses_in_asterisk_and_ready_clears_the_call(hub: ConsoleHub) -> None:
    pbx: FakePbx = hub.pbx  # type: ignore[attr-defined]
    ws = FakeWs()
    conn = hub.connect(ws, ANA)  # type: ignore[arg-type]
    await hub.on_event(AgentStateChanged("default", "potholes", "PJSIP/1001", "Ana",
                                         "not_in_use", False, None, T0))
    await hub.on_event(ringing("PJSIP/1001"))
    await hub.on_event(CallAnswered("default", "1700000000.1", "potholes", "PJSIP/1001",
                                    "Ana", 3.0, 2.0, later(3)))
    await hub.on_event(AgentCallCompleted("default", "1700000000.1", "potholes", "PJSIP/1001",
                                          10.0, later(13)))
    await settle(hub)
    assert ("pause", "PJSIP/1001", True, None, P.WRAPUP_REASON) in pbx.actions
    assert ws.of("state")[-1]["state"] == "wrapup"
    assert ws.of("call")[-1]["status"] == "wrapup"
    await hub.on_event(AgentStateChanged("default", "potholes", "PJSIP/1001", "Ana",
                                         "not_in_use", True, P.WRAPUP_REASON, later(13)))
    hub.clock = lambda: later(20)
    reply = await hub.handle(conn, '{"type":"ready","ref":7}')
    await settle(hub)
    assert reply == {"type": "result", "ref": "7", "command": "ready", "ok": True,
                     "message": "Ready for calls."}
    assert pbx.actions[-1] == ("pause", "PJSIP/1001", False, None, "")
    assert ws.of("call.clear")[-1]["reason"] == "done"
    # the wrap-up time goes on the call record (with the next flush)
    work = hub.work.done  # type: ignore[attr-defined]
    assert ("later", {"call_id": "default:1700000000.1", "server": "default",
                     "linkedid": "1700000000.1", "now": later(20), "wrap_seconds": 7.0}) in work


async def test_wrapup_expiry_unpauses(hub: ConsoleHub) -> None:
    pbx: FakePbx = hub.pbx  # type: ignore[attr-defined]
    await hub.on_event(AgentStateChanged("default", "potholes", "PJSIP/1001", "Ana",
                                         "not_in_use", False, None, T0))
    await hub.on_event(AgentCallCompleted("default", "9.9", "potholes", "PJSIP/1001", 5.0, T0))
    await hub.on_event(AgentStateChanged("default", "potholes", "PJSIP/1001", "Ana",
                                         "not_in_use", True, P.WRAPUP_REASON, T0))
    hub.clock = lambda: later(31)
    await hub.tick()
    await settle(hub)
    assert pbx.actions[-1] == ("pause", "PJSIP/1001", False, None, "")


async def test_commands_need_the_callers_own_call_and_phone_controls(hub: ConsoleHub) -> None:
    ana = FakeWs()
    conn = hub.connect(ana, ANA)  # type: ignore[arg-type]
    await hub.on_event(ringing("PJSIP/1001"))
    r = await hub.handle(conn, json.dumps({"type": "create_case", "call_id": "default:1700000000.1",
                                           "service": "pothole", "description": "x"}))
    assert r["ok"] is False and "Answer the call" in r["error"]
    r = await hub.handle(conn, '{"type":"answer"}')
    assert r["ok"] is False and "no phone controls" in r["error"]
    phones = FakePhones()
    hub.phones = lambda: phones
    r = await hub.handle(conn, '{"type":"answer"}')
    assert r["ok"] is True and phones.actions == [("answer", "PJSIP/1001")]

    class IdlePhones:  # the simulator's PhoneControl is synchronous and says False when idle
        def answer(self, interface: str) -> bool:
            return False

        def hangup(self, interface: str) -> bool:
            return False

    hub.phones = lambda: IdlePhones()
    r = await hub.handle(conn, '{"type":"answer"}')
    assert r == {"type": "result", "ref": None, "command": "answer", "ok": False,
                 "error": "Nothing is ringing on your phone."}
    r = await hub.handle(conn, '{"type":"hangup"}')
    assert r["error"] == "There is no call on your phone."


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(
    st.text(max_size=300),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
        | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["type", "ref", "call_id", "reason", "case", "body",
                                           "service", "description", "disposition", "x"]),
                          inner, max_size=5),
        max_leaves=12,
    ).map(json.dumps),
    st.fixed_dictionaries({"type": st.sampled_from(
        ["ping", "login", "pause", "ready", "logout", "answer", "hangup", "dismiss",
         "create_case", "add_note", "disposition", "nope"])},
        optional={"reason": st.text(max_size=50), "call_id": st.text(max_size=50),
                  "case": st.text(max_size=50), "body": st.text(max_size=50),
                  "ref": st.one_of(st.integers(), st.text(max_size=50), st.lists(st.integers())),
                  }).map(json.dumps),
))
def test_garbage_messages_get_an_error_reply_and_never_raise(raw: str) -> None:
    async def run() -> dict[str, Any]:
        presence = P.Presence()
        hub = ConsoleHub(presence, OperatorService(presence, lambda: FakePbx()),
                         FakeHistory(), FakeWork(), clock=lambda: T0)  # type: ignore[arg-type]
        ws = FakeWs()
        conn = hub.connect(ws, ANA)  # type: ignore[arg-type]
        reply = await hub.handle(conn, raw)
        json.dumps(reply)  # always serializable
        await hub.close()
        return reply

    reply = asyncio.run(run())
    assert reply["type"] in ("error", "result", "pong")
    if reply["type"] == "error":
        assert isinstance(reply["error"], str) and reply["error"]
        with pytest.raises(ValueError):
            parse_command(raw)



class StuckWs(FakeWs):
    """A browser that stopped reading: sends never complete."""

    async def send_str(self, data: str) -> None:
        await asyncio.Event().wait()


async def test_a_slow_console_is_closed_without_stalling_the_others(hub: ConsoleHub) -> None:
    stuck, ok = StuckWs(), FakeWs()
    hub.connect(stuck, ANA)  # type: ignore[arg-type]
    hub.connect(ok, ANA)  # type: ignore[arg-type]
    for i in range(400):  # more than the outbox holds
        await hub.on_event(ringing("PJSIP/1001", f"5.{i}"))
        for _ in range(3):  # the loop turns, as it does between bus events
            await asyncio.sleep(0)
    await settle(hub)
    assert len(ok.of("call")) >= 400  # every pop, in order
    stuck_conn = next(c for c in hub.conns if c.ws is stuck)
    assert stuck_conn.outbox.overflowed and stuck_conn.outbox.writer.cancelled()
    assert stuck.closed and stuck.close_code == 1013  # try again later: the page reconnects


async def test_the_pop_stands_when_the_history_cannot_be_read(hub: ConsoleHub) -> None:
    class DownHistory(FakeHistory):
        async def get(self, call_id: str, **kw: Any) -> dict[str, Any]:
            raise OSError("connection refused")

    hub.history = DownHistory()  # type: ignore[assignment]
    ws = FakeWs()
    hub.connect(ws, ANA)  # type: ignore[arg-type]
    await hub.on_event(ringing("PJSIP/1001"))
    await settle(hub)
    first, last = ws.of("call")[0], ws.of("call")[-1]
    assert first["status"] == "ringing" and first["history"] is None
    assert "not available" in last["history"]["error"]


class _Sessions:
    """Just enough of an async_sessionmaker for CallWork: a session whose begin() is a no-op."""

    def __call__(self) -> Any:
        return self

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    def begin(self) -> Any:
        return self


class _Store:
    """The one thing CallWork reads of the case store when it flushes: the center's zone."""

    tz = "UTC"


async def test_data_kept_while_a_flush_is_in_flight_is_not_lost(monkeypatch: Any) -> None:
    from contactcenter.agents import queries, services

    written: list[dict[str, Any]] = []
    record_exists = False
    gate = asyncio.Event()

    async def link_call(db: Any, *, server: str, linkedid: str, tz: Any, **values: Any) -> bool:
        if record_exists and "disposition" in values:
            await gate.wait()  # the first flush is slow...
        if record_exists:
            written.append(values)
        return record_exists

    monkeypatch.setattr(queries, "link_call", link_call)
    work = services.CallWork(_Sessions(), store=_Store())  # type: ignore[arg-type]
    assert not await work.set_on_call(call_id="d:1", server="d", linkedid="1", now=T0,
                                      disposition="resolved")
    work.call_ended("d:1")
    record_exists = True
    flushing = asyncio.create_task(work.flush(later(1)))
    await asyncio.sleep(0)
    # ...and meanwhile wrap-up ends and its figure joins the pending entry
    work._keep("d:1", "d", "1", later(2), wrap_seconds=7.0)
    gate.set()
    await flushing
    assert work.pending["d:1"].values == {"wrap_seconds": 7.0}
    await work.flush(later(3))
    assert work.pending == {}
    assert written == [{"disposition": "resolved"}, {"wrap_seconds": 7.0}]


async def test_a_dead_database_at_flush_loses_no_figure(monkeypatch: Any) -> None:
    """Wrap-up times wait for the next flush, all in one transaction: if the database is down
    then, every figure stays pending and the next flush writes them all."""
    from contactcenter.agents import queries, services

    written: list[tuple[str, dict[str, Any]]] = []
    down = True

    async def link_call(db: Any, *, server: str, linkedid: str, tz: Any, **values: Any) -> bool:
        if down:
            raise OSError("connection refused")
        written.append((linkedid, values))
        return True

    monkeypatch.setattr(queries, "link_call", link_call)
    work = services.CallWork(_Sessions(), store=_Store())  # type: ignore[arg-type]
    for n in (1, 2, 3):
        work.call_ended(f"d:{n}")
        work.later(call_id=f"d:{n}", server="d", linkedid=str(n), now=T0, wrap_seconds=float(n))
    with pytest.raises(OSError):
        await work.flush(later(1))
    assert sorted(work.pending) == ["d:1", "d:2", "d:3"] and written == []
    down = False
    assert await work.flush(later(2)) == 3
    assert work.pending == {}
    assert sorted(written) == [(str(n), {"wrap_seconds": float(n)}) for n in (1, 2, 3)]


async def test_a_store_failure_is_a_clear_reply_not_a_broken_socket(hub: ConsoleHub) -> None:
    class DownWork(FakeWork):
        async def add_note(self, user: Principal, **kw: Any) -> str:
            raise OSError("database is unreachable")

        async def set_on_call(self, **kw: Any) -> bool:
            raise KeyError("a bug")

    hub.work = DownWork()  # type: ignore[assignment]
    ws = FakeWs()
    conn = hub.connect(ws, ANA)  # type: ignore[arg-type]
    r = await hub.handle(conn, '{"type":"add_note","case":"311-2026-000001","body":"x"}')
    assert r["ok"] is False and "nothing was saved" in r["error"]
    await hub.on_event(ringing("PJSIP/1001"))
    await hub.on_event(CallAnswered("default", "1700000000.1", "potholes", "PJSIP/1001", "Ana",
                                    1.0, 1.0, later(2)))
    r = await hub.handle(conn, json.dumps({"type": "disposition",
                                           "call_id": "default:1700000000.1",
                                           "disposition": "resolved"}))
    assert r["ok"] is False and "Something went wrong" in r["error"]
    assert (await hub.handle(conn, '{"type":"ping"}'))["type"] == "pong"


async def test_history_is_queried_only_for_a_phone_with_a_console(hub: ConsoleHub) -> None:
    history: FakeHistory = hub.history  # type: ignore[assignment]
    await hub.on_event(ringing("Local/2001@agents/n", "8.1"))  # a simulated agent: no console
    await hub.on_event(ringing("PJSIP/1001", "8.2"))  # Ana's console is not open yet
    await settle(hub)
    assert history.asked == []
    ws = FakeWs()
    hub.connect(ws, ANA)  # type: ignore[arg-type]
    await settle(hub)
    assert history.asked == ["default:8.2"]
    assert ws.of("call")[-1]["history"] is not None


async def test_the_console_hello_carries_the_operators_languages(hub: Any) -> None:
    ana = Principal(1, "ana", "operator", "Ana", "PJSIP/1001", ("potholes",), ("en", "es"))
    assert hub.hello(ana)["user"]["languages"] == ["en", "es"]
    assert hub.hello(BEN)["user"]["languages"] == []


async def test_consoles_are_told_when_the_bus_dropped_their_events(hub: ConsoleHub) -> None:
    ana = FakeWs()
    hub.connect(ana, ANA)  # type: ignore[arg-type]
    hub.events_dropped(3)
    hub.events_dropped(4)  # told once, counted always
    await settle(hub)
    notices = [f["text"] for f in ana.of("notice")]
    assert len(notices) == 1 and "missed updates" in notices[0]
    assert hub.stale and hub.dropped == 4
    # Asterisk's full member list makes presence whole again
    await hub.on_event(QueueMembersSynced("default", (), T0))
    await settle(hub)
    assert not hub.stale and "up to date" in ana.of("notice")[-1]["text"]


async def test_the_pop_after_a_wrapup_keeps_its_caller_and_history(hub: ConsoleHub) -> None:
    """The wrap-up's call leaves the book when the next call rings; the new pop must stay in it
    (it once went out but was not kept: the answer showed no caller and no history)."""
    ws = FakeWs()
    hub.connect(ws, ANA)  # type: ignore[arg-type]
    await hub.on_event(ringing("PJSIP/1001", "1.1"))
    await hub.on_event(CallAnswered("default", "1.1", "potholes", "PJSIP/1001", "Ana",
                                    3.0, 2.0, later(3)))
    await hub.on_event(AgentCallCompleted("default", "1.1", "potholes", "PJSIP/1001", 10.0,
                                          later(13)))
    await hub.on_event(ringing("PJSIP/1001", "2.2", number="7875550202"))
    await settle(hub)
    await hub.on_event(CallAnswered("default", "2.2", "potholes", "PJSIP/1001", "Ana",
                                    3.0, 2.0, later(60)))
    await settle(hub)
    last = ws.of("call")[-1]
    assert last["call_id"] == "default:2.2" and last["status"] == "connected"
    assert last["caller_number"] == "7875550202" and last["history"] is not None


async def test_an_unknown_command_is_a_one_line_error_and_loses_nothing(hub: ConsoleHub) -> None:
    ws = FakeWs()
    conn = hub.connect(ws, ANA)  # type: ignore[arg-type]
    await hub.on_event(ringing("PJSIP/1001"))
    await hub.on_event(CallAnswered("default", "1700000000.1", "potholes", "PJSIP/1001", "Ana",
                                    3.0, 2.0, later(3)))
    for raw in ('{"type":"transfer\\nnow","ref":1}', '{"type":"_my_call"}', "[1,2]", "\x00{",
                '{"type":"pause"}', '{"type":"ping","ref":true}'):
        reply = await hub.handle(conn, raw)
        assert reply["type"] == "error" and reply["error"] and "\n" not in reply["error"], raw
    assert "unknown message type" in (await hub.handle(conn, '{"type":"nope"}'))["error"]
    # the socket, the pop and the next command are as they were
    await settle(hub)
    assert not ws.closed and hub.book.view("PJSIP/1001", "default:1700000000.1") is not None
    r = await hub.handle(conn, json.dumps({"type": "disposition",
                                           "call_id": "default:1700000000.1",
                                           "disposition": "resolved"}))
    assert r["ok"] is True


def test_every_command_has_a_handler_and_only_ping_is_answered_by_the_hub() -> None:
    from contactcenter.agents.console_commands import COMMANDS

    assert [name for name, spec in COMMANDS.items() if spec.run is None] == ["ping"]
    for name, spec in COMMANDS.items():
        required = {f: "x" for f, field in spec.fields.items() if field.required}
        assert parse_command(json.dumps({"type": name, **required})).type == name
