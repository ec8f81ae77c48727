"""web.outbox.Outbox: the one bounded writer behind every push socket (consoles, wallboards)."""

from __future__ import annotations

import asyncio

from contactcenter.supervisor.wallboard import WallboardHub
from contactcenter.web.outbox import Outbox
from tests.console_helpers import FakeWs


class StuckWs(FakeWs):
    """A browser that stopped reading: sends never complete."""

    async def send_str(self, data: str) -> None:
        await asyncio.Event().wait()


class GoneWs(FakeWs):
    async def send_str(self, data: str) -> None:
        raise ConnectionResetError("peer gone")


async def turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_frames_go_out_in_order() -> None:
    ws = FakeWs()
    box = Outbox(ws, label="t", maxsize=8, on_full="close")  # type: ignore[arg-type]
    for n in range(5):
        box.send(f'{{"type":"n","n":{n}}}')
    await turns()
    assert [f["n"] for f in ws.frames] == [0, 1, 2, 3, 4] and box.sent == 5 and box.empty()
    await box.close()
    assert ws.closed and ws.close_code == 1001


async def test_close_mode_closes_a_slow_socket_for_a_retry_and_drops_the_rest() -> None:
    ws = StuckWs()
    box = Outbox(ws, label="t", maxsize=3, on_full="close")  # type: ignore[arg-type]
    for n in range(10):
        box.send(f'{{"type":"n","n":{n}}}')
        await asyncio.sleep(0)
    await turns()
    assert box.overflowed and box.writer.cancelled()
    assert ws.closed and ws.close_code == 1013  # try again later: the page reconnects
    await box.close()


async def test_drop_oldest_keeps_the_newest_frames() -> None:
    ws = StuckWs()
    box = Outbox(ws, label="t", maxsize=2, on_full="drop_oldest")  # type: ignore[arg-type]
    await turns()  # the writer takes the first frame and sticks in its send
    for n in range(6):
        box.send(str(n))
    assert box.dropped == 4 and [box.queue.get_nowait() for _ in range(2)] == ["4", "5"]
    assert not box.overflowed and not ws.closed
    await box.close()


async def test_a_send_that_fails_or_times_out_closes_the_socket_and_ends_the_writer() -> None:
    gone = GoneWs()
    box = Outbox(gone, label="t", maxsize=2, on_full="close")  # type: ignore[arg-type]
    box.send("{}")
    await turns()
    assert box.writer.done() and gone.closed and box.sent == 0
    stuck = StuckWs()
    box = Outbox(stuck, label="t", maxsize=2, on_full="drop_oldest",  # type: ignore[arg-type]
                 send_timeout=0.01)
    box.send("{}")
    await asyncio.wait_for(box.writer, 5)
    assert stuck.closed
    await box.close()  # after the writer ended: harmless


async def test_a_stuck_wallboard_screen_does_not_hold_the_others() -> None:
    hub = WallboardHub(lambda group: {"queues": [], "group": group})
    stuck, ok = StuckWs(), FakeWs()
    slow = hub.join(stuck, "main")  # type: ignore[arg-type]
    hub.join(ok, "main")  # type: ignore[arg-type]
    for _ in range(10):
        hub.broadcast()
        await asyncio.sleep(0)
    await turns()
    assert len(ok.of("snapshot")) == 11  # the join's snapshot and every broadcast
    assert slow.outbox.dropped >= 8 and not stuck.closed
    await hub.close()
    assert stuck.closed and ok.closed
