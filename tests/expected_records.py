"""The finished call records a person reads off the captures in ../shared/asterisk-transcripts/.

Written by hand from the raw events (not produced by the tracker). Shape: `replay-ami`'s output,
i.e. `contactcenter.telephony.calls.record_to_json`: times ISO 8601 UTC with Asterisk's
microseconds; durations in seconds rounded to 3 decimals.

Rules used for every figure (DESIGN.md's metrics):
- started_at: the `Timestamp` of the first `Newchannel` of the linkedid (the `;1` Local half).
- ended_at: the `Timestamp` of the last `Hangup` of the linkedid.
- caller number/name: `NewCallerid` of the first channel (its `Newchannel` says `<unknown>`).
- queue: the `QueueCallerJoin`'s `Queue`; service/language: the IVR's `VarSet` SERVICE/LANG.
- ivr_seconds: `QueueCallerJoin` Timestamp - started_at (or ended_at - started_at if never queued).
- wait_seconds: `HoldTime` of `AgentConnect` (answered) or `QueueCallerAbandon` (abandoned).
- ring_seconds: `RingTime` of `AgentConnect` (seconds; `AgentRingNoAnswer`'s is in ms, not used).
- talk_seconds: `TalkTime` of `AgentComplete`.
- legs: one per queue visit, from the same events: joined_at = `QueueCallerJoin`, left_at =
  `AgentComplete` (answered) or `QueueCallerAbandon` (abandoned); wait/ring/talk as above, for
  that visit. final_queue/final_agent: the last leg's queue and the last operator who answered.
Epoch 1795406102 is 2026-11-23T03:55:02Z; the ISO strings below count on from there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Record = dict[str, Any]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def leg(queue: str | None, joined: float, left: float, outcome: str, wait: float | None,
        ring: float | None = None, talk: float | None = None, agent: str | None = None,
        target: str | None = None, kind: str = "queue") -> Record:
    """One leg as `leg_to_json` writes it; `joined`/`left` are the events' Timestamps."""
    return {"kind": kind, "queue": queue, "joined_at": _iso(joined), "left_at": _iso(left),
            "outcome": outcome, "wait_seconds": wait, "ring_seconds": ring,
            "talk_seconds": talk, "agent": agent, "target": target}


def with_legs(record: Record, *legs: Record) -> Record:
    queues = [x["queue"] for x in legs if x["queue"]]
    agents = [x["agent"] for x in legs if x["agent"]]
    return {**record, "final_queue": queues[-1] if queues else record["queue"],
            "final_agent": agents[-1] if agents else record["agent"], "legs": list(legs)}

CALL_ANSWERED: list[Record] = [
    with_legs({
        "linkedid": "1795406102.0",  # Newchannel Local/311@from-citizen-00000000;1 Linkedid
        "caller_number": "7875550101",  # NewCallerid ;1 @1795406102.144838
        "caller_name": "Maria Lopez",  # same NewCallerid
        "started_at": "2026-11-23T03:55:02.144794+00:00",  # Newchannel ;1 @1795406102.144794
        "ended_at": "2026-11-23T03:55:12.861547+00:00",  # last Hangup (;1) @1795406112.861547
        "queue": "sanitation",  # QueueCallerJoin @1795406104.349221
        "service": "missed-pickup",  # VarSet SERVICE @1795406104.347972
        "language": "en",  # VarSet LANG @1795406104.348106
        "agent": "Ana Operator",  # AgentConnect MemberName @1795406106.352446
        "ivr_seconds": 2.204,  # 1795406104.349221 (QueueCallerJoin) - 1795406102.144794
        "wait_seconds": 2.0,  # AgentConnect HoldTime: 2 @1795406106.352446
        "ring_seconds": 2.0,  # AgentConnect RingTime: 2
        "talk_seconds": 6.0,  # AgentComplete TalkTime: 6 @1795406112.860883
        "outcome": "answered",  # AgentConnect, no transfer
    }, leg("sanitation", 1795406104.349221, 1795406112.860883, "answered", 2.0, 2.0, 6.0,
            "Ana Operator")),
]

