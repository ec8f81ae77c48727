"""`python -m bench.report_views` (after `make bench-data`): the SLA report by service and
agency, its overdue drill-down and the abandoned callers' list on the database `bench.data`
loaded (`CCBENCH_DB`, default cc_bench_data), each run as the pages run them (in the report
worker process, supervisor/offloop.py), with the plan PostgreSQL chose for the main queries.

JSON on stdout (and bench/results/report-views-<N cases>-<timestamp>.json): per operation the
median seconds of `--runs` runs, the sizes it found, and the indexes its plan used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql

from bench.data import DB_NAME, END, RESULTS, TZ, _dsn, say
from contactcenter import db
from contactcenter.cases.models import Call, Case
from contactcenter.supervisor import callback_list, reports, sla_views
from contactcenter.supervisor.offloop import OffLoop

TARGET_SLA_366D_S = 0.5  # issue 24's target for the SLA report of a year (1M calls, 300k cases)


async def timed(runs: int, op: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    times, extra = [], {}
    for _ in range(runs):
        t = time.perf_counter()
        extra = await op()
        times.append(time.perf_counter() - t)
    return {"seconds": round(statistics.median(times), 4),
            "runs": [round(x, 4) for x in times], **extra}


async def plan_indexes(sessions: Any, query: Any) -> list[str]:
    """The indexes in PostgreSQL's plan of `query` (its values inlined)."""
    sql = str(query.compile(dialect=postgresql.dialect(),
                            compile_kwargs={"literal_binds": True}))
    async with sessions() as s:
        rows = (await s.execute(text("EXPLAIN " + sql))).scalars().all()
    found = (re.findall(r"(?:using|Index Scan on) (\w+)", line) for line in rows)
    return sorted({name for names in found for name in names})


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    url = "postgresql+asyncpg://" + _dsn(args.pg_admin, DB_NAME).split("://", 1)[1]
    await asyncio.to_thread(db.upgrade, url)  # this branch's indexes
    sessions = db.make_sessionmaker(db.make_engine(url))
    tz = ZoneInfo(TZ)
    last = (END - timedelta(days=1)).astimezone(tz).date()

    def rng(days: int) -> reports.DateRange:
        return reports.DateRange(last - timedelta(days=days - 1), last)

    async with sessions() as s:
        size = {"calls": (await s.execute(select(func.count()).select_from(Call))).scalar(),
                "cases": (await s.execute(select(func.count()).select_from(Case))).scalar()}
    worker = OffLoop(url)
    await worker.start()
    await worker.run(sla_views.breakdown_work, rng(1), tz, END)  # the worker is up
    out: dict[str, Any] = {}
    try:
        for days in (30, 366):
            async def sla(d: int = days) -> dict[str, Any]:
                b = await worker.run(sla_views.breakdown_work, rng(d), tz, END)
                return {"cases": b.total.total, "overdue": b.total.overdue,
                        "services": len(b.by_service), "agencies": len(b.by_agency)}

            out[f"sla_by_service_agency_{days}d"] = await timed(args.runs, sla)
            say(f"sla {days}d: {out[f'sla_by_service_agency_{days}d']}")

            async def by_agency(d: int = days) -> dict[str, Any]:
                # the reports page's own SLA table (by agency only), for comparison
                rows = await worker.run(reports.sla_report, rng(d), tz, END, TZ)
                return {"cases": sum(r.total for r in rows)}

            out[f"reports_page_sla_by_agency_{days}d"] = await timed(args.runs, by_agency)

            async def overdue(d: int = days) -> dict[str, Any]:
                p = await worker.run(sla_views.overdue_work, rng(d), tz, END,
                                     sla_views.OverdueFilter(), None)
                return {"overdue": p.total, "page": len(p.cases)}

            out[f"overdue_first_page_{days}d"] = await timed(args.runs, overdue)
            say(f"overdue {days}d: {out[f'overdue_first_page_{days}d']}")

            async def callers(d: int = days) -> dict[str, Any]:
                f = await worker.run(callback_list.list_work, rng(d), tz,
                                     callback_list.ListFilter(), 1)
                return {"abandoned_calls": f.calls, "unserved_callers": f.unserved}

            out[f"abandoned_callers_{days}d"] = await timed(args.runs, callers)
            say(f"callers {days}d: {out[f'abandoned_callers_{days}d']}")
        lines, _ = callback_list._lines_query(rng(366), tz, callback_list.ListFilter())
        out["abandoned_callers_plan_indexes"] = await plan_indexes(
            sessions, select(lines).limit(100))
        start, end = rng(366).bounds(tz)
        async with sessions() as s:
            where, _, _ = await sla_views._overdue_query(s, rng(366), tz, END, TZ,
                                                         sla_views.OverdueFilter())
        out["overdue_plan_indexes"] = await plan_indexes(
            sessions, sla_views._select_cases().where(*where)
            .order_by(Case.sla_due_at, Case.id).limit(51))
        out["sla_plan_indexes"] = await plan_indexes(
            sessions, select(Case.service_type_id, Case.agency_id, func.count())
            .where(Case.created_at >= start, Case.created_at < end)
            .group_by(Case.service_type_id, Case.agency_id))
    finally:
        await worker.close()
    return {"benchmark": "report-views", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load": size, "operations": out,
            "target_sla_366d_s_at_1m_calls": TARGET_SLA_366D_S}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args()
    result = asyncio.run(main_async(args))
    body = json.dumps(result, indent=2)
    print(body)
    RESULTS.mkdir(parents=True, exist_ok=True)
    cases = result["load"]["cases"]
    (RESULTS / f"report-views-{cases}-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
