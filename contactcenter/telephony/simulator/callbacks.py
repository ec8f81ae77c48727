"""Calls the product places (call-backs): an AMI Originate of `Local/<number>@sim-citizens`
rings the citizen's phone; once they answer, the other half runs the context's AGI script."""

from __future__ import annotations

from collections.abc import Callable

from .agi_client import run_agi
from .channels import SimChannels
from .core import CALL, SimCore
from .dialplan import SimDialplan
from .model import CitizenCall
from .wire import Channel

OUTBOUND_CONTEXT = "sim-citizens"  # Local/<number>@sim-citizens: a citizen the product calls
OUTBOUND_ANSWER_SECONDS = 4.0  # the citizen's phone rings this long before they pick up
RING_SECONDS = 30.0  # a phone nobody answers, until the Originate gives up


class SimCallbacks:
    """Owns the citizens' answers to call-backs and the record of how each went."""

    def __init__(self, core: SimCore, chans: SimChannels, dialplan: SimDialplan) -> None:
        self.core, self.chans, self.dialplan = core, chans, dialplan
        # citizens the product calls back (Originate of Local/<number>@sim-citizens): the keys
        # each one presses when asked; a number missing here does not answer
        self.citizen_keys: dict[str, str] = {}
        # the others (the demo's citizens): a function of the number, None = no answer
        self.citizen_default: Callable[[str], str | None] | None = None
        self.outbound: list[tuple[str, str]] = []  # (number, how it went) for tests

    def originate_outbound(
        self, number: str, context: str, exten: str, variables: dict[str, str],
        action_id: str = "",
    ) -> None:
        """AMI Originate of Local/<number>@sim-citizens with Context/Exten: the ;2 half rings
        the citizen's phone; once they answer, the ;1 half runs `context` (AGI of the script
        named by the context, e.g. cc-callback -> /callback). A citizen not in `citizen_keys`
        does not answer: after RING_SECONDS, OriginateResponse Failure with Reason 3."""
        one, two = self.chans.local_pair(number, OUTBOUND_CONTEXT, None)
        one.context, one.exten, one.priority = context, exten, 1
        for ch in (one, two):
            self.core.cel(ch, "CHAN_START")
            self.core.ev_chan("Newchannel", ch)
        for k, v in variables.items():
            self.core.varset(one, k, v)
        self.core.spawn(self._outbound(number, one, two, action_id))

    async def _outbound(self, number: str, one: Channel, two: Channel, action_id: str) -> None:
        keys = self.citizen_keys.get(number)
        if keys is None and number not in self.citizen_keys and self.citizen_default:
            keys = self.citizen_default(number)
        await self.core.clock.sleep(OUTBOUND_ANSWER_SECONDS if keys is not None else RING_SECONDS)
        if keys is None:
            for ch in (two, one):
                self.chans.hangup_event(ch, 19)
                self.chans.chan_end(ch)
            self.core.emit("OriginateResponse", CALL, [
                ("ActionID", action_id), ("Response", "Failure"), ("Channel", one.name),
                ("Context", one.context), ("Exten", one.exten), ("Reason", "3"),
                ("Uniqueid", one.uniqueid), ("CallerIDNum", "<unknown>"),
                ("CallerIDName", "<unknown>")])
            self.outbound.append((number, "no answer"))
            return
        for ch in (two, one):
            self.chans.newstate(ch, 6)
        self.core.emit("OriginateResponse", CALL, [
            ("ActionID", action_id), ("Response", "Success"), ("Channel", one.name),
            ("Context", one.context), ("Exten", one.exten), ("Reason", "4"),
            ("Uniqueid", one.uniqueid), ("CallerIDNum", "<unknown>"),
            ("CallerIDName", "<unknown>")])
        # the AGI runs on ;1 (the CitizenCall's ch2 is the channel the script drives)
        call = CitizenCall(two, one, "", 60.0, 0.0, answers=list(keys))
        self.dialplan.calls.append(call)
        script = one.context.removeprefix("cc-") or self.dialplan.agi_path
        status = await run_agi(self.dialplan, call, path=script)
        for ch in (one, two):
            if not ch.dead:
                self.chans.hangup_event(ch, 16)
                self.chans.chan_end(ch)
        call.done.set()
        self.outbound.append((number, f"answered, AGI {status}"))
