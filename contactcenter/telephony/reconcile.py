"""Reconciliation: Asterisk's own records (queue_log, CDR) -> `CallRecord`s (pure: no I/O).

Asterisk writes `queue_log` and CDR whether or not the bridge is connected, so a call that began
and ended while the product was down (bridge killed, restarted, database outage, a standby's
take-over) can be rebuilt from them afterwards. What each source gives:

- **queue_log** (one row per queue event; call id = the *caller channel's* Uniqueid, the same
  across every queue leg of the call): the legs, with Asterisk's own figures, the same numbers
  the live path reads from ``AgentConnect``/``AgentComplete``/``QueueCallerAbandon``:
  ``ENTERQUEUE`` (joined), ``CONNECT|hold|member-uniqueid|ring``,
  ``COMPLETEAGENT|hold|talk|origpos`` / ``COMPLETECALLER``, ``BLINDTRANSFER|exten|context|hold|
  talk|origpos``, ``ATTENDEDTRANSFER|method|data|hold|talk|origpos``, ``ABANDON|pos|origpos|
  wait``, ``EXITWITHTIMEOUT|pos|origpos|wait``, ``EXITEMPTY|pos|origpos|wait``,
  ``EXITWITHKEY|key|pos|origpos|wait``. Unlike ``QueueCallerAbandon`` it tells a timeout from an
  abandon.
- **CDR** (one row per channel/bridge, with ``uniqueid`` and ``linkedid`` as cdr_pgsql writes
  them): the call's key (queue_log's call id -> the Linkedid the live path stores, so nothing
  is recorded twice), its start and end, the caller, and the calls that never queued (IVR
  only). The row of the call's first channel (``uniqueid == linkedid``) is written when that
  channel hangs up: it marks the call as over.
- A CEL file (cel_custom, the captures' columns) can stand in for CDR for the id mapping.

Times: queue_log in a database has microseconds (``%F %T.%6q``, UTC with
``queue_log_realtime_use_gmt = yes``); the queue_log *file* has whole epoch seconds; CDR start/
end are whole seconds (UTC with ``timezone = UTC``). Durations are Asterisk's own whole seconds.

Records come out with ``reconciled=True``. A call is only rebuilt once it is over (its first
channel's CDR is there, or without CDR its last queue event is final or older than `settle`),
so a call still up is left to the live path (adoption), and nothing is written half.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from contactcenter.events import CallRecord, QueueLeg

# queue_log call ids that are not calls (member and system events: AMI, CLI, realtime).
NOT_CALLS = frozenset({"NONE", "MANAGER", "CLI", "REALTIME", ""})
# Events that end a queue visit.
LEAVES = frozenset({"COMPLETEAGENT", "COMPLETECALLER", "BLINDTRANSFER", "ATTENDEDTRANSFER",
                    "TRANSFER", "ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY"})
# The events of a caller's queue visit (the rest are members' and the system's).
CALL_EVENTS = LEAVES | {"ENTERQUEUE", "CONNECT", "RINGNOANSWER", "RINGCANCELED"}
# A call whose last queue event is one of these has nowhere left to go in Queue().
FINAL = frozenset({"COMPLETEAGENT", "COMPLETECALLER", "ABANDON"})
# Without CDR, a call whose last queue event (a timeout, a transfer out) is this old is over:
# dialplans do not keep a caller between two queues for minutes.
SETTLE_SECONDS = 120.0
# Asterisk's figures are whole seconds of one call: anything beyond a day is not a figure.
MAX_FIGURE = 86_400.0


class RecordError(ValueError):
    """A queue_log line or CDR row that cannot be read (one line, for the log)."""


@dataclass(frozen=True, slots=True)
class QueueLogRow:
    time: float  # epoch seconds, UTC
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...] = ()
    seq: int = 0  # the source's order (table id, file line): same-second rows keep it

    def datum(self, i: int) -> str:
        return self.data[i] if i < len(self.data) else ""


@dataclass(frozen=True, slots=True)
class CdrRow:
    uniqueid: str
    linkedid: str
    start: float
    end: float
    src: str = ""
    clid: str = ""
    channel: str = ""
    userfield: str = ""


def epoch(value: datetime | float | str) -> float:
    """A time as epoch seconds: a naive datetime (Asterisk's tables, UTC), an aware one,
    a number, or text (``2026-11-24 15:36:30.254794`` or ``1795533983``)."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            value = datetime.fromisoformat(text)
        except ValueError as exc:
            raise RecordError(f"not a time: {text[:40]!r}") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def parse_queue_log_line(line: str, seq: int = 0) -> QueueLogRow:
    """One line of Asterisk's queue_log file: ``epoch|callid|queue|agent|event|data...``."""
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5:
        raise RecordError(f"queue_log line {seq}: expected time|callid|queue|agent|event, "
                          f"got {line[:80]!r}")
    try:
        at = float(parts[0])
    except ValueError as exc:
        raise RecordError(f"queue_log line {seq}: bad time {parts[0][:20]!r}") from exc
    if not math.isfinite(at) or at < 0:
        raise RecordError(f"queue_log line {seq}: bad time {parts[0][:20]!r}")
    return QueueLogRow(at, parts[1], parts[2], parts[3], parts[4], tuple(parts[5:]), seq)


def read_queue_log(text: str, errors: list[str] | None = None) -> list[QueueLogRow]:
    """A queue_log file; unreadable lines are skipped and described in `errors`."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(parse_queue_log_line(line, n))
        except RecordError as exc:
            if errors is not None:
                errors.append(str(exc))
    return rows


def queue_log_row(time: datetime | float | str, callid: str | None, queuename: str | None,
                  agent: str | None, event: str | None, data: Sequence[str | None],
                  seq: int = 0) -> QueueLogRow:
    """A row of the realtime table (``data1..data5``; trailing empty ones dropped)."""
    values = [d or "" for d in data]
    while values and not values[-1]:
        values.pop()
    return QueueLogRow(epoch(time), callid or "", queuename or "", agent or "", event or "",
                       tuple(values), seq)


def read_cdr_csv(text: str) -> list[CdrRow]:
    """CDR rows from a CSV with a header naming the columns (a ``\\copy`` of cdr_pgsql's table,
    or cdr_custom with those names). Needs uniqueid, linkedid, start, end."""
    rows = []
    for n, rec in enumerate(csv.DictReader(io.StringIO(text)), 2):
        try:
            rows.append(CdrRow(uniqueid=rec["uniqueid"], linkedid=rec["linkedid"],
                               start=epoch(rec["start"]), end=epoch(rec["end"]),
                               src=rec.get("src") or "", clid=rec.get("clid") or "",
                               channel=rec.get("channel") or "",
                               userfield=rec.get("userfield") or ""))
        except (KeyError, RecordError) as exc:
            raise RecordError(f"CDR csv line {n}: {exc}") from exc
    return rows


def read_cel_custom_csv(text: str) -> list[CdrRow]:
    """The captures' cel_custom file (EventType, EventTime, Name, Num, ANI, DNID, Exten, Context,
    ChanName, AppName, AppData, AMAFlags, AccountCode, UniqueID, LinkedID, ...) folded to one
    CdrRow per channel (CHAN_START .. CHAN_END): enough for the id mapping and call times."""
    first: dict[str, list[str]] = {}
    start: dict[str, float] = {}
    end: dict[str, float] = {}
    for n, rec in enumerate(csv.reader(io.StringIO(text)), 1):
        if len(rec) < 15:
            raise RecordError(f"CEL csv line {n}: {len(rec)} fields, expected at least 15")
        kind, at, uid = rec[0], epoch(rec[1]), rec[13]
        if uid not in first or (rec[2] and not first[uid][2]):
            first[uid] = rec  # the first row that names the caller (CHAN_START has no name)
        start[uid] = min(start.get(uid, at), at)
        if kind in ("CHAN_END", "HANGUP"):
            end[uid] = max(end.get(uid, at), at)
    out = []
    for uid, rec in first.items():
        if uid not in end:
            continue  # the channel is still up
        name, num = rec[2], rec[3]
        out.append(CdrRow(uniqueid=uid, linkedid=rec[14], start=start[uid], end=end[uid],
                          src=num, clid=f'"{name}" <{num}>' if name else num,
                          channel=rec[8]))
    return out


def _figure(text: str) -> float | None:
    """Asterisk's whole seconds, strictly: finite, non-negative, bounded, else unknown."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0 or value > MAX_FIGURE:
        return None
    return value


