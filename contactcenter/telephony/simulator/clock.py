"""A controllable clock: virtual epoch seconds that run `scale` times faster than real time.

Every timestamp the simulator writes (AMI `Timestamp:`, CEL `EventTime`, CDR times, ids) comes from
here, so a test or a benchmark can play a 60-second call in a fraction of a second.
"""

from __future__ import annotations

import asyncio
import time


class VirtualClock:
    def __init__(self, scale: float = 1.0, start: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("clock scale must be positive")
        self.scale = scale
        self._real0 = time.monotonic()
        self._virt0 = time.time() if start is None else start

    def now(self) -> float:
        return self._virt0 + (time.monotonic() - self._real0) * self.scale

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds / self.scale)
        else:
            await asyncio.sleep(0)

    def real(self, seconds: float) -> float:
        """Real seconds for `seconds` of virtual time (for timeouts around virtual waits)."""
        return seconds / self.scale
