"""Reconciliation from Asterisk's own records: the real Asterisk 22.10.1 queue_log/CDR/CEL of
the issue-19 calls rebuild the same legs the live AMI path reads from the same calls' bytes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from contactcenter.events import CallEnded, CallRecord
from contactcenter.telephony.calls import CallTracker
from contactcenter.telephony.reconcile import (
    CdrRow,
    QueueLogRow,
    RecordError,
    parse_queue_log_line,
    queue_log_row,
    read_cdr_csv,
    read_cel_custom_csv,
    read_queue_log,
    reconcile,
)
from tests.unit.test_calls import events_of

DATA = Path(__file__).resolve().parents[1] / "data" / "asterisk"
CAPTURES = ("ami-blind-transfer", "ami-queue-timeout-fallback", "ami-caller-abandon-queue")


def live(raw: Path) -> list[CallRecord]:
    tracker = CallTracker("default")
    out: list[CallRecord] = []
    for ev in events_of(raw.read_bytes()):
        out.extend(e.record for e in tracker.feed(ev) if isinstance(e, CallEnded))
    return out


def whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def shape(rec: CallRecord) -> tuple[object, ...]:
    """What both paths must agree on. Times differ (queue_log's file has whole seconds), and so
    may a talk time by less than a second: in the second run Carla's AgentComplete (TalkTime 5)
    came 2 ms after the call's last Hangup, so the live path closed the call first and derived
    talk from stamps (5.498); Asterisk truncates to whole seconds, so compare whole seconds."""
    legs = tuple((leg.kind, leg.queue, leg.outcome, whole(leg.wait_seconds),
                  whole(leg.ring_seconds), whole(leg.talk_seconds), leg.agent, leg.target)
                 for leg in rec.legs)
    return (rec.linkedid, rec.caller_number, rec.outcome, rec.queue, rec.agent, rec.final_queue,
            rec.final_agent, whole(rec.wait_seconds), whole(rec.ring_seconds),
            whole(rec.talk_seconds), rec.abandon_position, legs)


def pg_rows(directory: Path) -> tuple[list[QueueLogRow], list[CdrRow]]:
    with (directory / "queue_log.csv").open() as f:
        rows = [queue_log_row(r["time"], r["callid"], r["queuename"], r["agent"], r["event"],
                              [r[f"data{i}"] for i in range(1, 6)], int(r["id"]))
                for r in csv.DictReader(f)]
    return rows, read_cdr_csv((directory / "cdr.csv").read_text())


@pytest.mark.parametrize("name", CAPTURES)
def test_queue_log_file_and_cel_give_the_live_legs(name: str) -> None:
    rows = read_queue_log((DATA / f"{name}.queue_log").read_text())
    cdrs = read_cel_custom_csv((DATA / f"{name}.cel.csv").read_text())
    rebuilt = reconcile(rows, cdrs, server="default", until=2e9)
    seen = live(DATA / f"{name}.raw")
    assert len(rebuilt) == len(seen) == 1
    assert shape(rebuilt[0]) == shape(seen[0])
    assert rebuilt[0].reconciled and not seen[0].reconciled
    assert rebuilt[0].caller_name == "Maria Lopez"


@pytest.mark.parametrize("name", CAPTURES)
def test_asterisks_postgresql_tables_give_the_live_legs(name: str) -> None:
    """The second run, with Asterisk writing queue_log (realtime) and CDR (cdr_pgsql) into
    PostgreSQL: the three calls from the tables match the same run's AMI bytes, one by one."""
    rows, cdrs = pg_rows(DATA / "pgsql-19")
    rebuilt = {r.linkedid: r for r in reconcile(rows, cdrs, server="default", until=2e9)}
    assert len(rebuilt) == 3
    (seen,) = live(DATA / "pgsql-19" / f"{name}.raw")
    assert shape(rebuilt[seen.linkedid]) == shape(seen)
    # the database's microseconds give the legs' times to within Asterisk's rounding
    for a, b in zip(rebuilt[seen.linkedid].legs, seen.legs, strict=True):
        assert abs((a.joined_at - b.joined_at).total_seconds()) < 0.01


def test_expected_figures_of_the_transfer_and_the_timeout() -> None:
    rows, cdrs = pg_rows(DATA / "pgsql-19")
    got = {r.linkedid: r for r in reconcile(rows, cdrs, server="s1", until=2e9)}
    transfer, timeout, abandon = got["1795534583.0"], got["1795534600.6"], got["1795534618.10"]
    assert [(leg.queue, leg.outcome, leg.agent, leg.wait_seconds, leg.talk_seconds)
            for leg in transfer.legs] == [("general-311", "transferred", "Eve", 1, 5),
                                          ("sanitation", "answered", "Ana", 2, 6)]
    assert (transfer.wait_seconds, transfer.talk_seconds, transfer.final_agent) == (3, 11, "Ana")
    assert [(leg.queue, leg.outcome, leg.wait_seconds) for leg in timeout.legs] == [
        ("sanitation", "timed_out", 8), ("general-311", "answered", 2)]
    assert (abandon.outcome, abandon.wait_seconds, abandon.abandon_position) == ("abandoned", 5, 1)
    assert all(r.server == "s1" and r.reconciled for r in got.values())


def test_only_calls_that_are_over_and_missing_are_rebuilt() -> None:
    rows, cdrs = pg_rows(DATA / "pgsql-19")
    # 15:36:40 (epoch 1795534600): the transfer call is over, the timeout call is not
    mid = 1795534600.0
    assert [r.linkedid for r in reconcile(rows, cdrs, server="d", until=mid)] == ["1795534583.0"]
    # the store has the transfer complete and the abandon partial: only those two kinds differ
    known = {"1795534583.0": False, "1795534618.10": True}
    got = [r.linkedid for r in reconcile(rows, cdrs, server="d", until=2e9, known=known)]
    assert got == ["1795534600.6", "1795534618.10"]
    # `since`: calls that ended before the last event the bridge saw are not the gap's
    since = 1795534600.0
    got = [r.linkedid for r in reconcile(rows, cdrs, server="d", until=2e9, since=since)]
    assert got == ["1795534600.6", "1795534618.10"]


def test_without_cdr_a_call_id_is_its_own_linkedid_and_open_calls_wait() -> None:
    lines = [
        "100|c1|sanitation|NONE|ENTERQUEUE||5550101|1",
        "103|c1|sanitation|Ana|CONNECT|3|m1|2",
        "110|c1|sanitation|Ana|COMPLETECALLER|3|7|1",
        "200|c2|potholes|NONE|ENTERQUEUE||5550102|1",
        "202|c2|potholes|NONE|EXITWITHTIMEOUT|1|1|2",
        "300|c3|potholes|NONE|ENTERQUEUE||5550103|1",
    ]
    rows = read_queue_log("\n".join(lines))
    got = reconcile(rows, [], server="d", until=250)
    assert [(r.linkedid, r.outcome, r.caller_number, r.talk_seconds) for r in got] == [
        ("c1", "answered", "5550101", 7)]
    # the timeout is final once no fallback queue followed for `settle` seconds
    got = reconcile(rows, [], server="d", until=400, settle=120)
    assert [(r.linkedid, r.outcome, r.wait_seconds) for r in got] == [
        ("c1", "answered", 3), ("c2", "timed_out", 2)]


def test_short_abandon_and_a_call_cut_inside_the_queue() -> None:
    rows = read_queue_log("\n".join([
        "100|a|sanitation|NONE|ENTERQUEUE||1|1",
        "102|a|sanitation|NONE|ABANDON|1|1|2",
        "200|b|sanitation|NONE|ENTERQUEUE||2|1",
        "204|b|sanitation|Ana|CONNECT|4|m|1",
    ]))
    cdrs = [CdrRow("b", "b", 199.0, 230.0)]
    got = {r.linkedid: r for r in reconcile(rows, cdrs, server="d", until=300)}
    assert got["a"].outcome == "short_abandoned"
    # b: Asterisk stopped logging after CONNECT (a crash); its CDR says it ended at 230
    assert (got["b"].outcome, got["b"].talk_seconds, got["b"].ivr_seconds) == ("answered", 26, 1)


def test_bad_lines_are_reported_and_skipped() -> None:
    errors: list[str] = []
    rows = read_queue_log("garbage\nx|c|q|a|ENTERQUEUE\n100|c|q|NONE|ENTERQUEUE||1|1\n", errors)
    assert len(rows) == 1 and len(errors) == 2
    with pytest.raises(RecordError, match="bad time"):
        parse_queue_log_line("nan|c|q|a|ABANDON|1|1|2")
    # a non-finite figure is never kept
    rows = read_queue_log("100|c|q|NONE|ENTERQUEUE||1|1\n105|c|q|NONE|ABANDON|1|1|inf\n")
    (rec,) = reconcile(rows, [], server="d", until=200)
    assert rec.wait_seconds == 5.0
