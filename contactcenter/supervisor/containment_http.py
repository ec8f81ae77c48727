"""/reports/ivr (the IVR containment report, containment_report.py) and its CSV.

The figures are computed in the report worker (offloop.py), as the other reports: two GROUP BYs
over the `ivr_containment` summary, never the calls.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.supervisor.keys import SUPERVISOR
from contactcenter.web.auth import require_role

from . import reports
from .charts import Series, bar_chart
from .containment import CLASS_LABELS, CLASSES
from .containment_report import ContainmentReport, containment_report, report_csv
from .http import STAFF, _csv_range, _csv_response, _heavy, _range

Sessions = async_sessionmaker[AsyncSession]


async def ivr_work(sessions: Sessions, rng: reports.DateRange) -> ContainmentReport:
    """The report's figures (run in the report worker)."""
    return await containment_report(sessions, rng)


@require_role(*STAFF)
async def ivr_page(request: web.Request) -> web.Response:
    svc = request.app[SUPERVISOR].service
    try:
        rng = _range(request)
    except reports.ReportError as exc:
        return aiohttp_jinja2.render_template(
            "supervisor/reports_ivr.html", request,
            {"error": str(exc), "query": dict(request.query), "report": None,
             "tz": svc.settings.timezone}, status=400)
    report = await _heavy(request, ivr_work, rng)
    days = list(report.by_day)
    chart = bar_chart(
        "Calls by day and how they ended in the IVR", [d.strftime("%m-%d") for d in days],
        [Series(CLASS_LABELS[c], [getattr(report.by_day[d], c) for d in days])
         for c in ("contained", "abandoned", "queued")])
    rate = bar_chart(
        "Containment rate by day", [d.strftime("%m-%d") for d in days],
        [Series("contained", [report.by_day[d].containment or 0.0 for d in days])],
        percent=True, height=200)
    return aiohttp_jinja2.render_template(
        "supervisor/reports_ivr.html", request,
        {"error": None, "report": report, "rng": rng, "tz": svc.settings.timezone,
         "classes": CLASSES, "labels": CLASS_LABELS, "chart": chart, "rate_chart": rate,
         "query": {"from": rng.first.isoformat(), "to": rng.last.isoformat()}})


@require_role(*STAFF)
async def ivr_csv(request: web.Request) -> web.Response:
    rng = _csv_range(request)
    report = await _heavy(request, ivr_work, rng)
    return _csv_response(report_csv(report), f"ivr-containment-{rng.first}-{rng.last}.csv")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/reports/ivr", ivr_page, name="reports_ivr")
    app.router.add_get("/reports/ivr.csv", ivr_csv, name="reports_ivr_csv")


__all__ = ["add_routes", "ivr_work"]
