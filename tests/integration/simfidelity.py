"""Helpers for the simulator fidelity tests: run a captured scenario against the simulator over
real sockets and compare its AMI stream with the capture."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from contactcenter.telephony.simulator.ami_server import AmiServer
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.pbx import SimPbx
from contactcenter.telephony.simulator.scenarios import capture_members, capture_queues

Event = list[tuple[str, str]]

# Values that are ids or times: compared by presence only.
VOLATILE = {
    "Timestamp",
    "Uniqueid",
    "Linkedid",
    "DestUniqueid",
    "DestLinkedid",
    "UniqueID",
    "LinkedID",
    "LocalOneUniqueid",
    "LocalOneLinkedid",
    "LocalTwoUniqueid",
    "LocalTwoLinkedid",
    "EventTime",
    "StartTime",
    "AnswerTime",
    "EndTime",
    "Duration",
    "BillableSeconds",
    "BridgeUniqueid",
    "SessionID",
    "RemoteAddress",
    "LocalAddress",
    "EventTV",
    "SessionTV",
    "CommandId",
    "HoldTime",
    "TalkTime",
    "RingTime",
    "LoginTime",
    "LastCall",
    "LastPause",
    "Uptime",
    "LastReload",
    "ActionID",
    "Challenge",
    "BridgeNumChannels",
    # member counters carried over from the calls made before each capture in the same
    # Asterisk run, and InCall, which app_queue reports 0 or 1 around a connect (both seen)
    "CallsTaken",
    "InCall",
}
TIMED_VARS = {
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "QUEUEWAIT",
    "QUEUEWAIT_MS",
}


def frames(data: bytes) -> list[Event]:
    out = []
    for chunk in data.decode(errors="replace").split("\r\n\r\n"):
        lines = [ln for ln in chunk.split("\r\n") if ln]
        if lines and lines[0].startswith("Asterisk Call Manager"):
            lines = lines[1:]
        ev: Event = []
        for ln in lines:
            k, _, v = ln.partition(":")
            ev.append((k, v[1:] if v.startswith(" ") else v))
        if ev:
            out.append(ev)
    return out


def events(data: bytes) -> list[Event]:
    return [f for f in frames(data) if f[0][0] == "Event"]


_CHAN = re.compile(r"-[0-9a-f]{8}(;[12])?")
_BRIDGE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def norm_value(key: str, value: str, ev: dict[str, str]) -> str:
    if key in VOLATILE:
        return "*"
    if key == "Peer" and ev.get("EventName") == "BRIDGE_EXIT":
        return "*"  # set only if the other party was still bridged: a race between the two
    if key == "Value" and ev.get("Variable") in TIMED_VARS:
        return "*" if value else ""
    value = re.sub(r"agi://[0-9.]+:\d+/", "agi://HOST/", value)
    value = _BRIDGE.sub("BRIDGE", value)
    return _CHAN.sub(lambda m: "-N" + (m.group(1) or ""), value)


def stream_key(ev: dict[str, str]) -> str:
    """Asterisk orders events per channel topic; across topics (CEL, CDR, device state, queue
    events, other channels) the interleaving is a race that differs between real runs."""
    name = ev["Event"]
    chan = norm_value("Channel", ev.get("Channel", ""), ev)
    if name == "CEL":
        return f"cel {chan}"
    if name == "Cdr":
        return f"cdr {chan}"
    if name == "DeviceStateChange":
        return f"device {ev['Device']}"
    if name.startswith("QueueMember"):
        return f"member {ev.get('Queue')} {ev.get('Interface')}"
    if name in ("BridgeCreate", "BridgeDestroy"):
        return "bridge"
    if name in ("DialBegin", "DialEnd"):
        return f"dial {norm_value('DestChannel', ev.get('DestChannel', ''), ev)}"
    if name == "LocalBridge":
        return f"localbridge {norm_value('Channel', ev['LocalOneChannel'], ev)}"
    if name.startswith(("Agent", "QueueCaller")):
        return f"queue {chan}"
    if name in ("OriginateResponse", "SuccessfulAuth", "FullyBooted", "Shutdown"):
        return name
    if "Channel" in ev:
        return f"chan {chan}"
    return name


@dataclass
class Report:
    differences: list[str] = field(default_factory=list)
    interleaving: list[str] = field(default_factory=list)

    def text(self, title: str) -> str:
        lines = [f"== {title}: {len(self.differences)} difference(s)"]
        lines += [f"  DIFF {d}" for d in self.differences]
        if self.interleaving:
            lines.append(
                f"  ({len(self.interleaving)} cross-topic interleaving difference(s),"
                " races that vary between real Asterisk runs:)"
            )
            lines += [f"  order {d}" for d in self.interleaving[:30]]
        return "\n".join(lines)


def _sig(ev: Event) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    d = dict(ev)
    if d["Event"] == "AgentComplete":
        # Both shapes occur in real captures: with the member's channel snapshot (Dest*) when
        # app_queue reports before that channel is gone, without it when after (a race).
        ev = [(k, v) for k, v in ev if not k.startswith("Dest")]
    names = tuple(k for k, _ in ev)
    values = tuple(f"{k}={norm_value(k, v, d)}" for k, v in ev)
    return d["Event"], names, values


def compare(real: list[Event], sim: list[Event]) -> Report:
    import difflib

    rep = Report()
    by_real: dict[str, list[Event]] = defaultdict(list)
    by_sim: dict[str, list[Event]] = defaultdict(list)
    for ev in real:
        by_real[stream_key(dict(ev))].append(ev)
    for ev in sim:
        by_sim[stream_key(dict(ev))].append(ev)
    for key in sorted(set(by_real) | set(by_sim)):
        a = [_sig(e) for e in by_real.get(key, [])]
        b = [_sig(e) for e in by_sim.get(key, [])]
        ta = [x[0] for x in a]
        tb = [x[0] for x in b]
        if ta != tb:
            for line in difflib.unified_diff(ta, tb, "capture", "simulator", n=1, lineterm=""):
                if not line.startswith(("---", "+++")):
                    rep.differences.append(f"[{key}] {line}")
            continue
        if key.startswith("device Local/") and a and b and a[0] != b[0]:
            # the device-state thread samples a new Local channel before or after it is Up:
            # ami-restart-before.raw shows NOT_INUSE first where the other captures show INUSE
            rep.interleaving.append(f"[{key}] first state: capture {a[0][2]} / sim {b[0][2]}")
            a, b = a[1:], b[1:]
        for (name, na, va), (_, nb, vb) in zip(a, b, strict=True):
            if na != nb:
                rep.differences.append(f"[{key}] {name} headers: capture {na} / simulator {nb}")
            elif va != vb:
                diff = [f"{x} vs {y}" for x, y in zip(va, vb, strict=True) if x != y]
                rep.differences.append(f"[{key}] {name} values: {'; '.join(diff)}")
    ga = [f"{dict(e)['Event']}" for e in real]
    gb = [f"{dict(e)['Event']}" for e in sim]
    for line in difflib.unified_diff(ga, gb, "capture", "simulator", n=0, lineterm=""):
        if not line.startswith(("---", "+++", "@@")):
            rep.interleaving.append(line)
    return rep


# ---- running a scenario ----------------------------------------------------------------------
def agi_script(raw: bytes) -> list[str]:
    """The FastAGI server's lines (`>>> ` prefixed) of a capture."""
    return [ln[4:] for ln in raw.decode().split("\n") if ln.startswith(">>> ")]


