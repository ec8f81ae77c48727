"""Routes: the public figures page and its open-data export (anyone, no account), and the
agencies' scorecard (staff; every agency sees every agency's, as the seed asks: agencies sharing
results)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from contactcenter.cases.webform import pick_language
from contactcenter.supervisor.reports import csv_cell
from contactcenter.web.auth import public, require_role, stateless

from .keys import FIGURES
from .measure import fmt_duration, rate
from .service import TABLES, Figures, day_rows, month_rows, service_rows

SCORECARD_ROLES = ("supervisor", "admin", "agency")
SCORECARD_MONTHS = 6

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "3-1-1 in figures", "other_lang": "Español", "other_lang_code": "es",
        "intro": "How the city's 3-1-1 line and its agencies are doing. Updated every 15 minutes; "
                 "no personal data.",
        "calls": "Calls, last 30 days", "date": "Date", "n_calls": "Calls",
        "answered": "Answered", "sl": "Answered within target", "abandoned": "Hung up waiting",
        "agencies": "Agencies, by month", "agency": "Agency", "month": "Month",
        "received": "Requests", "on_time": "Closed on time", "median": "Median contact to "
        "resolution", "cases": "Requests by service and status", "service": "Service",
        "status": "Status", "n_cases": "Requests", "download": "Download the data",
        "generated": "Computed at",
        "open": "open", "acknowledged": "acknowledged", "in_progress": "in progress",
        "waiting_citizen": "waiting for the citizen", "closed": "closed",
    },
    "es": {
        "title": "El 3-1-1 en cifras", "other_lang": "English", "other_lang_code": "en",
        "intro": "Cómo funcionan la línea 3-1-1 de la ciudad y sus agencias. Se actualiza cada "
                 "15 minutos; sin datos personales.",
        "calls": "Llamadas, últimos 30 días", "date": "Fecha", "n_calls": "Llamadas",
        "answered": "Atendidas", "sl": "Atendidas dentro del objetivo",
        "abandoned": "Colgaron esperando", "agencies": "Agencias, por mes", "agency": "Agencia",
        "month": "Mes", "received": "Solicitudes", "on_time": "Cerradas a tiempo",
        "median": "Mediana del contacto a la resolución",
        "cases": "Solicitudes por servicio y estado", "service": "Servicio", "status": "Estado",
        "n_cases": "Solicitudes", "download": "Descargar los datos", "generated": "Calculado el",
        "open": "abierta", "acknowledged": "recibida por la agencia", "in_progress": "en curso",
        "waiting_citizen": "esperando al ciudadano", "closed": "cerrada",
    },
}


def _helpers() -> dict[str, Any]:
    return {"dur": fmt_duration, "pct": rate}


# The export's bodies are built whole: they are the cached figures' aggregates (30 days, the
# services by status, 12 months by agency), a few hundred rows whatever the number of calls.


def json_body(f: Figures) -> str:
    return json.dumps({
        "generated_at": f.generated_at.isoformat(timespec="seconds"),
        "timezone": f.timezone,
        "definitions": "See the README, section 'Public figures'.",
        "calls_by_day": day_rows(f),
        "cases_by_service": service_rows(f),
        "agencies_by_month": month_rows(f),
    }, ensure_ascii=False)


def csv_body(f: Figures, table: str) -> str:
    rows = TABLES[table](f)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    if rows:
        writer.writerow(list(rows[0]))
        for row in rows:
            writer.writerow([csv_cell(v) for v in row.values()])
    return buf.getvalue()


def open_data_bodies(f: Figures) -> dict[str, str]:
    """Every file of the open-data export, by name."""
    return {"data.json": json_body(f), **{f"{t}.csv": csv_body(f, t) for t in sorted(TABLES)}}


@public
async def figures_page(request: web.Request) -> web.Response:
    figures = await request.app[FIGURES].figures()
    lang = pick_language(request)
    local = figures.generated_at.astimezone(request.app[FIGURES].tz)
    return aiohttp_jinja2.render_template(
        "figures/public.html", request,
        {"f": figures, "t": STRINGS[lang], "lang": lang, "tables": sorted(TABLES),
         "generated": local.strftime("%Y-%m-%d %H:%M"), **_helpers()},
    )


@public
@stateless
async def open_data_json(request: web.Request) -> web.Response:
    f: Figures = await request.app[FIGURES].figures()
    return web.Response(text=json_body(f), content_type="application/json",
                        headers={"Access-Control-Allow-Origin": "*"})


@public
@stateless
async def open_data_csv(request: web.Request) -> web.Response:
    table = request.match_info["table"]
    if table not in TABLES:
        raise web.HTTPNotFound(text=f"no table {table!r}; there are: {', '.join(sorted(TABLES))}")
    return web.Response(
        text=csv_body(await request.app[FIGURES].figures(), table),
        content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{table}.csv"',
                 "Access-Control-Allow-Origin": "*"},
    )


@require_role(*SCORECARD_ROLES)
async def scorecard_page(request: web.Request) -> web.Response:
    f: Figures = await request.app[FIGURES].figures()
    months = f.month_list()[-SCORECARD_MONTHS:]
    return aiohttp_jinja2.render_template(
        "figures/scorecard.html", request,
        {"f": f, "months": months, "agencies": f.agencies(), **_helpers()},
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/figures", figures_page, name="figures")
    r.add_get("/figures/data.json", open_data_json, name="figures_json")
    r.add_get("/figures/{table}.csv", open_data_csv, name="figures_csv")
    r.add_get("/scorecard", scorecard_page, name="scorecard")
