"""`contactcenter replay-ami FILE [FILE…]`: check the bridge against a capture of your Asterisk.

A loopback AMI server greets like Asterisk, answers `Login` (plain or MD5 `Challenge`) and every
other action with a proper reply echoing its `ActionID` (`CoreShowChannels`, `QueueStatus`,
`QueueSummary`: an empty list ended by `EventList: Complete`), then streams the `Event:` blocks
of each FILE as recorded (raw bytes, `\\r\\n`). The real bridge connects to it over TCP, the
real case writer stores the calls (a throw-away SQLite store unless `--db`), and when the stream
is over and the tracker idle, one JSON object per finished call is printed per line.

Works on captures it has never seen: calls still open when the stream ends (a capture cut
mid-call) are closed as partial after `--grace` seconds, printed with `"partial": true`.

Actions are read and replies written by the server side of `frames` (`parse_action`,
`encode_frame`, `login_key`), as in the simulator's AmiServer; it stays its own small server
because it plays recorded bytes where the simulator's answers from a simulated PBX.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from ..config import Settings
from ..events import CallEnded, CallRecord, Event, PbxError
from ..queues.directory import QueueDirectory
from .frames import GREETING, encode_frame, login_key, parse_action

log = logging.getLogger(__name__)

EOM = b"\r\n\r\n"
LISTS = {
    "coreshowchannels": ("Channels will follow", "CoreShowChannelsComplete"),
    "queuestatus": ("Queue status will follow", "QueueStatusComplete"),
    "queuesummary": ("Queue summary will follow", "QueueSummaryComplete"),
}


def event_blocks(raw: bytes) -> list[bytes]:
    """The `Event:` frames of a capture, each with its terminator, bytes untouched. Responses
    (to the capturing client's own actions) and the greeting are left out."""
    out = []
    for block in raw.split(EOM):
        # The greeting line sits glued to the first frame.
        if block.startswith(b"Asterisk Call Manager/"):
            _, _, block = block.partition(b"\r\n")
        if block.startswith(b"Event: "):
            out.append(block + EOM)
    return out


class _ClientState(TypedDict):
    """One replay client's session."""

    challenge: str | None
    auth: bool
    resync: set[str]  # the list actions answered; the stream starts after both resync ones
    streaming: asyncio.Task[None] | None


class ReplayServer:
    """A loopback stand-in for Asterisk's AMI that plays recorded events."""

    def __init__(
        self,
        streams: Sequence[bytes],
        *,
        username: str = "replay",
        secret: str = "replay",
        chunking: Callable[[int], int] | None = None,
        start_after: float = 2.0,
        verbatim: bool = False,
        silent_actions: frozenset[str] = frozenset(),
        items: Mapping[str, Sequence[Sequence[tuple[str, str]]]] | None = None,
        variables: Mapping[tuple[str, str], str] | None = None,
        stream_delay: float = 0.0,
    ) -> None:
        self.streams = list(streams)
        # what a list action lists (lower-case action -> each item's headers, `Event` first)
        # and Getvar's answers ((channel, variable) -> value): a live Asterisk's state (tests)
        self.items = {k.lower(): list(v) for k, v in (items or {}).items()}
        self.variables = dict(variables or {})
        self.stream_delay = stream_delay  # seconds between the resync's answers and the stream
        self.verbatim = verbatim  # stream the bytes as given (e.g. cut mid-frame), not blocks
        self.silent_actions = silent_actions  # lower-case names never answered (tests)
        self.username, self.secret = username, secret
        self.chunking = chunking  # bytes-left -> size of the next write (None: all at once)
        self.start_after = start_after
        self.streamed = asyncio.Event()
        self.bytes_sent = 0
        self.actions: list[dict[str, str]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._client, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        """Stop listening and drop every connection (the server side closes the socket)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # the handlers then end on their own (no cancel: see
            # asyncio's start_server, which logs a cancelled handler as an error)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        state: _ClientState = {"challenge": None, "auth": False, "resync": set(),
                               "streaming": None}
        try:
            writer.write(GREETING)
            while True:
                try:
                    block = await reader.readuntil(EOM)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    break
                headers = parse_action(block)
                self.actions.append(headers)
                if not self._answer(headers, state, writer) or writer.is_closing():
                    break
                if state["auth"] and state["streaming"] is None and (
                    {"coreshowchannels", "queuestatus"} <= state["resync"]
                ):
                    stream_task = asyncio.get_running_loop().create_task(
                        self._stream(writer)
                    )
                    state["streaming"] = stream_task
                    self._tasks.add(stream_task)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
        finally:
            streaming = state["streaming"]
            if streaming is not None:
                streaming.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await streaming
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._tasks.discard(task)
            self._writers.discard(writer)

    def _answer(
        self, h: dict[str, str], state: _ClientState, writer: asyncio.StreamWriter
    ) -> bool:
        action = h.get("action", "").lower()
        aid = [("ActionID", h["actionid"])] if "actionid" in h else []
        if action == "challenge":
            challenge = state["challenge"] = str(random.randrange(10**7, 10**8))
            writer.write(encode_frame([("Response", "Success"), *aid, ("Challenge", challenge)]))
        elif action == "login":
            if state["auth"]:
                writer.write(encode_frame([("Response", "Success"), *aid,
                                           ("Message", "Already authenticated")]))
                return True
            ok = h.get("username") == self.username
            if h.get("authtype", "").lower() == "md5":
                sent = state["challenge"]
                ok = ok and sent is not None and h.get("key") == login_key(sent, self.secret)
            else:
                ok = ok and h.get("secret") == self.secret
            if not ok:
                writer.write(encode_frame([("Response", "Error"), *aid,
                                           ("Message", "Authentication failed")]))
                return False
            state["auth"] = True
            writer.write(encode_frame([("Response", "Success"), *aid,
                                       ("Message", "Authentication accepted")]))
            writer.write(encode_frame([("Event", "FullyBooted"), ("Privilege", "system,all"),
                                       ("Uptime", "1"), ("LastReload", "1"),
                                       ("Status", "Fully Booted")]))
            # A client that never resyncs still gets the stream.
            loop = asyncio.get_running_loop()
            loop.call_later(self.start_after, state["resync"].update,
                            {"coreshowchannels", "queuestatus"})
        elif action in self.silent_actions:
            pass
        elif not state["auth"]:
            writer.write(encode_frame([("Response", "Error"), *aid,
                                       ("Message", "Permission denied")]))
        elif action == "logoff":
            writer.write(encode_frame([("Response", "Goodbye"), *aid,
                                       ("Message", "Thanks for all the fish.")]))
            return False
        elif action == "ping":
            writer.write(encode_frame([("Response", "Success"), *aid, ("Ping", "Pong"),
                                       ("Timestamp", f"{time.time():.6f}")]))
        elif action in LISTS:
            message, complete = LISTS[action]
            writer.write(encode_frame([("Response", "Success"), *aid, ("EventList", "start"),
                                       ("Message", message)]))
            listed = self.items.get(action, [])
            for item in listed:
                writer.write(encode_frame([*item[:1], *aid, *item[1:]]))
            writer.write(encode_frame([("Event", complete), *aid, ("EventList", "Complete"),
                                       ("ListItems", str(len(listed)))]))
            state["resync"].add(action)
        elif action == "getvar":
            channel, var = h.get("channel", ""), h.get("variable", "")
            if self.variables and not any(c == channel for c, _ in self.variables):
                writer.write(encode_frame([("Response", "Error"), *aid,
                                           ("Message", "No such channel")]))
            else:
                writer.write(encode_frame([("Response", "Success"), *aid, ("Variable", var),
                                           ("Value", self.variables.get((channel, var), ""))]))
        else:
            writer.write(encode_frame([("Response", "Success"), *aid,
                                       ("Message", f"{h.get('action', '')} accepted (replay)")]))
        return True

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        if self.stream_delay:
            await asyncio.sleep(self.stream_delay)
        for raw in self.streams:
            data = raw if self.verbatim else b"".join(event_blocks(raw))
            pos = 0
            while pos < len(data):
                size = len(data) - pos if self.chunking is None else self.chunking(len(data) - pos)
                if writer.is_closing():
                    return
                writer.write(data[pos : pos + size])
                pos += size
                self.bytes_sent += size
                await writer.drain()
        self.streamed.set()


async def replay(
    files: Sequence[bytes],
    *,
    db_url: str | None = None,
    grace: float = 1.0,
    timeout: float = 120.0,
    chunking: Callable[[int], int] | None = None,
    settings: Settings | None = None,
) -> list[CallRecord]:
    """Stream `files` through the real bridge and case writer; the finished calls, in order."""
    from .. import db
    from ..bus import LocalBus
    from ..cases.writer import CallWriter
    from .bridge import Bridge

    with tempfile.TemporaryDirectory(prefix="cc-replay-") as tmp:
        url = db_url or f"sqlite+aiosqlite:///{Path(tmp) / 'replay.db'}"
        await asyncio.to_thread(db.upgrade, url)
        server = ReplayServer(files, chunking=chunking)
        port = await server.start()
        base = settings or Settings()
        settings = base.replace(
            database_url=url, ami_host="127.0.0.1", ami_port=port, ami_servers="",
            ami_username=server.username, ami_secret=server.secret,
            spool_dir=str(Path(tmp) / "spool"),
        )
        engine = db.make_engine(url)
        sessions = db.make_sessionmaker(engine)
        bus = LocalBus()
        records: list[CallRecord] = []

        async def collect(event: Event) -> None:
            if isinstance(event, CallEnded):
                records.append(event.record)

        collector = bus.subscribe(collect, types=(CallEnded,), name="replay")
        writer = CallWriter(sessions, settings.spool_dir,
                            default_sl=settings.service_level_seconds,
                            tz=ZoneInfo(settings.timezone))
        await writer.start(bus)
        bridge = Bridge(settings, bus, client_options={"backoff_initial": 0.05,
                                                       "backoff_max": 0.5})
        queues = QueueDirectory(sessions)
        await queues.load()
        bridge.follow(queues)
        await bridge.start()
        try:
            async with asyncio.timeout(timeout):
                await server.streamed.wait()
                link = next(iter(bridge.links.values()))
                # TCP keeps order: once the reply to this Ping is in, every event before it
                # has been read and fed to the tracker.
                await link.client.action("Ping")
                for _ in range(max(1, int(grace / 0.02))):
                    if bridge.idle():
                        break
                    await asyncio.sleep(0.02)
                if not bridge.idle():
                    closed = bridge.close_open_calls(at=_last_timestamp(files))
                    log.warning("replay: %d calls still open at the end of the stream; "
                                "closed as partial", closed)
                await bridge.flushed()
                await bus.drain()
                await writer.flushed()
        finally:
            await bridge.close()
            await bus.drain()
            await writer.close()
            await collector.close()
            await server.close()
            await engine.dispose()
        return records


def _last_timestamp(files: Sequence[bytes]) -> float:
    """The newest `Timestamp:` of the captures (the end of a partial call)."""
    marker = b"\r\nTimestamp: "
    for raw in reversed(files):
        i = raw.rfind(marker)
        if i >= 0:
            end = raw.find(b"\r\n", i + len(marker))
            with contextlib.suppress(ValueError):
                return float(raw[i + len(marker) : end])
    return time.time()


def record_json(record: CallRecord) -> dict[str, Any]:
    from .calls import record_to_json

    out = record_to_json(record)
    if record.partial:
        out["partial"] = True
    return out


def cmd_replay_ami(args: argparse.Namespace) -> int:
    from ..config import load_settings

    streams: list[bytes] = []
    for name in args.files:
        try:
            streams.append(Path(name).read_bytes())
        except OSError as exc:
            print(f"contactcenter replay-ami: cannot read {name}: {exc.strerror}",
                  file=sys.stderr)
            return 2
    if not any(event_blocks(s) for s in streams):
        print("contactcenter replay-ami: no `Event:` blocks in the given files "
              "(expected raw AMI bytes with \\r\\n line endings)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    # The replay is self-contained: it reads --config when given, never the CC_* environment
    # (a test run's or a server's variables must not change what a capture replays to).
    settings = load_settings(env={}, ini_path=args.config) if args.config else Settings()
    if args.short_abandon is not None:
        settings = settings.replace(short_abandon_seconds=args.short_abandon)
    try:
        records = asyncio.run(
            replay(streams, db_url=args.db, grace=args.grace, settings=settings)
        )
    except (TimeoutError, OSError, PbxError) as exc:
        print(f"contactcenter replay-ami: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    out = sys.stdout
    for record in records:
        out.write(json.dumps(record_json(record), ensure_ascii=False) + "\n")
    out.flush()
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay-ami",
        help="replay AMI captures through the bridge and print one JSON object per call",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="raw AMI bytes captured from Asterisk")
    p.add_argument("--db", help="store the calls in this database, migrated to the newest "
                   "schema first (default: a throw-away SQLite store)")
    p.add_argument("--grace", type=float, default=1.0,
                   help="seconds to wait for open calls after the stream ends (default 1)")
    p.add_argument("--short-abandon", type=int, metavar="SECONDS",
                   help="short-abandon threshold for every queue (default 5, or the --db's "
                   "queues table)")
    p.set_defaults(func=cmd_replay_ami)