CALL_ABANDONED: list[Record] = [
    with_legs({
        "linkedid": "1795406136.10",  # Newchannel Local/311@from-citizen-00000005;1
        "caller_number": "7875550103",  # NewCallerid ;1
        "caller_name": "Luz Ortiz",  # NewCallerid ;1
        "started_at": "2026-11-23T03:55:36.511601+00:00",  # Newchannel ;1 @1795406136.511601
        "ended_at": "2026-11-23T03:55:46.973966+00:00",  # last Hangup (;2) @1795406146.973966
        "queue": "sanitation",  # QueueCallerJoin @1795406138.714767
        "service": "missed-pickup",  # VarSet SERVICE @1795406138.713790
        "language": "en",  # VarSet LANG @1795406138.713908
        "agent": None,  # both members paused (QueueMemberPause PausedReason: break): no AgentCalled
        "ivr_seconds": 2.203,  # 1795406138.714767 (QueueCallerJoin) - 1795406136.511601
        "wait_seconds": 8.0,  # QueueCallerAbandon HoldTime: 8 @1795406146.973945
        "ring_seconds": None,  # never rang anyone
        "talk_seconds": None,
        "outcome": "abandoned",  # QueueCallerAbandon, 8 s >= the 5 s short-abandon threshold
    }, leg("sanitation", 1795406138.714767, 1795406146.973945, "abandoned", 8.0)),
]

AGENT_RINGNOANSWER: list[Record] = [
    with_legs({
        "linkedid": "1795406311.162",  # Newchannel Local/311@from-citizen-00000051;1
        "caller_number": "7875550104",  # NewCallerid ;1
        "caller_name": "Pedro Diaz",  # NewCallerid ;1
        "started_at": "2026-11-23T03:58:31.954478+00:00",  # Newchannel ;1 @1795406311.954478
        "ended_at": "2026-11-23T03:58:43.672294+00:00",  # last Hangup (;1) @1795406323.672294
        "queue": "general-311",  # QueueCallerJoin @1795406314.158341
        "service": "other",  # VarSet SERVICE @1795406314.157067
        "language": "en",  # VarSet LANG @1795406314.157275
        # Eve: AgentRingNoAnswer @1795406318.163475 (RingTime: 4000 ms); Carla answers:
        "agent": "Carla Operator",  # AgentConnect MemberName @1795406320.166769
        "ivr_seconds": 2.204,  # 1795406314.158341 - 1795406311.954478 = 2.203863
        "wait_seconds": 6.0,  # AgentConnect HoldTime: 6 (includes Eve's 4 s ring + 1 s retry)
        "ring_seconds": 1.0,  # AgentConnect RingTime: 1 (Carla's, the answering agent)
        "talk_seconds": 3.0,  # AgentComplete TalkTime: 3 @1795406323.671761
        "outcome": "answered",
    }, leg("general-311", 1795406314.158341, 1795406323.671761, "answered", 6.0, 1.0, 3.0,
            "Carla Operator")),
]

IVR_HANGUP: list[Record] = [
    with_legs({
        "linkedid": "1795406173.16",  # Newchannel Local/311@from-citizen-00000008;1
        "caller_number": "7875550105",  # NewCallerid ;1
        "caller_name": "Ana Cruz",  # NewCallerid ;1
        "started_at": "2026-11-23T03:56:13.639129+00:00",  # Newchannel ;1 @1795406173.639129
        "ended_at": "2026-11-23T03:56:15.684150+00:00",  # last Hangup (;2) @1795406175.684150
        # The IVR's fallback VarSet QUEUE=general-311 (@1795406175.640622) comes after the
        # caller hung up (;1 @1795406175.640154); no QueueCallerJoin, so no queue.
        "queue": None,
        "service": None,  # no VarSet SERVICE
        "language": None,  # no VarSet LANG
        "agent": None,
        "ivr_seconds": 2.045,  # never queued: 1795406175.684150 (last Hangup) - 1795406173.639129
        "wait_seconds": None,
        "ring_seconds": None,
        "talk_seconds": None,
        "outcome": "ivr_hangup",
    }),
]

