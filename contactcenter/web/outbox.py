"""One push socket's outbox: a bounded queue of text frames and the one task that writes them.

Every socket the server pushes to (operator consoles, wallboard screens, live case pages) writes
through one, so a slow browser never stalls the others nor eats memory. A full outbox does what
its owner chose:

- ``"close"``: every frame matters (a console's pops); a browser this far behind would show a
  stale screen, so the socket is closed with 1013 (try again later) and the page reconnects to a
  fresh snapshot, which is cheaper and safer than a console that silently missed a pop.
- ``"drop_oldest"``: each frame supersedes the one before it (a wallboard snapshot); the oldest
  unsent frame is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal, Protocol

from aiohttp import WSCloseCode

log = logging.getLogger(__name__)

OnFull = Literal["close", "drop_oldest"]
SLOW_CLOSE_TIMEOUT = 5.0  # a socket closed for being slow gets this long to say goodbye


class PushSocket(Protocol):
    """What an outbox needs of aiohttp's WebSocketResponse (tests pass fakes)."""

    @property
    def closed(self) -> bool: ...

    async def send_str(self, data: str) -> None: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


class Outbox:
    def __init__(self, ws: PushSocket, *, label: str, maxsize: int, on_full: OnFull,
                 send_timeout: float | None = None) -> None:
        self.ws = ws
        self.label = label  # for the log: "console of ana", "wallboard screen"
        self.on_full = on_full
        self.send_timeout = send_timeout
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize)
        self.sent = 0
        self.dropped = 0  # frames superseded before they went out (drop_oldest)
        self.overflowed = False  # closed for being slow (close)
        self.closer: asyncio.Task[None] | None = None
        self.writer = asyncio.get_running_loop().create_task(self._write(),
                                                             name=f"outbox:{label}")

    def send(self, text: str) -> None:
        """Queue one frame; never waits."""
        if self.overflowed:
            return
        if self.on_full == "drop_oldest":
            while self.queue.full():
                self.queue.get_nowait()
                self.dropped += 1
            self.queue.put_nowait(text)
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            # The writer may be stuck in a send, so it is cancelled, not asked.
            self.overflowed = True
            log.warning("%s is too slow (%d queued): closing it", self.label, self.queue.qsize())
            self.writer.cancel()
            self.closer = asyncio.get_running_loop().create_task(
                self._close_slow(), name=f"outbox-close:{self.label}")

    def empty(self) -> bool:
        return self.queue.empty()

    async def _close_slow(self) -> None:
        try:
            async with asyncio.timeout(SLOW_CLOSE_TIMEOUT):
                await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
        except TimeoutError:
            log.warning("%s did not close in time", self.label)

    async def _write(self) -> None:
        while True:
            text = await self.queue.get()
            try:
                if self.send_timeout is None:  # (a timeout context per frame costs ~a third)
                    await self.ws.send_str(text)
                else:
                    async with asyncio.timeout(self.send_timeout):
                        await self.ws.send_str(text)
            except (ConnectionError, TimeoutError, RuntimeError) as exc:
                # RuntimeError: aiohttp refuses to send on a closing socket
                log.info("%s dropped (%s)", self.label, type(exc).__name__)
                with contextlib.suppress(Exception):  # it is gone either way
                    await self.ws.close()
                return
            self.sent += 1

    async def close(self, code: int = WSCloseCode.GOING_AWAY, message: bytes = b"") -> None:
        """Stop writing and close the socket (queued frames are not sent)."""
        for task in (self.writer, self.closer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not self.ws.closed:
            with contextlib.suppress(Exception):  # a close must not fail the caller's cleanup
                await self.ws.close(code=code, message=message)


__all__ = ["OnFull", "Outbox", "PushSocket"]
