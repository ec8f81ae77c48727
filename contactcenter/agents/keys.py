"""The console feature's app state (agents/plugin.py; SIM_PHONES from the demo)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from aiohttp import web

if TYPE_CHECKING:
    from .console import ConsoleHub

# the consoles' sockets, pops and presence
CONSOLE: web.AppKey[ConsoleHub] = web.AppKey("console_hub")


class SimPhones(Protocol):
    """The demo's operator phones in the simulator (telephony.simulator.phones.PhoneControl),
    by interface, e.g. "PJSIP/1001"; each returns False when there is nothing to do."""

    def ringing(self, interface: str) -> bool: ...
    def answer(self, interface: str) -> bool: ...
    def hangup(self, interface: str) -> bool: ...


# Only set by `contactcenter demo`: the console offers Answer / Hang up when it is present.
SIM_PHONES = web.AppKey("sim_phones", SimPhones)
