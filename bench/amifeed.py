"""AMI streams for benchmarks: a capture's events repeated K times with fresh ids per copy, so
K copies are K times the calls (no linkedid repeats), and a loopback server that sends them."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path

from contactcenter.telephony.frames import GREETING

_ID = re.compile(rb"^((?:[A-Za-z]*)(?:Uniqueid|UniqueID|Linkedid|LinkedID)): (\d+)\.(\d+)\r$",
                 re.M)


def events_only(raw: bytes) -> bytes:
    """Drop the greeting and the login response: keep only `Event:` frames."""
    frames = raw.split(b"\r\n\r\n")
    out = [f for f in frames if f.startswith(b"Event: ") or b"\r\nEvent: " in f[:2]]
    return b"".join(f + b"\r\n\r\n" for f in out if f.startswith(b"Event: "))


def renumbered(events: bytes, copy: int) -> bytes:
    """The same events with every Uniqueid/Linkedid shifted into a range of its own."""
    if copy == 0:
        return events
    shift = copy * 1_000_000

    def sub(m: re.Match[bytes]) -> bytes:
        seq = str(int(m.group(3)) + shift).encode()
        return m.group(1) + b": " + m.group(2) + b"." + seq + b"\r"

    return _ID.sub(sub, events)


def stream(path: Path, copies: int) -> tuple[bytes, int]:
    """(bytes to send after the greeting, number of event frames)."""
    events = events_only(path.read_bytes())
    body = b"".join(renumbered(events, k) for k in range(copies))
    return body, body.count(b"\r\n\r\n")


class FeedServer:
    """Greets like Asterisk, accepts any Login (plain or MD5 challenge), then sends `body` as
    fast as the socket allows. `sent_at`/`done_at`: wall-clock start and end of the burst."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sent_at = 0.0
        self.done_at = 0.0
        self.server: asyncio.Server | None = None
        self.port = 0
        self.sent = asyncio.Event()
        self.handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.handlers.add(task)
            task.add_done_callback(self.handlers.discard)
        writer.write(GREETING)
        try:
            while True:
                frame = await reader.readuntil(b"\r\n\r\n")
                action_id = b""
                for line in frame.split(b"\r\n"):
                    if line.lower().startswith(b"actionid:"):
                        action_id = line.split(b":", 1)[1].strip()
                if frame.lower().startswith(b"action: challenge"):
                    writer.write(b"Response: Success\r\nActionID: " + action_id
                                 + b"\r\nChallenge: 840126735\r\n\r\n")
                elif frame.lower().startswith(b"action: login"):
                    writer.write(b"Response: Success\r\nActionID: " + action_id
                                 + b"\r\nMessage: Authentication accepted\r\n\r\n")
                    writer.write(b"Event: FullyBooted\r\nPrivilege: system,all\r\n"
                                 b"Status: Fully Booted\r\n\r\n")
                    self.sent_at = time.time()
                    writer.write(self.body)
                    await writer.drain()
                    self.done_at = time.time()
                    self.sent.set()
                elif frame.lower().startswith((b"action: coreshowchannels",
                                                b"action: queuestatus")):
                    writer.write(b"Response: Success\r\nActionID: " + action_id
                                 + b"\r\nEventList: start\r\nMessage: list will follow\r\n\r\n"
                                 + b"Event: CoreShowChannelsComplete\r\nActionID: " + action_id
                                 + b"\r\nEventList: Complete\r\nListItems: 0\r\n\r\n")
                else:
                    writer.write(b"Response: Success\r\nActionID: " + action_id + b"\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        # let handlers see their client's EOF and end by themselves (no cancelled-task noise)
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=5)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def bare_splitter_rate(body: bytes, frames: int) -> float:
    """The parse ceiling as DESIGN.md measures it: a bare asyncio reader that only splits the
    stream into frames (`readuntil` per frame), same server, same socket."""
    server = FeedServer(body)
    port = await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readuntil(b"\r\n")
    loop = asyncio.get_running_loop()
    writer.write(b"Action: Login\r\nActionID: 1\r\nUsername: x\r\nSecret: y\r\n\r\n")
    await writer.drain()
    want = frames + 2  # login response + FullyBooted
    started = loop.time()
    for _ in range(want):
        await reader.readuntil(b"\r\n\r\n")
    elapsed = loop.time() - started
    writer.close()
    await writer.wait_closed()
    await server.close()
    return frames / elapsed


async def _serve(path: Path, copies: int) -> None:
    """A feed server in its own process: prints {"port", "frames"}, then {"sent_at", "done_at"}
    after the burst, and stops when stdin closes or after 10 minutes (bounded)."""
    body, frames = stream(path, copies)
    server = FeedServer(body)
    port = await server.start()
    print(json.dumps({"port": port, "frames": frames}), flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    sent = asyncio.ensure_future(server.sent.wait())
    done, _ = await asyncio.wait({stdin_closed, sent}, timeout=600,
                                 return_when=asyncio.FIRST_COMPLETED)
    if sent in done:
        print(json.dumps({"sent_at": server.sent_at, "done_at": server.done_at}), flush=True)
        await asyncio.wait({stdin_closed}, timeout=600)
    sent.cancel()
    if server.server is not None:
        server.server.close()
        for task in list(server.handlers):
            task.cancel()


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1]), int(sys.argv[2])))
