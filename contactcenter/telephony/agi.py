"""A FastAGI server on asyncio streams, and the typed `AgiChannel` the IVR engine drives.

Why not panoramisk's: its reader spins forever on a half-sent `agi_*` block (freezing the whole
event loop) and drops bytes after the blank line (DESIGN.md). Here every read is a bounded
`readuntil` under a timeout, so a half-sent block or a silent peer only ever costs its own session.

Wire format (Asterisk 22, see shared/asterisk-transcripts/agi-*.raw): Asterisk sends
`agi_key: value` lines and a blank line; then we send one command per line and read one reply
per command:
`200 result=<r> [(data)] [key=value]`, `510 Invalid or unknown command`, `511 Command Not
Permitted on a dead channel...`, or a multi-line `520-...` usage text ending in `520 End of...`.
A caller hang-up shows as `result=-1` on the media command it interrupted, then a `HANGUP` line
before the next reply, then 511s; or simply EOF. A sound file Asterisk cannot open also gives
`result=-1` (`200 result=-1 endpos=0` to STREAM FILE, `200 result=-1` to GET DATA, res_agi.c),
so after a -1 we ask `CHANNEL STATUS`: 6 (Up) means the caller is there and the prompt is at
fault; a hung-up channel answers `HANGUP` and `511` (CHANNEL STATUS does not run on a dead one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..config import Network, address_in
from ..ivr.channel import CallerHungUp, CallInfo, PromptMissing
from ..security import SummaryLog

log = logging.getLogger(__name__)

# Sound file names we are willing to put on the wire (no spaces, quotes or newlines).
_FILE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$")
_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\([A-Za-z0-9_,-]*\))?$")
_ESCAPE_RE = re.compile(r"^[0-9*#]{0,12}$")
_DIGITS_RE = re.compile(r"^[0-9*#]{1,64}$")
_REPLY_RE = re.compile(r"^(\d{3})([ -])?(.*)$")
_RESULT_RE = re.compile(r"^result=(\S*)\s*(.*)$")
# CHANNEL STATUS results (Asterisk's enum ast_channel_state) of a channel a caller is still on:
# 4 Ring, 5 Ringing, 6 Up. 0 Down, 1 Reserved, 7 Busy and -1 (no such channel) mean gone; 2 and 3
# (off hook, dialing) do not occur on a channel that runs AGI after ANSWER.
CALLER_PRESENT = frozenset({4, 5, 6})


class AgiProtocolError(Exception):
    """The peer broke the protocol (malformed block or reply, oversized line)."""


class AgiCommandError(Exception):
    """Asterisk refused a command we sent (510 invalid command, 520 usage): a bug on our side."""

    def __init__(self, code: int, command: str, text: str) -> None:
        super().__init__(f"{code} for {command!r}: {text}")
        self.code = code
        self.command = command


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """The `agi_*` block, typed. `raw` keeps every key (without the `agi_` prefix)."""

    request: str
    path: str
    network_script: str
    channel: str
    uniqueid: str
    language: str
    type: str
    callerid: str | None
    calleridname: str | None
    context: str
    extension: str
    priority: str
    dnid: str | None
    version: str
    args: tuple[str, ...]
    raw: dict[str, str] = field(repr=False)

    @classmethod
    def from_lines(cls, lines: list[str]) -> AgiRequest:
        raw: dict[str, str] = {}
        for line in lines:
            key, sep, value = line.partition(":")
            if not sep or not key.startswith("agi_") or not key[4:]:
                raise AgiProtocolError(f"not an agi_* line: {line[:80]!r}")
            raw[key[4:]] = value[1:] if value.startswith(" ") else value
        for needed in ("channel", "uniqueid"):
            if not raw.get(needed):
                raise AgiProtocolError(f"agi_{needed} missing from the request block")
        request = raw.get("request", "")
        path = urlsplit(request).path if "://" in request else request
        args = []
        n = 1
        while f"arg_{n}" in raw:
            args.append(raw[f"arg_{n}"])
            n += 1
        return cls(
            request=request,
            path=path or "/" + raw.get("network_script", ""),
            network_script=raw.get("network_script", ""),
            channel=raw["channel"],
            uniqueid=raw["uniqueid"],
            language=raw.get("language") or "en",
            type=raw.get("type", ""),
            callerid=_unknown_to_none(raw.get("callerid")),
            calleridname=_unknown_to_none(raw.get("calleridname")),
            context=raw.get("context", ""),
            extension=raw.get("extension", ""),
            priority=raw.get("priority", ""),
            dnid=_unknown_to_none(raw.get("dnid")),
            version=raw.get("version", ""),
            args=tuple(args),
            raw=raw,
        )


def _unknown_to_none(value: str | None) -> str | None:
    if value is None or value.strip().lower() in ("", "unknown", "<unknown>"):
        return None
    return value


@dataclass(frozen=True, slots=True)
class AgiReply:
    code: int
    result: str
    data: str | None  # the text in parentheses, e.g. "timeout" or a variable's value
    extra: str  # what follows, e.g. "endpos=1234"


def parse_reply(line: str) -> AgiReply:
    m = _REPLY_RE.match(line)
    if not m:
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
    code = int(m.group(1))
    if not 100 <= code <= 599:  # "000 ..." is noise, not a status (Asterisk: 200, 510-520)
        raise AgiProtocolError(f"not an AGI status code: {line[:80]!r}")
    rest = m.group(3) or ""
    if code != 200:
        return AgiReply(code, "", rest, "")
    r = _RESULT_RE.match(rest)
    if not r:
        raise AgiProtocolError(f"200 reply without result=: {line[:80]!r}")
    result, tail = r.group(1), r.group(2)
    data: str | None = None
    if tail.startswith("("):
        end = tail.rfind(")")
        if end > 0:
            data, tail = tail[1:end], tail[end + 1 :].strip()
    return AgiReply(200, result, data, tail)


def quote(value: str) -> str:
    """An AGI argument in double quotes; control characters (a newline would start a second
    command) become spaces."""
    cleaned = "".join(" " if ord(c) < 32 or c == "\x7f" else c for c in value)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check(regex: re.Pattern[str], value: str, what: str) -> str:
    if not regex.match(value):
        raise ValueError(f"refusing to send {what} {value!r}")
    return value


@dataclass(slots=True)
class AgiStats:
    # our time per command: from Asterisk's previous reply (or the agi_* block) being read to
    # the next command being written; the most recent ones, for /health and the benchmark
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=4096))
    sessions_total: int = 0
    sessions_active: int = 0
    commands: int = 0
    hangups: int = 0
    errors: int = 0  # handler exceptions and protocol errors
    bad_requests: int = 0  # half-sent or malformed agi_* blocks, peers silent at start
    timeouts: int = 0  # peers that stopped answering mid-session, sessions over their time
    refused: int = 0  # connections over max_sessions
    not_allowed: int = 0  # connections from addresses outside the allow-list
    peak: int = 0  # most connections holding a slot at once

    def latency_ms(self) -> dict[str, float | None]:
        values = sorted(self.latencies)
        if not values:
            return {"p50_ms": None, "p99_ms": None}

        def pick(p: float) -> float:
            return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 3)

        return {"p50_ms": pick(0.5), "p99_ms": pick(0.99)}


class AgiChannel:
    """One FastAGI session: typed commands, every reply checked. Implements `IvrChannel`."""

    def __init__(
        self,
        request: AgiRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        command_timeout: float = 10.0,
        media_timeout: float = 300.0,
        stats: AgiStats | None = None,
    ) -> None:
        self.request = request
        self._reader = reader
        self._writer = writer
        self._command_timeout = command_timeout
        self._media_timeout = media_timeout
        self._stats = stats or AgiStats()
        self.gone: str | None = None  # why the channel is dead, once it is
        self._idle_since = time.perf_counter()  # when we last heard from Asterisk
        self.sent: list[str] = []  # commands in order (tests, debugging)

    @property
    def info(self) -> CallInfo:
        r = self.request
        return CallInfo(
            uniqueid=r.uniqueid,
            channel=r.channel,
            caller_number=r.callerid,
            caller_name=r.calleridname,
            language=r.language,
            path=r.path,
        )

    # --- the wire ------------------------------------------------------------------------------

    async def _readline(self) -> str:
        try:
            raw = await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            raise self._dead("EOF") from None
        except asyncio.LimitOverrunError:
            raise AgiProtocolError("reply line over the size limit") from None
        except ConnectionError as exc:
            raise self._dead(f"connection lost: {exc}") from None
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    def _dead(self, reason: str, *, confirmed: bool = True) -> CallerHungUp:
        if confirmed:
            self.gone = reason
        return CallerHungUp(reason, confirmed=confirmed)

    async def command(self, line: str, *, media: bool = False) -> AgiReply:
        """Send one command and return its 200 reply; anything else raises."""
        if self.gone is not None:
            raise CallerHungUp(f"channel already gone ({self.gone})")
        timeout = self._media_timeout if media else self._command_timeout
        self.sent.append(line)
        self._stats.commands += 1
        self._stats.latencies.append(time.perf_counter() - self._idle_since)
        hangup_seen = False
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(line.encode() + b"\n")
                try:
                    await self._writer.drain()
                except ConnectionError as exc:
                    raise self._dead(f"connection lost: {exc}") from None
                while True:
                    text = await self._readline()
                    if text == "HANGUP":
                        hangup_seen = True
                        continue
                    if not text:
                        continue
                    reply = parse_reply(text)
                    if reply.code == 520 and text[3:4] == "-":
                        usage = [text]
                        while not (text := await self._readline()).startswith("520 "):
                            usage.append(text)
                        raise AgiCommandError(520, line, " / ".join(usage)[:500])
                    break
        except TimeoutError:
            self._stats.timeouts += 1
            raise self._dead(f"no reply to {line.split(' ')[0]!r} within {timeout:g}s") from None
        finally:
            self._idle_since = time.perf_counter()
        if hangup_seen:
            self.gone = "HANGUP"
        if reply.code == 511:
            raise self._dead("511 dead channel")
        if reply.code == 510:
            raise AgiCommandError(510, line, reply.data or "")
        if reply.code == 520:
            raise AgiCommandError(520, line, reply.data or "")
        if reply.code != 200:
            raise AgiProtocolError(f"unexpected reply {text[:80]!r} to {line!r}")
        if hangup_seen:
            raise CallerHungUp("HANGUP")
        return reply

    async def _media(self, line: str, file: str) -> AgiReply:
        reply = await self.command(line, media=True)
        if reply.result == "-1":
            # a hang-up, or a sound file Asterisk could not open: the channel's state tells
            status = await self.channel_status()  # raises CallerHungUp on HANGUP / 511 / EOF
            if status in CALLER_PRESENT:
                raise PromptMissing(file)
            raise self._dead(f"result=-1 on {line.split(' ')[0]}, channel status {status}")
        return reply

    async def channel_status(self) -> int:
        """`CHANNEL STATUS` of this channel: 0..7 (6 = Up), -1 when Asterisk has no such one."""
        reply = await self.command("CHANNEL STATUS")
        try:
            return int(reply.result)
        except ValueError:
            raise AgiProtocolError(f"CHANNEL STATUS returned {reply.result!r}") from None

    @staticmethod
    def _digit(reply: AgiReply) -> str:
        try:
            code = int(reply.result)
        except ValueError:
            raise AgiProtocolError(f"result {reply.result!r} is not a number") from None
        return chr(code) if code > 0 else ""

    # --- IvrChannel ----------------------------------------------------------------------------

    async def answer(self) -> None:
        reply = await self.command("ANSWER")
        if reply.result == "-1":
            raise self._dead("ANSWER failed", confirmed=False)

    async def stream_file(self, file: str, escape_digits: str = "") -> str:
        _check(_FILE_RE, file, "file name")
        _check(_ESCAPE_RE, escape_digits, "escape digits")
        return self._digit(await self._media(f"STREAM FILE {file} {quote(escape_digits)}", file))

    async def get_data(self, file: str, timeout_ms: int, max_digits: int) -> str:
        _check(_FILE_RE, file, "file name")
        reply = await self._media(f"GET DATA {file} {int(timeout_ms)} {int(max_digits)}", file)
        digits = reply.result
        if digits and not _DIGITS_RE.match(digits):
            raise AgiProtocolError(f"GET DATA returned {digits!r}")
        return digits

    async def say_digits(self, digits: str, escape_digits: str = "") -> str:
        _check(_DIGITS_RE, digits, "digits")
        _check(_ESCAPE_RE, escape_digits, "escape digits")
        return self._digit(await self._media(f"SAY DIGITS {digits} {quote(escape_digits)}",
                                             f"digits/ of {digits}"))

    async def say_number(self, number: int, escape_digits: str = "") -> str:
        _check(_ESCAPE_RE, escape_digits, "escape digits")
        return self._digit(await self._media(f"SAY NUMBER {int(number)} {quote(escape_digits)}",
                                             f"digits/ of {int(number)}"))

    async def set_variable(self, name: str, value: str) -> None:
        _check(_VAR_RE, name, "variable name")
        await self.command(f"SET VARIABLE {name} {quote(value)}")

    async def set_language(self, language: str) -> None:
        # Asterisk then picks sounds/<language>/ and says numbers in that language
        await self.set_variable("CHANNEL(language)", language)

    async def get_variable(self, name: str) -> str | None:
        _check(_VAR_RE, name, "variable name")
        reply = await self.command(f"GET VARIABLE {name}")
        return reply.data if reply.result == "1" else None

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command(f"VERBOSE {quote(message)} {max(1, min(4, int(level)))}")

    async def hangup(self) -> None:
        await self.command("HANGUP")
        self.gone = "we hung up"


Handler = Callable[[AgiChannel], Awaitable[None]]


async def read_request(
    reader: asyncio.StreamReader, *, timeout: float, max_lines: int = 128
) -> AgiRequest:
    """Read the `agi_*` block up to its blank line, within `timeout` seconds in total."""
    lines: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                raw = await reader.readuntil(b"\n")
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    break
                lines.append(line)
                if len(lines) > max_lines:
                    raise AgiProtocolError(f"agi_* block longer than {max_lines} lines")
    except TimeoutError:
        raise AgiProtocolError(
            f"no complete agi_* block within {timeout:g}s ({len(lines)} lines)"
        ) from None
    except asyncio.IncompleteReadError:
        raise AgiProtocolError(f"peer closed after {len(lines)} lines of the agi_* block") from None
    except asyncio.LimitOverrunError:
        raise AgiProtocolError("agi_* line over the size limit") from None
    return AgiRequest.from_lines(lines)


class FastAgiServer:
    """Accepts FastAGI connections and runs `handler(channel)` for each, one task per session.

    Sessions are owned here: `close()` stops listening, cancels the sessions in progress and
    awaits them.

    Whoever can reach the port can hold a session, so (issue 20): only `allowed` addresses get
    one (Asterisk's; None: anyone); a slot is taken at the accept, before any await, so
    `max_sessions` cannot be exceeded by connections still sending their `agi_*` block; and
    every wait is sized for a caller: the block (`header_timeout`), a command, a prompt with the
    caller's digits (`media_timeout`), the whole session (`session_timeout`). A refused or timed
    out peer only costs its own connection; the dialplan's fallback queues a refused caller.
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 4573,
        *,
        header_timeout: float = 5.0,
        command_timeout: float = 10.0,
        media_timeout: float = 120.0,
        session_timeout: float = 900.0,
        line_limit: int = 8192,
        max_sessions: int = 2000,
        allowed: tuple[Network, ...] | None = None,
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._header_timeout = header_timeout
        self._command_timeout = command_timeout
        self._media_timeout = media_timeout
        self._session_timeout = session_timeout
        self._line_limit = line_limit
        self._max_sessions = max_sessions
        self._allowed = allowed
        self._slots = 0  # connections holding a session slot, from the accept to the close
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._notes = SummaryLog(log)
        self.stats = AgiStats()
        self.last_error: str | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_client, self._host, self._port, limit=self._line_limit
        )
        log.info("FastAGI listening on %s:%s", self._host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    def health(self) -> dict[str, Any]:
        s = self.stats
        return {
            "ok": self.listening,
            "listening": self.listening,
            "port": self.port,
            "sessions_in_progress": s.sessions_active,
            "sessions_total": s.sessions_total,
            "commands": s.commands,
            "hangups": s.hangups,
            "errors": s.errors,
            "bad_requests": s.bad_requests,
            "timeouts": s.timeouts,
            "refused": s.refused,
            "not_allowed": s.not_allowed,
            "slots_in_use": self._slots,
            "max_sessions": self._max_sessions,
            "peak": s.peak,
            **s.latency_ms(),
            "last_error": self.last_error,
        }

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        slot = False
        try:
            # no await before the slot is taken: concurrent accepts cannot all pass the check
            if self._allowed is not None and not address_in(address, self._allowed):
                self.stats.not_allowed += 1
                self._notes.event("FastAGI connection refused",
                                  f"{address} is not in CC_AGI_ALLOWED")
                return
            if self._slots >= self._max_sessions:
                self.stats.refused += 1
                self._notes.event("FastAGI connection refused", f"{self._slots} sessions in "
                                  f"progress (CC_AGI_MAX_SESSIONS), refusing {address}",
                                  logging.ERROR)
                return
            self._slots += 1
            slot = True
            self.stats.peak = max(self.stats.peak, self._slots)
            await self._session(reader, writer, peer)
        except asyncio.CancelledError:
            # close() cancels sessions in progress; ending the task normally keeps asyncio's
            # stream-server callback (3.11) from logging the cancellation as an error
            log.info("FastAGI: session with %s cancelled by shutdown", peer)
        finally:
            if slot:
                self._slots -= 1
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def _session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Any
    ) -> None:
        try:
            request = await read_request(reader, timeout=self._header_timeout)
        except AgiProtocolError as exc:
            self.stats.bad_requests += 1
            self.last_error = f"bad request from {peer}: {exc}"
            self._notes.event("FastAGI bad request", self.last_error)
            return
        channel = AgiChannel(
            request,
            reader,
            writer,
            command_timeout=self._command_timeout,
            media_timeout=self._media_timeout,
            stats=self.stats,
        )
        self.stats.sessions_total += 1
        self.stats.sessions_active += 1
        started = time.perf_counter()
        hung_up = False
        deadline = asyncio.timeout(self._session_timeout)
        try:
            async with deadline:
                await self._handler(channel)
        except TimeoutError:
            if deadline.expired():
                # the dialplan's fallback takes the caller on (AGISTATUS, empty QUEUE)
                self.stats.timeouts += 1
                self.last_error = f"{request.uniqueid}: session over {self._session_timeout:g}s"
                self._notes.event("FastAGI session too long", self.last_error)
            else:
                self.stats.errors += 1
                self.last_error = f"{request.uniqueid}: TimeoutError"
                log.exception("FastAGI session %s failed", request.uniqueid)
        except CallerHungUp:
            hung_up = True
        except (AgiProtocolError, AgiCommandError) as exc:
            self.stats.errors += 1
            self.last_error = f"{request.uniqueid}: {exc}"
            log.error("FastAGI session %s: %s", request.uniqueid, exc)
        except Exception as exc:
            self.stats.errors += 1
            self.last_error = f"{request.uniqueid}: {type(exc).__name__}: {exc}"
            log.exception("FastAGI session %s failed", request.uniqueid)
        finally:
            self.stats.sessions_active -= 1
            log.debug(
                "FastAGI session %s done in %.3fs, %d commands",
                request.uniqueid, time.perf_counter() - started, len(channel.sent),
            )
        if hung_up or (channel.gone is not None and channel.gone != "we hung up"):
            self.stats.hangups += 1
