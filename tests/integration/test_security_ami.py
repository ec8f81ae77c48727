"""Issue 20, AMI greeting flood: a server that sent "Asterisk Call Manager/" and then endless
bytes without CRLF grew the client's memory from 110 to 207 MB (quadratic copying) until the
greeting timeout. A real TCP server on port 0 plays that server against the real `AmiClient`."""

from __future__ import annotations

import asyncio
import contextlib

from contactcenter.telephony.ami import AmiClient
from contactcenter.telephony.frames import MAX_GREETING, FrameReader
from tests.conftest import until

CHUNK = b"x" * 65536
LIMIT = 256 * 1024 * 1024  # the flood stops here if nobody hangs up (the unfixed client)


async def test_an_endless_greeting_is_cut_at_once() -> None:
    sent = [0]
    hung_up = asyncio.Event()

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/")
        with contextlib.suppress(ConnectionError):
            while sent[0] < LIMIT:
                writer.write(CHUNK)
                sent[0] += len(CHUNK)
                await writer.drain()
        hung_up.set()
        writer.close()

    server = await asyncio.start_server(flood, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = AmiClient("127.0.0.1", port, "cc", "secret", connect_timeout=5.0,
                       backoff_initial=30.0)
    await client.start()
    try:
        await until(lambda: "greeting" in client.last_error, timeout=10)
        await asyncio.wait_for(hung_up.wait(), 10)
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    assert "bad AMI greeting: greeting longer than" in client.last_error
    # read: at most a socket read or two past the limit; before, everything until the timeout
    assert client.bytes_in <= 2 * 1024 * 1024, client.bytes_in
    assert sent[0] < LIMIT


def test_the_frame_reader_keeps_no_more_than_the_greeting_limit() -> None:
    reader = FrameReader()
    assert reader.feed(b"Asterisk Call Manager/") == []
    for _ in range(100):
        reader.feed(b"y" * 1000)
        assert len(reader._buf) < MAX_GREETING
    assert reader.bad_greeting is not None and reader.errors == 1
    # a real greeting of any sane length still works
    ok = FrameReader()
    frames = ok.feed(b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nMessage: hi\r\n\r\n")
    assert ok.greeting == "Asterisk Call Manager/11.0.0" and len(frames) == 1
