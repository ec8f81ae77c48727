"""The citizen's own front door: a public web form at /report, in English and Spanish.

No account: choose a service (its Open311 attributes become fields), describe the problem, give
an address or a point (typed, or "use my location"), optionally a photo and an e-mail or phone
for updates. It files through the same code as Open311 POST (`http.submit`), then shows the
case number and a link to /status. No map: tiles would come from another site, which the CSP
does not allow.

Spam, without third-party captchas: a signed form token (a form older than 12 hours or sent
back within 3 seconds of being shown is refused, and another site cannot post it), a honeypot
field people never see, at most 5 reports per address per 15 minutes (per web process), and the
API's size limits. The pages set no cookie. A refused or invalid form comes back with everything
typed still in it, and a valid photo is kept server-side for the next try (the browser cannot
refill a file field).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from contactcenter.cases.keys import CASE_STORE, CITIZEN_FORM, MEDIA_STORE

from ..keys import SETTINGS
from ..queues.models import ServiceType
from ..web.auth import csrf_exempt, public, stateless
from . import open311 as o3
from .http import check_photo, submit
from .media import MAX_MEDIA_BYTES, IntakeError, Photo, read_multipart

log = logging.getLogger(__name__)

LANGS = ("en", "es")
HONEYPOT = "website"
MAX_PHOTO_MB = MAX_MEDIA_BYTES // 2**20

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Report a problem to 3-1-1", "title_lead": "Report a problem to",
        "intro": "Tell the city about a problem in a public place. No account needed.",
        "other_lang": "Español", "other_lang_code": "es",
        "service": "What is the problem?", "choose": "Choose one…",
        "details_for": "About", "optional": "optional",
        "description": "Describe it", "description_hint": "What, where exactly, since when.",
        "location": "Where is it?",
        "address": "Address or nearest corner",
        "or_point": "or a point (latitude and longitude in degrees)",
        "lat": "Latitude", "long": "Longitude", "eg": "e.g.",
        "use_location": "Use my location", "locating": "Finding your location…",
        "located": "Location found.", "locate_failed": "Your location is not available; "
        "type an address instead.",
        "photo": "Photo", "photo_hint": f"JPEG, PNG or WebP, up to {MAX_PHOTO_MB} MB. "
        "Its hidden data (such as GPS) is removed.",
        "photo_kept": "Photo kept from your last try:",
        "photo_too_big": f"This photo is larger than {MAX_PHOTO_MB} MB.",
        "contact": "Want updates?",
        "contact_hint": "Used only to tell you about this report; never shown publicly.",
        "email": "E-mail", "phone": "Phone",
        "honeypot": "Leave this field empty",
        "send": "Send report",
        "errors": "Please check:",
        "need_service": "Choose what the problem is.",
        "need_description": "Describe the problem.",
        "need_location": "Give an address, or a latitude and a longitude.",
        "pair": "Give both latitude and longitude, or neither.",
        "bad_lat": "Latitude must be a number between -90 and 90.",
        "bad_long": "Longitude must be a number between -180 and 180.",
        "too_long": "The description is longer than 4,000 characters.",
        "rate_limited": "Too many reports from your connection. Please wait 15 minutes.",
        "expired": "This form was open too long. Please check it and send it again.",
        "too_fast": "Please check your report and send it again.",
        "honeypot_filled": "Please leave the field “Leave this field empty” empty.",
        "media_empty": "The photo file is empty.",
        "media_too_big": f"The photo is larger than {MAX_PHOTO_MB} MB.",
        "media_type": "The photo must be a JPEG, PNG, WebP or GIF picture.",
        "media_pixels": "The photo has too many pixels.",
        "media_damaged": "The photo could not be read.",
        "body": "The form could not be read. Please try again.",
        "failed": "The report could not be saved. Please try again in a few minutes.",
        "sent_title": "Thank you: your report was received",
        "your_number": "Your case number",
        "keep_number": "Keep this number. You can check the progress at any time:",
        "check_status": "Check the status",
        "another": "Report another problem",
        "notice_email": "The e-mail address you gave could not be used; it was not saved.",
        "notice_phone": "The phone number you gave could not be used; it was not saved.",
        "notice_extension": "Your phone extension was noted for the staff.",
        "notice_other": "Some contact details could not be used.",
    },
    "es": {
        "title": "Reporte un problema al 3-1-1", "title_lead": "Reporte un problema al",
        "intro": "Informe a la ciudad de un problema en un lugar público. No necesita cuenta.",
        "other_lang": "English", "other_lang_code": "en",
        "service": "¿Cuál es el problema?", "choose": "Elija uno…",
        "details_for": "Sobre", "optional": "opcional",
        "description": "Descríbalo", "description_hint": "Qué pasa, dónde exactamente, desde "
        "cuándo.",
        "location": "¿Dónde está?",
        "address": "Dirección o esquina más cercana",
        "or_point": "o un punto (latitud y longitud en grados)",
        "lat": "Latitud", "long": "Longitud", "eg": "p. ej.",
        "use_location": "Usar mi ubicación", "locating": "Buscando su ubicación…",
        "located": "Ubicación encontrada.", "locate_failed": "Su ubicación no está "
        "disponible; escriba una dirección.",
        "photo": "Foto", "photo_hint": f"JPEG, PNG o WebP, hasta {MAX_PHOTO_MB} MB. Se "
        "eliminan sus datos ocultos (como el GPS).",
        "photo_kept": "Foto guardada de su intento anterior:",
        "photo_too_big": f"Esta foto pesa más de {MAX_PHOTO_MB} MB.",
        "contact": "¿Quiere recibir novedades?",
        "contact_hint": "Solo se usa para informarle sobre este reporte; nunca se publica.",
        "email": "Correo electrónico", "phone": "Teléfono",
        "honeypot": "Deje este campo vacío",
        "send": "Enviar reporte",
        "errors": "Revise lo siguiente:",
        "need_service": "Elija cuál es el problema.",
        "need_description": "Describa el problema.",
        "need_location": "Indique una dirección, o una latitud y una longitud.",
        "pair": "Indique latitud y longitud juntas, o ninguna.",
        "bad_lat": "La latitud debe ser un número entre -90 y 90.",
        "bad_long": "La longitud debe ser un número entre -180 y 180.",
        "too_long": "La descripción tiene más de 4.000 caracteres.",
        "rate_limited": "Demasiados reportes desde su conexión. Espere 15 minutos, por favor.",
        "expired": "El formulario estuvo abierto demasiado tiempo. Revíselo y envíelo de nuevo.",
        "too_fast": "Revise su reporte y envíelo de nuevo, por favor.",
        "honeypot_filled": "Deje vacío el campo «Deje este campo vacío».",
        "media_empty": "El archivo de la foto está vacío.",
        "media_too_big": f"La foto pesa más de {MAX_PHOTO_MB} MB.",
        "media_type": "La foto debe ser una imagen JPEG, PNG, WebP o GIF.",
        "media_pixels": "La foto tiene demasiados píxeles.",
        "media_damaged": "No se pudo leer la foto.",
        "body": "No se pudo leer el formulario. Inténtelo de nuevo.",
        "failed": "No se pudo guardar el reporte. Inténtelo de nuevo en unos minutos.",
        "sent_title": "Gracias: recibimos su reporte",
        "your_number": "Su número de caso",
        "keep_number": "Guarde este número. Puede consultar el avance en cualquier momento:",
        "check_status": "Consultar el estado",
        "another": "Reportar otro problema",
        "notice_email": "No se pudo usar el correo que indicó; no se guardó.",
        "notice_phone": "No se pudo usar el teléfono que indicó; no se guardó.",
        "notice_extension": "Su extensión telefónica quedó anotada para el personal.",
        "notice_other": "Algunos datos de contacto no se pudieron usar.",
    },
}



class RateLimiter:
    """Events per key (a citizen's address) in a sliding window of monotonic time."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}

    def blocked(self, key: str) -> bool:
        q = self._hits.get(key)
        if not q:
            return False
        cutoff = time.monotonic() - self.window
        while q and q[0] < cutoff:
            q.popleft()
        if not q:
            del self._hits[key]
        return len(q) >= self.limit

    def fail(self, key: str) -> None:
        self._hits.setdefault(key, deque()).append(time.monotonic())
        if len(self._hits) > 100_000:  # bound memory under a spray of addresses
            self._hits.pop(next(iter(self._hits)))

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)


