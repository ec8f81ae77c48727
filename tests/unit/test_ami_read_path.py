"""Property tests of the AMI read path (AmiProtocol.data_received -> FrameReader -> AmiClient):
random, truncated, oversized and wrongly encoded frames mixed into a stream, cut at random
points, never crash the client, and every good frame after them is still read, in order."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contactcenter.telephony.ami import AmiClient, AmiProtocol
from contactcenter.telephony.frames import MAX_FRAME, AmiEvent

GREETING = b"Asterisk Call Manager/11.0.0\r\n"
EOM = b"\r\n\r\n"


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def good(n: int) -> bytes:
    return (f"Event: UserEvent\r\nPrivilege: user,all\r\nTimestamp: 1795406102.{n:06d}\r\n"
            f"Marker: {n}\r\n\r\n").encode()


def _junk_no_terminator(raw: bytes) -> bytes:
    return raw.replace(EOM, b"\r\n")


garbage = st.one_of(
    # random bytes, incl. invalid UTF-8 and bare CR/LF
    st.binary(max_size=300).map(_junk_no_terminator),
    # a truncated real frame (the socket cut it), then the next frame's start
    st.integers(1, 60).map(lambda k: good(999_999)[:k].replace(b"999999", b"xxxxxx")),
    # lines without ": ", an empty key, a key without value
    st.sampled_from([b"garbage line", b": novalue", b"Event:", b"\xff\xfe\x00\x01",
                     b"Response: Success\r\nActionID: nobody-waits"]),
    # oversized: longer than MAX_FRAME with no terminator
    st.integers(MAX_FRAME + 1, MAX_FRAME + 5000).map(lambda n: b"X-Junk: " + b"a" * n),
)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes], list[int]]:
    parts: list[bytes] = [GREETING]
    markers: list[int] = []
    for i in range(draw(st.integers(1, 12))):
        if draw(st.booleans()):
            parts.append(draw(garbage) + EOM)
        parts.append(good(i))
        markers.append(i)
    data = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=20)))
    chunks, last = [], 0
    for c in [*cuts, len(data)]:
        chunks.append(data[last:c])
        last = c
    return chunks, markers


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_bad_frames_never_crash_and_later_frames_are_read(
    case: tuple[list[bytes], list[int]],
) -> None:
    chunks, markers = case
    seen: list[AmiEvent] = []
    client = AmiClient("127.0.0.1", 1, "u", "s", on_event=seen.append)
    proto = AmiProtocol(client)
    proto.connection_made(FakeTransport())
    for chunk in chunks:
        proto.data_received(chunk)
    got = [int(e.headers["Marker"]) for e in seen if e.name == "UserEvent" and
           e.headers.get("Marker", "").isdigit()]
    assert got == markers
    assert client.events_in >= len(markers)


def test_errors_are_counted() -> None:
    seen: list[AmiEvent] = []
    client = AmiClient("127.0.0.1", 1, "u", "s", on_event=seen.append)
    proto = AmiProtocol(client)
    proto.connection_made(FakeTransport())
    proto.data_received(GREETING + b"X-Junk: " + b"a" * (MAX_FRAME + 10))
    proto.data_received(EOM + b"no colon here" + EOM + good(1))
    assert [e.headers["Marker"] for e in seen] == ["1"]
    assert client.health()["frame_errors"] >= 2


def test_a_failing_handler_does_not_stop_the_stream() -> None:
    seen: list[str] = []

    def handler(ev: AmiEvent) -> None:
        if ev.headers["Marker"] == "1":
            raise RuntimeError("boom")
        seen.append(ev.headers["Marker"])

    client = AmiClient("127.0.0.1", 1, "u", "s", on_event=handler)
    proto = AmiProtocol(client)
    proto.connection_made(FakeTransport())
    proto.data_received(GREETING + good(0) + good(1) + good(2))
    assert seen == ["0", "2"]


def test_event_headers_keep_order_and_the_first_of_a_repeated_key() -> None:
    from contactcenter.telephony.frames import parse_frame

    ev = parse_frame(b"Event: Newchannel\r\nChannel: A\r\nUniqueid: 1.1\r\nChannel: B")
    assert isinstance(ev, AmiEvent)
    assert ev.headers["Channel"] == "A"
    assert list(parse_frame(b"Event: X\r\nB: 1\r\nA: 2").headers) == ["Event", "B", "A"]
    odd = parse_frame(b"Event: X\r\nPausedReason:\r\nValue: a: b")
    assert odd.headers["PausedReason"] == "" and odd.headers["Value"] == "a: b"
