"""The IVR containment report's definitions (supervisor/containment.py): a call's path and
class from its stored record, the summary's counts, the option labels, the CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from contactcenter.ivr.menu import default_menu, load_menu
from contactcenter.supervisor.containment import CLASSES, classify, path_key, summarize
from contactcenter.supervisor.containment_report import (
    ContainmentReport,
    Counts,
    PathRow,
    label_path,
    report_csv,
)
from contactcenter.supervisor.reports import DateRange

T0 = datetime(2026, 5, 4, 9, 7, tzinfo=UTC)


def test_path_is_the_menu_choices_without_language_and_destination() -> None:
    assert path_key(["lang:2", "main:1", "sanitation"]) == "main:1"
    assert path_key(["lang:1", "main:9", "main:case", "self_served"]) == "main:9,main:case"
    assert path_key(["lang:1", "main:-", "main:-", "main:-", "general-311"]) \
        == "main:-,main:-,main:-"
    assert path_key(["lang:1", "..", "n5:1", "n6:2", "potholes"]) == "..,n5:1,n6:2"
    assert path_key(["lang:1"]) == path_key([]) == path_key(None) == ""
    # a stored value that is not the IVR's (older rows, bad JSON): never an error
    assert path_key(["main", "sanitation"]) == ""  # the demo history's old shape
    assert path_key([3, None, "main:1"]) == "main:1"
    assert len(path_key([f"n{i}:1" for i in range(100)])) <= 200


@pytest.mark.parametrize(("outcome", "queue", "path", "cls"), [
    # served by the IVR: the tracker's outcome from IVROUTCOME=self_served
    ("ivr_self_served", None, ["lang:1", "main:7", "self_served"], "contained"),
    ("ivr_self_served", None, ["lang:1", "main:9", "main:case"], "contained"),  # hung up after
    ("ivr_self_served", None, ["lang:1", "main:1", "closed:1", "self_served"], "contained"),
    # hung up in the IVR before any self-service step was done
    ("ivr_hangup", None, ["lang:1", "main:-"], "abandoned"),
    ("ivr_hangup", None, [], "abandoned"),
    ("ivr_hangup", None, ["lang:1", "main:7"], "abandoned"),  # during the message
    ("ivr_hangup", None, ["lang:1", "main:1", "sanitation"], "abandoned"),  # before Queue()
    # the queue was closed and no request left: the IVR ended it, nobody abandoned
    ("ivr_hangup", None, ["lang:1", "main:1", "closed"], "closed"),
    # the menu's outside number
    ("transferred", None, ["lang:1", "main:8", "transfer"], "transferred"),
    ("answered", None, ["lang:1", "main:8", "transfer"], "transferred"),
    # a queue, however it ended there
    ("answered", "sanitation", ["lang:1", "main:1", "sanitation"], "queued"),
    ("abandoned", "sanitation", ["lang:1", "main:1", "sanitation"], "queued"),
    ("short_abandoned", "potholes", ["lang:1", "main:2", "potholes"], "queued"),
    ("timed_out", "general-311", ["lang:1", "main:-", "general-311"], "queued"),
    ("transferred", "sanitation", ["lang:1", "main:1", "sanitation"], "queued"),
    ("answered", "general-311", [], "queued"),  # the AGI was down: the dialplan's fallback
])
def test_classify(outcome: str, queue: str | None, path: list[str], cls: str) -> None:
    assert classify(outcome, queue, path) == cls


def test_summarize_counts_per_local_day_path_and_class() -> None:
    def row(hour: int, outcome: str, queue: str | None, path: list[str]) -> dict[str, object]:
        return {"started_at": T0.replace(hour=hour), "outcome": outcome, "queue": queue,
                "ivr_path": path}

    rows = [
        row(9, "ivr_self_served", None, ["lang:1", "main:7", "self_served"]),
        row(14, "ivr_self_served", None, ["lang:2", "main:7", "self_served"]),  # es: same path
        row(2, "ivr_self_served", None, ["lang:1", "main:7", "self_served"]),  # 3 May in NY
        row(8, "answered", "sanitation", ["lang:1", "main:1", "sanitation"]),
        row(9, "ivr_hangup", None, ["lang:1"]),
    ]
    d3, d4 = date(2026, 5, 3), date(2026, 5, 4)
    assert summarize(rows, ZoneInfo("America/New_York")) == {
        (d4, "main:7", "contained"): 2, (d3, "main:7", "contained"): 1,
        (d4, "main:1", "queued"): 1, (d4, "", "abandoned"): 1}
    assert summarize(rows) == {(d4, "main:7", "contained"): 3, (d4, "main:1", "queued"): 1,
                               (d4, "", "abandoned"): 1}  # UTC


MENU = load_menu(default_menu())


def test_labels_come_from_the_menu_options() -> None:
    assert label_path(MENU, "main:1") == ["main 1: queue sanitation"]
    assert label_path(MENU, "main:7") == ["main 7: transfer / message"]
    assert label_path(MENU, "main:-,main:5,main:0") == [
        "main: no key", "main 5: not an option", "main 0: queue general-311"]
    # inside the case status, the same node's keys mean the case dialogue's, not the menu's
    assert label_path(MENU, "main:9,main:1") == ["main 9: case status", "main 1: my open case"]
    assert label_path(MENU, "main:9,main:case") == ["main 9: case status",
                                                    "main keyed a case number"]
    assert label_path(MENU, "main:1,closed:1") == ["main 1: queue sanitation",
                                                   "closed: left a request"]
    # no menu, or a node the active version no longer has: the keys as pressed
    assert label_path(None, "main:1,sub:2") == ["main:1", "sub:2"]
    assert label_path(MENU, "gone:3,..") == ["gone:3", "…"]
    assert label_path(MENU, "") == []


def test_counts_and_rate() -> None:
    c = Counts()
    assert c.total == 0 and c.containment is None
    for cls, n in zip(CLASSES, (3, 2, 1, 1, 5), strict=True):
        c.add(cls, n)
    assert c.total == 12 and c.containment == pytest.approx(0.25)


def test_csv_is_one_row_per_path_then_the_total_and_safe_in_a_spreadsheet() -> None:
    a, b = Counts(contained=3, queued=1), Counts(abandoned=2)
    total = Counts(contained=3, queued=1, abandoned=2)
    report = ContainmentReport(
        DateRange(date(2026, 5, 4), date(2026, 5, 4)), total, {},
        [PathRow("main:7", ["main 7: message"], a), PathRow("", [], b),
         PathRow("=cmd:1", ["=cmd 1: x"], Counts())], None, 3)
    rows = list(csv.reader(io.StringIO(report_csv(report))))
    assert rows[0] == ["path", "path_labels", *CLASSES, "total", "containment_rate"]
    assert rows[1] == ["main:7", "main 7: message", "3", "0", "0", "0", "1", "4", "0.7500"]
    assert rows[2][:2] == ["(no menu choice)", ""] and rows[2][-2:] == ["2", "0.0000"]
    assert rows[3][:2] == ["'=cmd:1", "'=cmd 1: x"] and rows[3][-1] == ""
    assert rows[4] == ["(all calls)", "", "3", "2", "0", "0", "1", "6", "0.5000"]
