"""The console hub's own CPU cost, without the network: pops and broadcasts to N consoles.

`python -m bench.console_hub [--consoles 200] [--calls 500] [--runs 7]` prints JSON. Each run
connects N consoles on sockets that take every frame at once, then feeds per call a ring, an
answer and an end (plus a supervisor broadcast every 10 calls), and waits until every outbox is
empty. CPU time of the process (not wall time, so other load on the machine matters little);
the best run is kept. `us_per_frame` is the hub's cost of one frame reaching one socket: pop
book, serialization, outbox, writer task.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from contactcenter.agents import presence as P
from contactcenter.agents.console import ConsoleHub
from contactcenter.agents.services import OperatorService
from contactcenter.events import BroadcastMessage, CallAnswered, CallEnded, CallRecord
from contactcenter.web.auth import Principal
from tests.console_helpers import T0, FakePbx, later, ringing


class CountingWs:
    closed = False

    def __init__(self) -> None:
        self.frames = 0

    async def send_str(self, data: str) -> None:
        self.frames += 1

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.closed = True
        return True


class NoHistory:
    async def get(self, call_id: str, **kw: Any) -> dict[str, Any]:
        return {"calls": [], "cases": []}

    def forget(self, call_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


class NoWork:
    def call_ended(self, call_id: str) -> None:
        return None

    async def flush(self, now: Any) -> int:
        return 0


async def one_run(consoles: int, calls: int) -> tuple[float, int]:
    presence = P.Presence({"q": 30})
    hub = ConsoleHub(presence, OperatorService(presence, lambda: FakePbx()),  # type: ignore[arg-type]
                     NoHistory(), NoWork(), clock=lambda: T0)  # type: ignore[arg-type]
    sockets = [CountingWs() for _ in range(consoles)]
    for n, ws in enumerate(sockets):
        user = Principal(n, f"op{n}", "operator", f"Op {n}", f"PJSIP/{1000 + n}", ("q",))
        hub.connect(ws, user)  # type: ignore[arg-type]
    start = time.process_time()
    for n in range(calls):
        interface, lid = f"PJSIP/{1000 + n % consoles}", f"1.{n}"
        await hub.on_event(ringing(interface, lid))
        await hub.on_event(CallAnswered("default", lid, "q", interface, None, 1.0, 1.0,
                                        later(1)))
        await hub.on_event(CallEnded(CallRecord("default", lid, "1", None, T0, later(9),
                                                "answered")))
        if n % 10 == 0:
            await hub.on_event(BroadcastMessage("sup", f"message {n}", T0))
        await asyncio.sleep(0)  # the loop turns between bus events
    for _ in range(1_000_000):  # bounded: until every writer has sent what it had
        if not hub._tasks and all(c.outbox.empty() for c in hub.conns):
            break
        await asyncio.sleep(0)
    else:
        raise SystemExit("the consoles' outboxes did not drain")
    await asyncio.sleep(0)
    cpu = time.process_time() - start
    frames = sum(ws.frames for ws in sockets)
    await hub.close()
    return cpu, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--consoles", type=int, default=200)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    runs = [asyncio.run(one_run(args.consoles, args.calls)) for _ in range(args.runs)]
    cpu, frames = min(runs)
    print(json.dumps({"consoles": args.consoles, "calls": args.calls, "runs": args.runs,
                      "frames": frames, "cpu_s": round(cpu, 4),
                      "us_per_frame": round(cpu / frames * 1e6, 2)}, indent=2))


if __name__ == "__main__":
    main()