def _int(text: str) -> int | None:
    value = _figure(text)
    return None if value is None else int(value)


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def split_clid(clid: str) -> tuple[str | None, str | None]:
    """``"Maria Lopez" <7875550101>`` -> (name, number)."""
    clid = clid.strip()
    if "<" in clid and clid.endswith(">"):
        name, _, num = clid[:-1].rpartition("<")
        name = name.strip().strip('"').strip()
        return (name or None), (num.strip() or None)
    return None, (clid or None)


@dataclass
class _Visit:
    queue: str
    joined: float
    left: float | None = None
    outcome: str | None = None
    wait: float | None = None
    ring: float | None = None
    talk: float | None = None
    agent: str | None = None
    connected_at: float | None = None
    target: str | None = None
    position: int | None = None


@dataclass
class Gathered:
    """One call's rows from every source."""

    linkedid: str
    queue_rows: list[QueueLogRow] = field(default_factory=list)
    cdrs: list[CdrRow] = field(default_factory=list)


def gather(rows: Iterable[QueueLogRow], cdrs: Iterable[CdrRow]) -> dict[str, Gathered]:
    """Rows grouped by call: queue_log call ids mapped to the Linkedid through CDR (a call id
    no CDR names is its own Linkedid: true where Queue() runs on the call's first channel, a
    SIP caller; with Local channels the mapping is needed)."""
    cdr_list = list(cdrs)
    link = {c.uniqueid: c.linkedid for c in cdr_list if c.uniqueid and c.linkedid}
    calls: dict[str, Gathered] = {}
    for c in cdr_list:
        if c.linkedid:
            calls.setdefault(c.linkedid, Gathered(c.linkedid)).cdrs.append(c)
    for r in rows:
        if r.callid in NOT_CALLS or r.queue in ("", "NONE") or r.event not in CALL_EVENTS:
            continue
        lid = link.get(r.callid, r.callid)
        calls.setdefault(lid, Gathered(lid)).queue_rows.append(r)
    for g in calls.values():
        g.queue_rows.sort(key=lambda r: (r.time, r.seq))
    return calls


