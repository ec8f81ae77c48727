"""PopBook: events in, (socket, message) out; no sockets, no loop. Hand-built streams cover each
way a pop ends, late, repeated and out-of-order events, transfers, and operators with two
consoles; a property test throws random streams at it and checks the routing rule holds."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contactcenter.agents.pops import BROADCASTS_KEPT, ENDED_KEPT, PopBook, Send, WantHistory
from contactcenter.events import (
    AgentCallCompleted,
    AgentRingNoAnswer,
    AmiLinkChanged,
    BroadcastMessage,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallRecord,
    CallTransferred,
    Event,
    QueueJoined,
)
from tests.console_helpers import T0, later, ringing

ANA, BEN, CAL = "PJSIP/1001", "PJSIP/1002", "PJSIP/1003"
CALL = "default:1700000000.1"
LID = "1700000000.1"


def answered(interface: str, linkedid: str = LID, at: float = 3) -> CallAnswered:
    return CallAnswered("default", linkedid, "potholes", interface, None, 3.0, 2.0, later(at))


def completed(interface: str, linkedid: str = LID, at: float = 60) -> AgentCallCompleted:
    return AgentCallCompleted("default", linkedid, "potholes", interface, 50.0, later(at))


def ended(linkedid: str = LID, at: float = 61) -> CallEnded:
    return CallEnded(CallRecord("default", linkedid, "7875550101", None, T0, later(at),
                                "answered"))


def no_answer(interface: str, linkedid: str = LID) -> AgentRingNoAnswer:
    return AgentRingNoAnswer("default", linkedid, "potholes", interface, 15.0, later(15))


def abandoned(linkedid: str = LID) -> CallAbandoned:
    return CallAbandoned("default", linkedid, "potholes", 1, 1, 8.0, later(8))


def book_with(**sockets: str | None) -> PopBook[str]:
    """A book with these sockets open (name -> interface), their snapshots thrown away."""
    book: PopBook[str] = PopBook()
    for sock, interface in sockets.items():
        book.open(sock, interface)
    return book


def sends(out: Iterable[Any]) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    return [(o.to, o.msg) for o in out if isinstance(o, Send)]


def wants(out: Iterable[Any]) -> list[str]:
    return [o.call_id for o in out if isinstance(o, WantHistory)]


def pops(out: Iterable[Any]) -> list[tuple[tuple[str, ...], str, str]]:
    """(sockets, call_id, status or clear reason) of every call message."""
    got = []
    for to, msg in sends(out):
        if msg["type"] == "call":
            got.append((to, msg["call_id"], msg["status"]))
        elif msg["type"] == "call.clear":
            got.append((to, msg["call_id"], "clear:" + msg["reason"]))
    return got


def feed(book: PopBook[str], *events: Event) -> list[Any]:
    out: list[Any] = []
    for ev in events:
        out += book.feed(ev)
    return out


def empty(book: PopBook[str]) -> bool:
    return book.calls == {} and book.rung == {}


# --- a call's life ------------------------------------------------------------------------------


def test_a_ring_pops_on_every_console_of_that_operator_and_nowhere_else() -> None:
    book = book_with(ana1=ANA, ana2=ANA, ben=BEN, sam=None)
    out = book.feed(ringing(ANA))
    assert pops(out) == [(("ana1", "ana2"), CALL, "ringing")]  # one message, both sockets
    assert wants(out) == [CALL]  # one history lookup for the two consoles
    [want] = [o for o in out if isinstance(o, WantHistory)]
    assert (want.caller_number, want.linkedid, want.at) == ("7875550101", LID, T0)


def test_a_call_answered_wrapped_up_and_ended() -> None:
    book = book_with(ana=ANA)
    feed(book, ringing(ANA))
    assert pops(book.feed(answered(ANA))) == [(("ana",), CALL, "connected")]
    assert pops(book.feed(completed(ANA))) == [(("ana",), CALL, "wrapup")]
    assert pops(book.feed(ended())) == []  # wrap-up goes on until the operator is ready
    assert pops(book.done_calls(ANA)) == [(("ana",), CALL, "clear:done")]
    assert empty(book)


def test_a_hang_up_before_the_answer_clears_the_pop() -> None:
    book = book_with(ana=ANA)
    feed(book, ringing(ANA))
    assert pops(book.feed(ended())) == [(("ana",), CALL, "clear:ended")]
    assert empty(book)


def test_a_hang_up_while_talking_leaves_the_pop_ended_for_the_notes() -> None:
    book = book_with(ana=ANA)
    feed(book, ringing(ANA), answered(ANA))
    assert pops(book.feed(ended())) == [(("ana",), CALL, "ended")]
    assert book.view(ANA, CALL) is not None and book.view(ANA, CALL).status == "ended"  # type: ignore[union-attr]


def test_abandon_clears_every_ringing_pop_and_no_answer_only_the_one_rung() -> None:
    book = book_with(ana=ANA, ben=BEN)
    feed(book, ringing(ANA), ringing(BEN))
    assert pops(book.feed(no_answer(ANA))) == [(("ana",), CALL, "clear:missed")]
    assert pops(book.feed(abandoned())) == [(("ben",), CALL, "clear:abandoned")]
    assert empty(book)


def test_ringall_answer_clears_the_others_and_keeps_the_answerer() -> None:
    book = book_with(ana=ANA, ben=BEN, cal=CAL)
    feed(book, ringing(ANA), ringing(BEN), ringing(CAL))
    assert pops(book.feed(answered(BEN))) == [
        (("ana",), CALL, "clear:answered elsewhere"), (("cal",), CALL, "clear:answered elsewhere"),
        (("ben",), CALL, "connected")]
    assert book.rung == {CALL: {BEN}}


def test_a_transfer_to_another_operator_pops_there_and_leaves_the_first_in_wrapup() -> None:
    book = book_with(ana=ANA, ben=BEN)
    feed(book, ringing(ANA), answered(ANA))
    out = feed(book, completed(ANA, at=30),
               CallTransferred("default", LID, "blind", "2002@queues", later(30)),
               ringing(BEN, at=later(31)))
    assert pops(out) == [(("ana",), CALL, "wrapup"), (("ben",), CALL, "ringing")]
    # Ben answers: Ana's pop is not ringing, so it is not cleared as "answered elsewhere"
    assert pops(book.feed(answered(BEN, at=35))) == [(("ben",), CALL, "connected")]
    assert pops(book.feed(ended(at=90))) == [(("ben",), CALL, "ended")]
    assert book.view(ANA, CALL).status == "wrapup"  # type: ignore[union-attr]
    assert book.rung[CALL] == {ANA, BEN}


# --- late, repeated and out of order ----------------------------------------------------------


def test_a_repeated_ring_keeps_the_pop_that_is_up() -> None:
    book = book_with(ana=ANA)
    feed(book, ringing(ANA), answered(ANA))
    assert book.feed(ringing(ANA)) == []  # a retried AgentCalled
    assert book.view(ANA, CALL).status == "connected"  # type: ignore[union-attr]


def test_an_answer_without_a_ring_shows_what_it_knows() -> None:
    book = book_with(ana=ANA)
    out = book.feed(answered(ANA))  # the ring came before this process started
    assert pops(out) == [(("ana",), CALL, "connected")]
    assert sends(out)[0][1]["caller_number"] is None
    assert book.feed(ringing(ANA)) == []  # the ring, late: the pop stays connected


def test_repeated_answers_and_ends_change_nothing_more() -> None:
    book = book_with(ana=ANA)
    feed(book, ringing(ANA), answered(ANA))
    assert pops(book.feed(answered(ANA))) == [(("ana",), CALL, "connected")]
    feed(book, ended())
    assert book.feed(ended()) == []
    assert book.feed(no_answer(ANA)) == [] and book.feed(abandoned()) == []
    assert book.view(ANA, CALL).status == "ended"  # type: ignore[union-attr]


def test_a_ring_or_answer_after_the_end_pops_nothing() -> None:
    book = book_with(ana=ANA, ben=BEN)
    feed(book, ringing(ANA), ended())
    assert book.feed(ringing(BEN)) == [] and book.feed(answered(ANA)) == []
    assert empty(book)


def test_the_memory_of_ended_calls_is_bounded() -> None:
    book = book_with()
    for n in range(ENDED_KEPT + 10):
        book.feed(ended(f"9.{n}"))
    assert len(book.ended) == ENDED_KEPT and "default:9.0" not in book.ended


def test_completion_of_a_call_never_popped_is_ignored() -> None:
    book = book_with(ana=ANA)
    assert book.feed(completed(ANA)) == [] and empty(book)


def test_events_the_book_does_not_keep_give_nothing() -> None:
    book = book_with(ana=ANA)
    assert book.feed(QueueJoined("default", LID, "potholes", 1, None, None, T0)) == []


# --- sockets ------------------------------------------------------------------------------------


def test_a_console_opening_gets_link_broadcasts_then_its_pops() -> None:
    book = book_with()
    feed(book, AmiLinkChanged("default", False, T0, "refused\r\nagain"),
         BroadcastMessage("sup", "storm", T0), ringing(ANA), ringing(BEN, "2.2"))
    out = book.open("ana", ANA)
    assert [m["type"] for _, m in sends(out)] == ["link", "broadcast", "call"]
    assert all(to == ("ana",) for to, _ in sends(out))
    assert sends(out)[0][1]["detail"] == "refused again"
    assert wants(out) == [CALL]  # nobody watched while it rang: the lookup starts now


def test_a_second_console_of_the_same_operator_does_not_look_the_history_up_again() -> None:
    book = book_with(ana1=ANA)
    assert wants(book.feed(ringing(ANA))) == [CALL]
    assert wants(book.open("ana2", ANA)) == []  # in flight
    assert pops(book.history_loaded(CALL, {"calls": []})) == [(("ana1", "ana2"), CALL,
                                                               "ringing")]
    assert book.view(ANA, CALL).history == {"calls": []}  # type: ignore[union-attr]
    out = book.open("ana3", ANA)  # loaded: the snapshot carries it
    assert wants(out) == [] and sends(out)[-1][1]["history"] == {"calls": []}


def test_nobody_watching_means_no_message_and_no_lookup() -> None:
    book = book_with(ben=BEN)
    assert book.feed(ringing("Local/2001@agents/n")) == []  # a simulated agent
    assert book.rung == {CALL: {"Local/2001@agents/n"}}


def test_a_closed_console_gets_nothing_more_and_its_twin_does() -> None:
    book = book_with(ana1=ANA, ana2=ANA)
    book.close("ana1")
    assert pops(book.feed(ringing(ANA))) == [(("ana2",), CALL, "ringing")]
    book.close("ana2")
    book.close("ana2")  # twice: harmless
    assert book.by_interface == {} and book.sockets == {}
    assert book.feed(answered(ANA)) == []  # the pop state goes on without consoles
    assert book.view(ANA, CALL).status == "connected"  # type: ignore[union-attr]


def test_history_goes_to_every_pop_of_the_call_and_not_to_a_cleared_one() -> None:
    book = book_with(ana=ANA, ben=BEN)
    feed(book, ringing(ANA), ringing(BEN), answered(BEN))
    assert pops(book.history_loaded(CALL, {"error": "down"})) == [(("ben",), CALL, "connected")]
    assert book.history_loaded("default:nope", {}) == []


def test_broadcasts_go_to_everyone_and_the_last_few_are_kept() -> None:
    book = book_with(ana=ANA, sam=None)
    out = book.feed(BroadcastMessage("sup\n<b>", "x" * 5000, T0))
    [(to, msg)] = sends(out)
    assert to == ("ana", "sam") and msg["sender"] == "sup <b>" and len(msg["text"]) == 1000
    for n in range(BROADCASTS_KEPT + 3):
        book.feed(BroadcastMessage("sup", f"m{n}", T0))
    kept = [m["text"] for _, m in sends(book.open("new", None)) if m["type"] == "broadcast"]
    assert kept == [f"m{n}" for n in range(3, BROADCASTS_KEPT + 3)]


# --- what operators do to their pops ------------------------------------------------------------


def test_a_new_ring_replaces_calls_the_console_was_done_with() -> None:
    book = book_with(ana=ANA)
    feed(book, ringing(ANA), answered(ANA), completed(ANA), ringing(ANA, "2.2"))
    assert [v.call_id for v in book.views(ANA)] == ["default:2.2"]
    assert CALL not in book.rung


def test_cases_dispositions_and_dismiss() -> None:
    book = book_with(ana=ANA, ben=BEN)
    feed(book, ringing(ANA), answered(ANA))
    [(to, msg)] = sends(book.add_case(ANA, CALL, "311-2026-000001"))
    assert to == ("ana",) and msg["cases"] == ["311-2026-000001"]
    assert book.add_case(ANA, CALL, "311-2026-000001") == []  # already listed
    assert sends(book.set_disposition(ANA, CALL, "resolved"))[0][1]["disposition"] == "resolved"
    # another operator's console cannot touch it
    assert book.add_case(BEN, CALL, "x") == [] and book.set_disposition(BEN, CALL, "x") == []
    assert book.dismiss(BEN, CALL) == [] and book.view(ANA, CALL) is not None
    assert pops(book.dismiss(ANA, CALL)) == [(("ana",), CALL, "clear:dismissed")]
    assert empty(book)


def test_done_calls_keep_a_call_still_going_on() -> None:
    book = book_with(ana=ANA)
    feed(book, ringing(ANA), answered(ANA), ringing(ANA, "2.2"), ended("2.2"))
    assert book.done_calls(ANA) == []  # one connected, the other cleared when it ended
    assert [v.status for v in book.views(ANA)] == ["connected"]


def test_caller_id_in_a_pop_is_one_printable_line_capped_and_null_when_missing() -> None:
    book = book_with(ana=ANA)
    out = book.feed(ringing(ANA, name='<b>"x"</b>\r\nline2\x00' + "A" * 10_000, number=None,
                            service="\u202epothole", ivr_path=("1", "2\n3")))
    [(_, pop)] = sends(out)
    assert pop["caller_name"].startswith('<b>"x"</b> line2 AAA') and len(pop["caller_name"]) == 80
    assert pop["caller_name"].endswith("…")
    assert pop["caller_number"] is None and pop["language"] is None
    assert pop["service"] == "pothole" and pop["ivr_path"] == ["1", "2 3"]


# --- any stream -------------------------------------------------------------------------------

IFACES = (ANA, BEN, CAL)
SOCKETS = {"ana1": ANA, "ana2": ANA, "ben": BEN, "sam": None}  # Cal has no console open


def event_for(kind: str, interface: str, n: int) -> Event:
    lid = f"7.{n}"
    if kind == "ring":
        return ringing(interface, lid)
    if kind == "answer":
        return answered(interface, lid)
    if kind == "no_answer":
        return no_answer(interface, lid)
    if kind == "abandon":
        return abandoned(lid)
    if kind == "complete":
        return completed(interface, lid)
    return ended(lid)


STEPS = st.lists(st.tuples(
    st.sampled_from(["ring", "answer", "no_answer", "abandon", "complete", "end", "ready",
                     "history", "toggle"]),
    st.sampled_from(IFACES), st.integers(0, 3)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(steps=STEPS)
def test_any_stream_keeps_every_pop_on_its_own_operators_consoles(
        steps: list[tuple[str, str, int]]) -> None:
    book = book_with(**SOCKETS)
    for kind, interface, n in steps:
        if kind == "toggle":  # Ana's second console closes, or opens again (a reload)
            if "ana2" in book.sockets:
                book.close("ana2")
                out = []
            else:
                out = book.open("ana2", ANA)
        elif kind == "ready":
            out = book.done_calls(interface)
        elif kind == "history":
            out = book.history_loaded(f"default:7.{n}", {"calls": []})
        else:
            out = book.feed(event_for(kind, interface, n))
        for o in out:
            if isinstance(o, WantHistory):
                assert any(v.loading for i in book.rung[o.call_id]  # one lookup at a time
                           for v in book.views(i) if v.call_id == o.call_id)
                continue
            assert o.to and set(o.to) <= set(book.sockets), "a message for nobody, or a ghost"
            # a pop goes to exactly the open consoles of the operator it belongs to
            if o.msg["type"] in ("call", "call.clear"):
                owners = {book.sockets[s] for s in o.to}
                assert len(owners) == 1
                owner = owners.pop()
                assert owner is not None
                # every console of the operator; a console opening gets its snapshot alone
                assert list(o.to) == (["ana2"] if kind == "toggle" else book.by_interface[owner])
                if o.msg["type"] == "call":
                    assert book.view(owner, o.msg["call_id"]) is not None
        # the two indexes agree
        assert {(i, c) for i, views in book.calls.items() for c in views} == {
            (i, c) for c, ifaces in book.rung.items() for i in ifaces}
        assert all(book.calls.values()) and all(book.rung.values())
        # nothing rings for a call that is over
        assert not any(v.status == "ringing" and v.call_id in book.ended
                       for views in book.calls.values() for v in views.values())


def test_the_book_is_pure() -> None:
    """No loop, no sockets, no database: what it does is what it returns."""
    from tests.unit.test_layering import PACKAGE, imported_modules

    mods = imported_modules(PACKAGE / "agents" / "pops.py")
    assert not [m for m in mods if m.split(".")[0] in ("asyncio", "aiohttp", "sqlalchemy",
                                                       "socket", "redis", "time")]
    assert not [m for m in mods if m.startswith("contactcenter.")
                and m.split(".")[1] not in ("events", "text")]
