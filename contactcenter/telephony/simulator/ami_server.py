"""The simulator's AMI port: Asterisk 22's manager protocol on asyncio streams.

Several clients at once, each logs in (plain or MD5 challenge) with the configured credentials and
gets every event. Each client has a bounded outgoing buffer: one that cannot keep up is
disconnected (as Asterisk drops a session whose writes time out), the simulation never waits.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Callable

from ..frames import GREETING, encode_frame, login_key, parse_action
from .callbacks import OUTBOUND_CONTEXT
from .model import SimPbxError
from .pbx import SimPbx
from .wire import Channel, Headers, event_frame, iso

log = logging.getLogger(__name__)

MAX_FRAME = 64 * 1024
DEFAULT_BUFFER = 50_000  # frames queued per client before it is dropped

Reply = Callable[[str], None]  # an action's `ok`/`err`: a Success/Error reply with a Message
Handler = Callable[["SimAmiClient", dict[str, str], Reply, Reply], None]


class SimAmiClient:
    def __init__(
        self, server: AmiServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server, self.reader, self.writer = server, reader, writer
        self.out: asyncio.Queue[bytes | None] = asyncio.Queue(server.buffer)
        self.authed = False
        self.events = True
        self.challenge = ""
        self.includes: list[re.Pattern[str]] = []
        self.excludes: list[re.Pattern[str]] = []
        self.dropped = False
        self.closing = False
        self.session_id = f"0x{random.randrange(16**12):012x}"
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        sock = writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        self.remote = f"IPV4/TCP/{peer[0]}/{peer[1]}"
        self.local = f"IPV4/TCP/{sock[0]}/{sock[1]}"

    def send(self, data: bytes) -> None:
        if self.dropped:
            return
        try:
            self.out.put_nowait(data)
        except asyncio.QueueFull:
            log.warning("AMI client %s too slow: dropped", self.remote)
            self.dropped = True
            self.writer.transport.abort()

    def on_event(self, data: bytes) -> None:
        if not self.events:
            return
        if self.includes or self.excludes:
            text = data.decode(errors="replace")
            if self.includes and not any(p.search(text) for p in self.includes):
                return
            if any(p.search(text) for p in self.excludes):
                return
        self.send(data)

    async def writer_loop(self) -> None:
        while True:
            batch = [await self.out.get()]
            while not self.out.empty() and batch[-1] is not None:
                batch.append(self.out.get_nowait())  # one write for what piled up
            end = batch[-1] is None
            data = b"".join(b for b in batch if b is not None)
            if data:
                self.writer.write(data)
                await self.writer.drain()
            if end:
                if self.closing:
                    self.writer.close()
                return


class AmiServer:
    def __init__(
        self,
        pbx: SimPbx,
        username: str,
        secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 5038,
        buffer: int = DEFAULT_BUFFER,
    ) -> None:
        self.pbx, self.username, self.secret = pbx, username, secret
        self.host, self.port, self.buffer = host, port, buffer
        self.clients: set[SimAmiClient] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_queue_add: Callable[[str, str], None] | None = None
        self.actions: Counter[str] = Counter()  # actions received, by lower-cased name (tests)
        # the actions after login, by lower-cased name (Challenge, Login and Logoff come first)
        self.handlers: dict[str, Handler] = {
            "ping": self._a_ping,
            "events": self._a_events,
            "filter": self._a_filter,
            "setvar": self._a_setvar,
            "queueadd": self._a_queueadd,
            "queuereload": self._a_queuereload,
            "queueremove": self._a_queueremove,
            "queuepause": self._a_queuepause,
            "queuestatus": self._a_queuestatus,
            "queuesummary": self._a_queuesummary,
            "coreshowchannels": self._a_coreshowchannels,
            "originate": self._a_originate,
            "hangup": self._a_hangup,
            "redirect": self._a_redirect,
            "blindtransfer": self._a_blindtransfer,
        }

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=MAX_FRAME
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.pbx.ami_port = self.port

    async def close(self) -> None:
        """Stop listening, drop every session, and wait for the handlers to finish (aborting
        the sockets ends them cleanly; only a stuck one is cancelled)."""
        if self._server is not None:
            self._server.close()
        for c in list(self.clients):
            c.writer.transport.abort()
        tasks = list(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=2.0)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def restart(self) -> None:
        """`core restart now`: Shutdown to everyone, then every session is closed; the port
        stays open, as the restarted Asterisk listens again."""
        self.pbx.shutdown(restart=True)
        for c in list(self.clients):
            if not c.out.full():
                c.out.put_nowait(None)  # the writer flushes what is queued, then stops
            self.clients.discard(c)
            if c.on_event in self.pbx.listeners:
                self.pbx.listeners.remove(c.on_event)
            c.closing = True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        client = SimAmiClient(self, reader, writer)
        self.clients.add(client)
        wtask = asyncio.get_running_loop().create_task(client.writer_loop())
        client.send(GREETING)
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                except asyncio.LimitOverrunError:
                    log.warning("AMI client %s sent an oversized frame", client.remote)
                    return
                headers = parse_action(raw)
                if client.closing:
                    return
                if not headers:
                    continue
                if not await self._dispatch(client, headers):
                    return
        except ConnectionError:
            return
        finally:
            self.clients.discard(client)
            if client.on_event in self.pbx.listeners:
                self.pbx.listeners.remove(client.on_event)
            if not client.out.full():
                client.out.put_nowait(None)
            try:
                await asyncio.wait_for(wtask, 1.0)
            except (TimeoutError, ConnectionError):
                wtask.cancel()
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    def _reply(
        self, client: SimAmiClient, headers: dict[str, str], response: str, fields: Headers
    ) -> None:
        out: Headers = [("Response", response)]
        if "actionid" in headers:
            out.append(("ActionID", headers["actionid"]))
        client.send(encode_frame(out + fields))

    async def _dispatch(self, client: SimAmiClient, h: dict[str, str]) -> bool:
        action = h.get("action", "")
        key = action.lower()
        ok: Reply = lambda msg: self._reply(client, h, "Success", [("Message", msg)])  # noqa: E731
        err: Reply = lambda msg: self._reply(client, h, "Error", [("Message", msg)])  # noqa: E731
        if not action:
            err("Missing action in request")
            return True
        if key == "challenge":
            if h.get("authtype", "").lower() != "md5":
                err("Must specify AuthType")
                return True
            client.challenge = client.challenge or str(random.randrange(10**7, 10**8))
            self._reply(client, h, "Success", [("Challenge", client.challenge)])
            return True
        if key == "login":
            if client.authed:
                ok("Already authenticated")
                return True
            if not self._credentials_ok(client, h):
                await self.pbx.clock.sleep(1.0)  # manager.c sleeps a second before refusing
                err("Authentication failed")
                self.pbx.emit(
                    "InvalidPassword",
                    "security,all",
                    self._security(
                        client,
                        [
                            ("Severity", "Error"),
                            ("Service", "AMI"),
                            ("EventVersion", "2"),
                            ("AccountID", h.get("username", "")),
                        ],
                    ),
                )
                return False
            client.authed = True
            client.events = h.get("events", "on").lower() not in ("off", "no", "false", "0")
            ok("Authentication accepted")
            if client.events:
                up = int(self.pbx.clock.now() - self.pbx.booted)
                client.send(
                    event_frame(
                        "FullyBooted",
                        "system,all",
                        None,
                        [("Uptime", str(up)), ("LastReload", str(up)), ("Status", "Fully Booted")],
                    )
                )
            self.pbx.listeners.append(client.on_event)
            self.pbx.emit(
                "SuccessfulAuth",
                "security,all",
                self._security(
                    client,
                    [
                        ("Severity", "Informational"),
                        ("Service", "AMI"),
                        ("EventVersion", "1"),
                        ("AccountID", self.username),
                    ],
                    using_password=True,
                ),
            )
            return True
        if key == "logoff":
            self._reply(client, h, "Goodbye", [("Message", "Thanks for all the fish.")])
            return False
        if not client.authed:
            err("Permission denied")
            return True
        self.actions[key] += 1
        handler = self.handlers.get(key)
        if handler is None:
            err(
                f"Invalid/unknown command: {action}. Use Action: ListCommands to show "
                "available commands."
            )
            return True
        handler(client, h, ok, err)
        return True

    def _security(
        self, client: SimAmiClient, fields: Headers, using_password: bool = False
    ) -> Headers:
        now = self.pbx.clock.now()
        out = [
            ("EventTV", iso(now)),
            *fields,
            ("SessionID", client.session_id),
            ("LocalAddress", client.local),
            ("RemoteAddress", client.remote),
        ]
        if using_password:
            out.append(("UsingPassword", "0"))
        out.append(("SessionTV", iso(now)))
        return out

    def _credentials_ok(self, client: SimAmiClient, h: dict[str, str]) -> bool:
        if h.get("username", "") != self.username or not self.username:
            return False
        if h.get("authtype", "").lower() == "md5":
            if not client.challenge:
                return False
            return h.get("key", "").lower() == login_key(client.challenge, self.secret)
        return h.get("secret", "") == self.secret

    # ---- actions (each: client, headers, ok, err) -----------------------------------------
    def _a_ping(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        now = self.pbx.clock.now()
        self._reply(c, h, "Success", [("Ping", "Pong"), ("Timestamp", f"{now:.6f}")])

    def _a_events(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        mask = h.get("eventmask", "on").lower()
        c.events = mask not in ("off", "no", "false", "0", "none")
        self._reply(c, h, "Success", [("Events", "On" if c.events else "Off")])

    def _a_filter(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        op = h.get("operation", "add").lower()
        expr = h.get("filter", "")
        if op != "add" or not expr:
            err("Filter Not Added")
            return
        try:
            if expr.startswith("!"):
                c.excludes.append(re.compile(expr[1:]))
            else:
                c.includes.append(re.compile(expr))
        except re.error:
            err("Filter Not Added")
            return
        ok("Filter Added Successfully")

    def _a_setvar(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        name = h.get("variable", "")
        if not name:
            err("No variable specified")
            return
        chan = h.get("channel", "")
        if chan:
            ch = self.pbx.channels.get(chan)
            if ch is None:
                err("No such channel")
                return
            self.pbx.varset(ch, name, h.get("value", ""))
        else:
            self.pbx.varset(None, name, h.get("value", ""))
        ok("Variable Set")

    def _a_queueadd(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        queue, iface = h.get("queue", ""), h.get("interface", "")
        if not queue or not iface:
            err("'Queue' and 'Interface' not specified.")
            return
        try:
            self.pbx.queue_add(
                queue,
                iface,
                h.get("membername", ""),
                int(h.get("penalty", "0") or 0),
                h.get("stateinterface", ""),
                h.get("paused", "").lower() in ("true", "1", "yes"),
                h.get("reason", ""),
            )
        except (SimPbxError, ValueError) as exc:
            err(str(exc))
            return
        ok("Added interface to queue")
        if self.on_queue_add is not None:
            self.on_queue_add(queue, iface)

    def _a_queuereload(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        try:
            self.pbx.reload_config()
        except SimPbxError as exc:
            err(str(exc))
            return
        ok("Queue reloaded successfully")

    def _a_queueremove(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        queue, iface = h.get("queue", ""), h.get("interface", "")
        if not queue or not iface:
            err("Need 'Queue' and 'Interface' parameters.")
            return
        try:
            self.pbx.queue_remove(queue, iface)
        except SimPbxError as exc:
            err(str(exc))
            return
        ok("Removed interface from queue")

    def _a_queuepause(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        iface, paused = h.get("interface", ""), h.get("paused", "")
        if not iface or not paused:
            err("Need 'Interface' and 'Paused' parameters.")
            return
        flag = paused.lower() in ("true", "1", "yes", "on")
        self.actions["queuepause:" + ("on" if flag else "off")] += 1
        try:
            self.pbx.queue_pause(h.get("queue"), iface, flag, h.get("reason", ""))
        except SimPbxError as exc:
            err(str(exc))
            return
        ok("Interface paused successfully" if flag else "Interface unpaused successfully")

    def _list(
        self, c: SimAmiClient, h: dict[str, str], message: str, items: list[tuple[str, Headers]],
        complete: str,
    ) -> None:
        self._reply(c, h, "Success", [("EventList", "start"), ("Message", message)])
        aid = [("ActionID", h["actionid"])] if "actionid" in h else []
        for name, fields in items:
            c.send(encode_frame([("Event", name), *fields, *aid]))
        c.send(
            encode_frame(
                [
                    ("Event", complete),
                    *aid,
                    ("EventList", "Complete"),
                    ("ListItems", str(len(items))),
                ]
            )
        )

    def _a_queuestatus(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        want = h.get("queue", "")
        items: list[tuple[str, Headers]] = []
        now = self.pbx.clock.now()
        for q in self.pbx.ordered_queues():
            cfg = q.config
            if want and cfg.name != want:
                continue
            perf = 100.0 * q.completed_in_sl / q.completed if q.completed else 0.0
            tot = q.completed + q.abandoned
            perf2 = 100.0 * q.completed_in_sl / tot if tot else 0.0
            items.append(
                (
                    "QueueParams",
                    [
                        ("Queue", cfg.name),
                        ("Max", "0"),
                        ("Strategy", cfg.strategy),
                        ("Calls", str(len(q.callers))),
                        ("Holdtime", str(q.holdtime)),
                        ("TalkTime", str(q.talktime)),
                        ("Completed", str(q.completed)),
                        ("Abandoned", str(q.abandoned)),
                        ("ServiceLevel", str(cfg.servicelevel)),
                        ("ServicelevelPerf", f"{perf:.1f}"),
                        ("ServicelevelPerf2", f"{perf2:.1f}"),
                        ("Weight", "0"),
                    ],
                )
            )
            for m in q.ordered_members():
                fields = m.headers(self.pbx.member_status(m), location_key="Location")
                fields = [(k, v) for k, v in fields if k != "Ringinuse"]
                # QueueStatus names the member `Name` and puts it after Queue
                fields = [("Queue", m.queue), ("Name", m.name)] + [
                    f for f in fields if f[0] not in ("Queue", "MemberName")
                ]
                items.append(("QueueMember", fields))
            for pos, call in enumerate(q.callers, 1):
                ch = call.ch2
                items.append(
                    (
                        "QueueEntry",
                        [
                            ("Queue", cfg.name),
                            ("Position", str(pos)),
                            ("Channel", ch.name),
                            ("Uniqueid", ch.uniqueid),
                            ("CallerIDNum", ch.cid_num),
                            ("CallerIDName", ch.cid_name),
                            ("ConnectedLineNum", ch.conn_num),
                            ("ConnectedLineName", ch.conn_name),
                            ("Wait", str(int(now - call.joined_at))),
                            ("Priority", "0"),
                        ],
                    )
                )
        self._list(c, h, "Queue status will follow", items, "QueueStatusComplete")

    def _a_queuesummary(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        want = h.get("queue", "")
        items: list[tuple[str, Headers]] = []
        now = self.pbx.clock.now()
        for q in self.pbx.ordered_queues():
            if want and q.config.name != want:
                continue
            logged = len(q.members)
            avail = sum(1 for m in q.members.values() if self.pbx.available(m))
            longest = max((int(now - x.joined_at) for x in q.callers), default=0)
            items.append(
                (
                    "QueueSummary",
                    [
                        ("Queue", q.config.name),
                        ("LoggedIn", str(logged)),
                        ("Available", str(avail)),
                        ("Callers", str(len(q.callers))),
                        ("HoldTime", str(q.holdtime)),
                        ("TalkTime", str(q.talktime)),
                        ("LongestHoldTime", str(longest)),
                    ],
                )
            )
        self._list(c, h, "Queue summary will follow", items, "QueueSummaryComplete")

    def _a_coreshowchannels(
        self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply
    ) -> None:
        items: list[Channel] = []
        now = self.pbx.clock.now()
        aid = [("ActionID", h["actionid"])] if "actionid" in h else []
        self._reply(c, h, "Success", [("EventList", "start"), ("Message", "Channels will follow")])
        for ch in self.pbx.live_channels():
            secs = int(now - ch.created)
            items.append(ch)
            c.send(
                encode_frame(
                    [
                        ("Event", "CoreShowChannel"),
                        *aid,
                        *ch.snapshot(),
                        ("BridgeId", ""),
                        ("Application", ch.app),
                        ("ApplicationData", ch.appdata),
                        ("Duration", time.strftime("%H:%M:%S", time.gmtime(secs))),
                    ]
                )
            )
        c.send(
            encode_frame(
                [
                    ("Event", "CoreShowChannelsComplete"),
                    *aid,
                    ("EventList", "Complete"),
                    ("ListItems", str(len(items))),
                ]
            )
        )

    def _a_originate(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        channel = h.get("channel", "")
        if not channel:
            err("Channel not specified")
            return
        variables: dict[str, str] = {}
        for raw in h.get("variable", "").split(","):
            k, _, v = raw.partition("=")
            if k.strip():
                variables[k.strip()] = v
        for k, v in h.items():
            if k.startswith("variable:"):
                variables[k.split(":", 1)[1]] = v
        name, num = _callerid(h.get("callerid", ""))
        if channel.startswith("Local/311@from-citizen"):
            ok("Originate successfully queued")
            self.pbx.originate_citizen(
                num,
                name,
                variables.get("DIGITS", ""),
                float(variables.get("PATIENCE", "30") or 30),
                float(variables.get("PREWAIT", "2") or 2),
                h.get("actionid", ""),
                hangup_exten=h.get("exten", "s") == "hangup",
            )
            return
        local = re.fullmatch(r"Local/(\w+)@" + OUTBOUND_CONTEXT, channel)
        if local and h.get("context"):
            ok("Originate successfully queued")
            self.pbx.originate_outbound(local.group(1), h.get("context", ""),
                                        h.get("exten", "s"), variables, h.get("actionid", ""))
            return
        ok("Originate successfully queued")
        # Only the citizens' dialplans are simulated; anything else fails like an unreachable
        # peer.
        self.pbx.emit(
            "OriginateResponse",
            "call,all",
            [
                ("ActionID", h.get("actionid", "")),
                ("Response", "Failure"),
                ("Channel", channel),
                ("Context", h.get("context", "")),
                ("Exten", h.get("exten", "")),
                ("Reason", "0"),
                ("Uniqueid", "<null>"),
                ("CallerIDNum", num or "<unknown>"),
                ("CallerIDName", name or "<unknown>"),
            ],
        )

    def _a_hangup(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        channel = h.get("channel", "")
        if not channel:
            err("No channel specified")
            return
        if self.pbx.hangup_channel(channel):
            ok("Channel Hungup")
        else:
            err("No such channel")

    def _a_redirect(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        channel = h.get("channel", "")
        if not channel:
            err("Channel not specified")
            return
        if channel not in self.pbx.channels:
            err("Channel specified does not exist")
            return
        if not h.get("exten") or not h.get("context"):
            err("Context not specified" if not h.get("context") else "Exten not specified")
            return
        ok("Redirect successful")
        self.pbx.transfer(channel, h.get("context", ""), h.get("exten", ""))

    def _a_blindtransfer(self, c: SimAmiClient, h: dict[str, str], ok: Reply, err: Reply) -> None:
        channel = h.get("channel", "")
        if not channel:
            err("No channel specified")
            return
        if channel not in self.pbx.channels:
            err("No such channel")
            return
        if not h.get("exten"):
            err("No extension specified")
            return
        ok("Transfer succeeded")
        self.pbx.transfer(channel, h.get("context", "transfers"), h.get("exten", ""), blind=True)


def _callerid(raw: str) -> tuple[str, str]:
    m = re.match(r'\s*"?([^"<]*)"?\s*<([^>]*)>', raw)
    if m:
        return m.group(1).strip(), m.group(2).strip()
    return "", raw.strip()
