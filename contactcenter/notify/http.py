"""The opt-out link of every message: GET asks (mail scanners that open links must not opt a
citizen out), POST records it. The signed token is the authority, so no account or session is
needed (and no CSRF token: a forged POST needs the citizen's own secret link)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.exc import IntegrityError

from ..cases.models import Citizen
from ..keys import CLOCK, SESSIONS, SETTINGS
from ..web.auth import csrf_exempt, public
from .models import NotifyOptOut
from .optout import read_token

STRINGS = {
    "en": {"title": "Stop messages from 3-1-1", "other": "Español", "other_code": "es",
           "ask": "Stop e-mails and text messages about your 3-1-1 requests? You can still "
                  "follow them on the status page or by calling 3-1-1.",
           "button": "Stop messages",
           "done": "Done: you will get no more messages about your 3-1-1 requests.",
           "invalid": "This link is not valid. Please use the link from your latest message."},
    "es": {"title": "No recibir más mensajes del 3-1-1", "other": "English", "other_code": "en",
           "ask": "¿Dejar de recibir correos y mensajes de texto sobre sus solicitudes 3-1-1? "
                  "Podrá seguirlas en la página de estado o llamando al 3-1-1.",
           "button": "No recibir más mensajes",
           "done": "Listo: no recibirá más mensajes sobre sus solicitudes 3-1-1.",
           "invalid": "Este enlace no es válido. Use el enlace de su mensaje más reciente."},
}


def _lang(request: web.Request, form_lang: str | None = None) -> str:
    asked = form_lang or request.query.get("lang", "")
    if asked in STRINGS:
        return asked
    accept = request.headers.get("Accept-Language", "").lower()
    return "es" if accept.startswith("es") else "en"


def _page(request: web.Request, lang: str, state: str, token: str, status: int = 200
          ) -> web.Response:
    return aiohttp_jinja2.render_template(
        "notify_optout.html", request,
        {"t": STRINGS[lang], "lang": lang, "state": state, "token": token}, status=status)


@public
async def optout_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    valid = read_token(request.app[SETTINGS].secret_key, token) is not None
    return _page(request, _lang(request), "ask" if valid else "invalid", token,
                 200 if valid else 404)


@public
@csrf_exempt
async def optout_submit(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    form = await request.post()
    lang = _lang(request, str(form.get("lang", "")))
    citizen_id = read_token(request.app[SETTINGS].secret_key, token)
    if citizen_id is None:
        return _page(request, lang, "invalid", token, 404)
    async with request.app[SESSIONS]() as session:
        if await session.get(Citizen, citizen_id) is None:  # erased meanwhile (retention)
            return _page(request, lang, "done", token)
        if await session.get(NotifyOptOut, citizen_id) is None:
            session.add(NotifyOptOut(citizen_id=citizen_id, created_at=request.app[CLOCK].now()))
            try:
                await session.commit()
            except IntegrityError:  # the same link clicked twice at once
                await session.rollback()
    return _page(request, lang, "done", token)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/notify/optout/{token}", optout_page, name="notify_optout")
    app.router.add_post("/notify/optout/{token}", optout_submit, name="notify_optout_post")
