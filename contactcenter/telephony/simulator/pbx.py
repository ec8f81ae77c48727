"""The simulated Asterisk: channels, the `from-citizen` dialplan, app_queue and its members.

Each citizen call is an originated `Local/311@from-citizen` pair (as in the captures): `;1` runs
`citizen-dialer` (wait, key digits, wait the caller's patience, hang up), `;2` answers, runs the
IVR over FastAGI, then `Queue(${QUEUE},t,,,60)`. Members are `Local/200N@agents/n` (simulated:
ring for a delay, answer, talk, hang up) or a human device such as `PJSIP/1001` that rings until
`PhoneControl.answer()`. Every step writes the events Asterisk 22 writes, in its order.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..queues_conf import (
    QUEUES_FILE,
    RULES_FILE,
    PenaltyChange,
    parse_config,
    parse_rules,
    queue_sections,
)
from .clock import VirtualClock
from .records import AsteriskRecords
from .wire import (
    CAUSE_TXT,
    Channel,
    Headers,
    SimBridge,
    cdr,
    cel,
    event_frame,
    hangup_extra,
    member_bucket,
    queue_bucket,
)

log = logging.getLogger(__name__)

CALL, DIALPLAN, AGENT, AGI, DTMF, CDR = (
    "call,all",
    "dialplan,all",
    "agent,all",
    "agi,all",
    "dtmf,all",
    "cdr,all",
)
STRATEGIES = ("ringall", "rrmemory", "leastrecent", "linear", "fewestcalls", "random",
              "rrordered", "wrandom")
# what QueueReload answers when the configuration cannot be read (app_queue's wording)
RELOAD_ERROR = "Error encountered while reloading queue"
# The capture's [globals]: seconds before answering (99 = never) and talk seconds per agent.
DEFAULT_GLOBALS = {
    "RING_2001": "2",
    "TALK_2001": "6",
    "RING_2002": "1",
    "TALK_2002": "4",
    "RING_2003": "99",
    "TALK_2003": "3",
    "RING_2004": "2",
    "TALK_2004": "5",
    "RING_2005": "1",
    "TALK_2005": "3",
}
CID_PRES = [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")]
RECHECK = 1.0  # seconds between app_queue's is_our_turn checks
ANSWER_DELAY = 0.5  # Answer() on these channels returns half a second later (seen in captures)
PROMPT_SECONDS = {"hello-world": 1.42}
OUTBOUND_CONTEXT = "sim-citizens"  # Local/<number>@sim-citizens: a citizen the product calls
OUTBOUND_ANSWER_SECONDS = 4.0  # the citizen's phone rings this long before they pick up
RING_SECONDS = 30.0  # a phone nobody answers, until the Originate gives up


class SimPbxError(Exception):
    """An action the PBX refuses; the message is Asterisk's own wording."""


@dataclass
class SimQueueConfig:
    name: str
    strategy: str = "ringall"
    timeout: float = 4.0  # ring timeout per attempt
    retry: float = 1.0
    wrapuptime: float = 0.0
    servicelevel: int = 15
    joinempty: bool = True
    leavewhenempty: bool = False
    weight: int = 0

    @classmethod
    def from_options(cls, name: str, opts: Mapping[str, str]) -> SimQueueConfig:
        """A queues.conf section, as app_queue reads it (its defaults for what is missing).
        joinempty/leavewhenempty: "yes" joins always / "no" never leaves; any other word
        needs (or keeps) an unpaused member."""

        def num(key: str, default: float) -> float:
            raw = opts.get(key, "")
            return float(raw) if raw.strip() else default

        strategy = opts.get("strategy", "ringall")
        if strategy not in STRATEGIES:
            raise ValueError(f"'{strategy}' isn't a valid strategy for queue '{name}'")
        return cls(
            name, strategy, timeout=num("timeout", 15), retry=num("retry", 5),
            wrapuptime=num("wrapuptime", 0), servicelevel=int(num("servicelevel", 0)),
            joinempty=opts.get("joinempty", "yes").lower() == "yes",
            leavewhenempty=opts.get("leavewhenempty", "no").lower() != "no",
            weight=int(num("weight", 0)),
        )


@dataclass
class SimMember:
    queue: str
    interface: str
    name: str
    state_interface: str
    penalty: int = 0
    paused: bool = False
    reason: str = ""
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    wrap_until: float = 0.0
    seq: int = 0

    def headers(self, pbx: SimPbx, *, location_key: str = "Interface") -> Headers:
        in_call = "0"  # app_queue reports 0 around status changes (captures)
        return [
            ("Queue", self.queue),
            ("MemberName", self.name),
            (location_key, self.interface),
            ("StateInterface", self.state_interface),
            ("Membership", "dynamic"),
            ("Penalty", str(self.penalty)),
            ("CallsTaken", str(self.calls_taken)),
            ("LastCall", str(self.last_call)),
            ("LastPause", str(self.last_pause)),
            ("LoginTime", str(self.login_time)),
            ("InCall", in_call),
            ("Status", str(pbx.member_status(self))),
            ("Paused", "1" if self.paused else "0"),
            ("PausedReason", self.reason),
            ("Ringinuse", "0"),
            ("Wrapuptime", "0"),
        ]


@dataclass
class QueueState:
    config: SimQueueConfig
    members: dict[str, SimMember] = field(default_factory=dict)
    callers: list[CitizenCall] = field(default_factory=list)
    rrpos: int = 0
    completed: int = 0
    abandoned: int = 0
    completed_in_sl: int = 0
    avail_state: str = "NOT_INUSE"  # last `Queue:<name>_avail` device state sent
    holdtime: int = 0
    talktime: int = 0

    def ordered_members(self) -> list[SimMember]:
        return sorted(self.members.values(), key=lambda m: (member_bucket(m.interface), m.seq))


@dataclass
class AgentBehaviour:
    """How a simulated member's phone behaves on one call: None ring = never answers."""

    ring: float | None
    talk: float


@dataclass
class CitizenCall:
    ch1: Channel
    ch2: Channel
    digits: str
    patience: float
    prewait: float
    hangup_exten: bool = False
    answers: list[str] | None = None  # keys per menu prompt (None: the capture's blind DTMF)
    dtmf: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    caller_gone: asyncio.Event = field(default_factory=asyncio.Event)
    agent_gone: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    where: str = "dialplan"  # dialplan | agi | queue | bridged | ended
    queue: str = ""
    joined_at: float = 0.0
    position: int = 0
    original_position: int = 0
    hold: float = 0.0  # queue join to connect
    connected_at: float = 0.0
    bridge: SimBridge | None = None
    tried: list[str] = field(default_factory=list)  # members' channels that were not answered
    transfer: asyncio.Event = field(default_factory=asyncio.Event)
    transfer_to: tuple[str, str, bool] = ("", "", False)  # context, exten, blind
    outcome: str = ""
    legs: list[AgentLeg] = field(default_factory=list)
    # virtual time the next keyed digit reaches the IVR: a prompt due to end later waits for it,
    # so a loaded event loop cannot reorder DTMF and STREAM_END
    key_due: float | None = None
    # QUEUE_MIN_PENALTY / QUEUE_MAX_PENALTY and the queue rule's steps still to come
    min_penalty: int | None = None
    max_penalty: int | None = None
    rule: list[PenaltyChange] = field(default_factory=list)


@dataclass
class AgentLeg:
    member: SimMember
    out: Channel  # the channel the queue dials (Local ;1, or the device channel)
    inner: Channel | None  # Local ;2 running the agents dialplan (None for a device)
    behaviour: AgentBehaviour | None  # None: a human answers through PhoneControl
    rung_at: float
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    hangup: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


Listener = Callable[[bytes], None]
BehaviourFn = Callable[[SimMember], AgentBehaviour | None]


