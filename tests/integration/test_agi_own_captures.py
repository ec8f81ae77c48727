"""Our own captures from a real Asterisk 22.9 (tests/data/asterisk/, see its README): the
simulated Asterisk answers the same FastAGI commands with the same bytes when a prompt file is
missing and after the caller hung up, so what the IVR does in those cases (issue 17: a missing
prompt is an error, a hang-up is quiet) is proven against Asterisk's own replies."""

from __future__ import annotations

import asyncio
from pathlib import Path

from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.pbx import SimPbx
from tests.agi_fake import parse_capture
from tests.conftest import until

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "asterisk"


async def simulator_replies(capture: str, hang_up_during: int | None = None) -> list[bytes]:
    """Send the capture's commands to the simulated Asterisk, one caller, no sound files;
    the caller hangs up while command number `hang_up_during` runs."""
    steps = parse_capture((CAPTURES / capture).read_bytes()).steps
    replies: list[bytes] = []
    done = asyncio.Event()
    pbx: SimPbx | None = None
    ami: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\n\n")  # the agi_* block
        for i, (command, _) in enumerate(steps):
            writer.write(command.encode() + b"\n")
            if i == hang_up_during and pbx is not None:
                # once the simulated Asterisk says the command started (AGIExecStart)
                started = f"Command: {command}\r\n".encode()
                await until(lambda s=started: any(s in frame for frame in ami))
                pbx.hangup_channel(pbx.calls[0].ch1.name)
                await until(lambda: pbx is not None and pbx.calls[0].caller_gone.is_set())
            got = b""
            while True:  # a HANGUP line may come before the reply
                line = await asyncio.wait_for(reader.readline(), 10)
                got += line
                if not line or line[:3].isdigit():
                    break
            replies.append(got)
        writer.close()
        done.set()

    server = await asyncio.start_server(script, "127.0.0.1", 0)
    pbx = SimPbx(VirtualClock(20.0), agi_port=server.sockets[0].getsockname()[1],
              sound_files=frozenset())
    pbx.listeners.append(ami.append)
    try:
        pbx.originate_citizen("7875550101", "Maria Lopez", "", 60)
        await asyncio.wait_for(done.wait(), 30)
    finally:
        await pbx.close()
        server.close()
        await server.wait_closed()
    return replies


def captured_replies(capture: str) -> list[bytes]:
    return [reply for _, reply in parse_capture((CAPTURES / capture).read_bytes()).steps]


async def test_a_missing_file_is_answered_as_asterisk_does_with_the_caller_still_up() -> None:
    expected = captured_replies("agi-missing-prompt.raw")
    assert expected[:4] == [b"200 result=-1 endpos=0\n", b"200 result=6\n",
                            b"200 result=-1\n", b"200 result=6\n"]
    assert await simulator_replies("agi-missing-prompt.raw") == expected


async def test_after_a_hang_up_channel_status_is_refused_as_asterisk_does() -> None:
    expected = captured_replies("agi-hangup-status.raw")
    assert expected[1] == (b"HANGUP\n511 Command Not Permitted on a dead channel or intercept "
                           b"routine\n")
    # the caller leaves during WAIT FOR DIGIT (command 0)
    assert await simulator_replies("agi-hangup-status.raw", hang_up_during=0) == expected
