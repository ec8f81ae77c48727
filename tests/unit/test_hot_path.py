"""Issue 10's hot path: the bridge's allow-list in the frame reader and its AMI `Filter` leave
the call records exactly as they were; the fast header parse equals the careful one."""

from __future__ import annotations

import random

import pytest

from contactcenter.events import CallEnded
from contactcenter.telephony.bridge import MEMBER_EVENTS, WANTED_EVENTS
from contactcenter.telephony.calls import CallTracker, record_to_json
from contactcenter.telephony.frames import AmiEvent, AmiResponse, FrameReader, parse_frame
from contactcenter.telephony.members import MemberTracker
from tests.conftest import transcript

ONLY = frozenset(e.encode() for e in WANTED_EVENTS)
CAPTURES = ["ami-burst-40.raw", "ami-call-answered.raw", "ami-call-abandoned.raw",
            "ami-agent-ringnoanswer.raw", "ami-ivr-hangup.raw", "ami-restart-before.raw"]


def outputs(frames: list[AmiEvent]) -> tuple[list[dict[str, object]], list[object]]:
    calls, members = CallTracker(), MemberTracker()
    records: list[dict[str, object]] = []
    presence: list[object] = []
    for ev in frames:
        records += [record_to_json(e.record) for e in calls.feed(ev) if isinstance(e, CallEnded)]
        if ev.name in MEMBER_EVENTS:
            presence += members.feed(ev)
    return records, presence


def read(data: bytes, reader: FrameReader, seed: int | None = None) -> list[AmiEvent]:
    out: list[AmiEvent] = []
    if seed is None:
        out += [f for f in reader.feed(data) if isinstance(f, AmiEvent)]
    else:
        rng, i = random.Random(seed), 0
        while i < len(data):
            n = rng.randint(1, 900)
            out += [f for f in reader.feed(data[i : i + n]) if isinstance(f, AmiEvent)]
            i += n
    assert reader.errors == 0
    return out


@pytest.mark.parametrize("name", CAPTURES)
@pytest.mark.parametrize("seed", [None, 7])
def test_the_allow_list_changes_no_record(name: str, seed: int | None) -> None:
    data = transcript(name)
    everything = read(data, FrameReader(keep_noise=True), seed)
    reader = FrameReader(keep_events=ONLY)
    kept = read(data, reader, seed)
    assert {e.name for e in kept} <= WANTED_EVENTS
    assert reader.dropped > 0
    assert outputs(kept) == outputs(everything)
    if name == "ami-burst-40.raw":  # the bulk of the stream never becomes a dict
        assert reader.frames < len(everything) / 4


def test_fast_parse_equals_careful_parse() -> None:
    raw = (b"Event: Newchannel\r\nChannel: A\r\nCallerIDNum: <unknown>\r\nAccountCode:\r\n"
           b"ChanVariable: X=1\r\nChanVariable: Y=2\r\nExten: s")
    ev = parse_frame(raw, 1.0)
    assert isinstance(ev, AmiEvent)
    assert ev.headers == {"Event": "Newchannel", "Channel": "A", "CallerIDNum": "<unknown>",
                          "AccountCode": "", "ChanVariable": "X=1", "Exten": "s"}
    dup = parse_frame(b"Event: Hangup\r\nChannel: A\r\nChannel: B\r\nCause: 16", 1.0)
    assert isinstance(dup, AmiEvent) and dup.headers["Channel"] == "A"  # the first value wins
    resp = parse_frame(b"Response: Follows\r\nActionID: 9\r\nOutput: a\r\nOutput: b")
    assert isinstance(resp, AmiResponse) and resp.output == ("a", "b")
    colon = parse_frame(b"Event: UserEvent\r\nData: a: b\r\nUserEvent: x", 1.0)
    assert isinstance(colon, AmiEvent) and colon.headers["Data"] == "a: b"
