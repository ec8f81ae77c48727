"""What the IVR engine needs from a call: declared here, implemented by `telephony/agi.py`.

The engine never sees AGI lines; it speaks to an `IvrChannel` and handles two exceptions:
`CallerHungUp` for every way a caller can leave, and `PromptMissing` for a prompt that could not
be played to a caller who is still there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class CallerHungUp(Exception):
    """The caller left (or the channel can no longer be driven).

    `confirmed` is False when the only sign was an ambiguous `result=-1` (Asterisk also says -1
    when, say, a prompt file is missing): the engine then still tries to leave the fallback queue
    set, so a live caller is never left in silence.
    """

    def __init__(self, reason: str, *, confirmed: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.confirmed = confirmed


class PromptMissing(Exception):
    """A prompt could not be played (missing or unplayable sound file) and the channel is still
    up: an error of the menu's recordings, not a hang-up. Raised by the play methods."""

    def __init__(self, file: str) -> None:
        super().__init__(f"prompt {file!r} could not be played")
        self.file = file


@dataclass(frozen=True, slots=True)
class CallInfo:
    uniqueid: str
    channel: str
    caller_number: str | None
    caller_name: str | None
    language: str
    path: str  # the FastAGI request path, e.g. "/ivr"


class IvrChannel(Protocol):
    """A caller's channel. Every method raises `CallerHungUp` when the caller is gone; the ones
    that play a prompt raise `PromptMissing` when it cannot be played to a caller still there."""

    @property
    def info(self) -> CallInfo: ...

    async def answer(self) -> None: ...

    async def stream_file(self, file: str, escape_digits: str = "") -> str:
        """Play a prompt; returns the digit that interrupted it, or ""."""
        ...

    async def get_data(self, file: str, timeout_ms: int, max_digits: int) -> str:
        """Play a prompt and collect up to `max_digits`; "" when the caller keyed nothing."""
        ...

    async def say_digits(self, digits: str, escape_digits: str = "") -> str: ...

    async def say_number(self, number: int, escape_digits: str = "") -> str: ...

    async def set_variable(self, name: str, value: str) -> None: ...

    async def set_language(self, language: str) -> None:
        """Prompts and numbers from here on are in `language`."""
        ...

    async def get_variable(self, name: str) -> str | None: ...

    async def verbose(self, message: str, level: int = 1) -> None: ...

    async def hangup(self) -> None: ...
