"""The simulated Asterisk of the benchmark, in its own process: AMI server, FastAGI client (the
IVR's callers), queue members that answer by themselves, and a call generator.

Run by `bench.run` as `python -m bench.sim CONFIG_JSON`; prints `{"ami_port": N}` when ready and
then answers one JSON command per stdin line with one JSON line on stdout:
  {"cmd": "calls", "rate": 25, "seconds": 10, "prefix": "5501", "prewait": 0.5,
   "talk": 2.0, "patience": 120}                       start a generator (returns at once)
  {"cmd": "stats", "reset": true}                      counters, AGI turnaround samples
                                                       ("samples": false: counters only)
  {"cmd": "quit"}
A command's "id", if any, comes back in its reply (an overloaded simulator may answer late).
It stops by itself when stdin closes or after `max_seconds`. Everything listens on 127.0.0.1.

`agi_command_ms` is measured here, where Asterisk would see it: from writing the reply to one
AGI command to reading the IVR's next command, i.e. the product's turnaround per command
(playback and digit waits, which are the simulated caller's time, are outside it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from typing import Any

from bench.stack import operator_interface
from contactcenter.telephony.simulator import agi_client
from contactcenter.telephony.simulator.ami_server import AmiServer
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.dialplan import SimDialplan
from contactcenter.telephony.simulator.pbx import (
    AgentBehaviour,
    CitizenCall,
    SimMember,
    SimPbx,
    SimQueueConfig,
)

log = logging.getLogger("bench.sim")

QUEUE = "sanitation"  # the default menu's digit 1 (after language 1)


class AgiTimer:
    """Wraps the simulator's per-command function to time the product's turnaround."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._last_reply: dict[int, float] = {}
        self._inner = agi_client._command

    def install(self) -> None:
        agi_client._command = self._command  # bench-only instrumentation of our own simulator

    async def _command(self, dp: SimDialplan, call: CitizenCall, text: str) -> bytes:
        now = time.perf_counter()
        last = self._last_reply.get(id(call))
        if last is not None:
            self.samples.append((now - last) * 1000)
        try:
            return await self._inner(dp, call, text)
        finally:
            self._last_reply[id(call)] = time.perf_counter()

    def forget(self, call: CitizenCall) -> None:
        self._last_reply.pop(id(call), None)


class Sim:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.pbx = SimPbx(VirtualClock(1.0), agi_host="127.0.0.1", agi_port=int(cfg["agi_port"]),
                       seed=1)
        self.talk = 2.0
        self.pbx.behaviour = self._behaviour
        self.server = AmiServer(self.pbx, cfg["username"], cfg["secret"], host="127.0.0.1",
                                port=0, buffer=200_000)
        self.timer = AgiTimer()
        self.active: dict[int, CitizenCall] = {}  # CitizenCall is not hashable
        self.started = 0
        self.ended = 0
        self.generators: set[asyncio.Task[None]] = set()
        self.calls_behind = 0  # the generator could not keep the asked rate (simulator-bound)

    def _behaviour(self, m: SimMember) -> AgentBehaviour:
        return AgentBehaviour(0.2, self.talk)

    async def start(self) -> int:
        self.pbx.add_queue(SimQueueConfig(QUEUE, "rrmemory", 15, 1, 0, 15))
        for q in ("potholes", "general-311"):
            self.pbx.add_queue(SimQueueConfig(q, "rrmemory", 15, 1, 0, 15))
        for i in range(int(self.cfg["operators"])):
            iface = operator_interface(i)
            self.pbx.queue_add(QUEUE, iface, f"Operator {i}", 0, iface.rsplit("/", 1)[0])
        self.timer.install()
        await self.server.start()
        return self.server.port

    async def generate(self, rate: float, seconds: float, prefix: str, prewait: float,
                       talk: float, patience: float) -> None:
        self.talk = talk
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        n = int(rate * seconds)
        for k in range(n):
            due = t0 + k / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1:
                self.calls_behind += 1
            call = self.pbx.originate_citizen(f"{prefix}{k:06d}", f"Bench {k}", "11", patience,
                                              prewait)
            self.started += 1
            self.active[id(call)] = call
            self.pbx.spawn(self._reap(call))

    async def _reap(self, call: CitizenCall) -> None:
        await call.done.wait()  # the dialplan is over (the caller's half may still be hanging up)
        self.active.pop(id(call), None)
        self.timer.forget(call)
        self.ended += 1
        with contextlib.suppress(ValueError):
            self.pbx.calls.remove(call)  # the simulator keeps every call; the bench needs not

    def stats(self, reset: bool, samples: bool = True) -> dict[str, Any]:
        out = {
            "started": self.started, "ended": self.ended, "in_progress": len(self.active),
            "in_ivr": sum(1 for c in self.active.values() if c.where == "agi"),
            "agi_ms": [round(x, 3) for x in self.timer.samples] if samples else [],
            "events": self.pbx.events, "calls_behind": self.calls_behind,
            "ami_clients": len(self.server.clients), "actions": dict(self.server.actions),
        }
        if reset:
            self.timer.samples = []
        return out


async def main(cfg: dict[str, Any]) -> None:
    sim = Sim(cfg)
    port = await sim.start()
    print(json.dumps({"ami_port": port}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    deadline = loop.time() + float(cfg.get("max_seconds", 1800))
    try:
        while loop.time() < deadline:
            try:
                line = await asyncio.wait_for(reader.readline(), deadline - loop.time())
            except TimeoutError:
                break
            if not line:
                break
            msg = json.loads(line)
            cmd = msg.get("cmd")
            if cmd == "calls":
                task = loop.create_task(sim.generate(
                    float(msg["rate"]), float(msg["seconds"]), str(msg["prefix"]),
                    float(msg.get("prewait", 0.5)), float(msg.get("talk", 2.0)),
                    float(msg.get("patience", 120.0))))
                sim.generators.add(task)
                task.add_done_callback(sim.generators.discard)
                reply: dict[str, Any] = {"ok": True}
            elif cmd == "stats":
                reply = sim.stats(bool(msg.get("reset")), samples=msg.get("samples", True))
            elif cmd == "quit":
                print(json.dumps({"ok": True, "id": msg.get("id")}), flush=True)
                break
            else:
                reply = {"error": f"unknown command {cmd!r}"}
            if "id" in msg:
                reply["id"] = msg["id"]  # a late reply is told from the answer to a later ask
            print(json.dumps(reply), flush=True)
    finally:
        for task in list(sim.generators):
            task.cancel()
        await asyncio.gather(*sim.generators, return_exceptions=True)
        await sim.pbx.close()
        await sim.server.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(json.loads(sys.argv[1])))