@dataclass
class FormRules:
    """Per web process: the token key and the spam limits (tests may loosen them)."""

    key: bytes
    min_fill: timedelta = timedelta(seconds=3)
    max_age: timedelta = timedelta(hours=12)
    per_address: RateLimiter = field(default_factory=lambda: RateLimiter(5, 15 * 60))


def _sign(rules: FormRules, stamp: int) -> str:
    mac = hmac.new(rules.key, f"report|{stamp}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{stamp}.{mac}"


def _token_state(rules: FormRules, token: str, now: float) -> str:
    """"ok", "expired", "too_fast" or "bad" (forged or from another server key)."""
    stamp_text, _, _mac = token.partition(".")
    if not stamp_text.isdigit() or len(stamp_text) > 12:
        return "bad"
    if not hmac.compare_digest(_sign(rules, int(stamp_text)), token):
        return "bad"
    age = now - int(stamp_text)
    if age > rules.max_age.total_seconds() or age < -60:
        return "expired"
    if age < rules.min_fill.total_seconds():
        return "too_fast"
    return "ok"


def pick_language(request: web.Request) -> str:
    asked = request.query.get("lang", "")
    if asked in LANGS:
        return asked
    best, best_q = "en", -1.0
    for item in request.headers.get("Accept-Language", "").split(","):
        tag, _, params = item.strip().partition(";")
        lang = tag.strip().lower()[:2]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if lang in LANGS and q > best_q:
            best, best_q = lang, q
    return best


def _field_name(stype_code: str, attr_code: str) -> str:
    return f"a:{stype_code}:{attr_code}"


def _services(types: list[ServiceType]) -> list[dict[str, Any]]:
    out = []
    for stype in types:
        attrs = []
        for d in o3.attribute_definitions(stype):
            if d["variable"]:
                attrs.append({**d, "field": _field_name(stype.code, d["code"])})
        out.append({"code": stype.code, "name": stype.name, "group": stype.group_name,
                    "description": stype.description, "attributes": attrs})
    return out


async def _render(
    request: web.Request, lang: str, *, values: dict[str, list[str]] | None = None,
    errors: list[str] | None = None, status: int = 200, photo_key: str | None = None,
    photo_name: str | None = None,
) -> web.Response:
    store = request.app[CASE_STORE]
    rules = request.app[CITIZEN_FORM]
    types = await store.service_types()
    values = values or {}
    return aiohttp_jinja2.render_template("report_form.html", request, {
        "t": STRINGS[lang], "lang": lang, "services": _services(types),
        "v": {k: v[0] if v else "" for k, v in values.items()},
        "vs": values, "errors": errors or [], "honeypot": HONEYPOT,
        "token": _sign(rules, int(store.clock().timestamp())),
        "photo_key": photo_key, "photo_name": photo_name,
        "max_photo_bytes": MAX_MEDIA_BYTES,
    }, status=status)


@public
@stateless  # a citizen gets no cookie: nothing here needs a session
async def form_page(request: web.Request) -> web.Response:
    return await _render(request, pick_language(request))


def _one(values: dict[str, list[str]], name: str) -> str:
    got = values.get(name) or [""]
    return got[0].strip()


def _check(t: dict[str, str], values: dict[str, list[str]], stype: ServiceType | None
           ) -> list[str]:
    """The citizen-facing checks, in the citizen's language, before the shared validation."""
    errors = []
    if stype is None:
        errors.append(t["need_service"])
    if not _one(values, "description"):
        errors.append(t["need_description"])
    elif len(_one(values, "description")) > o3.MAX_DESCRIPTION:
        errors.append(t["too_long"])
    lat, lon = _one(values, "lat"), _one(values, "long")
    if bool(lat) != bool(lon):
        errors.append(t["pair"])
    for raw, name, limit in ((lat, "bad_lat", 90.0), (lon, "bad_long", 180.0)):
        if raw:
            problems: list[str] = []
            o3.parse_coordinate(raw.replace(",", "."), name, limit, problems)
            if problems:
                errors.append(t[name])
    if not lat and not lon and not _one(values, "address"):
        errors.append(t["need_location"])
    return errors


def _open311_form(values: dict[str, list[str]], stype: ServiceType) -> o3.Form:
    """The citizen's answers as an Open311 POST form, so both go through one validator."""
    form: o3.Form = {"service_code": [stype.code]}
    for ours, theirs in (("description", "description"), ("address", "address_string"),
                         ("lat", "lat"), ("long", "long"), ("email", "email"),
                         ("phone", "phone")):
        value = _one(values, ours)
        if value:
            form[theirs] = [value.replace(",", ".") if ours in ("lat", "long") else value]
    for d in o3.attribute_definitions(stype):
        given = [v for v in values.get(_field_name(stype.code, d["code"]), []) if v.strip()]
        if given:
            suffix = "[]" if d["datatype"] == "multivaluelist" else ""
            form[f"attribute[{d['code']}]{suffix}"] = given
    return form


@public
@stateless
@csrf_exempt  # the signed form token does the job, and an expired session loses nothing
async def form_submit(request: web.Request) -> web.Response:
    lang = pick_language(request)
    rules = request.app[CITIZEN_FORM]
    address = request.remote or "?"
    values: dict[str, list[str]] = {}
    upload = None
    try:
        if request.content_type == "multipart/form-data":
            values, upload = await read_multipart(request)
        else:  # a browser without the photo field's multipart (or a script) posts plain fields
            posted = await request.post()
            for k in set(posted):
                values[k] = [str(v) for v in posted.getall(k)]
    except IntakeError as exc:
        values = {k: v for k, v in exc.fields.items() if k not in (HONEYPOT, "ft")}
        lang = _one(values, "lang") if _one(values, "lang") in LANGS else lang
        t = STRINGS[lang]
        return await _render(request, lang, values=values,
                             errors=[t.get(exc.code, t["body"])], status=400)
    except web.HTTPRequestEntityTooLarge:
        return await _render(request, lang, errors=[STRINGS[lang]["media_too_big"]],
                             status=413)
    lang = _one(values, "lang") if _one(values, "lang") in LANGS else lang
    t = STRINGS[lang]
    values.pop("lang", None)
    photo_key = _one(values, "photo_key") or None
    photo_name = _one(values, "photo_name") or None

    def again(errors: list[str], status: int = 400) -> Awaitable[web.Response]:
        return _render(request, lang, values=values, errors=errors, status=status,
                       photo_key=photo_key, photo_name=photo_name)

    if rules.per_address.blocked(address):
        log.warning("citizen form: rate limit hit from %s", address)
        return await again([t["rate_limited"]], 429)
    if _one(values, HONEYPOT):
        rules.per_address.fail(address)  # a bot's tries count against its address
        values.pop(HONEYPOT, None)
        log.info("citizen form: honeypot filled from %s", address)
        return await again([t["honeypot_filled"]])
    store = request.app[CASE_STORE]
    state = _token_state(rules, _one(values, "ft"), store.clock().timestamp())
    if state != "ok":
        return await again([t["too_fast" if state == "too_fast" else "expired"]])

    stype = await store.service_type(_one(values, "service")) if _one(values, "service") \
        else None
    errors = _check(t, values, stype)
    photo: Photo | None = None
    if upload is not None:
        try:
            photo = await check_photo(upload.data)
        except IntakeError as exc:
            errors.append(t.get(exc.code, t["media_damaged"]))
    if photo is not None and errors:
        # keep the checked photo for the next try: the browser cannot refill a file field
        photo_key = await request.app[MEDIA_STORE].save(photo, store.clock())
        photo_name = upload.filename if upload is not None else None
    if errors:
        return await again(errors)
    assert stype is not None
    try:
        view, filing = await submit(
            request, _open311_form(values, stype), stype, photo,
            media_key=photo_key if photo is None else None,
            origin={"via": "web form", "lang": lang}, actor="web form")
    except o3.Open311Errors as exc:
        return await again([e.description for e in exc.errors])
    except Exception:
        log.exception("citizen form: filing failed")
        return await again([t["failed"]], 503)
    rules.per_address.fail(address)  # counts filed reports per address
    notices = sorted({n.field if n.reason != "extension" else "extension"
                      for n in filing.notices})
    query = urlencode({"lang": lang, **({"n": ",".join(notices)} if notices else {})})
    raise web.HTTPSeeOther(f"/report/sent/{view.token}?{query}")


@public
@stateless
async def sent_page(request: web.Request) -> web.Response:
    lang = pick_language(request)
    token = request.match_info["token"]
    view = await request.app[CASE_STORE].by_token(token) if len(token) <= 64 else None
    if view is None:
        raise web.HTTPFound(f"/report?lang={lang}")
    t = STRINGS[lang]
    notices = []
    for n in request.query.get("n", "").split(","):
        key = {"email": "notice_email", "phone": "notice_phone",
               "extension": "notice_extension"}.get(n, "notice_other" if n else "")
        if key and t[key] not in notices:
            notices.append(t[key])
    return aiohttp_jinja2.render_template("report_sent.html", request, {
        "t": t, "lang": lang, "case": view, "notices": notices,
    })


def setup(app: web.Application) -> None:
    secret = app[SETTINGS].secret_key or secrets.token_urlsafe(32)
    app[CITIZEN_FORM] = FormRules(key=hashlib.sha256(f"citizen-form|{secret}".encode())
                                  .digest())
    app.router.add_get("/report", form_page, name="report_form")
    app.router.add_post("/report", form_submit, name="report_submit")
    app.router.add_get("/report/sent/{token}", sent_page, name="report_sent")
