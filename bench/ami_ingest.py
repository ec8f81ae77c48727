"""AMI ingest: the bridge's events/s on ami-burst-40.raw over loopback vs bare asyncio splitters
on the same bytes, same kind of socket, same run (issue 10's `ami_events_per_second`,
`ami_parse_ceiling_events_per_second` and their ratio).

Two bare readers: a Protocol that splits whole chunks with `bytes.split` (the true ceiling) and
the plain streams consumer calling `readuntil` per frame (DESIGN.md's reference figures).
The capture is repeated `--reps` times with its ids shifted per repetition (so every copy is a
new set of calls) to make a run long enough to time. The bridge run ends when every call is
recorded (`--with-writer`: committed to a SQLite store; otherwise published on the bus).

    python -m bench.ami_ingest [--reps 10] [--runs 5] [--with-writer]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CAPTURE = ROOT.parent / "shared" / "asterisk-transcripts" / "ami-burst-40.raw"
EOM = b"\r\n\r\n"


def build_stream(reps: int) -> tuple[bytes, int, int]:
    from contactcenter.telephony.replay import event_blocks

    blocks = b"".join(event_blocks(CAPTURE.read_bytes()))
    # Linkedid/Uniqueid/Timestamp all start with 17954...: shift them per copy.
    data = b"".join(blocks.replace(b": 17954", f": {k + 1}7954".encode()) if k else blocks
                    for k in range(reps))
    return data, data.count(EOM), 40 * reps


async def bare_splitter(data: bytes) -> float:
    """Seconds for a plain asyncio reader to split `data` into frames over loopback."""
    done = asyncio.get_running_loop().create_future()
    total = data.count(EOM)

    class Splitter(asyncio.Protocol):
        def __init__(self) -> None:
            self.buf = b""
            self.frames = 0

        def data_received(self, chunk: bytes) -> None:
            parts = (self.buf + chunk).split(EOM)
            self.buf = parts.pop()
            self.frames += len(parts)
            if self.frames >= total and not done.done():
                done.set_result(time.perf_counter())

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        await done
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    transport, _ = await loop.create_connection(Splitter, "127.0.0.1", port)
    ended = await done
    transport.close()
    server.close()
    return ended - started


async def bare_readuntil(data: bytes) -> float:
    """Seconds for the plain asyncio streams consumer (`readuntil` per frame) over loopback:
    the "bare splitter" of DESIGN.md's reference figures."""
    total = data.count(EOM)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    for _ in range(total):
        await reader.readuntil(EOM)
    ended = time.perf_counter()
    writer.close()
    server.close()
    return ended - started


async def bridge_run(data: bytes, calls: int, with_writer: bool) -> float:
    """Seconds from the first streamed byte until every call is recorded."""
    from contactcenter import db
    from contactcenter.bus import LocalBus
    from contactcenter.cases.writer import CallWriter
    from contactcenter.config import Settings
    from contactcenter.events import CallEnded, Event
    from contactcenter.telephony.bridge import Bridge
    from contactcenter.telephony.replay import ReplayServer

    with tempfile.TemporaryDirectory() as tmp:
        server = ReplayServer([data], verbatim=True)
        port = await server.start()
        bus = LocalBus()
        finished = asyncio.get_running_loop().create_future()
        count = 0

        async def on_end(event: Event) -> None:
            nonlocal count
            count += 1
            if count == calls and not finished.done():
                finished.set_result(time.perf_counter())

        writer = engine = None
        if with_writer:
            url = f"sqlite+aiosqlite:///{tmp}/b.db"
            await asyncio.to_thread(db.upgrade, url)
            engine = db.make_engine(url)
            writer = CallWriter(db.make_sessionmaker(engine), f"{tmp}/spool")
            await writer.start(bus)
        else:
            bus.subscribe(on_end, types=(CallEnded,), maxsize=1_000_000)
        bridge = Bridge(Settings(ami_port=port, ami_username="replay", ami_secret="replay"), bus)
        started_box: list[float] = []
        orig = server._stream

        async def timed_stream(w: asyncio.StreamWriter) -> None:
            started_box.append(time.perf_counter())
            await orig(w)

        server._stream = timed_stream  # type: ignore[method-assign]
        await bridge.start()
        try:
            if writer is not None:
                for _ in range(1_000_000):  # bounded poll: the writer has no per-row hook
                    if writer.written >= calls:
                        break
                    await asyncio.sleep(0.001)
                ended = time.perf_counter()
            else:
                ended = await asyncio.wait_for(finished, 120)
            return ended - started_box[0]
        finally:
            await bridge.close()
            if writer is not None:
                await writer.close()
            await bus.close()
            await server.close()
            if engine is not None:
                await engine.dispose()


async def main_async(reps: int, runs: int, with_writer: bool) -> dict[str, Any]:
    data, events, calls = build_stream(reps)
    bare, readuntil, bridge = [], [], []
    for _ in range(runs):  # interleaved so all see the same machine load
        bare.append(await bare_splitter(data))
        readuntil.append(await bare_readuntil(data))
        bridge.append(await bridge_run(data, calls, with_writer))
    ceiling = events / statistics.median(bare)
    streams = events / statistics.median(readuntil)
    ingest = events / statistics.median(bridge)
    return {
        "events": events,
        "calls": calls,
        "bytes": len(data),
        "runs": runs,
        "until": "committed to SQLite" if with_writer else "published on the bus",
        "ami_events_per_second": round(ingest),
        "ami_parse_ceiling_events_per_second": round(ceiling),
        "ratio": round(ingest / ceiling, 3),
        # the plain `StreamReader.readuntil` consumer (DESIGN.md's 210-230k reference)
        "readuntil_events_per_second": round(streams),
        "ratio_to_readuntil": round(ingest / streams, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--with-writer", action="store_true")
    args = p.parse_args(argv)
    if not CAPTURE.is_file():
        print(f"missing {CAPTURE}", file=sys.stderr)
        return 2
    result = asyncio.run(main_async(args.reps, args.runs, args.with_writer))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
