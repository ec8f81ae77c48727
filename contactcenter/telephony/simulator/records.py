"""What the simulator's Asterisk writes besides AMI: its queue_log file and its CDR, the records
the product reconciles a gap from (telephony/reconcile.py).

- queue_log: Asterisk's file format, ``epoch|callid|queue|agent|event|data...`` (whole
  seconds, the caller channel's Uniqueid as call id, the member name as agent, as
  ``log_membername_as_agent = yes``), one line per event, appended and flushed at once, so a
  bridge that is down meanwhile reads them later.
- CDR: a CSV with a header in cdr_pgsql's column names (``\\copy`` of Asterisk's table), one
  row per `Cdr` event, with the channel's ``linkedid``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .wire import Headers

CDR_COLUMNS = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel",
               "lastapp", "lastdata", "start", "answer", "end", "duration", "billsec",
               "disposition", "amaflags", "userfield", "uniqueid", "linkedid")
# AMI Cdr header -> column
_CDR_HEADERS = {"AccountCode": "accountcode", "Source": "src", "Destination": "dst",
                "DestinationContext": "dcontext", "CallerID": "clid", "Channel": "channel",
                "DestinationChannel": "dstchannel", "LastApplication": "lastapp",
                "LastData": "lastdata", "StartTime": "start", "AnswerTime": "answer",
                "EndTime": "end", "Duration": "duration", "BillableSeconds": "billsec",
                "Disposition": "disposition", "AMAFlags": "amaflags", "UserField": "userfield",
                "UniqueID": "uniqueid"}


class AsteriskRecords:
    def __init__(self, queue_log: Path, cdr: Path | None = None) -> None:
        self.queue_log_path, self.cdr_path = queue_log, cdr
        self.linkedid: dict[str, str] = {}  # channel Uniqueid -> Linkedid
        self.lines = 0
        self._qlog = queue_log.open("a", encoding="utf-8")
        self._cdr = None
        if cdr is not None:
            new = not cdr.exists() or cdr.stat().st_size == 0
            self._cdr = cdr.open("a", encoding="utf-8", newline="")
            if new:
                self._cdr.write(",".join(CDR_COLUMNS) + "\n")
                self._cdr.flush()

    def channel(self, uniqueid: str, linkedid: str) -> None:
        self.linkedid[uniqueid] = linkedid

    def queue_log(self, at: float, callid: str, queue: str, agent: str, event: str,
                  *data: object) -> None:
        fields = [str(int(at)), callid, queue, agent, event, *(str(d) for d in data)]
        self._qlog.write("|".join(fields) + "\n")
        self._qlog.flush()
        self.lines += 1

    def cdr_event(self, headers: Headers) -> None:
        if self._cdr is None:
            return
        row = dict.fromkeys(CDR_COLUMNS, "")
        for key, value in headers:
            column = _CDR_HEADERS.get(key)
            if column:
                row[column] = value
        row["linkedid"] = self.linkedid.get(row["uniqueid"], row["uniqueid"])
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([row[c] for c in CDR_COLUMNS])
        self._cdr.write(buf.getvalue())
        self._cdr.flush()

    def close(self) -> None:
        self._qlog.close()
        if self._cdr is not None:
            self._cdr.close()
