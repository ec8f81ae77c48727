"""The citizens' status page (/status): English or Spanish (browser language, or the switch),
times in the center's zone (CC_TIMEZONE), the public timeline of the case, and any reasonable
spelling of a case number (dashes or not, with or without 311, short sequence, slashes).

Public by design: it shows what Open311 shows (no contact details, no internal notes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from ..keys import CLOCK, SESSIONS, SETTINGS
from ..web.auth import public
from . import open311 as o3
from .citizen_clock import citizen_clock
from .keys import CASE_STORE, ESTIMATES
from .store import PublicUpdate, normalize_case_number
from .timeline import fmt_duration

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "lookup_title": "Check a request", "number_label": "Case number",
        "show": "Show", "lookup_help": "The number you were given, e.g. 311-2026-000123.",
        "bad_number": "That does not look like a case number. Case numbers look like "
                      "311-2026-000123.",
        "case": "Case", "not_found": "Case not found",
        "not_found_text": "There is no case with the number {number}. Case numbers look like "
                          "311-2026-000123; please check the number you were given.",
        "service": "Service", "status": "Status", "handled_by": "Handled by",
        "received": "Received", "last_update": "Last update", "expected": "Expected by",
        "resolution": "Resolution", "updates": "What happened", "another": "Look up another case",
        "open": "Open", "acknowledged": "Acknowledged", "in_progress": "In progress",
        "closed": "Closed", "waiting_citizen": "Waiting for your reply",
        "ev_created": "We received your request.",
        "ev_acknowledged": "{agency} has received your request.",
        "ev_started": "Work has started.", "ev_noted": "Update",
        "ev_closed": "Closed", "ev_reopened": "Reopened",
        "ev_waiting": "We are waiting for your reply.", "ev_resumed": "Work resumed.",
        "other_lang": "Español", "other_lang_code": "es", "default_agency": "3-1-1",
        "clock": "Your request's clock", "clock_total": "Since your first contact",
        "st_contact": "You contacted 3-1-1", "st_answered": "An operator answered",
        "st_acknowledged": "The agency took it on", "st_resolved": "Resolved",
        "st_pending": "not yet",
    },
    "es": {
        "lookup_title": "Consultar una solicitud", "number_label": "Número de caso",
        "show": "Ver", "lookup_help": "El número que le dieron, p. ej. 311-2026-000123.",
        "bad_number": "Eso no parece un número de caso. Los números de caso son como "
                      "311-2026-000123.",
        "case": "Caso", "not_found": "Caso no encontrado",
        "not_found_text": "No hay ningún caso con el número {number}. Los números de caso son "
                          "como 311-2026-000123; revise el número que le dieron.",
        "service": "Servicio", "status": "Estado", "handled_by": "A cargo de",
        "received": "Recibida", "last_update": "Última actualización",
        "expected": "Fecha prevista", "resolution": "Resolución", "updates": "Qué ha pasado",
        "another": "Consultar otro caso",
        "open": "Abierta", "acknowledged": "Recibida por la agencia", "in_progress": "En curso",
        "closed": "Cerrada", "waiting_citizen": "Esperando su respuesta",
        "ev_created": "Recibimos su solicitud.",
        "ev_acknowledged": "{agency} recibió su solicitud.",
        "ev_started": "Comenzó el trabajo.", "ev_noted": "Actualización",
        "ev_closed": "Cerrada", "ev_reopened": "Reabierta",
        "ev_waiting": "Esperamos su respuesta.", "ev_resumed": "Se reanudó el trabajo.",
        "other_lang": "English", "other_lang_code": "en", "default_agency": "3-1-1",
        "clock": "El reloj de su solicitud", "clock_total": "Desde su primer contacto",
        "st_contact": "Usted contactó al 3-1-1", "st_answered": "Le atendió un operador",
        "st_acknowledged": "La agencia la tomó a su cargo", "st_resolved": "Resuelta",
        "st_pending": "todavía no",
    },
}


def pick_language(request: web.Request) -> str:
    # the citizen form's rule (?lang=, else Accept-Language); imported here because webform
    # imports cases/http.py, which registers this page
    from .webform import pick_language as pick

    return pick(request)


def _when(request: web.Request) -> Any:
    zone = ZoneInfo(request.app[SETTINGS].timezone)

    def fmt(dt: datetime | None) -> str:
        return dt.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if dt else ""

    return fmt


def _context(request: web.Request, lang: str, **extra: Any) -> dict[str, Any]:
    # a language chosen with the switch is kept in links; one from the browser needs none
    chosen = request.query.get("lang", "") in STRINGS
    return {"t": STRINGS[lang], "lang": lang, "chosen": chosen, **extra}


def _with_lang(request: web.Request, path: str) -> str:
    lang = request.query.get("lang", "")
    return f"{path}?lang={lang}" if lang in STRINGS else path


@public
async def status_lookup(request: web.Request) -> web.StreamResponse:
    lang = pick_language(request)
    raw = request.query.get("number", "").strip()
    if raw:
        number = normalize_case_number(raw)
        if number is not None:
            raise web.HTTPFound(_with_lang(request, f"/status/{number}"))
        return aiohttp_jinja2.render_template("status/lookup.html", request, _context(
            request, lang, error=STRINGS[lang]["bad_number"], value=raw[:40]), status=400)
    return aiohttp_jinja2.render_template("status/lookup.html", request,
                                          _context(request, lang, error=None, value=""))


def _timeline(t: dict[str, str], updates: list[PublicUpdate], agency: str,
              known: tuple[str | None, str | None]) -> list[dict[str, Any]]:
    out = []
    for u in updates:
        label = t.get(f"ev_{u.change}", t["ev_noted"])
        note = "" if u.change == "acknowledged" else o3.mask_contacts(u.note, known)
        out.append({"at": u.at, "label": label.format(agency=u.agency_name or agency),
                    "note": note,
                    "change": u.change})
    return out


@public
async def status_page(request: web.Request) -> web.StreamResponse:
    lang = pick_language(request)
    t = STRINGS[lang]
    raw = request.match_info["number"].strip("/")
    if not raw:
        raise web.HTTPFound(_with_lang(request, "/status"))
    number = normalize_case_number(raw)
    if number is not None and number != raw:
        raise web.HTTPFound(_with_lang(request, f"/status/{quote(number)}"))
    store = request.app[CASE_STORE]
    view = await store.by_number(number) if number else None
    if view is None:
        return aiohttp_jinja2.render_template("status/missing.html", request, _context(
            request, lang, number=raw[:40]), status=404)
    known = (view.citizen_email, view.citizen_phone)
    agency = view.agency_name or t["default_agency"]
    updates = await store.public_history(view.id)
    items = [{"at": view.created_at, "label": t["ev_created"], "note": "", "change": "created"}]
    if updates:
        items += _timeline(t, updates, agency, known)
    else:  # cases from before the history: their public notes
        items += [{"at": n.created_at, "label": t["ev_noted"], "change": "noted",
                   "note": o3.mask_contacts(n.body, known)} for n in view.public_notes]
    expected, _basis = await request.app[ESTIMATES].expected(
        created_at=view.created_at, sla_due_at=view.sla_due_at, service=view.service_code,
        agency=view.agency_code)
    steps, total = await citizen_clock(request.app[SESSIONS], store, view,
                                       request.app[CLOCK].now())
    return aiohttp_jinja2.render_template("status/case.html", request, _context(
        request, lang, case=view, record=o3.request_record(view, expected=expected),
        expected=expected, steps=steps, total=total, dur=fmt_duration, items=items,
        status_label=t.get(view.status, view.status.replace("_", " ")), agency=agency,
        resolution=o3.mask_contacts(view.close_reason or "", known), when=_when(request)))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/status", status_lookup, name="case_lookup")
    # any path under /status/: a number with slashes, a trailing slash, nothing
    app.router.add_get("/status/{number:.*}", status_page, name="case_status")
