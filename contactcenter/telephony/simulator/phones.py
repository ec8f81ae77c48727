"""PhoneControl: the demo's operator phones. A member whose interface is a device (the demo's
`PJSIP/1001`) rings in the simulator until the console answers it here."""

from __future__ import annotations

from .pbx import SimPbx


class PhoneControl:
    def __init__(self, pbx: SimPbx) -> None:
        self._pbx = pbx

    @property
    def pbx(self) -> SimPbx:
        return self._pbx

    def ringing(self, interface: str) -> bool:
        """Is a queue call ringing this phone now?"""
        return self._pbx.ringing(interface)

    def answer(self, interface: str) -> bool:
        """Pick up the ringing call; False when nothing rings there."""
        return self._pbx.phone_answer(interface)

    def hangup(self, interface: str) -> bool:
        """Hang up (or reject while ringing) the call on this phone; False when idle."""
        return self._pbx.phone_hangup(interface)

    def mark_human(self, interface: str) -> None:
        self._pbx.human.add(interface)
