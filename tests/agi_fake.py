"""Asterisk's side of a FastAGI session over a real socket, for tests: a recorded replay and a
scripted caller who keys digits, times out or hangs up at a chosen command."""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

DEAD = "511 Command Not Permitted on a dead channel or intercept routine\n"


def agi_block(
    uniqueid: str = "1795406102.1",
    callerid: str = "7875550101",
    name: str = "Maria Lopez",
    language: str = "en",
    request: str = "agi://127.0.0.1:4573/ivr",
) -> bytes:
    script = request.rsplit("/", 1)[-1]
    lines = [
        "agi_network: yes", f"agi_network_script: {script}", f"agi_request: {request}",
        "agi_channel: Local/311@from-citizen-00000000;2", f"agi_language: {language}",
        "agi_type: Local", f"agi_uniqueid: {uniqueid}", "agi_version: 22-git-69535d4837",
        f"agi_callerid: {callerid}", f"agi_calleridname: {name}", "agi_callingpres: 0",
        "agi_callingani2: 0", "agi_callington: 0", "agi_callingtns: 0", "agi_dnid: unknown",
        "agi_rdnis: unknown", "agi_context: from-citizen", "agi_extension: 311",
        "agi_priority: 3", "agi_enhanced: 0.0", "agi_accountcode: ",
        "agi_threadid: 140016236295872",
    ]
    return ("\n".join(lines) + "\n\n").encode()


@dataclass
class Recorded:
    header: bytes
    steps: list[tuple[str, bytes]]  # (command we must send, Asterisk's reply bytes)


def parse_capture(raw: bytes) -> Recorded:
    """Split an agi-*.raw capture: `>>> ` lines were sent by the FastAGI server."""
    head, _, rest = raw.partition(b"\n\n")
    steps: list[tuple[str, bytes]] = []
    for line in rest.splitlines(keepends=True):
        if line.startswith(b">>> "):
            steps.append((line[4:].rstrip(b"\r\n").decode(), b""))
        else:
            command, reply = steps[-1]
            steps[-1] = (command, reply + line)
    return Recorded(head + b"\n\n", steps)


