"""AmiClient against servers we control, over real loopback sockets: MD5 login played byte for
byte from the capture, action/response matching by ActionID (replies sent out of order), error
replies, timeouts, and a cut in the middle of a call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contactcenter.bus import LocalBus
from contactcenter.config import Settings
from contactcenter.events import AmiLinkChanged, CallEnded, Event, PbxError
from contactcenter.telephony.ami import AmiClient, AmiPbx
from contactcenter.telephony.bridge import WANTED_EVENTS, Bridge
from contactcenter.telephony.calls import record_to_json
from contactcenter.telephony.frames import AmiResponse, iter_frames
from contactcenter.telephony.replay import ReplayServer, event_blocks
from tests.conftest import transcript, until
from tests.expected_records import CALL_ANSWERED

EOM = b"\r\n\r\n"


def _frames(raw: bytes) -> tuple[bytes, list[bytes]]:
    """A received capture as (greeting line, [frame bytes with terminator])."""
    greeting, _, rest = raw.partition(b"\r\n")
    return greeting + b"\r\n", [b + EOM for b in rest.split(EOM) if b.strip()]


def _headers(frame: bytes) -> dict[str, str]:
    out = {}
    for line in frame.decode().split("\r\n"):
        k, sep, v = line.partition(": ")
        if sep:
            out[k] = v
    return out


class Scripted:
    """A server that answers each action with the captured frames of the same ActionID,
    holding replies for `hold` seconds and sending what it holds in reverse order."""

    def __init__(self, received: bytes, *, hold: float = 0.0) -> None:
        self.greeting, frames = _frames(received)
        self.by_id: dict[str, list[bytes]] = {}
        for f in frames:
            aid = _headers(f).get("ActionID", "")
            self.by_id.setdefault(aid, []).append(f)
        self.hold = hold
        self.received: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Scripted:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(self.greeting)
        held: list[bytes] = []
        flush: asyncio.TimerHandle | None = None

        def send_held() -> None:
            for reply in reversed(held):
                writer.write(reply)
            held.clear()

        try:
            while True:
                block = await reader.readuntil(EOM)
                self.received.append(block)
                reply = b"".join(self.by_id.get(_headers(block).get("ActionID", ""), []))
                if not self.hold:
                    writer.write(reply)
                    continue
                held.append(reply)
                if flush is not None:
                    flush.cancel()
                flush = asyncio.get_running_loop().call_later(self.hold, send_held)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _client(port: int, **kw: Any) -> AmiClient:
    opts: dict[str, Any] = dict(boot_timeout=0.1, action_timeout=2.0, backoff_initial=0.05,
                                backoff_max=0.2)
    opts.update(kw)
    return AmiClient("127.0.0.1", port, opts.pop("username", "cc"),
                     opts.pop("secret", "ccsecret"), **opts)


@contextlib.asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[AmiClient]:
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def test_md5_login_against_the_captured_bytes() -> None:
    async with Scripted(transcript("ami-md5-login.received.raw")) as srv:
        client = _client(srv.port, auth="md5", action_id_prefix="ch")
        async with running(client):
            await until(lambda: client.ready.is_set(), 5)
            assert client.greeting == "Asterisk Call Manager/11.0.0"
            # the second Login of the capture: Asterisk says "Already authenticated"
            resp = await client.action("Login", {"Username": "cc", "Secret": "wrong"})
            assert resp.message == "Already authenticated"
            resp = await client.action("Logoff")
            assert resp.status == "Goodbye"
        sent = [_headers(f) for f in _frames(b"x\r\n" + transcript("ami-md5-login.sent.raw"))[1]]
        got = [_headers(b) for b in srv.received]
        assert got[0] == sent[0]  # Action: Challenge, ActionID: ch-1, AuthType: MD5
        # Login: the same key, md5(challenge + secret); we ask for events, the capture did not
        assert {k: v for k, v in got[1].items() if k != "Events"} == {
            k: v for k, v in sent[1].items() if k != "Events"
        }
        assert got[1]["Key"] == "e5e60a83b203f6cae63d183cb211f05f"


async def test_a_wrong_secret_is_refused_and_retried_with_backoff() -> None:
    server = ReplayServer([])  # checks the MD5 key against its own secret
    port = await server.start()
    client = _client(port, auth="md5", username="replay", secret="nope")
    try:
        async with running(client):
            await until(lambda: client.connects >= 3, 5)
            assert not client.logged_in
            assert "login refused: Authentication failed" in client.last_error
    finally:
        await server.close()


async def test_actions_are_matched_by_action_id_not_arrival_order() -> None:
    received = transcript("ami-actions.received.raw")
    async with Scripted(received, hold=0.05) as srv:
        # with the bridge's whitelist: list items (QueueMember...) still come through
        client = _client(srv.port, auth="plain", action_id_prefix="cc",
                         keep_events=WANTED_EVENTS)
        pbx = AmiPbx({"default": client})
        async with running(client):
            await until(lambda: client.ready.is_set(), 5)  # cc-1 Login
            pong = await client.action("Ping")  # cc-2
            assert pong.headers["Ping"] == "Pong"
            members = [("sanitation", "2001", "Ana"), ("sanitation", "2002", "Ben"),
                       ("potholes", "2003", "Carla"), ("potholes", "2004", "Dan"),
                       ("general-311", "2003", "Carla"), ("general-311", "2005", "Eve")]
            # cc-3..cc-8 sent at once; the server replies in reverse order
            await asyncio.gather(*(
                pbx.queue_add(q, f"Local/{ext}@agents/n", f"{name} Operator")
                for q, ext, name in members
            ))
            with pytest.raises(PbxError, match="Unable to add interface: Already there"):
                await pbx.queue_add("sanitation", "Local/2001@agents/n", "Ana Operator")  # cc-9
            await pbx.queue_pause("Local/2002@agents/n", True, queue="sanitation",
                                  reason="lunch")  # cc-10
            await pbx.queue_pause("Local/2002@agents/n", False, queue="sanitation")  # cc-11
            status, summary, channels = await asyncio.gather(  # cc-12, cc-13, cc-14
                client.list_action("QueueStatus"),
                client.list_action("QueueSummary"),
                client.list_action("CoreShowChannels"),
            )
            assert [e.name for e in status].count("QueueMember") == 6
            assert [e.name for e in status].count("QueueParams") == 3
            assert {e.headers["Queue"] for e in summary} == {"general-311", "potholes",
                                                             "sanitation"}
            assert channels == []
            assert await client.list_action("QueueStatus", {"Queue": "nosuchqueue"}) == []
            with pytest.raises(PbxError, match="Invalid/unknown command: NoSuchAction"):
                await client.action("NoSuchAction")  # cc-16
            assert client.reader.keep_events is not None  # the whitelist is back
            assert (await client.action("Logoff")).status == "Goodbye"  # cc-17
        sent = [_headers(f) for f in _frames(b"x\r\n" + transcript("ami-actions.sent.raw"))[1]]
        got = [_headers(b) for b in srv.received]
        assert [(h["Action"], h["ActionID"]) for h in got] == [
            (h["Action"], h["ActionID"]) for h in sent
        ]
        pause = got[9]
        assert (pause["Interface"], pause["Paused"], pause["Reason"]) == (
            "Local/2002@agents/n", "true", "lunch")


async def test_an_action_without_a_reply_raises_after_its_timeout() -> None:
    server = ReplayServer([], silent_actions=frozenset({"originate"}))
    port = await server.start()
    client = _client(port, auth="md5", username="replay", secret="replay", action_timeout=0.3)
    try:
        async with running(client):
            await until(lambda: client.ready.is_set(), 5)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(PbxError, match=r"Originate: no reply .* within 0.3s"):
                await AmiPbx({"default": client}).originate("Local/1@x", "ctx", "s")
            assert 0.25 < loop.time() - started < 2
            assert client.logged_in  # the link is fine; only that action failed
            assert (await client.action("Ping")).ok
            assert client.health()["pending_actions"] == 0
    finally:
        await server.close()


async def test_backoff_is_capped_and_jittered() -> None:
    client = _client(1, backoff_initial=0.5, backoff_max=8.0)
    steps = [client.backoff(n) for n in range(12)]
    assert all(0.25 <= s <= 8.0 for s in steps)
    assert max(steps[6:]) <= 8.0 and min(steps[6:]) >= 4.0
    assert len({client.backoff(3) for _ in range(20)}) > 1


async def test_reconnects_when_refused_then_accepted() -> None:
    # Find a free port, then nothing listens there for a while.
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    client = _client(port, auth="md5", username="replay", secret="replay")
    server = ReplayServer([])
    async with running(client):
        await until(lambda: client.last_error, 5)
        assert not client.logged_in
        with pytest.raises(PbxError, match="not connected"):
            await client.action("Ping", timeout=0.1)
        await server.start(port=port)
        try:
            await until(lambda: client.ready.is_set(), 5)
            assert (await client.action("Ping")).ok
        finally:
            await server.close()


# --- a cut in the middle of a call ---------------------------------------------------------


def _cut_point(data: bytes, event: bytes) -> int:
    """Somewhere inside the frame of `event` (the socket dies mid-frame)."""
    i = data.index(b"Event: " + event + b"\r\n")
    return i + 20


async def test_socket_killed_mid_call_ends_in_exactly_one_record() -> None:
    """Server side closes in the middle of ami-call-answered (after AgentConnect, mid-frame),
    refuses connections for a while, accepts again and reports no channels: the call ends in
    one partial record with what was known, and an Originate in flight is failed, not resent."""
    data = b"".join(event_blocks(transcript("ami-call-answered.raw")))
    cut = _cut_point(data, b"AgentComplete")
    first = ReplayServer([data[:cut]], verbatim=True, silent_actions=frozenset({"originate"}))
    port = await first.start()
    settings = Settings(ami_host="127.0.0.1", ami_port=port, ami_username="replay",
                        ami_secret="replay", ami_action_timeout=3.0)
    bus = LocalBus()
    seen: list[Event] = []

    async def collect(event: Event) -> None:
        seen.append(event)

    sub = bus.subscribe(collect, types=(CallEnded, AmiLinkChanged))
    bridge = Bridge(settings, bus, client_options={"backoff_initial": 0.1, "backoff_max": 0.4,
                                                   "boot_timeout": 0.5})
    await bridge.start()
    second = ReplayServer([])
    try:
        await first.streamed.wait()
        link = bridge.links["default"]
        await until(lambda: link.calls.open_calls() == 1, 5)
        in_flight = asyncio.create_task(bridge.pbx.originate("Local/9@x", "ctx", "s"))
        await until(lambda: any(a.get("action") == "Originate" for a in first.actions), 5)
        await first.close()  # the cut
        with pytest.raises(PbxError, match=r"lost before the reply \(not resent\)"):
            await in_flight
        await until(lambda: not link.client.logged_in, 5)
        await asyncio.sleep(0.6)  # refused meanwhile (nothing listens)
        assert link.client.connects == 1 and link.client.last_error
        assert link.calls.open_calls() == 1  # not closed while we cannot know
        await second.start(port=port)
        await until(lambda: link.resyncs == 2, 10)
        await bridge.flushed()
        await bus.drain()
        ended = [e.record for e in seen if isinstance(e, CallEnded)]
        assert len(ended) == 1
        (record,) = ended
        assert record.partial
        got = record_to_json(record)
        expected = CALL_ANSWERED[0]
        for key in ("linkedid", "caller_number", "caller_name", "started_at", "queue",
                    "service", "language", "agent", "ivr_seconds", "wait_seconds",
                    "ring_seconds", "outcome"):
            assert got[key] == expected[key], key
        assert record.ended_at >= record.started_at
        links = [e.connected for e in seen if isinstance(e, AmiLinkChanged)]
        assert links == [True, False, True]
        assert not any(a.get("action") == "Originate" for a in second.actions)  # not resent
        # Nothing more comes of it: one record, however long we wait.
        await asyncio.sleep(0.3)
        await bus.drain()
        assert len([e for e in seen if isinstance(e, CallEnded)]) == 1
        assert bridge.health()["ok"] and bridge.health()["open_calls"] == 0
    finally:
        await bridge.close()
        await sub.close()
        await second.close()
        await first.close()


def test_frames_helper_reads_both_captures() -> None:
    # sanity for the scripted server: every reply of the actions capture carries an ActionID
    frames = list(iter_frames(transcript("ami-actions.received.raw")))
    replies = [f for f in frames if isinstance(f, AmiResponse)]
    assert len(replies) == 17 and all(r.action_id for r in replies)

