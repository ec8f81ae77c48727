"""The simulator's data: a queue's configuration and state, a member, a citizen's call and the
legs the queue dials for it. Plain dataclasses; the parts of `SimPbx` own the behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..queues_conf import PenaltyChange
from .wire import Channel, Headers, SimBridge, member_bucket

STRATEGIES = ("ringall", "rrmemory", "leastrecent", "linear", "fewestcalls", "random",
              "rrordered", "wrandom")

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

    def headers(self, status: int, *, location_key: str = "Interface") -> Headers:
        """The member's fields in QueueMember* events; `status` is its device's state."""
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
            ("Status", str(status)),
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