# restart-before: the call is hung up by `core restart now`; every Hangup and the AgentComplete
# arrive before `Shutdown`, so it closes normally. restart-after holds no call (no channel).
RESTART: list[Record] = [
    with_legs({
        "linkedid": "1795408958.386",  # Newchannel Local/311@from-citizen-000000c1;1
        "caller_number": "7875550107",  # NewCallerid ;1 @1795408958.587438
        "caller_name": "Marta Soto",  # NewCallerid ;1
        "started_at": "2026-11-23T04:42:38.587409+00:00",  # Newchannel ;1 @1795408958.587409
        "ended_at": "2026-11-23T04:42:47.612690+00:00",  # last Hangup (agents ;1) @...967.612690
        "queue": "general-311",  # QueueCallerJoin @1795408960.791367
        "service": "other",  # VarSet SERVICE @1795408960.790363
        "language": "en",  # VarSet LANG @1795408960.790424
        "agent": "Eve Operator",  # AgentConnect MemberName @1795408961.793994
        "ivr_seconds": 2.204,  # 1795408960.791367 - 1795408958.587409 = 2.203958
        "wait_seconds": 1.0,  # AgentConnect HoldTime: 1
        "ring_seconds": 1.0,  # AgentConnect RingTime: 1
        "talk_seconds": 6.0,  # AgentComplete TalkTime: 6, Reason: caller @1795408967.612381
        "outcome": "answered",
    }, leg("general-311", 1795408960.791367, 1795408967.612381, "answered", 1.0, 1.0, 6.0,
            "Eve Operator")),
]

# burst-40: four calls checked fully by hand; the rest by totals (see BURST_TOTALS).
BURST_CHECKED: list[Record] = [
    with_legs({
        # potholes is ringall: Dan and Carla ring together (AgentCalled @1795406211.157695 and
        # .157754); Dan answers, Carla's channels hang up.
        "linkedid": "1795406208.22",
        "caller_number": "7875552000",  # NewCallerid ;1 @1795406208.953260
        "caller_name": "Caller 00",
        "started_at": "2026-11-23T03:56:48.953230+00:00",  # Newchannel ;1 @1795406208.953230
        "ended_at": "2026-11-23T03:56:58.668598+00:00",  # last Hangup (;1) @1795406218.668598
        "queue": "potholes",  # QueueCallerJoin @1795406211.157626
        "service": "pothole",  # VarSet SERVICE @1795406211.155991
        "language": "en",  # VarSet LANG @1795406211.156116
        "agent": "Dan Operator",  # AgentConnect @1795406213.160225
        "ivr_seconds": 2.204,  # 1795406211.157626 - 1795406208.953230 = 2.204396
        "wait_seconds": 2.0,  # AgentConnect HoldTime: 2
        "ring_seconds": 2.0,  # AgentConnect RingTime: 2
        "talk_seconds": 5.0,  # AgentComplete TalkTime: 5 @1795406218.667792
        "outcome": "answered",
    }, leg("potholes", 1795406211.157626, 1795406218.667792, "answered", 2.0, 2.0, 5.0,
            "Dan Operator")),
    with_legs({
        # Carla rings (AgentCalled @1795406213.311693) but the caller gives up first.
        "linkedid": "1795406209.28",
        "caller_number": "7875552003",
        "caller_name": "Caller 03",
        "started_at": "2026-11-23T03:56:49.106448+00:00",  # Newchannel ;1 @1795406209.106448
        "ended_at": "2026-11-23T03:56:56.565725+00:00",  # last Hangup (;2) @1795406216.565725
        "queue": "potholes",  # QueueCallerJoin Position: 2 @1795406211.310451
        "service": "pothole",
        "language": "en",
        "agent": None,
        "ivr_seconds": 2.204,  # 1795406211.310451 - 1795406209.106448 = 2.204003
        "wait_seconds": 5.0,  # QueueCallerAbandon HoldTime: 5 @1795406216.565101
        "ring_seconds": None,
        "talk_seconds": None,
        "outcome": "abandoned",  # 5 s is not below the 5 s threshold
    }, leg("potholes", 1795406211.310451, 1795406216.565101, "abandoned", 5.0)),
    with_legs({
        "linkedid": "1795406209.62",
        "caller_number": "7875552020",
        "caller_name": "Caller 20",
        "started_at": "2026-11-23T03:56:49.982409+00:00",  # Newchannel ;1 @1795406209.982409
        "ended_at": "2026-11-23T03:57:01.702535+00:00",  # last Hangup (;1) @1795406221.702535
        "queue": "general-311",  # QueueCallerJoin Position: 4 @1795406212.187325
        "service": "other",
        "language": "en",
        "agent": "Eve Operator",  # AgentConnect @1795406218.196227
        "ivr_seconds": 2.205,  # 1795406212.187325 - 1795406209.982409 = 2.204916
        "wait_seconds": 6.0,  # AgentConnect HoldTime: 6
        "ring_seconds": 1.0,  # AgentConnect RingTime: 1
        "talk_seconds": 3.0,  # AgentComplete TalkTime: 3 @1795406221.701147
        "outcome": "answered",
    }, leg("general-311", 1795406212.187325, 1795406221.701147, "answered", 6.0, 1.0, 3.0,
            "Eve Operator")),
    with_legs({
        # Carla does not answer (AgentRingNoAnswer RingTime: 4000 @1795406229.309388), Dan
        # does; the caller hangs up 0.2 s later (AgentComplete Reason: caller, TalkTime: 0).
        "linkedid": "1795406210.66",
        "caller_number": "7875552022",
        "caller_name": "Caller 22",
        "started_at": "2026-11-23T03:56:50.085297+00:00",  # Newchannel ;1 @1795406210.085297
        "ended_at": "2026-11-23T03:57:12.540657+00:00",  # last Hangup (agents ;2) @...232.540657
        "queue": "potholes",  # QueueCallerJoin Position: 6 @1795406212.289492
        "service": "pothole",
        "language": "en",
        "agent": "Dan Operator",  # AgentConnect @1795406232.314230
        "ivr_seconds": 2.204,  # 1795406212.289492 - 1795406210.085297 = 2.204195
        "wait_seconds": 20.0,  # AgentConnect HoldTime: 20
        "ring_seconds": 2.0,  # AgentConnect RingTime: 2
        "talk_seconds": 0.0,  # AgentComplete TalkTime: 0 @1795406232.539925
        "outcome": "answered",
    }, leg("potholes", 1795406212.289492, 1795406232.539925, "answered", 20.0, 2.0, 0.0,
            "Dan Operator")),
]

