"""AMI wire shapes as Asterisk 22 writes them: frames, channel and bridge snapshots, CEL and CDR.

Header names and their order follow `shared/asterisk-transcripts/` byte for byte.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from ..frames import encode_frame

Headers = list[tuple[str, str]]

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
CAUSE_TXT = {0: "Unknown", 16: "Normal Clearing", 4: "Service or option not implemented"}
UNKNOWN = "<unknown>"


def event_frame(name: str, privilege: str, ts: float | None, headers: Headers) -> bytes:
    head: Headers = [("Event", name), ("Privilege", privilege)]
    if ts is not None:
        head.append(("Timestamp", f"{ts:.6f}"))
    return encode_frame(head + headers)


def wall(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def iso(ts: float) -> str:
    ms = int(ts * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{ms:03d}+0000"


@dataclass
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    created: float
    state: int = 0
    priority: int = 1
    cid_num: str = UNKNOWN
    cid_name: str = UNKNOWN
    conn_num: str = UNKNOWN
    conn_name: str = UNKNOWN
    app: str = ""
    appdata: str = ""
    answered: float | None = None
    vars: dict[str, str] = field(default_factory=dict)
    dead: bool = False
    language: str = "en"

    def snapshot(self, prefix: str = "") -> Headers:
        p = prefix
        return [
            (f"{p}Channel", self.name),
            (f"{p}ChannelState", str(self.state)),
            (f"{p}ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (f"{p}CallerIDNum", self.cid_num),
            (f"{p}CallerIDName", self.cid_name),
            (f"{p}ConnectedLineNum", self.conn_num),
            (f"{p}ConnectedLineName", self.conn_name),
            (f"{p}Language", self.language),
            (f"{p}AccountCode", ""),
            (f"{p}Context", self.context),
            (f"{p}Exten", self.exten),
            (f"{p}Priority", str(self.priority)),
            (f"{p}Uniqueid", self.uniqueid),
            (f"{p}Linkedid", self.linkedid),
        ]

    @property
    def device(self) -> str:
        """Local/311@from-citizen-00000000;1 -> Local/311@from-citizen (the device name)."""
        return self.name.rsplit("-", 1)[0]


def cel(
    ch: Channel,
    event_name: str,
    ts: float,
    *,
    app: str | None = None,
    appdata: str | None = None,
    peer: str = "",
    extra: str = "",
) -> Headers:
    num = "" if ch.cid_num == UNKNOWN else ch.cid_num
    name = "" if ch.cid_name == UNKNOWN else ch.cid_name
    return [
        ("EventName", event_name),
        ("AccountCode", ""),
        ("CallerIDnum", num),
        ("CallerIDname", name),
        ("CallerIDani", num if ch.name.endswith(";1") else ""),
        ("CallerIDrdnis", ""),
        ("CallerIDdnid", ""),
        ("Exten", ch.exten),
        ("Context", ch.context),
        ("Channel", ch.name),
        ("Application", ch.app if app is None else app),
        ("AppData", ch.appdata if appdata is None else appdata),
        ("EventTime", wall(ts)),
        ("AMAFlags", "DOCUMENTATION"),
        ("UniqueID", ch.uniqueid),
        ("LinkedID", ch.linkedid),
        ("Userfield", ""),
        ("Peer", peer),
        ("PeerAccount", ""),
        ("Extra", extra),
    ]


def hangup_extra(cause: int, source: str, dialstatus: str) -> str:
    return json.dumps(
        {"hangupcause": cause, "hangupsource": source, "dialstatus": dialstatus},
        separators=(",", ":"),
    )


def cdr(
    ch: Channel,
    ts: float,
    *,
    dest_channel: str = "",
    last_app: str = "",
    last_data: str = "",
    answered: float | None = None,
    start: float | None = None,
    disposition: str = "",
) -> Headers:
    start = ch.created if start is None else start
    dur = int(ts - start)
    bill = int(ts - answered) if answered is not None else 0
    num = "" if ch.cid_num == UNKNOWN else ch.cid_num
    name = "" if ch.cid_name == UNKNOWN else ch.cid_name
    return [
        ("AccountCode", ""),
        ("Source", num),
        ("Destination", ch.exten),
        ("DestinationContext", ch.context),
        ("CallerID", f'"{name}" <{num}>'),
        ("Channel", ch.name),
        ("DestinationChannel", dest_channel),
        ("LastApplication", last_app),
        ("LastData", last_data),
        ("StartTime", wall(start)),
        ("AnswerTime", wall(answered) if answered is not None else ""),
        ("EndTime", wall(ts)),
        ("Duration", str(dur)),
        ("BillableSeconds", str(bill)),
        ("Disposition", disposition or ("ANSWERED" if answered is not None else "NO ANSWER")),
        ("AMAFlags", "DOCUMENTATION"),
        ("UniqueID", ch.uniqueid),
        ("UserField", ""),
    ]


@dataclass
class SimBridge:
    """An Asterisk mixing bridge as its snapshot headers show it (not telephony.bridge.Bridge)."""

    uniqueid: str
    members: list[str] = field(default_factory=list)

    def snapshot(self) -> Headers:
        return [
            ("BridgeUniqueid", self.uniqueid),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", UNKNOWN),
            ("BridgeName", UNKNOWN),
            ("BridgeNumChannels", str(len(self.members))),
            ("BridgeVideoSourceMode", "none"),
        ]


def _compress(c: str) -> int:
    o = ord(c) & 0x7F
    return 0 if o < 32 else (o - 64 if o > 96 else o - 32)


def member_bucket(interface: str) -> int:
    """app_queue's member_hash_fn over 37 buckets: the order QueueStatus and `linear` use."""
    slash = interface.find("/")
    chname = interface[slash:] if slash >= 0 else interface
    return sum(_compress(chname[i]) << (i * 6) for i in range(min(5, len(chname)))) % 37


def queue_bucket(name: str) -> int:
    """ast_str_case_hash over app_queue's 53 queue buckets: the order of QueueStatus/Summary."""
    h = 5381
    for ch in name.lower():
        h = ((h * 33) & 0xFFFFFFFF) ^ ord(ch)
    return (h & 0x7FFFFFFF) % 53
