"""A caller and a member in a bridge: the connect (Answer, BridgeCreate/Enter,
AgentConnect), and each way the talk ends — the caller or the member hangs up (AgentComplete,
the hang-ups and CDRs in Asterisk's order), a transfer out of the queue, `core restart`."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from .channels import SimChannels
from .core import CALL, CDR, SimCore, fmt_num
from .model import AgentLeg, CitizenCall, QueueState, SimMember
from .queues import SimQueues
from .wire import Channel, SimBridge, cdr, hangup_extra

if TYPE_CHECKING:
    from .app_queue import SimAppQueue
    from .dialplan import SimDialplan


class SimBridgedCalls:
    """Owns nothing of its own: it moves a call from app_queue's ringing to its end."""

    def __init__(self, core: SimCore, chans: SimChannels, qs: SimQueues,
                 app_queue: SimAppQueue, dialplan: SimDialplan) -> None:
        self.core, self.chans, self.qs = core, chans, qs
        self.app_queue, self.dialplan = app_queue, dialplan

    def connect(self, call: CitizenCall, q: QueueState, leg: AgentLeg) -> None:
        two, out, inner, m = call.ch2, leg.out, leg.inner, leg.member
        now = self.core.clock.now()
        if inner is not None:
            self.core.newexten(inner, "Answer", "", 3)
            self.core.cel(inner, "ANSWER", app="Answer", appdata="")
            self.chans.newstate(inner, 6)
        self.core.cel(out, "ANSWER")
        self.qs.device_busy[m.interface] = "inuse"
        self.qs.dsc_member(m)
        self.qs.member_status_events(m.interface)
        self.chans.newstate(out, 6)
        self.core.newexten(out, "AppQueue", "(Outgoing Line)", 1)
        out.conn_num, out.conn_name = two.cid_num, two.cid_name
        self.core.ev_chan("NewConnectedLine", out)
        self.core.emit(
            "DialEnd", CALL, two.snapshot() + out.snapshot("Dest") + [("DialStatus", "ANSWER")]
        )
        self.qs.dsc_member(m)
        self.app_queue.leave(call, q)
        wait = now - call.joined_at
        self.core.varset(two, "QUEUEWAIT", str(int(wait)))
        self.core.varset(two, "QUEUEWAIT_MS", str(int(wait * 1000)))
        ring = now - leg.rung_at
        call.hold = wait
        self.app_queue.agent_event("AgentConnect", q.config.name, m, two, out,
                                   [("HoldTime", str(int(wait))), ("RingTime", str(round(ring)))])
        self.core.qlog(call, q.config.name, m.name, "CONNECT", int(wait), out.uniqueid, round(ring))
        bridge = SimBridge(str(uuid.uuid4()))
        call.bridge, call.connected_at = bridge, now
        self.core.emit("BridgeCreate", CALL, bridge.snapshot())
        extra = f'{{"bridge_id":"{bridge.uniqueid}","bridge_technology":"simple_bridge"}}'
        self.core.cel(out, "BRIDGE_ENTER", extra=extra)
        self.chans.bridge_enter(bridge, out)
        self.chans.bridge_enter(bridge, two)
        self.core.cel(two, "BRIDGE_ENTER", peer=out.name, extra=extra)
        self.core.varset(out, "BRIDGEPEER", two.name)
        self.core.varset(two, "BRIDGEPEER", out.name)
        call.where = "bridged"

    def agent_complete(
        self, q: QueueState, m: SimMember, agent: Channel, caller: Channel, *, hold: float,
        talk: float, reason: str,
    ) -> None:
        """AgentComplete (reason: caller, agent, transfer)."""
        self.app_queue.agent_event("AgentComplete", q.config.name, m, agent, caller, [
            ("HoldTime", str(int(hold))), ("TalkTime", str(int(talk))), ("Reason", reason)])

    def transfer_out(self, call: CitizenCall, q: QueueState, leg: AgentLeg) -> None:
        """The operator sends the caller elsewhere: the member's call completes with Reason
        transfer, its channels hang up, the caller leaves the bridge and runs on."""
        two, out, inner, m = call.ch2, leg.out, leg.inner, leg.member
        bridge = call.bridge
        assert bridge is not None
        now = self.core.clock.now()
        talk = now - call.connected_at
        context, exten, blind = call.transfer_to
        extra = f'{{"bridge_id":"{bridge.uniqueid}","bridge_technology":"simple_bridge"}}'
        leg.hangup.set()
        if blind:
            bridge_fields = [
                (f"TransfererBridge{k[len('Bridge') :]}", v) for k, v in bridge.snapshot()
            ]
            self.core.emit(
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
        self.core.qlog(call, q.config.name, m.name, "BLINDTRANSFER", exten, context, int(call.hold),
                       int(talk), call.original_position)
        self.core.varset(out, "BRIDGEPEER", "")
        self.core.varset(two, "BRIDGEPEER", "")
        self.core.cel(two, "BRIDGE_EXIT", extra=extra)
        self.chans.bridge_leave(bridge, two)
        self.core.cel(out, "BRIDGE_EXIT", extra=extra)
        self.chans.bridge_leave(bridge, out)
        self.core.emit("BridgeDestroy", CALL, bridge.snapshot())
        self.core.ev_chan("SoftHangupRequest", out, [("Cause", "16")])
        self.chans.hangup_event(out, 16)
        self.core.cel(out, "HANGUP", extra=hangup_extra(16, "", ""))
        self.chans.chan_end(out)
        if inner is not None:
            self.core.ev_chan("SoftHangupRequest", inner, [("Cause", "16")])
            self.chans.hangup_event(inner, 16)
            self.core.emit(
                "Cdr",
                CDR,
                cdr(inner, now, last_app=inner.app, last_data=inner.appdata, answered=out.answered),
            )
            self.core.cel(inner, "HANGUP", app="", appdata="", extra=hangup_extra(16, "", ""))
            self.chans.chan_end(inner, app="", appdata="")
        q.completed += 1
        m.calls_taken += 1
        m.last_call = int(now)
        m.wrap_until = now + q.config.wrapuptime
        self.qs.device_busy.pop(m.interface, None)
        self.qs.legs_by_interface.pop(m.interface, None)
        self.qs.dsc_member(m)
        self.qs.member_status_events(m.interface)
        call.legs = []
        call.tried = []
        call.agent_gone.clear()

    def complete(self, call: CitizenCall, q: QueueState, leg: AgentLeg, by: str) -> None:
        two, out, inner, m = call.ch2, leg.out, leg.inner, leg.member
        bridge = call.bridge
        assert bridge is not None
        now = self.core.clock.now()
        talk = now - call.connected_at
        hold = call.hold
        leg.hangup.set()
        extra = f'{{"bridge_id":"{bridge.uniqueid}","bridge_technology":"simple_bridge"}}'
        if by == "agent":
            if inner is not None:
                self.core.cel(
                    inner,
                    "HANGUP",
                    app="",
                    appdata="",
                    extra=hangup_extra(16, "dialplan/builtin", ""),
                )
                self.chans.chan_end(inner, app="", appdata="")
                self.core.ev_chan("SoftHangupRequest", inner, [("Cause", "16")])
                self.core.ev_chan("HangupRequest", out, [("Cause", "16")])
                self.chans.hangup_event(inner, 16)
            else:
                self.core.ev_chan("SoftHangupRequest", out, [("Cause", "16")])
            self.core.varset(out, "BRIDGEPEER", "")
            self.core.varset(two, "BRIDGEPEER", "")
            self.chans.bridge_leave(bridge, out)
            self.chans.hangup_event(out, 16)
            if inner is not None:
                self.core.emit(
                    "Cdr",
                    CDR,
                    cdr(inner, now, last_app="Hangup", answered=out.answered, start=inner.created),
                )
        else:
            self.core.ev_chan("HangupRequest", out, [("Cause", "16")])
            self.core.varset(out, "BRIDGEPEER", "")
            self.core.varset(two, "BRIDGEPEER", "")
            self.chans.bridge_leave(bridge, out)
            self.chans.hangup_event(out, 16)
            if inner is not None:
                self.core.ev_chan("SoftHangupRequest", inner, [("Cause", "16")])
                self.chans.hangup_event(inner, 16)
                self.core.emit(
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
                self.core.cel(inner, "HANGUP", app="", appdata="", extra=hangup_extra(16, "", ""))
                self.chans.chan_end(inner, app="", appdata="")
        q.completed += 1
        q.holdtime = (q.holdtime * 3 + int(hold)) // 4
        q.talktime = (q.talktime * 3 + int(talk)) // 4
        if hold <= q.config.servicelevel:
            q.completed_in_sl += 1
        m.calls_taken += 1
        m.last_call = int(now)
        m.wrap_until = now + q.config.wrapuptime
        self.agent_complete(q, m, two, out, hold=hold, talk=talk, reason=by)
        self.core.qlog(call, q.config.name, m.name,
                       "COMPLETEAGENT" if by == "agent" else "COMPLETECALLER", int(hold), int(talk),
                       call.original_position)
        self.core.cel(out, "BRIDGE_EXIT", peer=two.name, extra=extra)
        self.core.cel(out, "HANGUP", extra=hangup_extra(16, "", ""))
        self.chans.chan_end(out)
        self.core.cel(two, "BRIDGE_EXIT", extra=extra)
        self.chans.bridge_leave(bridge, two)
        self.core.varset(two, "ANSWEREDTIME", str(int(talk)))
        self.core.varset(two, "ANSWEREDTIME_MS", str(int(talk * 1000)))
        self.core.varset(two, "DIALEDTIME", str(int(now - two.created)))
        self.core.varset(two, "DIALEDTIME_MS", str(int((now - two.created) * 1000)))
        self.qs.device_busy.pop(m.interface, None)
        self.qs.legs_by_interface.pop(m.interface, None)
        self.qs.dsc_member(m)
        self.qs.dsc_member(m)
        self.core.ev_chan("SoftHangupRequest", two, [("Cause", "16")])
        self.core.emit("BridgeDestroy", CALL, bridge.snapshot())
        one = call.ch1
        if not one.dead:
            self.core.ev_chan("HangupRequest", one, [("Cause", "16")])
        self.chans.hangup_event(two, 16)
        self.chans.dsc_local("Local/311@from-citizen")
        self.dialplan.caller_cdrs(call, out.name)
        self.qs.member_status_events(m.interface)
        call.done.set()
        if not one.dead:
            self.core.ev_chan("SoftHangupRequest", one, [("Cause", "16")])
            self.chans.hangup_event(one, 16)
            self.chans.dsc_local("Local/311@from-citizen")
        self.core.cel(two, "APP_END")
        self.core.cel(two, "HANGUP", app="", appdata="", extra=hangup_extra(16, "", "ANSWER"))
        self.chans.chan_end(two, app="", appdata="")
        if by == "agent":
            self.core.cel(one, "HANGUP", extra=hangup_extra(16, "", ""))
            self.chans.chan_end(one)
            self.core.emit(
                "Cdr",
                CDR,
                cdr(
                    one, now, last_app="Wait", last_data=fmt_num(call.patience),
                    answered=one.answered,
                ),
            )
        call.outcome = "answered"
        call.where = "ended"

    def shutdown_bridged(self, call: CitizenCall) -> None:
        one, two = call.ch1, call.ch2
        leg = call.legs[0]
        out, inner, m = leg.out, leg.inner, leg.member
        q = self.qs.queues[m.queue]
        bridge = call.bridge
        assert bridge is not None
        now = self.core.clock.now()
        talk = now - call.connected_at
        extra = f'{{"bridge_id":"{bridge.uniqueid}","bridge_technology":"simple_bridge"}}'
        for ch in (one, two, out, inner):
            if ch is not None:
                self.core.ev_chan("SoftHangupRequest", ch, [("Cause", "4")])
        self.core.varset(two, "BRIDGEPEER", "")
        self.core.ev_chan("SoftHangupRequest", one, [("Cause", "16")])
        self.core.varset(out, "BRIDGEPEER", "")
        if inner is not None:
            self.core.ev_chan("SoftHangupRequest", inner, [("Cause", "16")])
            self.core.ev_chan("HangupRequest", out, [("Cause", "0")])
            self.chans.hangup_event(inner, 0)
            self.core.emit(
                "Cdr",
                CDR,
                cdr(inner, now, last_app="Wait", last_data=inner.appdata, answered=out.answered),
            )
            self.core.cel(inner, "HANGUP", app="", appdata="", extra=hangup_extra(0, "", ""))
            self.chans.chan_end(inner, app="", appdata="")
        self.core.cel(one, "HANGUP", extra=hangup_extra(0, "", ""))
        self.chans.chan_end(one)
        self.core.emit(
            "Cdr", CDR, cdr(one, now, last_app="Wait", last_data=one.appdata, answered=one.answered)
        )
        self.dialplan.caller_cdrs(call, out.name)
        self.core.ev_chan("HangupRequest", two, [("Cause", "0")])
        self.agent_complete(q, m, two, out, hold=call.hold, talk=talk, reason="caller")
        self.core.qlog(call, q.config.name, m.name, "COMPLETECALLER", int(call.hold), int(talk),
                       call.original_position)
        self.chans.hangup_event(one, 0)
        self.chans.bridge_leave(bridge, two)
        self.core.varset(two, "ANSWEREDTIME", str(int(talk)))
        self.core.varset(two, "ANSWEREDTIME_MS", str(int(talk * 1000)))
        self.core.varset(two, "DIALEDTIME", str(int(now - two.created)))
        self.core.varset(two, "DIALEDTIME_MS", str(int((now - two.created) * 1000)))
        self.core.ev_chan("SoftHangupRequest", two, [("Cause", "16")])
        self.chans.hangup_event(two, 16)
        self.core.cel(two, "BRIDGE_EXIT", extra=extra)
        self.core.cel(two, "APP_END")
        self.core.cel(two, "HANGUP", app="", appdata="", extra=hangup_extra(16, "", "ANSWER"))
        self.chans.chan_end(two, app="", appdata="")
        self.core.cel(out, "BRIDGE_EXIT", extra=extra)
        self.core.cel(out, "HANGUP", extra=hangup_extra(16, "", ""))
        self.chans.chan_end(out)
        self.qs.device_busy.pop(m.interface, None)
        self.qs.dsc_member(m)
        self.chans.dsc_local("Local/311@from-citizen")
        self.chans.dsc_local("Local/311@from-citizen")
        self.chans.bridge_leave(bridge, out)
        self.core.emit("BridgeDestroy", CALL, bridge.snapshot())
        self.chans.hangup_event(out, 16)
        self.qs.dsc_member(m)
        m.calls_taken += 1
        m.last_call = int(now)
        self.qs.member_status_events(m.interface)
        call.outcome = "answered"
        call.where = "ended"