# From the capture's README and its 40 Originates (caller IDs 7875552000..7875552039).
BURST_TOTALS = {"calls": 40, "answered": 17, "abandoned": 23}
BURST_CALLERS = {f"78755520{n:02d}" for n in range(40)}

# capture file(s) -> the records, in the order the calls end.
EXPECTED: dict[tuple[str, ...], list[Record]] = {
    ("ami-call-answered.raw",): CALL_ANSWERED,
    ("ami-call-abandoned.raw",): CALL_ABANDONED,
    ("ami-agent-ringnoanswer.raw",): AGENT_RINGNOANSWER,
    ("ami-ivr-hangup.raw",): IVR_HANGUP,
    ("ami-restart-before.raw", "ami-restart-after.raw"): RESTART,
}


# --- issue 19's own captures (tests/data/asterisk/, Asterisk 22.10.1) ------------------------
# Epoch 1795533976 is 2026-11-24T15:26:16Z. Caller ID "Maria Lopez" <7875550101>; no IVR (the
# Originate sets QUEUE), so no service or language; the caller's queue channel is the ;2 half.

BLIND_TRANSFER: list[Record] = [
    with_legs({
        "linkedid": "1795533976.6",  # Newchannel Local/311@from-citizen-00000003;1
        "caller_number": "7875550101",  # NewCallerid ;1 @1795533976.632822
        "caller_name": "Maria Lopez",
        "started_at": _iso(1795533976.632482),  # Newchannel ;1
        "ended_at": _iso(1795533991.652412),  # last Hangup (;1)
        "queue": "general-311",  # the first QueueCallerJoin @1795533977.134174
        "service": None,
        "language": None,
        "agent": "Eve",  # the first AgentConnect's MemberName @1795533978.139819
        "ivr_seconds": 0.502,  # 1795533977.134174 - 1795533976.632482 = 0.501692
        "wait_seconds": 3.0,  # HoldTime 1 (Eve's AgentConnect) + 2 (Ana's)
        "ring_seconds": 1.0,  # the first answering operator's RingTime (Eve)
        "talk_seconds": 11.0,  # TalkTime 5 (Eve, Reason: transfer) + 6 (Ana)
        "outcome": "answered",  # the last leg: Ana answered
    },
        # BlindTransfer @1795533983.140543 (Extension sanitation, Context transfers), then Eve's
        # AgentComplete @1795533983.141061: HoldTime 1, TalkTime 5, Reason transfer
        leg("general-311", 1795533977.134174, 1795533983.141061, "transferred", 1.0, 1.0, 5.0,
            "Eve", target="sanitation@transfers"),
        # QueueCallerJoin sanitation @1795533983.142588; AgentConnect Ana HoldTime 2 RingTime 2;
        # AgentComplete @1795533991.651155 TalkTime 6
        leg("sanitation", 1795533983.142588, 1795533991.651155, "answered", 2.0, 2.0, 6.0,
            "Ana"),
    ),
]