def is_over(g: Gathered, until: float, settle: float = SETTLE_SECONDS) -> bool:
    """Whether the call had ended by `until` as far as the records tell."""
    if any(c.uniqueid == g.linkedid and c.end <= until for c in g.cdrs):
        return True
    if not g.queue_rows:
        return False
    last = g.queue_rows[-1]
    if last.event in FINAL and last.time <= until:
        return True
    return last.event in LEAVES and last.time + settle <= until


def _visits(rows: Sequence[QueueLogRow]) -> list[_Visit]:
    visits: list[_Visit] = []
    open_: _Visit | None = None
    for r in rows:
        ev = r.event
        if ev == "ENTERQUEUE":
            if open_ is not None and open_.left is None:
                open_.left = r.time  # a join without a leave: the previous visit is over
            open_ = _Visit(queue=r.queue, joined=r.time)
            visits.append(open_)
            continue
        if open_ is None or open_.queue != r.queue:
            continue  # no ENTERQUEUE seen for it (rows before the window): nothing to attach
        v = open_
        if ev == "CONNECT":
            v.wait, v.ring, v.agent, v.connected_at = (
                _figure(r.datum(0)), _figure(r.datum(2)), r.agent or None, r.time)
        elif ev in ("COMPLETEAGENT", "COMPLETECALLER"):
            v.outcome, v.left = "answered", r.time
            v.wait = _figure(r.datum(0)) if v.wait is None else v.wait
            v.talk = _figure(r.datum(1))
            v.agent = v.agent or r.agent or None
        elif ev in ("BLINDTRANSFER", "TRANSFER"):
            v.outcome, v.left = "transferred", r.time
            v.target = f"{r.datum(0)}@{r.datum(1)}"
            v.talk = _figure(r.datum(3))
            v.agent = v.agent or r.agent or None
        elif ev == "ATTENDEDTRANSFER":
            v.outcome, v.left = "transferred", r.time
            v.target = r.datum(1) or r.datum(0)
            v.talk = _figure(r.datum(3))
            v.agent = v.agent or r.agent or None
        elif ev in ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY"):
            v.outcome = {"ABANDON": "abandoned", "EXITWITHTIMEOUT": "timed_out",
                         "EXITEMPTY": "left_empty"}[ev]
            v.left, v.wait, v.position = r.time, _figure(r.datum(2)), _int(r.datum(0))
        elif ev == "EXITWITHKEY":
            # The caller pressed a key to leave the queue: their choice, as an abandon.
            v.outcome, v.left = "abandoned", r.time
            v.wait, v.position = _figure(r.datum(3)), _int(r.datum(1))
    return visits


