"""Replay a captured AMI transcript through the real call and member trackers (telephony/) and
return the domain events they emit, in order: the same events the bridge publishes."""

from __future__ import annotations

from contactcenter.events import Event
from contactcenter.telephony.calls import CallTracker
from contactcenter.telephony.frames import AmiEvent, iter_frames
from contactcenter.telephony.members import MemberTracker
from tests.conftest import transcript


def domain_events(name: str, server: str = "default") -> list[Event]:
    calls, members = CallTracker(server), MemberTracker(server)
    out: list[Event] = []
    for frame in iter_frames(transcript(name)):
        if isinstance(frame, AmiEvent):
            out.extend(calls.feed(frame))
            out.extend(members.feed(frame))
    return out