TIMEOUT_FALLBACK: list[Record] = [
    with_legs({
        "linkedid": "1795533993.12",  # Newchannel Local/311@from-citizen-00000006;1
        "caller_number": "7875550101",
        "caller_name": "Maria Lopez",
        "started_at": _iso(1795533993.659164),  # Newchannel ;1
        "ended_at": _iso(1795534009.690709),  # last Hangup (Carla's ;1)
        "queue": "sanitation",  # the first QueueCallerJoin @1795533994.160241
        "service": None,
        "language": None,
        "agent": "Carla",  # the only AgentConnect @1795534004.185096
        "ivr_seconds": 0.501,  # 1795533994.160241 - 1795533993.659164 = 0.501077
        "wait_seconds": 10.0,  # QueueCallerAbandon HoldTime 8 + AgentConnect HoldTime 2
        "ring_seconds": 2.0,  # Carla's RingTime
        "talk_seconds": 5.0,  # Carla's AgentComplete TalkTime 5
        "outcome": "answered",
    },
        # QueueCallerAbandon @1795534002.181470 (HoldTime 8), QueueCallerLeave, then
        # VarSet QUEUESTATUS=TIMEOUT @1795534002.181789: timed out, not abandoned
        leg("sanitation", 1795533994.160241, 1795534002.181470, "timed_out", 8.0),
        # the dialplan's fallback: QueueCallerJoin general-311 @1795534002.182329; Carla
        # AgentConnect HoldTime 2 RingTime 2; AgentComplete @1795534009.689875 TalkTime 5
        leg("general-311", 1795534002.182329, 1795534009.689875, "answered", 2.0, 2.0, 5.0,
            "Carla"),
    ),
]

CALLER_ABANDON: list[Record] = [
    with_legs({
        "linkedid": "1795534011.16",  # Newchannel Local/311@from-citizen-00000008;1
        "caller_number": "7875550101",
        "caller_name": "Maria Lopez",
        "started_at": _iso(1795534011.697618),  # Newchannel ;1
        "ended_at": _iso(1795534017.703140),  # last Hangup (;2)
        "queue": "sanitation",  # QueueCallerJoin @1795534012.201027
        "service": None,
        "language": None,
        "agent": None,
        "ivr_seconds": 0.503,  # 1795534012.201027 - 1795534011.697618 = 0.503409
        "wait_seconds": 5.0,  # QueueCallerAbandon HoldTime 5 (5.50 s, truncated by Asterisk)
        "ring_seconds": None,
        "talk_seconds": None,
        "outcome": "abandoned",  # HangupRequest first, no QUEUESTATUS; 5 s >= the 5 s threshold
    },
        leg("sanitation", 1795534012.201027, 1795534017.703117, "abandoned", 5.0),
    ),
]

# tests/data/asterisk capture -> its records (issue 19: legs, timeout vs abandon)
OWN_EXPECTED: dict[str, list[Record]] = {
    "ami-blind-transfer.raw": BLIND_TRANSFER,
    "ami-queue-timeout-fallback.raw": TIMEOUT_FALLBACK,
    "ami-caller-abandon-queue.raw": CALLER_ABANDON,
}