def build_record(g: Gathered, *, server: str,
                 short_abandon_seconds: Callable[[str], float] = lambda q: 5.0) -> CallRecord:
    """The call's record from its rows, as the live tracker would have written it: legs in
    order, wait and talk their sums, the outcome the last leg's, queue/agent the first."""
    root = [c for c in g.cdrs if c.uniqueid == g.linkedid]
    started = min([c.start for c in g.cdrs] + [r.time for r in g.queue_rows])
    ended = max([c.end for c in g.cdrs] + [r.time for r in g.queue_rows])
    legs: list[QueueLeg] = []
    abandon_position: int | None = None
    for v in _visits(g.queue_rows):
        outcome = v.outcome
        talk = v.talk
        if outcome is None:  # the call ended inside Queue() with no closing row
            if v.connected_at is not None:
                outcome = "answered"
                talk = max(ended - v.connected_at, 0.0)
            else:
                outcome = "abandoned"
        wait = v.wait
        if wait is None and v.connected_at is None:
            wait = max((v.left or ended) - v.joined, 0.0)
        if outcome == "abandoned" and wait is not None and wait < short_abandon_seconds(v.queue):
            outcome = "short_abandoned"
        if v.position is not None:
            abandon_position = v.position
        legs.append(QueueLeg(queue=v.queue, joined_at=_ts(v.joined),
                             left_at=_ts(v.left if v.left is not None else ended),
                             outcome=outcome, wait_seconds=wait, ring_seconds=v.ring,
                             talk_seconds=talk, agent=v.agent, target=v.target))
    if legs and legs[-1].outcome == "transferred":
        last = legs[-1]
        legs.append(QueueLeg(queue=None, kind="transfer", joined_at=last.left_at,
                             left_at=_ts(max(ended, last.left_at.timestamp())),
                             outcome="transferred", target=last.target))
    queued = [leg for leg in legs if leg.kind == "queue"]
    waits = [leg.wait_seconds for leg in queued if leg.wait_seconds is not None]
    talks = [leg.talk_seconds for leg in queued if leg.talk_seconds is not None]
    answered = [leg for leg in queued if leg.agent]
    if legs:
        outcome = legs[-1].outcome
        if outcome == "left_empty":
            outcome = "timed_out"
    else:
        # Never queued: the IVR ended it. The dialplan may name the IVR's outcome in the CDR
        # userfield (``CDR(userfield)=${IVROUTCOME}``); without it, a hang-up in the IVR.
        marks = {c.userfield for c in g.cdrs}
        outcome = "ivr_self_served" if marks & {"self_served", "ivr_self_served"} \
            else "ivr_hangup"
    caller_name, caller_number = split_clid((root or g.cdrs)[0].clid) if g.cdrs else (None, None)
    if caller_number is None and g.queue_rows:
        enter = next((r for r in g.queue_rows if r.event == "ENTERQUEUE"), None)
        caller_number = (enter.datum(1) or None) if enter else None
    first_join = queued[0].joined_at.timestamp() if queued else None
    ivr = None
    if g.cdrs:
        ivr = max((first_join if first_join is not None else ended) - started, 0.0)
    return CallRecord(
        server=server, linkedid=g.linkedid, caller_number=caller_number,
        caller_name=caller_name, started_at=_ts(started), ended_at=_ts(ended), outcome=outcome,
        queue=queued[0].queue if queued else None,
        agent=answered[0].agent if answered else None,
        ivr_seconds=ivr,
        wait_seconds=sum(waits) if waits else None,
        ring_seconds=answered[0].ring_seconds if answered else None,
        talk_seconds=sum(talks) if talks else None,
        abandon_position=abandon_position if outcome in (
            "abandoned", "short_abandoned", "timed_out") else None,
        legs=tuple(legs), reconciled=True,
    )


def reconcile(rows: Iterable[QueueLogRow], cdrs: Iterable[CdrRow], *, server: str,
              until: float, since: float | None = None,
              known: Mapping[str, bool] | None = None, settle: float = SETTLE_SECONDS,
              short_abandon_seconds: Callable[[str], float] = lambda q: 5.0,
              ) -> list[CallRecord]:
    """Records for the calls that ended in (`since`, `until`] and the store lacks.

    `known` maps a Linkedid the store has to whether its row is partial: a complete row is
    left alone, a partial one is rebuilt (the caller updates it), a missing one is new."""
    known = known or {}
    out = []
    for lid, g in gather(rows, cdrs).items():
        if known.get(lid) is False:  # stored and complete
            continue
        if not g.queue_rows and not any(c.uniqueid == lid for c in g.cdrs):
            continue  # only some other channel's CDR: not enough to say what the call was
        if not is_over(g, until, settle):
            continue
        record = build_record(g, server=server, short_abandon_seconds=short_abandon_seconds)
        if since is not None and record.ended_at.timestamp() <= since:
            continue
        out.append(record)
    out.sort(key=lambda r: (r.ended_at, r.linkedid))
    return out


__all__ = [
    "SETTLE_SECONDS",
    "CdrRow",
    "Gathered",
    "QueueLogRow",
    "RecordError",
    "build_record",
    "epoch",
    "gather",
    "is_over",
    "parse_queue_log_line",
    "queue_log_row",
    "read_cdr_csv",
    "read_cel_custom_csv",
    "read_queue_log",
    "reconcile",
    "split_clid",
]
