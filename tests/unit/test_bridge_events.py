"""The bridge's event whitelist covers everything the trackers read (else the frame reader
would drop an event a tracker needs, silently)."""

from __future__ import annotations

from contactcenter.telephony import members
from contactcenter.telephony.bridge import CALL_EVENTS, MEMBER_EVENTS, WANTED_EVENTS
from contactcenter.telephony.calls import CallTracker
from contactcenter.telephony.frames import FrameReader, iter_frames
from tests.conftest import transcript


def test_whitelist_covers_the_trackers() -> None:
    # The call tracker's part is its handler table itself; the member tracker's is hand-kept.
    assert CALL_EVENTS == set(CallTracker()._handlers) and CALL_EVENTS <= WANTED_EVENTS
    assert set(members._LIVE) | {"QueueMemberRemoved"} <= MEMBER_EVENTS
    assert {"FullyBooted", "Shutdown"} <= WANTED_EVENTS


def test_whitelist_keeps_every_event_the_tracker_reads() -> None:
    raw = transcript("ami-burst-40.raw")
    wanted = {n.encode() for n in WANTED_EVENTS}
    kept = [f for f in FrameReader(keep_events=frozenset(wanted)).feed(raw)
            if getattr(f, "name", None)]
    everything = [f for f in iter_frames(raw, keep_noise=False) if getattr(f, "name", None)]
    assert [(f.name, f.headers) for f in everything if f.name in WANTED_EVENTS] == [
        (f.name, f.headers) for f in kept]
    assert len(kept) < len(everything)
