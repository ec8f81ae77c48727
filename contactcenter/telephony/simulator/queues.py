"""Queues and their members, as app_queue keeps them: queues.conf / queuerules.conf (read at
start and on every QueueReload), QueueMemberAdded/Removed/Pause/Status, the members' device states
(ringing, in use) and the `Queue:<name>_avail` state. How a caller waits and is connected is
app_queue.py's."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

from ..queues_conf import (
    QUEUES_FILE,
    RULES_FILE,
    PenaltyChange,
    parse_config,
    parse_rules,
    queue_sections,
)
from .channels import SimChannels
from .core import AGENT, SimCore
from .model import STRATEGIES, AgentLeg, QueueState, SimMember, SimPbxError, SimQueueConfig
from .wire import queue_bucket

log = logging.getLogger(__name__)

# what QueueReload answers when the configuration cannot be read (app_queue's wording)
RELOAD_ERROR = "Error encountered while reloading queue"


class SimQueues:
    """Owns `queues` (by name), the queue rules, the members' devices (`device_busy`, the
    interfaces people answer, the leg ringing or talking on each interface)."""

    def __init__(self, core: SimCore, chans: SimChannels, config_dir: Path | None) -> None:
        self.core, self.chans = core, chans
        self.queues: dict[str, QueueState] = {}
        # Asterisk's config directory: queues.conf (or, alone, the generated file) and
        # queuerules.conf, read at start and on every QueueReload; extensions.conf's [globals]
        self.config_dir = config_dir
        self.rules: dict[str, list[PenaltyChange]] = {}
        self.device_busy: dict[str, str] = {}  # interface -> "ringing" | "inuse"
        self.human: set[str] = set()  # interfaces answered by people (PhoneControl)
        self.legs_by_interface: dict[str, AgentLeg] = {}
        self._member_seq = itertools.count()

    def dsc_member(self, m: SimMember) -> None:
        if m.state_interface.startswith("Local/"):
            self.chans.dsc_local(m.state_interface)
        else:
            busy = self.device_busy.get(m.interface)
            self.core.dsc(
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
                self.core.dsc(f"Queue:{q.config.name}_avail", state)

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
        self.core.globals.update(
            {k: v for k, v in globals_.items() if k.startswith("LANG_PENALTY_")})

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
            and self.core.clock.now() >= m.wrap_until
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
        now = int(self.core.clock.now())
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
        self.core.emit("QueueMemberAdded", AGENT, m.headers(self.member_status(m)))
        return m

    def queue_remove(self, queue: str, interface: str) -> None:
        q = self.queues.get(queue)
        if q is None:
            raise SimPbxError("Unable to remove interface: No such queue")
        m = q.members.pop(interface, None)
        if m is None:
            raise SimPbxError("Unable to remove interface: Not there")
        self.core.emit("QueueMemberRemoved", AGENT, m.headers(self.member_status(m)))

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
            m.last_pause = int(self.core.clock.now()) if paused or m.last_pause else 0
            self.core.dsc(f"Queue:{m.queue}_pause_{interface}", "INUSE" if paused else "NOT_INUSE")
            self.update_avail(interface)
            self.core.emit("QueueMemberPause", AGENT, m.headers(self.member_status(m)))

    def member_status_events(self, interface: str) -> None:
        for q in self.ordered_queues():
            m = q.members.get(interface)
            if m is not None:
                self.core.emit("QueueMemberStatus", AGENT, m.headers(self.member_status(m)))

    def has_usable(self, q: QueueState) -> bool:
        return any(not m.paused for m in q.members.values())
