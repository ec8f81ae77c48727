"""The IVR containment report (definitions: containment.py): a date range's calls by class, in
total, by day and by menu path, from the `ivr_containment` summary; the paths labelled with the
active menu's options; a CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.ivr.menu import Menu, parse_menu
from contactcenter.ivr.models import MenuVersion
from contactcenter.supervisor.models import IvrContainment

from .containment import CLASSES
from .reports import DateRange, csv_cell

MAX_PATHS = 500  # rows on the page; the rest summed in one "other paths" row


@dataclass(slots=True)
class Counts:
    """Calls by class."""

    contained: int = 0
    abandoned: int = 0
    closed: int = 0
    transferred: int = 0
    queued: int = 0

    @property
    def total(self) -> int:
        return self.contained + self.abandoned + self.closed + self.transferred + self.queued

    @property
    def containment(self) -> float | None:
        """contained / all calls (None without calls)."""
        return self.contained / self.total if self.total else None

    def add(self, cls: str, n: int) -> None:
        setattr(self, cls, getattr(self, cls) + n)


@dataclass(slots=True)
class PathRow:
    path: str  # the key ("" = no menu choice)
    labels: list[str]  # one per choice, from the active menu (or the raw item)
    counts: Counts


@dataclass(slots=True)
class ContainmentReport:
    range: DateRange
    total: Counts
    by_day: dict[date, Counts]
    paths: list[PathRow]  # most calls first
    other_paths: Counts | None = None  # the paths past MAX_PATHS, summed
    menu_version: int | None = None  # whose option labels are shown


async def containment_report(
    sessions: async_sessionmaker[AsyncSession], rng: DateRange,
    *, max_paths: int = MAX_PATHS,
) -> ContainmentReport:
    """The range's calls by class: in total, by day and by path; two GROUP BYs over the
    summary's days (the center's, as the writer keeps them), never the calls."""
    t = IvrContainment
    in_range = (t.day >= rng.first, t.day <= rng.last)
    async with sessions() as db:
        per_path = (await db.execute(
            select(t.path, t.outcome, func.sum(t.calls)).where(*in_range)
            .group_by(t.path, t.outcome))).all()
        per_day = (await db.execute(
            select(t.day, t.outcome, func.sum(t.calls)).where(*in_range)
            .group_by(t.day, t.outcome))).all()
        version, menu = await active_menu(db)
    total = Counts()
    by_day = {d: Counts() for d in rng.days()}
    for day, cls, n in per_day:
        if cls in CLASSES:
            by_day.setdefault(day, Counts()).add(cls, int(n))
            total.add(cls, int(n))
    paths: dict[str, Counts] = {}
    for path, cls, n in per_path:
        if cls in CLASSES:
            paths.setdefault(path, Counts()).add(cls, int(n))
    ranked = sorted(paths.items(), key=lambda kv: (-kv[1].total, kv[0]))
    other: Counts | None = None
    if len(ranked) > max_paths:
        other = Counts()
        for _, c in ranked[max_paths:]:
            for cls in CLASSES:
                other.add(cls, getattr(c, cls))
        ranked = ranked[:max_paths]
    rows = [PathRow(p, label_path(menu, p), c) for p, c in ranked]
    return ContainmentReport(rng, total, by_day, rows, other, version)


async def active_menu(db: AsyncSession) -> tuple[int | None, Menu | None]:
    """The active menu version, for the option labels (None when there is none or it does
    not load: the paths are then shown as keys)."""
    row = (await db.execute(
        select(MenuVersion.version, MenuVersion.data)
        .where(MenuVersion.status == "active").order_by(MenuVersion.id.desc()).limit(1)
    )).first()
    if row is None:
        return None, None
    menu, _ = parse_menu(row.data)
    return row.version, menu


def _action_label(kind: str, queue: str | None, node: str | None) -> str:
    if kind == "queue":
        return f"queue {queue}"
    if kind == "submenu":
        return f"menu {node}"
    return {"case_status": "case status", "message_hangup": "message",
            "transfer_external": "transfer / message", "repeat": "repeat",
            "back": "back"}.get(kind, kind)


def label_path(menu: Menu | None, path: str) -> list[str]:
    """A label per choice of `path`: the key and what it does in `menu` ("main 1: queue
    sanitation", "main 9: case status", then within the case status "keyed a case number",
    "1: my open case"...). A choice the menu does not know (an older version) keeps its key."""
    if not path:
        return []
    out: list[str] = []
    case_node: str | None = None  # inside a case-status dialogue at this node
    for item in path.split(","):
        node_id, _, key = item.rpartition(":")
        label = item
        if item == "..":
            label = "…"
        elif node_id == "closed":
            label = "closed: " + ("left a request" if key == "1" else
                                  "no key" if key == "-" else f"{key} (no request)")
        elif menu is not None and node_id == case_node:
            label = f"{node_id} " + {"case": "keyed a case number", "-": "no key",
                                     "1": "1: my open case", "2": "2: another case",
                                     "0": "0: operator"}.get(key, key)
        elif menu is not None and node_id in menu.nodes:
            option = menu.nodes[node_id].option(key) if key not in ("-", "case") else None
            if key == "-":
                label = f"{node_id}: no key"
            elif option is None:
                label = f"{node_id} {key}: not an option"
            else:
                a = option.action
                label = f"{node_id} {key}: {_action_label(a.kind, a.queue, a.node)}"
                case_node = node_id if a.kind == "case_status" else None
        out.append(label)
    return out


CSV_COLUMNS = ("path", "path_labels", *CLASSES, "total", "containment_rate")


def report_csv(report: ContainmentReport) -> str:
    """One row per path (the page's), then the total; the rate is a fraction (0.25 = 25 %)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)

    def row(path: str, labels: str, c: Counts) -> list[str]:
        rate = c.containment
        return [csv_cell(path), csv_cell(labels), *(str(getattr(c, k)) for k in CLASSES),
                str(c.total), "" if rate is None else f"{rate:.4f}"]

    for p in report.paths:
        w.writerow(row(p.path or "(no menu choice)", " > ".join(p.labels), p.counts))
    if report.other_paths is not None:
        w.writerow(row("(other paths)", "", report.other_paths))
    w.writerow(row("(all calls)", "", report.total))
    return buf.getvalue()


__all__ = ["ContainmentReport", "Counts", "PathRow", "containment_report", "label_path",
           "report_csv"]