async def replay(port: int, rec: Recorded, *, chunks: list[int] | None = None,
                 timeout: float = 5.0, extra: Callable[[str], bytes | None] | None = None,
                 steps: int | None = None) -> list[str]:
    """Play a capture byte for byte; returns the commands the server sent. Asserts the server
    sent exactly the recorded commands (the first `steps` of them, default all) and then
    closed. `extra(command)` is the reply to a command our IVR sends that the capture's did not
    (the trace's SET VARIABLEs, CHANNEL STATUS); None: that command is a failure."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent: list[str] = []

    async def read_extra(line: str) -> bool:
        reply = extra(line) if extra is not None else None
        if reply is None:
            return False
        writer.write(reply)
        await writer.drain()
        return True

    try:
        async with asyncio.timeout(timeout):
            if chunks:
                data, pos = rec.header, 0
                for size in chunks:
                    writer.write(data[pos:pos + size])
                    await writer.drain()
                    await asyncio.sleep(0.001)
                    pos += size
                writer.write(data[pos:])
            else:
                writer.write(rec.header)
            await writer.drain()
            for expected, reply in rec.steps[:steps]:
                while True:
                    line = (await reader.readline()).decode().rstrip("\n")
                    sent.append(line)
                    if line == expected or not await read_extra(line):
                        break
                assert line == expected, f"step {len(sent)}: sent {line!r}, capture {expected!r}"
                writer.write(reply)
                await writer.drain()
            while tail := await reader.readline():
                sent.append(tail.decode().rstrip("\n"))
                assert await read_extra(sent[-1]), f"server sent more than the capture: {tail!r}"
    finally:
        writer.close()
    return sent


@dataclass
class Caller:
    """A scripted caller. `inputs` answer GET DATA in order ("" = timeout); when they run out
    the caller times out. `hangup_at` (0-based command index) hangs up in `style`:
    "media" (result=-1, then HANGUP before the next reply, as in agi-ivr-hangup.raw),
    "511" (every reply from then on is 511), or "eof" (the socket closes). Sound files in
    `missing` get res_agi.c's replies for a file it cannot open, the channel staying up."""

    inputs: list[str] = field(default_factory=list)
    stream_digits: list[str] = field(default_factory=list)  # STREAM FILE / SAY interruptions
    hangup_at: int | None = None
    style: str = "media"
    header: bytes = field(default_factory=agi_block)
    on_command: Callable[[int, str], Awaitable[None] | None] | None = None
    commands: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    sets: list[tuple[str, str]] = field(default_factory=list)  # SET VARIABLEs in order
    missing: set[str] = field(default_factory=set)
    status_reply: str = "200 result=6\n"  # CHANNEL STATUS on a live channel: 6, Up
    closed_by_server: bool = False

    def _reply(self, index: int, cmd: str) -> str | None:
        words = cmd.split(" ")
        verb = " ".join(words[:2]) if words[0] in ("GET", "SET", "STREAM", "SAY") else words[0]
        dead = self.hangup_at is not None and index >= self.hangup_at
        if dead:
            if self.style == "eof":
                return None
            if self.style == "511":
                return DEAD
            if index == self.hangup_at:
                if verb in ("GET DATA", "STREAM FILE", "SAY DIGITS", "SAY NUMBER"):
                    return "200 result=-1\n"
                return "HANGUP\n" + DEAD
            if index == self.hangup_at + 1:
                return "HANGUP\n200 result=1\n"
            return DEAD
        if verb in ("GET DATA", "STREAM FILE") and words[2] in self.missing:
            return "200 result=-1\n" if verb == "GET DATA" else "200 result=-1 endpos=0\n"
        if cmd == "CHANNEL STATUS":
            return self.status_reply
        if verb == "GET DATA":
            digits = self.inputs.pop(0) if self.inputs else ""
            return f"200 result={digits}\n" if digits else "200 result= (timeout)\n"
        if verb in ("STREAM FILE", "SAY DIGITS", "SAY NUMBER"):
            digit = self.stream_digits.pop(0) if self.stream_digits else ""
            code = ord(digit) if digit else 0
            return f"200 result={code} endpos=8000\n" if verb == "STREAM FILE" \
                else f"200 result={code}\n"
        if verb == "SET VARIABLE":
            name, value = shlex.split(cmd[len("SET VARIABLE "):])
            self.variables[name] = value
            self.sets.append((name, value))
            return "200 result=1\n"
        if verb == "GET VARIABLE":
            return "200 result=0\n"
        if verb == "ANSWER":
            return "200 result=0\n"
        if verb in ("VERBOSE", "HANGUP"):
            if verb == "HANGUP":
                self.hangup_at = index + 1
                self.style = "511"
            return "200 result=1\n"
        return "510 Invalid or unknown command\n"

    async def call(self, port: int, timeout: float = 5.0) -> Caller:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            async with asyncio.timeout(timeout):
                writer.write(self.header)
                await writer.drain()
                while True:
                    line = await reader.readline()
                    if not line:
                        self.closed_by_server = True
                        break
                    cmd = line.decode().rstrip("\n")
                    index = len(self.commands)
                    self.commands.append(cmd)
                    if self.on_command is not None:
                        pending = self.on_command(index, cmd)
                        if pending is not None:
                            await pending
                    reply = self._reply(index, cmd)
                    if reply is None:
                        break
                    writer.write(reply.encode())
                    await writer.drain()
        finally:
            writer.close()
        return self

    def without_trace(self) -> list[str]:
        """The commands but the trace's SET VARIABLE IVRPATH / LANG."""
        return [c for c in self.commands
                if not c.startswith(("SET VARIABLE IVRPATH ", "SET VARIABLE LANG "))]

    def verbs(self) -> list[str]:
        return [re.sub(r" .*", "", c) if not c.startswith(("GET ", "SET ", "STREAM ", "SAY "))
                else " ".join(c.split(" ")[:2]) for c in self.commands]