async def agi_responder(script: list[str]) -> tuple[asyncio.Server, list[list[str]]]:
    """A FastAGI server that replays a capture's server side; records what Asterisk sent."""
    seen: list[list[str]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got: list[str] = []
        seen.append(got)
        try:
            block = await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
            got.extend(block.decode().splitlines())
            for cmd in script:
                writer.write(cmd.encode() + b"\n")
                await writer.drain()
                while True:
                    line = (await asyncio.wait_for(reader.readline(), 10)).decode().rstrip("\n")
                    got.append(line)
                    if not line or line[:3].isdigit():
                        break
                if not line:
                    break
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, seen


class AmiTestClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.data = bytearray()
        self.base = 0  # the simulator's event count when this client's stream started
        self.task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, port: int) -> AmiTestClient:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    async def _read(self) -> None:
        while True:
            chunk = await self.reader.read(65536)
            if not chunk:
                return
            self.data += chunk

    async def send(self, **headers: str) -> None:
        text = "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.writer.write(text.encode())
        await self.writer.drain()

    async def wait_for(self, needle: bytes, timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while needle not in self.data:
            if loop.time() > end:
                raise AssertionError(f"{needle!r} not received within {timeout}s")
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        self.writer.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@dataclass
class Sim:
    pbx: SimPbx
    ami: AmiServer
    agi: asyncio.Server | None
    agi_seen: list[list[str]]


async def run_sim(
    script: list[str] | None, body: Callable[[Sim], Awaitable[None]], scale: float = 25.0
) -> Sim:
    agi, seen = await agi_responder(script) if script is not None else (None, [])
    agi_port = agi.sockets[0].getsockname()[1] if agi else 1
    pbx = SimPbx(VirtualClock(scale), agi_port=agi_port)
    capture_queues(pbx)
    ami = AmiServer(pbx, "cc", "ccsecret", port=0)
    await ami.start()
    sim = Sim(pbx, ami, agi, seen)
    try:
        await body(sim)
    finally:
        await ami.close()
        await pbx.close()
        if agi is not None:
            agi.close()
            await agi.wait_closed()
    return sim


def members(sim: Sim) -> None:
    capture_members(sim.pbx)
