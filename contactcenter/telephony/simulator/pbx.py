"""The simulated Asterisk: a façade over its parts, one concern each.

Each citizen call is an originated `Local/311@from-citizen` pair (as in the captures): `;1` runs
`citizen-dialer` (wait, key digits, wait the caller's patience, hang up), `;2` answers, runs the
IVR over FastAGI, then `Queue(${QUEUE},t,,,60)`. Members are `Local/200N@agents/n` (simulated:
ring for a delay, answer, talk, hang up) or a human device such as `PJSIP/1001` that rings until
`PhoneControl.answer()`. Every step writes the events Asterisk 22 writes, in its order.

The parts: core.py (clock, event stream, globals, tasks), channels.py (channels and bridges),
queues.py (queues.conf, members, device states), dialplan.py (the citizen's legs, the IVR hand-off
and the dialplan around Queue()), app_queue.py (waiting, strategy, ringing members), bridged.py
(connected calls and how they end), callbacks.py (calls the product places), model.py (the data).
The AMI actions are ami_server.py's; the FastAGI client is agi_client.py's.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ..queues_conf import PenaltyChange
from .app_queue import BehaviourFn, SimAppQueue
from .bridged import SimBridgedCalls
from .callbacks import OUTBOUND_CONTEXT, SimCallbacks
from .channels import SimChannels
from .clock import VirtualClock
from .core import Listener, SimCore
from .dialplan import SimDialplan
from .model import (
    AgentBehaviour,
    CitizenCall,
    QueueState,
    SimMember,
    SimPbxError,
    SimQueueConfig,
)
from .queues import SimQueues
from .records import AsteriskRecords
from .wire import Channel

__all__ = [
    "OUTBOUND_CONTEXT",
    "AgentBehaviour",
    "CitizenCall",
    "SimMember",
    "SimPbx",
    "SimPbxError",
    "SimQueueConfig",
]

log = logging.getLogger(__name__)


class SimPbx:
    """One simulated Asterisk: builds the parts, wires them, and offers what the AMI server,
    the phones, the CLI and the tests use (by delegation: each name lives in one part)."""

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
        self.core = SimCore(clock or VirtualClock(), seed)
        self.chans = SimChannels(self.core)
        self.qs = SimQueues(self.core, self.chans,
                            Path(config_dir) if config_dir is not None else None)
        self.dialplan = SimDialplan(
            self.core, self.chans, self.qs, agi_host=agi_host, agi_port=agi_port,
            agi_path=agi_path, sound_files=sound_files,
            sounds_dir=Path(sounds_dir) if sounds_dir is not None else None,
            fallback_queue=fallback_queue,
        )
        self.app_queue = SimAppQueue(self.core, self.chans, self.qs)
        self.bridged = SimBridgedCalls(self.core, self.chans, self.qs, self.app_queue,
                                       self.dialplan)
        self.dialplan.app_queue = self.app_queue
        self.app_queue.dialplan, self.app_queue.bridged = self.dialplan, self.bridged
        self.callbacks = SimCallbacks(self.core, self.chans, self.dialplan)
        self.booted = self.core.clock.now()
        self.ami_port = 0  # set by the AMI server that listens for this PBX
        if self.qs.config_dir is not None:
            self.qs.reload_config()
        # the parts' operations, by their owners' names
        core, qs, dialplan = self.core, self.qs, self.dialplan
        self.emit, self.varset, self.spawn, self.close = (
            core.emit, core.varset, core.spawn, core.close)
        self.live_channels = self.chans.live_channels
        self.reload_config, self.add_queue, self.ordered_queues = (
            qs.reload_config, qs.add_queue, qs.ordered_queues)
        self.queue_add, self.queue_remove, self.queue_pause = (
            qs.queue_add, qs.queue_remove, qs.queue_pause)
        self.member_status, self.available = qs.member_status, qs.available
        self.originate_citizen = dialplan.originate_citizen
        self.queue_app = self.app_queue.queue_app
        self.originate_outbound = self.callbacks.originate_outbound

    # ---- the parts' state, by the names the tests and tools use ----------------------------
    @property
    def clock(self) -> VirtualClock:
        return self.core.clock

    @property
    def listeners(self) -> list[Listener]:
        return self.core.listeners

    @property
    def events(self) -> int:
        return self.core.events

    @property
    def globals(self) -> dict[str, str]:
        return self.core.globals

    @property
    def rng(self) -> random.Random:
        return self.core.rng

    @property
    def records(self) -> AsteriskRecords | None:
        return self.core.records

    @records.setter
    def records(self, value: AsteriskRecords | None) -> None:
        self.core.records = value

    @property
    def channels(self) -> dict[str, Channel]:
        return self.chans.channels

    @property
    def queues(self) -> dict[str, QueueState]:
        return self.qs.queues

    @property
    def rules(self) -> dict[str, list[PenaltyChange]]:
        return self.qs.rules

    @property
    def human(self) -> set[str]:
        return self.qs.human

    @property
    def config_dir(self) -> Path | None:
        return self.qs.config_dir

    @config_dir.setter
    def config_dir(self, value: Path | None) -> None:
        self.qs.config_dir = value

    @property
    def calls(self) -> list[CitizenCall]:
        return self.dialplan.calls

    @property
    def played(self) -> deque[tuple[str, str]]:
        return self.dialplan.played

    @property
    def agi_port(self) -> int:
        return self.dialplan.agi_port

    @agi_port.setter
    def agi_port(self, value: int) -> None:
        self.dialplan.agi_port = value

    @property
    def fallback_queue(self) -> str | None:
        return self.dialplan.fallback_queue

    @fallback_queue.setter
    def fallback_queue(self, value: str | None) -> None:
        self.dialplan.fallback_queue = value

    @property
    def behaviour(self) -> BehaviourFn | None:
        return self.app_queue.behaviour

    @behaviour.setter
    def behaviour(self, value: BehaviourFn | None) -> None:
        self.app_queue.behaviour = value

    @property
    def citizen_keys(self) -> dict[str, str]:
        return self.callbacks.citizen_keys

    @property
    def citizen_default(self) -> Callable[[str], str | None] | None:
        return self.callbacks.citizen_default

    @citizen_default.setter
    def citizen_default(self, value: Callable[[str], str | None] | None) -> None:
        self.callbacks.citizen_default = value

    @property
    def outbound(self) -> list[tuple[str, str]]:
        return self.callbacks.outbound

    # ---- actions on live channels (phones, AMI Hangup/Redirect/BlindTransfer, restart) -----
    def phone_answer(self, interface: str) -> bool:
        leg = self.qs.legs_by_interface.get(interface)
        if leg is None or leg.answered.is_set():
            return False
        self.app_queue.answer_leg(leg)
        return True

    def phone_hangup(self, interface: str) -> bool:
        leg = self.qs.legs_by_interface.get(interface)
        if leg is None:
            return False
        leg.hangup.set()
        return True

    def ringing(self, interface: str) -> bool:
        return self.qs.device_busy.get(interface) == "ringing"

    def hangup_channel(self, name: str) -> bool:
        """AMI Hangup: the citizen's channel ends the call; a member's channel ends the talk."""
        for call in self.dialplan.calls:
            if call.where == "ended":
                continue
            if name in (call.ch1.name, call.ch2.name):
                if not call.ch1.dead:
                    self.dialplan.caller_hangup(call)
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
        for call in self.dialplan.calls:
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
        for call in self.dialplan.calls:
            if call.where == "ended":
                continue
            if call.where == "bridged" and call.legs:
                self.bridged.shutdown_bridged(call)
            else:
                for ch in (call.ch1, call.ch2):
                    if not ch.dead:
                        self.core.ev_chan("SoftHangupRequest", ch, [("Cause", "4")])
                        self.chans.hangup_event(ch, 16)
                call.where = "ended"
            call.done.set()
        self.core.cancel_tasks()
        self.core.emit(
            "Shutdown",
            "system,all",
            [("Shutdown", "Cleanly"), ("Restart", "True" if restart else "False")],
        )
        for q in self.qs.queues.values():
            q.members.clear()
            q.callers.clear()
        self.qs.device_busy.clear()
        self.qs.legs_by_interface.clear()
        self.chans.channels.clear()
        self.booted = self.core.clock.now()