class SimPbx:
    def has_sound(self, name: str, language: str = "en") -> bool:
        """Whether Asterisk would find the sound: in `sound_files` when given; with a
        `sounds_dir`, our prompts (`311/...`) as Asterisk looks them up (`<lang>/<name>.wav`,
        then `en/`, then no language), while its core sounds (digits/...) count as installed."""
        if self.sound_files is not None and name not in self.sound_files:
            return False
        if self.sounds_dir is not None and name.startswith("311/"):
            found = any((self.sounds_dir / d / f"{name}.{ext}").is_file()
                        for d in dict.fromkeys((language, "en", ""))
                        for ext in ("wav", "sln", "ulaw", "gsm"))
            if not found:
                return False
        self.played.append((language, name))
        return True

    def __init__(
        self,
        clock: VirtualClock | None = None,
        *,
        agi_host: str = "127.0.0.1",
        agi_port: int = 4573,
        agi_path: str = "ivr",
        seed: int | None = None,
        sound_files: frozenset[str] | None = None,
        fallback_queue: str | None = None,
        sounds_dir: str | Path | None = None,
        config_dir: Path | str | None = None,
    ) -> None:
        self.clock = clock or VirtualClock()
        # The shipped dialplan (asterisk-config/extensions.conf): a caller that times out of
        # (or is sent out of an emptied) queue is queued again in this one. None: the capture
        # config's dialplan, which hangs up.
        self.fallback_queue = fallback_queue
        self.agi_host, self.agi_port, self.agi_path = agi_host, agi_port, agi_path
        # the sound files that exist (names as the AGI commands give them, e.g.
        # "311/en/main-menu"); None: every file exists. A missing one gets Asterisk's -1.
        self.sound_files = sound_files
        # Asterisk's sounds directory (CC_SOUNDS_DIR): our prompts exist when their file does
        self.sounds_dir = Path(sounds_dir) if sounds_dir is not None else None
        self.played: deque[tuple[str, str]] = deque(maxlen=2000)  # (language, sound), in order
        self.listeners: list[Listener] = []
        self.queues: dict[str, QueueState] = {}
        # Asterisk's config directory: queues.conf (or, alone, the generated file) and
        # queuerules.conf, read at start and on every QueueReload; extensions.conf's [globals]
        self.config_dir = Path(config_dir) if config_dir is not None else None
        self.rules: dict[str, list[PenaltyChange]] = {}
        self.reloads = 0
        self.channels: dict[str, Channel] = {}
        self.globals: dict[str, str] = dict(DEFAULT_GLOBALS)
        self.device_busy: dict[str, str] = {}  # interface -> "ringing" | "inuse"
        self.human: set[str] = set()  # interfaces answered by people (PhoneControl)
        self.legs_by_interface: dict[str, AgentLeg] = {}
        self.behaviour: BehaviourFn | None = None
        self.rng = random.Random(seed)
        self.booted = self.clock.now()
        self.ami_port = 0  # set by the AMI server that listens for this PBX
        self.events = 0
        self.calls: list[CitizenCall] = []
        self._uid = itertools.count()
        self._chan = itertools.count()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._linked: dict[str, int] = {}
        self._member_seq = itertools.count()
        if self.config_dir is not None:
            self.reload_config()
        # citizens the product calls back (Originate of Local/<number>@sim-citizens): the keys
        # each one presses when asked; a number missing here does not answer
        self.citizen_keys: dict[str, str] = {}
        # the others (the demo's citizens): a function of the number, None = no answer
        self.citizen_default: Callable[[str], str | None] | None = None
        self.outbound: list[tuple[str, str]] = []  # (number, how it went) for tests
        # Asterisk's own queue_log and CDR (simulator/records.py), when a test asks for them
        self.records: AsteriskRecords | None = None

    # ---- plumbing -------------------------------------------------------------------------
    def emit(self, name: str, privilege: str, headers: Headers, *, stamp: bool = True) -> None:
        data = event_frame(name, privilege, self.clock.now() if stamp else None, headers)
        self.events += 1
        if name == "Cdr" and self.records is not None:
            self.records.cdr_event(headers)
        for listener in list(self.listeners):
            listener(data)

    def qlog(self, call: CitizenCall, queue: str, agent: str, event: str, *data: object) -> None:
        """A queue_log line for the caller's channel (call id: its Uniqueid)."""
        if self.records is not None:
            self.records.queue_log(self.clock.now(), call.ch2.uniqueid, queue, agent, event,
                                   *data)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator task failed", exc_info=task.exception())

    async def close(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def new_channel(
        self, name: str, context: str, exten: str, linkedid: str | None, state: int = 0
    ) -> Channel:
        now = self.clock.now()
        uid = f"{int(now)}.{next(self._uid)}"
        ch = Channel(
            name=name,
            uniqueid=uid,
            linkedid=linkedid or uid,
            context=context,
            exten=exten,
            created=now,
            state=state,
        )
        self.channels[name] = ch
        self._linked[ch.linkedid] = self._linked.get(ch.linkedid, 0) + 1
        if self.records is not None:
            self.records.channel(uid, ch.linkedid)
        return ch

    def local_pair(self, exten: str, context: str, linkedid: str | None) -> tuple[Channel, Channel]:
        n = f"{next(self._chan):08x}"
        one = self.new_channel(f"Local/{exten}@{context}-{n};1", context, exten, linkedid)
        two = self.new_channel(f"Local/{exten}@{context}-{n};2", context, exten, one.linkedid, 4)
        return one, two

    def ev_chan(
        self, name: str, ch: Channel, extra: Sequence[tuple[str, str]] = (), priv: str = CALL
    ) -> None:
        self.emit(name, priv, ch.snapshot() + list(extra))

    def newexten(
        self,
        ch: Channel,
        app: str,
        data: str,
        priority: int | None = None,
        exten: str | None = None,
        context: str | None = None,
    ) -> None:
        if priority is not None:
            ch.priority = priority
        if exten is not None:
            ch.exten = exten
        if context is not None:
            ch.context = context
        ch.app, ch.appdata = app, data
        self.ev_chan(
            "Newexten",
            ch,
            [("Extension", ch.exten), ("Application", app), ("AppData", data)],
            DIALPLAN,
        )

    def varset(self, ch: Channel | None, var: str, value: str) -> None:
        if ch is None:
            self.globals[var] = value
            self.emit(
                "VarSet",
                DIALPLAN,
                [("Channel", "none"), ("Uniqueid", "none"), ("Variable", var), ("Value", value)],
            )
            return
        ch.vars[var] = value
        self.ev_chan("VarSet", ch, [("Variable", var), ("Value", value)], DIALPLAN)

    def cel(self, ch: Channel, name: str, **kw: Any) -> None:
        if ch.name.endswith(";1") and ch.context == "citizen-dialer" and kw.get("app") is None:
            # the originated half's CEL snapshot keeps the dial's application
            kw.update(app="AppDial2", appdata="(Outgoing Line)")
        self.emit("CEL", CALL, cel(ch, name, self.clock.now(), **kw))

    def newstate(self, ch: Channel, state: int) -> None:
        ch.state = state
        if state == 6 and ch.answered is None:
            ch.answered = self.clock.now()
        self.ev_chan("Newstate", ch)

    def dsc(self, device: str, state: str) -> None:
        self.emit("DeviceStateChange", CALL, [("Device", device), ("State", state)])

    def dsc_local(self, device: str) -> None:
        """A Local device is in use while one of its channel pairs has both halves up
        (core_local's devicestate): with other calls in progress a hang-up reports INUSE."""
        halves: dict[str, int] = {}
        for ch in self.channels.values():
            if ch.device == device and ";" in ch.name:
                pair = ch.name.rsplit(";", 1)[0]
                halves[pair] = halves.get(pair, 0) + 1
        self.dsc(device, "INUSE" if any(n == 2 for n in halves.values()) else "NOT_INUSE")

    def dsc_member(self, m: SimMember) -> None:
        if m.state_interface.startswith("Local/"):
            self.dsc_local(m.state_interface)
        else:
            busy = self.device_busy.get(m.interface)
            self.dsc(
                m.state_interface,
                {"inuse": "INUSE", "ringing": "RINGING"}.get(busy or "", "NOT_INUSE"),
            )
        self.update_avail(m.interface)

    def update_avail(self, interface: str) -> None:
        """`Queue:<name>_avail`: INUSE once no member of the queue could take a call (paused
        or on a call; a ringing Local member still counts as free), NOT_INUSE when one can."""
        for q in self.ordered_queues():
            if interface not in q.members:
                continue
            free = any(
                not m.paused and self.device_busy.get(m.interface) != "inuse"
                for m in q.members.values()
            )
            state = "NOT_INUSE" if free else "INUSE"
            if q.avail_state != state:
                q.avail_state = state
                self.dsc(f"Queue:{q.config.name}_avail", state)

    def hangup_event(self, ch: Channel, cause: int) -> None:
        ch.dead = True
        self.channels.pop(ch.name, None)
        self.ev_chan(
            "Hangup", ch, [("Cause", str(cause)), ("Cause-txt", CAUSE_TXT.get(cause, "Unknown"))]
        )

    def chan_end(self, ch: Channel, *, app: str | None = None, appdata: str | None = None) -> None:
        self.cel(ch, "CHAN_END", app=app, appdata=appdata)
        left = self._linked.get(ch.linkedid, 1) - 1
        if left <= 0:
            self._linked.pop(ch.linkedid, None)
            self.cel(ch, "LINKEDID_END", app=app, appdata=appdata)
        else:
            self._linked[ch.linkedid] = left

    def bridge_enter(self, bridge: SimBridge, ch: Channel) -> None:
        bridge.members.append(ch.name)
        self.emit("BridgeEnter", CALL, bridge.snapshot() + ch.snapshot())

    def bridge_leave(self, bridge: SimBridge, ch: Channel) -> None:
        if ch.name in bridge.members:
            bridge.members.remove(ch.name)
        self.emit("BridgeLeave", CALL, bridge.snapshot() + ch.snapshot())

    # ---- queue membership -----------------------------------------------------------------
    def _conf(self, *names: str) -> Path | None:
        assert self.config_dir is not None
        return next((self.config_dir / n for n in names if (self.config_dir / n).exists()), None)

    def reload_config(self) -> None:
        """app_queue's reload (QueueReload with no headers): queues in the files are created
        or get their new parameters (members and statistics stay), queues no longer there are
        removed, the rules are read again. A file that cannot be read changes nothing."""
        if self.config_dir is None:
            raise SimPbxError(RELOAD_ERROR)
        try:
            path = self._conf("queues.conf", QUEUES_FILE)
            sections = queue_sections(parse_config(path)) if path else {}
            configs = [SimQueueConfig.from_options(n, o) for n, o in sections.items()]
            rules_path = self._conf("queuerules.conf", RULES_FILE)
            rules = parse_rules(parse_config(rules_path)) if rules_path else {}
            dialplan = self._conf("extensions.conf")
            globals_ = parse_config(dialplan).options("globals") if dialplan else {}
        except (OSError, ValueError, IndexError) as exc:
            log.warning("simulated QueueReload refused: %s", exc)
            raise SimPbxError(RELOAD_ERROR) from None
        for name in [n for n in self.queues if n not in sections]:
            del self.queues[name]
        for cfg in configs:
            if cfg.name in self.queues:
                self.queues[cfg.name].config = cfg
            else:
                self.add_queue(cfg)
        self.rules = rules
        self.globals.update({k: v for k, v in globals_.items() if k.startswith("LANG_PENALTY_")})
        self.reloads += 1

    def add_queue(self, cfg: SimQueueConfig) -> None:
        if cfg.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {cfg.strategy!r}")
        self.queues[cfg.name] = QueueState(cfg)

    def ordered_queues(self) -> list[QueueState]:
        return sorted(self.queues.values(), key=lambda q: queue_bucket(q.config.name))

    def member_status(self, m: SimMember) -> int:
        busy = self.device_busy.get(m.interface)
        return {"inuse": 2, "ringing": 6}.get(busy or "", 1)

    def available(self, m: SimMember) -> bool:
        return (
            not m.paused
            and m.interface not in self.device_busy
            and self.clock.now() >= m.wrap_until
        )

    def queue_add(
        self,
        queue: str,
        interface: str,
        name: str = "",
        penalty: int = 0,
        state_interface: str = "",
        paused: bool = False,
        reason: str = "",
    ) -> SimMember:
        q = self.queues.get(queue)
        if q is None:
            raise SimPbxError("Unable to add interface to queue: No such queue")
        if interface in q.members:
            raise SimPbxError("Unable to add interface: Already there")
        if not interface or "/" not in interface:
            raise SimPbxError("Unable to add interface to queue: Out of memory")
        now = int(self.clock.now())
        state_interface = state_interface or interface
        m = SimMember(
            queue,
            interface,
            name or interface,
            state_interface,
            penalty,
            paused,
            reason,
            login_time=now,
            seq=next(self._member_seq),
            last_pause=now if paused else 0,
        )
        q.members[interface] = m
        self.emit("QueueMemberAdded", AGENT, m.headers(self))
        return m

    def queue_remove(self, queue: str, interface: str) -> None:
        q = self.queues.get(queue)
        if q is None:
            raise SimPbxError("Unable to remove interface: No such queue")
        m = q.members.pop(interface, None)
        if m is None:
            raise SimPbxError("Unable to remove interface: Not there")
        self.emit("QueueMemberRemoved", AGENT, m.headers(self))

    def queue_pause(
        self, queue: str | None, interface: str, paused: bool, reason: str = ""
    ) -> None:
        targets = [q for q in self.ordered_queues() if queue in (None, "", q.config.name)]
        found = [q.members[interface] for q in targets if interface in q.members]
        if not found:
            raise SimPbxError("Interface not found")
        for m in found:
            m.paused = paused
            m.reason = reason if paused else ""
            m.last_pause = int(self.clock.now()) if paused or m.last_pause else 0
            self.dsc(f"Queue:{m.queue}_pause_{interface}", "INUSE" if paused else "NOT_INUSE")
            self.update_avail(interface)
            self.emit("QueueMemberPause", AGENT, m.headers(self))

    def member_status_events(self, interface: str) -> None:
        for q in self.ordered_queues():
            m = q.members.get(interface)
            if m is not None:
                self.emit("QueueMemberStatus", AGENT, m.headers(self))

    # ---- citizen calls --------------------------------------------------------------------
    def originate_citizen(
        self,
        cid_num: str,
        cid_name: str,
        digits: str,
        patience: float,
        prewait: float = 2.0,
        action_id: str = "",
        hangup_exten: bool = False,
        answers: list[str] | None = None,
    ) -> CitizenCall:
        """AMI Originate of Local/311@from-citizen whose other half runs citizen-dialer.
        With `answers`, the caller keys each entry when a menu prompt starts, as a person
        does, instead of the captures' blind `SendDTMF(${DIGITS})`."""
        one, two = self.local_pair("311", "from-citizen", None)
        call = CitizenCall(
            one,
            two,
            digits,
            patience,
            prewait,
            hangup_exten,
            answers=list(answers) if answers is not None else None,
        )
        self.calls.append(call)
        variables = [("PREWAIT", _num(prewait)), ("PATIENCE", _num(patience)), ("DIGITS", digits)]
        self.cel(one, "CHAN_START")
        self.cel(two, "CHAN_START")
        self.ev_chan("Newchannel", one)
        self.ev_chan("Newchannel", two)
        self.newexten(one, "AppDial2", "(Outgoing Line)")
        for k, v in variables:
            self.varset(one, k, v)
        one.cid_num, one.cid_name = cid_num, cid_name
        self.ev_chan("NewCallerid", one, CID_PRES)
        one.conn_num, one.conn_name = cid_num, cid_name
        self.ev_chan("NewConnectedLine", one)
        for k, v in reversed(variables):
            self.varset(two, k, v)
        two.cid_num, two.cid_name = cid_num, cid_name
        two.conn_num, two.conn_name = cid_num, cid_name
        self.ev_chan("NewCallerid", two, CID_PRES)
        two.conn_num, two.conn_name = cid_num, cid_name
        self.ev_chan("NewConnectedLine", two)
        self.emit(
            "LocalBridge",
            CALL,
            one.snapshot("LocalOne")
            + two.snapshot("LocalTwo")
            + [("Context", "from-citizen"), ("Exten", "311"), ("LocalOptimization", "Yes")],
        )
        self.cel(two, "ANSWER", app="Answer", appdata="")
        self.cel(one, "ANSWER")
        self.emit(
            "OriginateResponse",
            CALL,
            [
                ("ActionID", action_id),
                ("Response", "Success"),
                ("Channel", one.name),
                ("Context", "citizen-dialer"),
                ("Exten", "hangup" if hangup_exten else "s"),
                ("Reason", "4"),
                ("Uniqueid", one.uniqueid),
                ("CallerIDNum", cid_num),
                ("CallerIDName", cid_name),
            ],
        )
        self.emit("DialBegin", CALL, [*one.snapshot("Dest"), ("DialString", "311@from-citizen")])
        self.newexten(two, "NoOp", f"3-1-1 call from {cid_num}", 1)
        self.newexten(two, "Answer", "", 2)
        self.newstate(two, 6)
        self.newstate(one, 6)
        self.emit("DialEnd", CALL, [*one.snapshot("Dest"), ("DialStatus", "ANSWER")])
        self.newexten(
            one, "Wait", _num(prewait), 1, "hangup" if hangup_exten else "s", "citizen-dialer"
        )
        self.dsc_local("Local/311@from-citizen")
        self.dsc_local("Local/311@from-citizen")
        self.spawn(self._dialer(call))
        self.spawn(self._dialplan(call))
        return call

    async def _wait(self, seconds: float | None, *events: asyncio.Event) -> bool:
        """Sleep `seconds` of virtual time (None: forever) unless one of `events` fires first;
        True when an event fired."""
        if any(e.is_set() for e in events):
            return True
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        timer = asyncio.ensure_future(self.clock.sleep(seconds)) if seconds is not None else None
        try:
            await asyncio.wait(
                waiters + ([timer] if timer else []), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for t in waiters + ([timer] if timer else []):
                t.cancel()
        return any(e.is_set() for e in events)

    async def _until(self, when: float | None, *events: asyncio.Event) -> bool:
        """Wait until virtual time `when` (None: forever) unless an event fires first. Waiting
        for absolute times keeps a busy event loop's lateness from adding up along a call."""
        return await self._wait(None if when is None else when - self.clock.now(), *events)

    async def _dialer(self, call: CitizenCall) -> None:
        one = call.ch1
        t = one.created + call.prewait
        if call.answers is None and not call.hangup_exten and call.digits:
            call.key_due = t + 0.2  # known now: a prompt ending later must wait for it
        if await self._until(t, call.done):
            return
        if not call.hangup_exten:
            if call.answers is None:  # the captures' citizen: SendDTMF(${DIGITS},250), blind
                self.newexten(one, "SendDTMF", f"{call.digits},250", 2)
                keyed = await self._key(call, call.digits, t)
                if keyed is None:
                    return
                t = keyed
            self.newexten(one, "Wait", _num(call.patience), 3)
            if await self._until(t + call.patience, call.done):
                return
        self.caller_hangup(call)

    async def _key(self, call: CitizenCall, digits: str, t: float) -> float | None:
        """The caller keys `digits` from time `t`: each tone lasts 100 ms, 250 ms apart, and
        arrives on the IVR's channel. Returns when it is done (None: the call ended)."""
        for digit in digits:
            call.key_due = t + 0.2
            await self._until(t + 0.1)
            if call.done.is_set() or call.caller_gone.is_set():
                return None
            self.ev_chan("DTMFBegin", call.ch2, [("Digit", digit), ("Direction", "Received")], DTMF)
            await self._until(t + 0.2)
            if call.done.is_set() or call.caller_gone.is_set():
                return None
            self.ev_chan(
                "DTMFEnd",
                call.ch2,
                [("Digit", digit), ("DurationMs", "100"), ("Direction", "Received")],
                DTMF,
            )
            self.cel(call.ch2, "DTMF", extra=f'{{"digit":"{digit}","duration_ms":100}}')
            call.dtmf.put_nowait(digit)
            call.key_due = None
            t += 0.45
            await self._until(t)
        return t

    def on_prompt(self, call: CitizenCall, length: float) -> None:
        """A menu prompt starts (GET DATA): a responsive caller answers it with their next
        keys after listening to part of it."""
        if not call.answers:
            return
        keys = call.answers.pop(0)
        start = self.clock.now() + self.rng.uniform(0.4, 1.0) * length + 0.3
        if keys:
            call.key_due = start + 0.2
        self.spawn(self._key(call, keys, start))

    def caller_hangup(self, call: CitizenCall) -> None:
        """The citizen's dialer half runs Hangup(): the ;1 side goes, ;2 is asked to hang up.
        Public because the AGI side (agi_client's HANGUP command) ends calls this way too."""
        one, two = call.ch1, call.ch2
        self.emit("Cdr", CDR, cdr(one, self.clock.now(), last_app="Hangup", answered=one.answered))
        self.cel(one, "HANGUP", extra=hangup_extra(16, "dialplan/builtin", ""))
        self.chan_end(one)
        self.newexten(one, "Hangup", "", 2 if call.hangup_exten else 4)
        self.ev_chan("SoftHangupRequest", one, [("Cause", "16")])
        self.ev_chan("HangupRequest", two, [("Cause", "16")])
        self.hangup_event(one, 16)
        self.dsc_local("Local/311@from-citizen")
        call.caller_gone.set()

    # ---- outbound calls (call-backs) --------------------------------------------------------
    def originate_outbound(
        self, number: str, context: str, exten: str, variables: dict[str, str],
        action_id: str = "",
    ) -> None:
        """AMI Originate of Local/<number>@sim-citizens with Context/Exten: the ;2 half rings
        the citizen's phone; once they answer, the ;1 half runs `context` (AGI of the script
        named by the context, e.g. cc-callback -> /callback). A citizen not in `citizen_keys`
        does not answer: after RING_SECONDS, OriginateResponse Failure with Reason 3."""
        one, two = self.local_pair(number, OUTBOUND_CONTEXT, None)
        one.context, one.exten, one.priority = context, exten, 1
        for ch in (one, two):
            self.cel(ch, "CHAN_START")
            self.ev_chan("Newchannel", ch)
        for k, v in variables.items():
            self.varset(one, k, v)
        self.spawn(self._outbound(number, one, two, variables, action_id))

    async def _outbound(self, number: str, one: Channel, two: Channel,
                        variables: dict[str, str], action_id: str) -> None:
        keys = self.citizen_keys.get(number)
        if keys is None and number not in self.citizen_keys and self.citizen_default:
            keys = self.citizen_default(number)
        await self.clock.sleep(OUTBOUND_ANSWER_SECONDS if keys is not None else RING_SECONDS)
        if keys is None:
            for ch in (two, one):
                self.hangup_event(ch, 19)
                self.chan_end(ch)
            self.emit("OriginateResponse", CALL, [
                ("ActionID", action_id), ("Response", "Failure"), ("Channel", one.name),
                ("Context", one.context), ("Exten", one.exten), ("Reason", "3"),
                ("Uniqueid", one.uniqueid), ("CallerIDNum", "<unknown>"),
                ("CallerIDName", "<unknown>")])
            self.outbound.append((number, "no answer"))
            return
        for ch in (two, one):
            self.newstate(ch, 6)
        self.emit("OriginateResponse", CALL, [
            ("ActionID", action_id), ("Response", "Success"), ("Channel", one.name),
            ("Context", one.context), ("Exten", one.exten), ("Reason", "4"),
            ("Uniqueid", one.uniqueid), ("CallerIDNum", "<unknown>"),
            ("CallerIDName", "<unknown>")])
        # the AGI runs on ;1 (the CitizenCall's ch2 is the channel the script drives)
        call = CitizenCall(two, one, "", 60.0, 0.0, answers=list(keys))
        self.calls.append(call)
        from .agi_client import run_agi

        script = one.context.removeprefix("cc-") or self.agi_path
        status = await run_agi(self, call, path=script)
        for ch in (one, two):
            if not ch.dead:
                self.hangup_event(ch, 16)
                self.chan_end(ch)
        call.done.set()
        self.outbound.append((number, f"answered, AGI {status}"))

    async def _dialplan(self, call: CitizenCall) -> None:
        two = call.ch2
        try:
            await self._until(two.created + ANSWER_DELAY, call.caller_gone)
            if call.caller_gone.is_set():
                self._end_caller_leg(call, "")
                return
            from .agi_client import run_agi  # the AGI() application

            status = await run_agi(self, call)
            if status == "HANGUP":
                self._end_caller_leg(call, "", app="AGI")
                return
            queue = two.vars.get("QUEUE", "")
            if queue:
                self.newexten(two, "GotoIf", "0?fallback", 4)
                prio = 5
                self.language_window(call, queue)  # the shipped `queue` extension only
            else:
                self.newexten(two, "GotoIf", "1?fallback", 4)
                queue, prio = "general-311", 7
            await self.queue_app(call, queue, prio)
        finally:
            call.done.set()

    def _caller_cdrs(self, call: CitizenCall, answered_by: str, last_app: str = "Queue") -> None:
        """The caller's channel ends: one CDR per member channel dialled (at least one), the
        one that answered ANSWERED, the others NO ANSWER (ami-burst-40.raw)."""
        two = call.ch2
        for dest in [*call.tried, answered_by] if answered_by else call.tried or [""]:
            disposition = "ANSWERED" if dest == answered_by or not dest else "NO ANSWER"
            self.emit(
                "Cdr",
                CDR,
                cdr(
                    two,
                    self.clock.now(),
                    dest_channel=dest,
                    last_app=last_app,
                    last_data=two.appdata,
                    answered=two.answered,
                    disposition=disposition,
                ),
            )

    def _end_caller_leg(self, call: CitizenCall, dialstatus: str, app: str = "") -> None:
        two = call.ch2
        if app == "AGI":
            self.varset(two, "AGISTATUS", "HANGUP")
        self.ev_chan("SoftHangupRequest", two, [("Cause", "16")])
        self.hangup_event(two, 16)
        self._caller_cdrs(call, "", last_app=two.app or app)
        if two.app in ("AGI", "Queue"):
            self.cel(two, "APP_END")
        self.cel(two, "HANGUP", app="", appdata="", extra=hangup_extra(16, "", dialstatus))
        self.chan_end(two, app="", appdata="")
        self.dsc_local("Local/311@from-citizen")
        if not call.outcome:
            call.outcome = "ivr_hangup"
        call.where = "ended"

    def language_window(self, call: CitizenCall, queue: str) -> None:
        """The shipped dialplan's `queue` extension: a caller whose LANG has a
        LANG_PENALTY_<lang> global starts with QUEUE_MIN_PENALTY = QUEUE_MAX_PENALTY = that
        band and the queue's rule `lang-<queue>` (which later opens the queue to everyone)."""
        lang = call.ch2.vars.get("LANG", "")
        band = self.globals.get(f"LANG_PENALTY_{lang}", "") if lang else ""
        if band.strip().isdigit():
            call.min_penalty = call.max_penalty = int(band)
            call.rule = list(self.rules.get(f"lang-{queue}", []))

    def in_window(self, call: CitizenCall, m: SimMember) -> bool:
        return ((call.max_penalty is None or m.penalty <= call.max_penalty)
                and (call.min_penalty is None or m.penalty >= call.min_penalty))

    def _follow_rule(self, call: CitizenCall) -> None:
        # app_queue: `while (qe.pr && (time(NULL) - qe.start) > qe.pr->time)` (whole seconds)
        while call.rule and int(self.clock.now() - call.joined_at) > call.rule[0].after:
            step = call.rule.pop(0)
            call.max_penalty, call.min_penalty = step.max_penalty, step.min_penalty

    # ---- app_queue ------------------------------------------------------------------------
    async def queue_app(self, call: CitizenCall, queue: str, prio: int) -> None:
        two = call.ch2
        # the queue's own maximum wait when the IVR set one (QUEUE_TIMEOUT), else the
        # captures' dialplan's 60 s
        raw = two.vars.get("QUEUE_TIMEOUT", "")
        timeout = int(raw) if raw.isdigit() and int(raw) > 0 else 60
        data = f"{queue},t,,,{timeout}"
        self.newexten(two, "Queue", data, prio)
        self.cel(
            two,
            "APP_END",
            app="AGI",
            appdata=f"agi://{self.agi_host}:{self.agi_port}/{self.agi_path}",
        )
        await self._queue_body(call, queue, prio, timeout)

    async def _queue_body(self, call: CitizenCall, queue: str, prio: int,
                          timeout: float = 60) -> None:
        two = call.ch2
        q = self.queues.get(queue)
        for var in ("ANSWEREDTIME", "ANSWEREDTIME_MS"):
            self.varset(two, var, "")
        self.cel(two, "APP_START")
        for var in ("DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS"):
            self.varset(two, var, "")
        start = self.clock.now()
        if q is None or (not q.config.joinempty and not self._has_usable(q)):
            self.varset(two, "QUEUESTATUS", "JOINEMPTY" if q else "UNKNOWN")
            await self._after_queue(call, prio, start)
            return
        call.where, call.queue, call.joined_at = "queue", queue, start
        q.callers.append(call)
        call.position = call.original_position = len(q.callers)
        if len(q.callers) == 1:
            self.dsc(f"Queue:{queue}", "RINGING")
        self.qlog(call, queue, "NONE", "ENTERQUEUE", "", two.cid_num, call.position)
        self.ev_chan(
            "QueueCallerJoin",
            two,
            [("Queue", queue), ("Position", str(call.position)), ("Count", str(len(q.callers)))],
            AGENT,
        )
        deadline = start + timeout
        result = await self._wait_in_queue(call, q, deadline)
        if result == "transfer":
            self._leave(call, q)
            await self._transferred(call)
            return
        if result == "abandon":
            self._abandon(call, q, start)
            return
        if result in ("timeout", "leaveempty"):
            # As app_queue.c: record_abandoned() (ABANDONED=TRUE, QueueCallerAbandon) runs for
            # a timeout and leavewhenempty too; then leave_queue() and QUEUESTATUS.
            pos = self._abandon_event(call, q, self.clock.now() - start)
            self.qlog(call, queue, "NONE",
                      "EXITWITHTIMEOUT" if result == "timeout" else "EXITEMPTY",
                      pos, call.original_position, int(self.clock.now() - start))
            self._leave(call, q)
            self.varset(two, "QUEUESTATUS", "TIMEOUT" if result == "timeout" else "LEAVEEMPTY")
            call.outcome = "timed_out"
            fallback = self.fallback_queue
            if fallback and fallback != queue and fallback in self.queues:
                self.cel(two, "APP_END")
                self.newexten(two, "NoOp", "IVR fallback", 1, exten="fallback")
                self.varset(two, "QUEUE", fallback)
                self.newexten(two, "Queue", f"{fallback},t,,,60", 3)
                await self._queue_body(call, fallback, 3)
                return
            await self._after_queue(call, prio, start)
            return
        if await self._talk(call, q, start) == "transfer":
            await self._transferred(call)

    async def _transferred(self, call: CitizenCall) -> None:
        """The caller, redirected or blind-transferred, runs the target extension: a queue in
        the `transfers` context (as config/extensions.conf), anything else hangs up."""
        context, exten, _blind = call.transfer_to
        call.transfer.clear()
        two = call.ch2
        self.cel(two, "APP_END")
        call.outcome = "transferred"
        if context == "transfers" and exten in self.queues:
            self.newexten(two, "Queue", f"{exten},t,,,60", 1, exten=exten, context=context)
            await self._queue_body(call, exten, 1)
            return
        self.newexten(two, "Hangup", "", 1, exten=exten, context=context)
        await self._after_queue(call, 0, self.clock.now(), app_end=False)

    def _has_usable(self, q: QueueState) -> bool:
        return any(not m.paused for m in q.members.values())

    def _leave(self, call: CitizenCall, q: QueueState) -> None:
        pos = q.callers.index(call) + 1
        q.callers.remove(call)
        if not q.callers:
            self.dsc(f"Queue:{q.config.name}", "NOT_INUSE")
        self.ev_chan(
            "QueueCallerLeave",
            call.ch2,
            [("Queue", q.config.name), ("Position", str(pos)), ("Count", str(len(q.callers)))],
            AGENT,
        )
        self.varset(call.ch2, "QUEUEPOSITION", str(pos))
        for i, other in enumerate(q.callers):
            other.position = i + 1

    def _abandon(self, call: CitizenCall, q: QueueState, start: float) -> None:
        two = call.ch2
        now = self.clock.now()
        wait = now - call.joined_at
        self.varset(two, "QUEUEWAIT", str(int(wait)))
        self.varset(two, "QUEUEWAIT_MS", str(int(wait * 1000)))
        self.varset(two, "DIALEDTIME", str(int(now - two.created)))
        self.varset(two, "DIALEDTIME_MS", str(int((now - two.created) * 1000)))
        self.varset(two, "ANSWEREDTIME", "0")
        self.varset(two, "ANSWEREDTIME_MS", "0")
        pos = self._abandon_event(call, q, wait)
        self.qlog(call, q.config.name, "NONE", "ABANDON", pos, call.original_position,
                  int(wait))
        q.callers.remove(call)
        if not q.callers:
            self.dsc(f"Queue:{q.config.name}", "NOT_INUSE")
        self.ev_chan(
            "QueueCallerLeave",
            two,
            [("Queue", q.config.name), ("Position", str(pos)), ("Count", str(len(q.callers)))],
            AGENT,
        )
        self.varset(two, "QUEUEPOSITION", str(pos))
        for i, other in enumerate(q.callers):
            other.position = i + 1
        call.outcome = "abandoned"
        self._end_caller_leg(call, "")

    def _abandon_event(self, call: CitizenCall, q: QueueState, wait: float) -> int:
        """app_queue.c's record_abandoned(): the caller's position, now."""
        self.varset(call.ch2, "ABANDONED", "TRUE")
        pos = q.callers.index(call) + 1
        q.abandoned += 1
        self.ev_chan(
            "QueueCallerAbandon",
            call.ch2,
            [
                ("Queue", q.config.name),
                ("Position", str(pos)),
                ("OriginalPosition", str(call.original_position)),
                ("HoldTime", str(int(wait))),
            ],
            AGENT,
        )
        return pos

    async def _after_queue(
        self, call: CitizenCall, prio: int, start: float, app_end: bool = True
    ) -> None:
        """Queue() returned (timeout, join-empty): the dialplan's Hangup() runs."""
        two = call.ch2
        call.where = "dialplan"
        if app_end:
            self.cel(two, "APP_END")
            self.newexten(two, "Hangup", "", prio + 1)
        call.done.set()
        self.cel(two, "HANGUP", app="", appdata="", extra=hangup_extra(16, "dialplan/builtin", ""))
        self.ev_chan("SoftHangupRequest", two, [("Cause", "16")])
        self.ev_chan("HangupRequest", call.ch1, [("Cause", "16")])
        self.hangup_event(two, 16)
        self.emit("Cdr", CDR, cdr(two, self.clock.now(), last_app="Hangup", answered=two.answered))
        self.chan_end(two, app="", appdata="")
        if not call.ch1.dead:
            self.ev_chan("SoftHangupRequest", call.ch1, [("Cause", "16")])
            self.hangup_event(call.ch1, 16)
            self.cel(call.ch1, "HANGUP", extra=hangup_extra(16, "", ""))
            self.chan_end(call.ch1)
            self.emit(
                "Cdr",
                CDR,
                cdr(call.ch1, self.clock.now(), last_app="Wait", answered=call.ch1.answered),
            )
        self.dsc_local("Local/311@from-citizen")
        self.dsc_local("Local/311@from-citizen")
        call.where = "ended"

    def _pick(self, call: CitizenCall, q: QueueState, linpos: list[int]) -> list[SimMember]:
        """Members to ring now, by strategy (app_queue's calc_metric, simplified): only members
        within the caller's penalty window, the lowest penalty first (for ringall: only the
        lowest penalty among the available)."""
        strategy = q.config.strategy
        ok = [m for m in q.members.values() if self.available(m) and self.in_window(call, m)]
        if not ok:
            return []
        tier = min(m.penalty for m in ok)
        if strategy == "ringall":
            return [m for m in q.ordered_members() if m in ok and m.penalty == tier]
        metric: list[tuple[float, SimMember]]
        if strategy == "linear":
            ordered = q.ordered_members()
            metric = [(1000 + i if i < linpos[0] else i, m) for i, m in enumerate(ordered)]
        elif strategy in ("rrmemory", "rrordered"):
            ordered = sorted(q.members.values(), key=lambda m: m.seq)
            metric = [(1000 + i if i < q.rrpos else i, m) for i, m in enumerate(ordered)]
        elif strategy == "fewestcalls":
            metric = [(m.calls_taken, m) for m in q.ordered_members()]
        elif strategy in ("random", "wrandom"):
            metric = [(self.rng.random(), m) for m in q.ordered_members()]
        else:  # leastrecent
            metric = [(m.last_call, m) for m in q.ordered_members()]
        best = sorted((x for x in metric if x[1] in ok and x[1].penalty == tier),
                      key=lambda x: x[0])
        return [best[0][1]] if best else []

    async def _wait_in_queue(self, call: CitizenCall, q: QueueState, deadline: float) -> str:
        linpos = [0]
        cursor = call.joined_at  # the virtual time this step was due (lateness is not kept)
        while True:
            if call.caller_gone.is_set():
                return "abandon"
            if call.transfer.is_set():
                return "transfer"
            now = self.clock.now()
            if now >= deadline:
                return "timeout"
            if now - cursor > 0.5:
                cursor = now
            if q.config.leavewhenempty and not self._has_usable(q):
                return "leaveempty"
            self._follow_rule(call)
            avail = sum(1 for m in q.members.values()
                        if self.available(m) and self.in_window(call, m))
            # autofill: as many callers as there are free members may ring at once, except
            # with ringall, where only the head caller is served (num_available_members)
            if q.config.strategy == "ringall":
                avail = min(avail, 1)
            if call.position <= avail:
                targets = self._pick(call, q, linpos)
                if targets:
                    result = await self._ring(call, q, targets, deadline, cursor)
                    if result in ("abandon", "answered"):
                        return result
                    if q.config.strategy == "linear":
                        ordered = q.ordered_members()
                        idx = ordered.index(targets[0]) if targets[0] in ordered else 0
                        linpos[0] = idx + 1
                    cursor = min(cursor + q.config.timeout, deadline) + q.config.retry
                    if await self._until(min(cursor, deadline), call.caller_gone):
                        return "abandon"
                    continue
            # not our turn: app_queue re-checks once a second (RECHECK), in step with the
            # caller's join time (the captures show the rings on that one-second grid)
            ticks = math.floor((cursor - call.joined_at) / RECHECK + 1e-6) + 1
            cursor = call.joined_at + ticks * RECHECK
            await self._until(min(cursor, deadline), call.caller_gone, call.transfer)

    async def _ring(
        self,
        call: CitizenCall,
        q: QueueState,
        members: list[SimMember],
        deadline: float,
        start: float,
    ) -> str:
        if q.config.strategy in ("rrmemory", "rrordered"):
            ordered = sorted(q.members.values(), key=lambda m: m.seq)
            idx = ordered.index(members[0])
            q.rrpos = idx + 1 if idx + 1 < len(ordered) else 0
        legs = [self._dial_member(call, m, start) for m in members]
        call.legs = legs
        waits = [leg.answered for leg in legs] + [call.caller_gone]
        if all(leg.behaviour is None for leg in legs):
            waits += [leg.hangup for leg in legs]  # a person may reject the call
        await self._until(min(start + q.config.timeout, deadline), *waits)
        winner = next((leg for leg in legs if leg.answered.is_set()), None)
        if call.caller_gone.is_set() and winner is None:
            for leg in legs:
                self._cancel_leg(call, leg, ring_no_answer=False)
            return "abandon"
        if winner is None:
            for leg in legs:
                self._cancel_leg(call, leg, ring_no_answer=True)
            return "noanswer"
        call.legs = [winner]
        self._connect(call, q, winner)
        for leg in legs:  # app_queue hangs up the other ringing members after the answer
            if leg is not winner:
                self._cancel_leg(call, leg, ring_no_answer=False)
        return "answered"

    def _dial_member(self, call: CitizenCall, m: SimMember, start: float) -> AgentLeg:
        two = call.ch2
        human = m.interface in self.human or not m.interface.startswith("Local/")
        behaviour = None if human else self._behaviour(m)
        if m.interface.startswith("Local/"):
            target = m.interface[len("Local/") :]
            exten, _, context = target.split("/")[0].partition("@")
            out, inner = self.local_pair(exten, context, two.linkedid)
            self.cel(out, "CHAN_START")
            self.cel(inner, "CHAN_START")
            self.ev_chan("Newchannel", out)
            self.ev_chan("Newchannel", inner)
            out.cid_num, out.cid_name = two.cid_num, two.cid_name
            self.newexten(out, "AppQueue", "(Outgoing Line)")
            self.ev_chan("NewCallerid", out, CID_PRES)
            self.varset(out, "DIALEDPEERNUMBER", target)
            self.varset(inner, "DIALEDPEERNUMBER", target)
            inner.cid_num, inner.cid_name = two.cid_num, two.cid_name
            inner.conn_num, inner.conn_name = two.cid_num, two.cid_name
            self.ev_chan("NewCallerid", inner, CID_PRES)
            self.ev_chan("NewConnectedLine", inner)
            self.emit(
                "LocalBridge",
                CALL,
                out.snapshot("LocalOne")
                + inner.snapshot("LocalTwo")
                + [("Context", context), ("Exten", exten), ("LocalOptimization", "No")],
            )
        else:
            n = f"{next(self._chan):08x}"
            out = self.new_channel(
                f"{m.interface}-{n}", "from-internal", m.interface.split("/")[-1], two.linkedid
            )
            inner = None
            self.cel(out, "CHAN_START")
            self.ev_chan("Newchannel", out)
            self.newexten(out, "AppQueue", "(Outgoing Line)")
            out.cid_num, out.cid_name = two.cid_num, two.cid_name
            self.ev_chan("NewCallerid", out, CID_PRES)
        dial_exten = out.exten
        # AgentCalled carries the dialed channel after its connected line and exten moved on
        dest = Channel(
            **{
                **out.__dict__,
                "conn_num": two.cid_num,
                "conn_name": two.cid_name,
                "exten": two.exten,
                "vars": {},
            }
        )
        self.agent_event("AgentCalled", m.queue, m, two, dest)
        self.emit(
            "DialBegin",
            CALL,
            two.snapshot()
            + out.snapshot("Dest")
            + [("DialString", m.interface if inner else m.interface.split("/", 1)[1])],
        )
        if inner is None:
            self.dsc(m.state_interface, "RINGING")
            self.newstate(out, 5)
        out.exten = two.exten
        out.conn_num, out.conn_name = two.cid_num, two.cid_name
        self.device_busy[m.interface] = "ringing"
        leg = AgentLeg(m, out, inner, behaviour, start)
        self.legs_by_interface[m.interface] = leg
        if inner is not None:
            self.newexten(inner, "NoOp", f"ringing {dial_exten}", 1)
            ring = behaviour.ring if behaviour else None
            self.newexten(inner, "Wait", _num(ring if ring is not None else 99), 2)
        leg.task = self.spawn(self._agent_side(call, leg))
        return leg

    def _behaviour(self, m: SimMember) -> AgentBehaviour:
        if self.behaviour is not None:
            b = self.behaviour(m)
            if b is not None:
                return b
        exten = m.interface[len("Local/") :].split("@")[0]
        ring = float(self.globals.get(f"RING_{exten}", "1"))
        talk = float(self.globals.get(f"TALK_{exten}", "5"))
        return AgentBehaviour(None if ring >= 99 else ring, talk)

    async def _agent_side(self, call: CitizenCall, leg: AgentLeg) -> None:
        """The member's phone: ring, answer, talk, hang up (a human uses PhoneControl)."""
        b = leg.behaviour
        if b is not None:
            if b.ring is None:
                return  # never answers: the queue's ring timeout ends it
            answer_at = leg.rung_at + b.ring
            await self._until(answer_at, leg.hangup)
            if leg.hangup.is_set():
                return
            self._answer_leg(leg)
            await self._until(answer_at + ANSWER_DELAY, leg.hangup)
            if leg.hangup.is_set() or leg.inner is None:
                return
            self.newexten(leg.inner, "Wait", _num(b.talk), 4)
            if await self._until(answer_at + ANSWER_DELAY + b.talk, leg.hangup):
                return
            self.newexten(leg.inner, "Hangup", "", 5)
            call.agent_gone.set()

    def _answer_leg(self, leg: AgentLeg) -> None:
        """The member's phone goes off-hook (dialplan Answer() or the console's Answer)."""
        if leg.answered.is_set() or leg.hangup.is_set():
            return
        leg.answered.set()

    def _connect(self, call: CitizenCall, q: QueueState, leg: AgentLeg) -> None:
        two, out, inner, m = call.ch2, leg.out, leg.inner, leg.member
        now = self.clock.now()
        if inner is not None:
            self.newexten(inner, "Answer", "", 3)
            self.cel(inner, "ANSWER", app="Answer", appdata="")
            self.newstate(inner, 6)
        self.cel(out, "ANSWER")
        self.device_busy[m.interface] = "inuse"
        self.dsc_member(m)
        self.member_status_events(m.interface)
        self.newstate(out, 6)
        self.newexten(out, "AppQueue", "(Outgoing Line)", 1)
        out.conn_num, out.conn_name = two.cid_num, two.cid_name
        self.ev_chan("NewConnectedLine", out)
        self.emit(
            "DialEnd", CALL, two.snapshot() + out.snapshot("Dest") + [("DialStatus", "ANSWER")]
        )
        self.dsc_member(m)
        self._leave(call, q)
        wait = now - call.joined_at
        self.varset(two, "QUEUEWAIT", str(int(wait)))
        self.varset(two, "QUEUEWAIT_MS", str(int(wait * 1000)))
        ring = now - leg.rung_at
        call.hold = wait
        self.agent_event("AgentConnect", q.config.name, m, two, out,
                         [("HoldTime", str(int(wait))), ("RingTime", str(round(ring)))])
        self.qlog(call, q.config.name, m.name, "CONNECT", int(wait), out.uniqueid, round(ring))
        bridge = SimBridge(str(uuid.uuid4()))
        call.bridge, call.connected_at = bridge, now
        self.emit("BridgeCreate", CALL, bridge.snapshot())
        extra = f'{{"bridge_id":"{bridge.uniqueid}","bridge_technology":"simple_bridge"}}'
        self.cel(out, "BRIDGE_ENTER", extra=extra)
        self.bridge_enter(bridge, out)
        self.bridge_enter(bridge, two)
        self.cel(two, "BRIDGE_ENTER", peer=out.name, extra=extra)
        self.varset(out, "BRIDGEPEER", two.name)
        self.varset(two, "BRIDGEPEER", out.name)
        call.where = "bridged"

    def _cancel_leg(self, call: CitizenCall, leg: AgentLeg, *, ring_no_answer: bool) -> None:
        two, out, inner, m = call.ch2, leg.out, leg.inner, leg.member
        leg.hangup.set()
        if ring_no_answer:
            ring_ms = int((self.clock.now() - leg.rung_at) * 1000)
            self.agent_event("AgentRingNoAnswer", m.queue, m, two, out,
                             [("RingTime", str(ring_ms))])
            self.emit(
                "DialEnd",
                CALL,
                two.snapshot() + out.snapshot("Dest") + [("DialStatus", "NOANSWER")],
            )
        # a cancelled dial reports CANCEL twice (app_queue, then the dial's own end), a ring
        # timeout NOANSWER then CANCEL (ami-agent-ringnoanswer.raw, ami-burst-40.raw)
        for _ in range(1 if ring_no_answer else 2):
            self.emit(
                "DialEnd", CALL, [*two.snapshot(), *out.snapshot("Dest"), ("DialStatus", "CANCEL")]
            )
        if inner is not None:
            self.ev_chan("HangupRequest", inner, [("Cause", "0")])
        self.hangup_event(out, 0)
        self.ev_chan("NewConnectedLine", out)
        if inner is not None:
            self.ev_chan("SoftHangupRequest", inner, [("Cause", "16")])
        self.cel(out, "HANGUP", extra=hangup_extra(0, "", ""))
        self.chan_end(out)
        if inner is not None:
            self.cel(inner, "HANGUP", app="", appdata="", extra=hangup_extra(0, "", ""))
            self.chan_end(inner, app="", appdata="")
            self.hangup_event(inner, 0)
        call.tried.append(out.name)
        self.device_busy.pop(m.interface, None)
        self.legs_by_interface.pop(m.interface, None)
        self.dsc_member(m)
        self.dsc_member(m)

    async def _talk(self, call: CitizenCall, q: QueueState, start: float) -> str:
        leg = call.legs[0]
        await self._wait(None, call.agent_gone, call.caller_gone, leg.hangup, call.transfer)
        if call.transfer.is_set() and not call.caller_gone.is_set():
            self._transfer_out(call, q, leg)
            return "transfer"
        if call.caller_gone.is_set() and not call.agent_gone.is_set() and not leg.hangup.is_set():
            self._complete(call, q, leg, by="caller")
        else:
            self._complete(call, q, leg, by="agent")
        return "done"

    def agent_event(
        self, name: str, queue: str, m: SimMember, agent: Channel, caller: Channel,
        extra: Sequence[tuple[str, str]] = (),
    ) -> None:
        """An app_queue Agent* event on the agent's channel, the caller as Dest*."""
        self.ev_chan(
            name,
            agent,
            [
                *caller.snapshot("Dest"),
                ("Queue", queue),
                ("Interface", m.interface),
                ("MemberName", m.name),
                *extra,
            ],
            AGENT,
        )

    def agent_complete(
        self, q: QueueState, m: SimMember, agent: Channel, caller: Channel, *, hold: float,
        talk: float, reason: str,
    ) -> None:
        """AgentComplete (reason: caller, agent, transfer)."""
        self.agent_event("AgentComplete", q.config.name, m, agent, caller, [
            ("HoldTime", str(int(hold))), ("TalkTime", str(int(talk))), ("Reason", reason)])

    def _transfer_out(self, call: CitizenCall, q: QueueState, leg: AgentLeg) -> None:
        """The operator sends the caller elsewhere: the member's call completes with Reason
        transfer, its channels hang up, the caller leaves the bridge and runs on."""
        two, out, inner, m = call.ch2, leg.out, leg.inner, leg.member
        bridge = call.bridge
        assert bridge is not None
        now = self.clock.now()
        talk = now - call.connected_at
        context, exten, blind = call.transfer_to
        extra = f'{{"bridge_id":"{bridge.uniqueid}","bridge_technology":"simple_bridge"}}'
        leg.hangup.set()
        if blind:
            bridge_fields = [
                (f"TransfererBridge{k[len('Bridge') :]}", v) for k, v in bridge.snapshot()
            ]
            self.emit(
                "BlindTransfer",
                CALL,
                [
                    ("Result", "Success"),
                    *out.snapshot("Transferer"),
                    *bridge_fields,
                    *two.snapshot("Transferee"),
                    ("IsExternal", "Yes"),
                    ("Context", context),
                    ("Extension", exten),
                ],
            )
        self.agent_complete(q, m, two, out, hold=call.hold, talk=talk, reason="transfer")
        # app_queue logs BLINDTRANSFER for a blind transfer; a Redirect is logged the same way
        # here (the simulator's simplification: both take the caller to exten@context)
        self.qlog(call, q.config.name, m.name, "BLINDTRANSFER", exten, context, int(call.hold),
                  int(talk), call.original_position)
        self.varset(out, "BRIDGEPEER", "")
        self.varset(two, "BRIDGEPEER", "")
        self.cel(two, "BRIDGE_EXIT", extra=extra)
        self.bridge_leave(bridge, two)
        self.cel(out, "BRIDGE_EXIT", extra=extra)
        self.bridge_leave(bridge, out)
        self.emit("BridgeDestroy", CALL, bridge.snapshot())
        self.ev_chan("SoftHangupRequest", out, [("Cause", "16")])
        self.hangup_event(out, 16)
        self.cel(out, "HANGUP", extra=hangup_extra(16, "", ""))
        self.chan_end(out)
        if inner is not None:
            self.ev_chan("SoftHangupRequest", inner, [("Cause", "16")])
            self.hangup_event(inner, 16)
            self.emit(
                "Cdr",
                CDR,
                cdr(inner, now, last_app=inner.app, last_data=inner.appdata, answered=out.answered),
            )
            self.cel(inner, "HANGUP", app="", appdata="", extra=hangup_extra(16, "", ""))
            self.chan_end(inner, app="", appdata="")
        q.completed += 1
        m.calls_taken += 1
        m.last_call = int(now)
        m.wrap_until = now + q.config.wrapuptime
        self.device_busy.pop(m.interface, None)
        self.legs_by_interface.pop(m.interface, None)
        self.dsc_member(m)
        self.member_status_events(m.interface)
        call.legs = []
        call.tried = []
        call.agent_gone.clear()

    def _complete(self, call: CitizenCall, q: QueueState, leg: AgentLeg, by: str) -> None:
        two, out, inner, m = call.ch2, leg.out, leg.inner, leg.member
        bridge = call.bridge
        assert bridge is not None
        now = self.clock.now()
        talk = now - call.connected_at
        hold = call.hold
        leg.hangup.set()
        extra = f'{{"bridge_id":"{bridge.uniqueid}","bridge_technology":"simple_bridge"}}'
        if by == "agent":
            if inner is not None:
                self.cel(
                    inner,
                    "HANGUP",
                    app="",
                    appdata="",
                    extra=hangup_extra(16, "dialplan/builtin", ""),
                )
                self.chan_end(inner, app="", appdata="")
                self.ev_chan("SoftHangupRequest", inner, [("Cause", "16")])
                self.ev_chan("HangupRequest", out, [("Cause", "16")])
                self.hangup_event(inner, 16)
            else:
                self.ev_chan("SoftHangupRequest", out, [("Cause", "16")])
            self.varset(out, "BRIDGEPEER", "")
            self.varset(two, "BRIDGEPEER", "")
            self.bridge_leave(bridge, out)
            self.hangup_event(out, 16)
            if inner is not None:
                self.emit(
                    "Cdr",
                    CDR,
                    cdr(inner, now, last_app="Hangup", answered=out.answered, start=inner.created),
                )
        else:
            self.ev_chan("HangupRequest", out, [("Cause", "16")])
            self.varset(out, "BRIDGEPEER", "")
            self.varset(two, "BRIDGEPEER", "")
            self.bridge_leave(bridge, out)
            self.hangup_event(out, 16)
            if inner is not None:
                self.ev_chan("SoftHangupRequest", inner, [("Cause", "16")])
                self.hangup_event(inner, 16)
                self.emit(
                    "Cdr",
                    CDR,
                    cdr(
                        inner,
                        now,
                        last_app=inner.app,
                        last_data=inner.appdata,
                        answered=out.answered,
                    ),
                )
                self.cel(inner, "HANGUP", app="", appdata="", extra=hangup_extra(16, "", ""))
                self.chan_end(inner, app="", appdata="")
        q.completed += 1
        q.holdtime = (q.holdtime * 3 + int(hold)) // 4
        q.talktime = (q.talktime * 3 + int(talk)) // 4
        if hold <= q.config.servicelevel:
            q.completed_in_sl += 1
        m.calls_taken += 1
        m.last_call = int(now)
        m.wrap_until = now + q.config.wrapuptime
        self.agent_complete(q, m, two, out, hold=hold, talk=talk, reason=by)
        self.qlog(call, q.config.name, m.name,
                  "COMPLETEAGENT" if by == "agent" else "COMPLETECALLER", int(hold), int(talk),
                  call.original_position)
        self.cel(out, "BRIDGE_EXIT", peer=two.name, extra=extra)
        self.cel(out, "HANGUP", extra=hangup_extra(16, "", ""))
        self.chan_end(out)
        self.cel(two, "BRIDGE_EXIT", extra=extra)
        self.bridge_leave(bridge, two)
        self.varset(two, "ANSWEREDTIME", str(int(talk)))
        self.varset(two, "ANSWEREDTIME_MS", str(int(talk * 1000)))
        self.varset(two, "DIALEDTIME", str(int(now - two.created)))
        self.varset(two, "DIALEDTIME_MS", str(int((now - two.created) * 1000)))
        self.device_busy.pop(m.interface, None)
        self.legs_by_interface.pop(m.interface, None)
        self.dsc_member(m)
        self.dsc_member(m)
        self.ev_chan("SoftHangupRequest", two, [("Cause", "16")])
        self.emit("BridgeDestroy", CALL, bridge.snapshot())
        one = call.ch1
        if not one.dead:
            self.ev_chan("HangupRequest", one, [("Cause", "16")])
        self.hangup_event(two, 16)
        self.dsc_local("Local/311@from-citizen")
        self._caller_cdrs(call, out.name)
        self.member_status_events(m.interface)
        call.done.set()
        if not one.dead:
            self.ev_chan("SoftHangupRequest", one, [("Cause", "16")])
            self.hangup_event(one, 16)
            self.dsc_local("Local/311@from-citizen")
        self.cel(two, "APP_END")
        self.cel(two, "HANGUP", app="", appdata="", extra=hangup_extra(16, "", "ANSWER"))
        self.chan_end(two, app="", appdata="")
        if by == "agent":
            self.cel(one, "HANGUP", extra=hangup_extra(16, "", ""))
            self.chan_end(one)
            self.emit(
                "Cdr",
                CDR,
                cdr(
                    one, now, last_app="Wait", last_data=_num(call.patience), answered=one.answered
                ),
            )
        call.outcome = "answered"
        call.where = "ended"

    # ---- actions on live channels ---------------------------------------------------------
    def phone_answer(self, interface: str) -> bool:
        leg = self.legs_by_interface.get(interface)
        if leg is None or leg.answered.is_set():
            return False
        self._answer_leg(leg)
        return True

    def phone_hangup(self, interface: str) -> bool:
        leg = self.legs_by_interface.get(interface)
        if leg is None:
            return False
        leg.hangup.set()
        return True

    def ringing(self, interface: str) -> bool:
        return self.device_busy.get(interface) == "ringing"

    def hangup_channel(self, name: str) -> bool:
        """AMI Hangup: the citizen's channel ends the call; a member's channel ends the talk."""
        for call in self.calls:
            if call.where == "ended":
                continue
            if name in (call.ch1.name, call.ch2.name):
                if not call.ch1.dead:
                    self.caller_hangup(call)
                else:
                    call.caller_gone.set()
                return True
            for leg in call.legs:
                if name in (leg.out.name, leg.inner.name if leg.inner else ""):
                    leg.hangup.set()
                    call.agent_gone.set()
                    return True
        return False

    def transfer(self, channel: str, context: str, exten: str, blind: bool = False) -> bool:
        """Redirect (of the caller's channel) or BlindTransfer (of the operator's channel):
        the caller goes to `exten@context`. Redirecting the operator's own channel ends the
        operator's side. False when the channel is in no call."""
        for call in self.calls:
            if call.where == "ended":
                continue
            agent_chans = {c.name for leg in call.legs for c in (leg.out, leg.inner) if c}
            if channel in (call.ch1.name, call.ch2.name) or (blind and channel in agent_chans):
                if call.where not in ("queue", "bridged"):
                    log.info("transfer of %s during the IVR ignored", channel)
                    return True
                call.transfer_to = (context, exten, blind)
                call.transfer.set()
                return True
            if channel in agent_chans:
                call.agent_gone.set()
                return True
        return False

    def shutdown(self, restart: bool = True) -> None:
        """`core restart now`: every channel is hung up (app_queue still reports AgentComplete),
        `Shutdown` goes out, dynamic members are forgotten (persistentmembers = no)."""
        for call in self.calls:
            if call.where == "ended":
                continue
            if call.where == "bridged" and call.legs:
                self._shutdown_bridged(call)
            else:
                for ch in (call.ch1, call.ch2):
                    if not ch.dead:
                        self.ev_chan("SoftHangupRequest", ch, [("Cause", "4")])
                        self.hangup_event(ch, 16)
                call.where = "ended"
            call.done.set()
        for task in list(self._tasks):
            task.cancel()
        self.emit(
            "Shutdown",
            "system,all",
            [("Shutdown", "Cleanly"), ("Restart", "True" if restart else "False")],
        )
        for q in self.queues.values():
            q.members.clear()
            q.callers.clear()
        self.device_busy.clear()
        self.legs_by_interface.clear()
        self.channels.clear()
        self.booted = self.clock.now()

    def _shutdown_bridged(self, call: CitizenCall) -> None:
        one, two = call.ch1, call.ch2
        leg = call.legs[0]
        out, inner, m = leg.out, leg.inner, leg.member
        q = self.queues[m.queue]
        bridge = call.bridge
        assert bridge is not None
        now = self.clock.now()
        talk = now - call.connected_at
        extra = f'{{"bridge_id":"{bridge.uniqueid}","bridge_technology":"simple_bridge"}}'
        for ch in (one, two, out, inner):
            if ch is not None:
                self.ev_chan("SoftHangupRequest", ch, [("Cause", "4")])
        self.varset(two, "BRIDGEPEER", "")
        self.ev_chan("SoftHangupRequest", one, [("Cause", "16")])
        self.varset(out, "BRIDGEPEER", "")
        if inner is not None:
            self.ev_chan("SoftHangupRequest", inner, [("Cause", "16")])
            self.ev_chan("HangupRequest", out, [("Cause", "0")])
            self.hangup_event(inner, 0)
            self.emit(
                "Cdr",
                CDR,
                cdr(inner, now, last_app="Wait", last_data=inner.appdata, answered=out.answered),
            )
            self.cel(inner, "HANGUP", app="", appdata="", extra=hangup_extra(0, "", ""))
            self.chan_end(inner, app="", appdata="")
        self.cel(one, "HANGUP", extra=hangup_extra(0, "", ""))
        self.chan_end(one)
        self.emit(
            "Cdr", CDR, cdr(one, now, last_app="Wait", last_data=one.appdata, answered=one.answered)
        )
        self._caller_cdrs(call, out.name)
        self.ev_chan("HangupRequest", two, [("Cause", "0")])
        self.agent_complete(q, m, two, out, hold=call.hold, talk=talk, reason="caller")
        self.qlog(call, q.config.name, m.name, "COMPLETECALLER", int(call.hold), int(talk),
                  call.original_position)
        self.hangup_event(one, 0)
        self.bridge_leave(bridge, two)
        self.varset(two, "ANSWEREDTIME", str(int(talk)))
        self.varset(two, "ANSWEREDTIME_MS", str(int(talk * 1000)))
        self.varset(two, "DIALEDTIME", str(int(now - two.created)))
        self.varset(two, "DIALEDTIME_MS", str(int((now - two.created) * 1000)))
        self.ev_chan("SoftHangupRequest", two, [("Cause", "16")])
        self.hangup_event(two, 16)
        self.cel(two, "BRIDGE_EXIT", extra=extra)
        self.cel(two, "APP_END")
        self.cel(two, "HANGUP", app="", appdata="", extra=hangup_extra(16, "", "ANSWER"))
        self.chan_end(two, app="", appdata="")
        self.cel(out, "BRIDGE_EXIT", extra=extra)
        self.cel(out, "HANGUP", extra=hangup_extra(16, "", ""))
        self.chan_end(out)
        self.device_busy.pop(m.interface, None)
        self.dsc_member(m)
        self.dsc_local("Local/311@from-citizen")
        self.dsc_local("Local/311@from-citizen")
        self.bridge_leave(bridge, out)
        self.emit("BridgeDestroy", CALL, bridge.snapshot())
        self.hangup_event(out, 16)
        self.dsc_member(m)
        m.calls_taken += 1
        m.last_call = int(now)
        self.member_status_events(m.interface)
        call.outcome = "answered"
        call.where = "ended"

    def live_channels(self) -> list[Channel]:
        return list(self.channels.values())


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
