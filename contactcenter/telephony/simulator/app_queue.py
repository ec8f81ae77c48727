"""app_queue: a caller in Queue() — QueueCallerJoin/Leave/Abandon, the strategy and the
penalty window (QUEUE_MIN/MAX_PENALTY, queue rules) that choose whom to ring, the ring timeout and
retry, the members' legs (a simulated `Local/200N@agents` or a person's device) and
AgentCalled/AgentRingNoAnswer; what happens once a member answers is bridged.py's."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .channels import SimChannels
from .core import AGENT, ANSWER_DELAY, CALL, CID_PRES, SimCore, fmt_num
from .model import AgentBehaviour, AgentLeg, CitizenCall, QueueState, SimMember
from .queues import SimQueues
from .wire import Channel, hangup_extra

if TYPE_CHECKING:
    from .bridged import SimBridgedCalls
    from .dialplan import SimDialplan

RECHECK = 1.0  # seconds between app_queue's is_our_turn checks

BehaviourFn = Callable[[SimMember], AgentBehaviour | None]


class SimAppQueue:
    """Owns the waiting callers' progress and the ringing of members; `behaviour` says how a
    simulated member's phone behaves (default: the [globals] RING_/TALK_ of its extension)."""

    dialplan: SimDialplan  # set by SimPbx
    bridged: SimBridgedCalls  # set by SimPbx

    def __init__(self, core: SimCore, chans: SimChannels, qs: SimQueues) -> None:
        self.core, self.chans, self.qs = core, chans, qs
        self.behaviour: BehaviourFn | None = None

    def in_window(self, call: CitizenCall, m: SimMember) -> bool:
        return ((call.max_penalty is None or m.penalty <= call.max_penalty)
                and (call.min_penalty is None or m.penalty >= call.min_penalty))

    def _follow_rule(self, call: CitizenCall) -> None:
        # app_queue: `while (qe.pr && (time(NULL) - qe.start) > qe.pr->time)` (whole seconds)
        while call.rule and int(self.core.clock.now() - call.joined_at) > call.rule[0].after:
            step = call.rule.pop(0)
            call.max_penalty, call.min_penalty = step.max_penalty, step.min_penalty

    async def queue_app(self, call: CitizenCall, queue: str, prio: int) -> None:
        two = call.ch2
        # the queue's own maximum wait when the IVR set one (QUEUE_TIMEOUT), else the
        # captures' dialplan's 60 s
        raw = two.vars.get("QUEUE_TIMEOUT", "")
        timeout = int(raw) if raw.isdigit() and int(raw) > 0 else 60
        data = f"{queue},t,,,{timeout}"
        self.core.newexten(two, "Queue", data, prio)
        dp = self.dialplan
        self.core.cel(
            two,
            "APP_END",
            app="AGI",
            appdata=f"agi://{dp.agi_host}:{dp.agi_port}/{dp.agi_path}",
        )
        await self._queue_body(call, queue, prio, timeout)

    async def _queue_body(self, call: CitizenCall, queue: str, prio: int,
                          timeout: float = 60) -> None:
        two = call.ch2
        q = self.qs.queues.get(queue)
        for var in ("ANSWEREDTIME", "ANSWEREDTIME_MS"):
            self.core.varset(two, var, "")
        self.core.cel(two, "APP_START")
        for var in ("DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS"):
            self.core.varset(two, var, "")
        start = self.core.clock.now()
        if q is None or (not q.config.joinempty and not self.qs.has_usable(q)):
            self.core.varset(two, "QUEUESTATUS", "JOINEMPTY" if q else "UNKNOWN")
            await self.dialplan.after_queue(call, prio)
            return
        call.where, call.queue, call.joined_at = "queue", queue, start
        q.callers.append(call)
        call.position = call.original_position = len(q.callers)
        if len(q.callers) == 1:
            self.core.dsc(f"Queue:{queue}", "RINGING")
        self.core.qlog(call, queue, "NONE", "ENTERQUEUE", "", two.cid_num, call.position)
        self.core.ev_chan(
            "QueueCallerJoin",
            two,
            [("Queue", queue), ("Position", str(call.position)), ("Count", str(len(q.callers)))],
            AGENT,
        )
        deadline = start + timeout
        result = await self._wait_in_queue(call, q, deadline)
        if result == "transfer":
            self.leave(call, q)
            await self._transferred(call)
            return
        if result == "abandon":
            self._abandon(call, q)
            return
        if result in ("timeout", "leaveempty"):
            # As app_queue.c: record_abandoned() (ABANDONED=TRUE, QueueCallerAbandon) runs for
            # a timeout and leavewhenempty too; then leave_queue() and QUEUESTATUS.
            pos = self._abandon_event(call, q, self.core.clock.now() - start)
            self.core.qlog(call, queue, "NONE",
                           "EXITWITHTIMEOUT" if result == "timeout" else "EXITEMPTY",
                           pos, call.original_position, int(self.core.clock.now() - start))
            self.leave(call, q)
            self.core.varset(two, "QUEUESTATUS", "TIMEOUT" if result == "timeout" else "LEAVEEMPTY")
            call.outcome = "timed_out"
            fallback = self.dialplan.fallback_queue
            if fallback and fallback != queue and fallback in self.qs.queues:
                self.core.cel(two, "APP_END")
                self.core.newexten(two, "NoOp", "IVR fallback", 1, exten="fallback")
                self.core.varset(two, "QUEUE", fallback)
                self.core.newexten(two, "Queue", f"{fallback},t,,,60", 3)
                await self._queue_body(call, fallback, 3)
                return
            await self.dialplan.after_queue(call, prio)
            return
        if await self._talk(call, q) == "transfer":
            await self._transferred(call)

    async def _transferred(self, call: CitizenCall) -> None:
        """The caller, redirected or blind-transferred, runs the target extension: a queue in
        the `transfers` context (as config/extensions.conf), anything else hangs up."""
        context, exten, _blind = call.transfer_to
        call.transfer.clear()
        two = call.ch2
        self.core.cel(two, "APP_END")
        call.outcome = "transferred"
        if context == "transfers" and exten in self.qs.queues:
            self.core.newexten(two, "Queue", f"{exten},t,,,60", 1, exten=exten, context=context)
            await self._queue_body(call, exten, 1)
            return
        self.core.newexten(two, "Hangup", "", 1, exten=exten, context=context)
        await self.dialplan.after_queue(call, 0, app_end=False)

    def leave(self, call: CitizenCall, q: QueueState) -> None:
        pos = q.callers.index(call) + 1
        q.callers.remove(call)
        if not q.callers:
            self.core.dsc(f"Queue:{q.config.name}", "NOT_INUSE")
        self.core.ev_chan(
            "QueueCallerLeave",
            call.ch2,
            [("Queue", q.config.name), ("Position", str(pos)), ("Count", str(len(q.callers)))],
            AGENT,
        )
        self.core.varset(call.ch2, "QUEUEPOSITION", str(pos))
        for i, other in enumerate(q.callers):
            other.position = i + 1

    def _abandon(self, call: CitizenCall, q: QueueState) -> None:
        two = call.ch2
        now = self.core.clock.now()
        wait = now - call.joined_at
        self.core.varset(two, "QUEUEWAIT", str(int(wait)))
        self.core.varset(two, "QUEUEWAIT_MS", str(int(wait * 1000)))
        self.core.varset(two, "DIALEDTIME", str(int(now - two.created)))
        self.core.varset(two, "DIALEDTIME_MS", str(int((now - two.created) * 1000)))
        self.core.varset(two, "ANSWEREDTIME", "0")
        self.core.varset(two, "ANSWEREDTIME_MS", "0")
        pos = self._abandon_event(call, q, wait)
        self.core.qlog(call, q.config.name, "NONE", "ABANDON", pos, call.original_position,
                       int(wait))
        q.callers.remove(call)
        if not q.callers:
            self.core.dsc(f"Queue:{q.config.name}", "NOT_INUSE")
        self.core.ev_chan(
            "QueueCallerLeave",
            two,
            [("Queue", q.config.name), ("Position", str(pos)), ("Count", str(len(q.callers)))],
            AGENT,
        )
        self.core.varset(two, "QUEUEPOSITION", str(pos))
        for i, other in enumerate(q.callers):
            other.position = i + 1
        call.outcome = "abandoned"
        self.dialplan.end_caller_leg(call)

    def _abandon_event(self, call: CitizenCall, q: QueueState, wait: float) -> int:
        """app_queue.c's record_abandoned(): the caller's position, now."""
        self.core.varset(call.ch2, "ABANDONED", "TRUE")
        pos = q.callers.index(call) + 1
        q.abandoned += 1
        self.core.ev_chan(
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

    def _pick(self, call: CitizenCall, q: QueueState, linpos: list[int]) -> list[SimMember]:
        """Members to ring now, by strategy (app_queue's calc_metric, simplified): only members
        within the caller's penalty window, the lowest penalty first (for ringall: only the
        lowest penalty among the available)."""
        strategy = q.config.strategy
        ok = [m for m in q.members.values() if self.qs.available(m) and self.in_window(call, m)]
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
            metric = [(self.core.rng.random(), m) for m in q.ordered_members()]
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
            now = self.core.clock.now()
            if now >= deadline:
                return "timeout"
            if now - cursor > 0.5:
                cursor = now
            if q.config.leavewhenempty and not self.qs.has_usable(q):
                return "leaveempty"
            self._follow_rule(call)
            avail = sum(1 for m in q.members.values()
                        if self.qs.available(m) and self.in_window(call, m))
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
                    if await self.core.until(min(cursor, deadline), call.caller_gone):
                        return "abandon"
                    continue
            # not our turn: app_queue re-checks once a second (RECHECK), in step with the
            # caller's join time (the captures show the rings on that one-second grid)
            ticks = math.floor((cursor - call.joined_at) / RECHECK + 1e-6) + 1
            cursor = call.joined_at + ticks * RECHECK
            await self.core.until(min(cursor, deadline), call.caller_gone, call.transfer)

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
        await self.core.until(min(start + q.config.timeout, deadline), *waits)
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
        self.bridged.connect(call, q, winner)
        for leg in legs:  # app_queue hangs up the other ringing members after the answer
            if leg is not winner:
                self._cancel_leg(call, leg, ring_no_answer=False)
        return "answered"

    def _dial_member(self, call: CitizenCall, m: SimMember, start: float) -> AgentLeg:
        two = call.ch2
        human = m.interface in self.qs.human or not m.interface.startswith("Local/")
        behaviour = None if human else self._behaviour(m)
        if m.interface.startswith("Local/"):
            target = m.interface[len("Local/") :]
            exten, _, context = target.split("/")[0].partition("@")
            out, inner = self.chans.local_pair(exten, context, two.linkedid)
            self.core.cel(out, "CHAN_START")
            self.core.cel(inner, "CHAN_START")
            self.core.ev_chan("Newchannel", out)
            self.core.ev_chan("Newchannel", inner)
            out.cid_num, out.cid_name = two.cid_num, two.cid_name
            self.core.newexten(out, "AppQueue", "(Outgoing Line)")
            self.core.ev_chan("NewCallerid", out, CID_PRES)
            self.core.varset(out, "DIALEDPEERNUMBER", target)
            self.core.varset(inner, "DIALEDPEERNUMBER", target)
            inner.cid_num, inner.cid_name = two.cid_num, two.cid_name
            inner.conn_num, inner.conn_name = two.cid_num, two.cid_name
            self.core.ev_chan("NewCallerid", inner, CID_PRES)
            self.core.ev_chan("NewConnectedLine", inner)
            self.core.emit(
                "LocalBridge",
                CALL,
                out.snapshot("LocalOne")
                + inner.snapshot("LocalTwo")
                + [("Context", context), ("Exten", exten), ("LocalOptimization", "No")],
            )
        else:
            out = self.chans.device_channel(
                m.interface, "from-internal", m.interface.split("/")[-1], two.linkedid
            )
            inner = None
            self.core.cel(out, "CHAN_START")
            self.core.ev_chan("Newchannel", out)
            self.core.newexten(out, "AppQueue", "(Outgoing Line)")
            out.cid_num, out.cid_name = two.cid_num, two.cid_name
            self.core.ev_chan("NewCallerid", out, CID_PRES)
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
        self.core.emit(
            "DialBegin",
            CALL,
            two.snapshot()
            + out.snapshot("Dest")
            + [("DialString", m.interface if inner else m.interface.split("/", 1)[1])],
        )
        if inner is None:
            self.core.dsc(m.state_interface, "RINGING")
            self.chans.newstate(out, 5)
        out.exten = two.exten
        out.conn_num, out.conn_name = two.cid_num, two.cid_name
        self.qs.device_busy[m.interface] = "ringing"
        leg = AgentLeg(m, out, inner, behaviour, start)
        self.qs.legs_by_interface[m.interface] = leg
        if inner is not None:
            self.core.newexten(inner, "NoOp", f"ringing {dial_exten}", 1)
            ring = behaviour.ring if behaviour else None
            self.core.newexten(inner, "Wait", fmt_num(ring if ring is not None else 99), 2)
        self.core.spawn(self._agent_side(call, leg))
        return leg

    def _behaviour(self, m: SimMember) -> AgentBehaviour:
        if self.behaviour is not None:
            b = self.behaviour(m)
            if b is not None:
                return b
        exten = m.interface[len("Local/") :].split("@")[0]
        ring = float(self.core.globals.get(f"RING_{exten}", "1"))
        talk = float(self.core.globals.get(f"TALK_{exten}", "5"))
        return AgentBehaviour(None if ring >= 99 else ring, talk)

    async def _agent_side(self, call: CitizenCall, leg: AgentLeg) -> None:
        """The member's phone: ring, answer, talk, hang up (a human uses PhoneControl)."""
        b = leg.behaviour
        if b is not None:
            if b.ring is None:
                return  # never answers: the queue's ring timeout ends it
            answer_at = leg.rung_at + b.ring
            await self.core.until(answer_at, leg.hangup)
            if leg.hangup.is_set():
                return
            self.answer_leg(leg)
            await self.core.until(answer_at + ANSWER_DELAY, leg.hangup)
            if leg.hangup.is_set() or leg.inner is None:
                return
            self.core.newexten(leg.inner, "Wait", fmt_num(b.talk), 4)
            if await self.core.until(answer_at + ANSWER_DELAY + b.talk, leg.hangup):
                return
            self.core.newexten(leg.inner, "Hangup", "", 5)
            call.agent_gone.set()

    def answer_leg(self, leg: AgentLeg) -> None:
        """The member's phone goes off-hook (dialplan Answer() or the console's Answer)."""
        if leg.answered.is_set() or leg.hangup.is_set():
            return
        leg.answered.set()

    def _cancel_leg(self, call: CitizenCall, leg: AgentLeg, *, ring_no_answer: bool) -> None:
        two, out, inner, m = call.ch2, leg.out, leg.inner, leg.member
        leg.hangup.set()
        if ring_no_answer:
            ring_ms = int((self.core.clock.now() - leg.rung_at) * 1000)
            self.agent_event("AgentRingNoAnswer", m.queue, m, two, out,
                             [("RingTime", str(ring_ms))])
            self.core.emit(
                "DialEnd",
                CALL,
                two.snapshot() + out.snapshot("Dest") + [("DialStatus", "NOANSWER")],
            )
        # a cancelled dial reports CANCEL twice (app_queue, then the dial's own end), a ring
        # timeout NOANSWER then CANCEL (ami-agent-ringnoanswer.raw, ami-burst-40.raw)
        for _ in range(1 if ring_no_answer else 2):
            self.core.emit(
                "DialEnd", CALL, [*two.snapshot(), *out.snapshot("Dest"), ("DialStatus", "CANCEL")]
            )
        if inner is not None:
            self.core.ev_chan("HangupRequest", inner, [("Cause", "0")])
        self.chans.hangup_event(out, 0)
        self.core.ev_chan("NewConnectedLine", out)
        if inner is not None:
            self.core.ev_chan("SoftHangupRequest", inner, [("Cause", "16")])
        self.core.cel(out, "HANGUP", extra=hangup_extra(0, "", ""))
        self.chans.chan_end(out)
        if inner is not None:
            self.core.cel(inner, "HANGUP", app="", appdata="", extra=hangup_extra(0, "", ""))
            self.chans.chan_end(inner, app="", appdata="")
            self.chans.hangup_event(inner, 0)
        call.tried.append(out.name)
        self.qs.device_busy.pop(m.interface, None)
        self.qs.legs_by_interface.pop(m.interface, None)
        self.qs.dsc_member(m)
        self.qs.dsc_member(m)

    async def _talk(self, call: CitizenCall, q: QueueState) -> str:
        leg = call.legs[0]
        await self.core.wait(None, call.agent_gone, call.caller_gone, leg.hangup, call.transfer)
        if call.transfer.is_set() and not call.caller_gone.is_set():
            self.bridged.transfer_out(call, q, leg)
            return "transfer"
        if call.caller_gone.is_set() and not call.agent_gone.is_set() and not leg.hangup.is_set():
            self.bridged.complete(call, q, leg, by="caller")
        else:
            self.bridged.complete(call, q, leg, by="agent")
        return "done"

    def agent_event(
        self, name: str, queue: str, m: SimMember, agent: Channel, caller: Channel,
        extra: Sequence[tuple[str, str]] = (),
    ) -> None:
        """An app_queue Agent* event on the agent's channel, the caller as Dest*."""
        self.core.ev_chan(
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
