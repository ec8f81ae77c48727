"""HTTP handlers of the case store: Open311 GeoReport v2, the public status page, API keys.

Open311 answers every failure with the spec's error array (400, 403 or 404) in the format the URL
asked for; nothing a client sends can produce a 500. Access rules (`web/auth.py`): the Open311 API
and the status page are public (the API checks its own api_key and needs no CSRF token), the
API-key page is for admins only.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ..config import Settings
from ..keys import API_KEYS, CASE_STORE, SETTINGS
from ..web.auth import csrf_exempt, current_user, public, require_role
from . import open311 as o3
from .store import CaseError, CaseNotFound, is_case_number

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIX = "/open311/v2"
STARTED = datetime.now(UTC).replace(microsecond=0)


# --- Open311 ------------------------------------------------------------------------------------


def _format(request: web.Request) -> str:
    if "tail" in request.match_info:
        return o3.split_format(request.match_info["tail"])[1]
    ext = request.match_info.get("ext", "")
    return ext.lstrip(".").lower() if ext.lstrip(".").lower() in o3.CONTENT_TYPES else "xml"


def reply(root: str, payload: Any, fmt: str, status: int = 200) -> web.Response:
    return web.Response(body=o3.render(root, payload, fmt), status=status,
                        headers={"Content-Type": o3.CONTENT_TYPES[fmt]})


def error_reply(exc: o3.Open311Errors, fmt: str) -> web.Response:
    return reply("errors", o3.error_payload(exc.errors), fmt, exc.status)


def open311(handler: Handler) -> Handler:
    """Spec errors in the requested format; any unexpected failure is the spec's 400 'general
    service error' (logged with its traceback), never a 500."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        fmt = _format(request)
        try:
            return await handler(request)
        except o3.Open311Errors as exc:
            return error_reply(exc, fmt)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("Open311 %s %s failed", request.method, request.path)
            return error_reply(
                o3.bad_request("general service error: the request could not be processed; "
                               "try again later"), fmt)

    return public(csrf_exempt(wrapper))


def _check_jurisdiction(request: web.Request, value: str | None) -> None:
    """One jurisdiction per server: jurisdiction_id is optional; when the server is configured
    with one, another value is an unknown jurisdiction."""
    expected = request.app[SETTINGS].open311_jurisdiction
    if value and expected and value != expected:
        raise o3.not_found(f"jurisdiction_id {value[:80]!r} not found")


def _lookup(request: web.Request, what: str) -> tuple[str, str]:
    """A `{what}.{format}` path tail of a GET: the key (required) and the format."""
    key, fmt = o3.split_format(request.match_info["tail"])
    _check_jurisdiction(request, request.query.get("jurisdiction_id"))
    if not key:
        raise o3.bad_request(f"{what} was not provided")
    return key, fmt


@open311
async def discovery(request: web.Request) -> web.Response:
    fmt = o3.format_of(request.match_info.get("ext", ""))
    return reply("discovery", o3.discovery(public_base(request.app[SETTINGS]) + PREFIX,
                                           STARTED), fmt)


def public_base(settings: Settings) -> str:
    """The site's address from configuration, never from the Host header (anyone can send
    one, and a cache or a client would then be sent elsewhere)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.http_host if settings.http_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.http_port}"


@open311
async def services(request: web.Request) -> web.Response:
    fmt = o3.format_of(request.match_info.get("ext", ""))
    _check_jurisdiction(request, request.query.get("jurisdiction_id"))
    types = await request.app[CASE_STORE].service_types()
    return reply("services", [o3.service_record(t) for t in types], fmt)


@open311
async def service_definition(request: web.Request) -> web.Response:
    code, fmt = _lookup(request, "service_code")
    stype = await request.app[CASE_STORE].service_type(code)
    if stype is None:
        raise o3.not_found(f"service_code {code[:80]!r} not found")
    return reply("service_definition", o3.service_definition(stype), fmt)


@open311
async def get_requests(request: web.Request) -> web.Response:
    fmt = o3.format_of(request.match_info.get("ext", ""))
    _check_jurisdiction(request, request.query.get("jurisdiction_id"))
    store = request.app[CASE_STORE]
    query = o3.parse_request_query(request.query, store.clock())
    if query.service_codes:
        known = {t.code for t in await store.service_types(active_only=False)}
        unknown = [c for c in query.service_codes if c not in known]
        if unknown:
            raise o3.bad_request(*(f"service_code {c[:80]!r} not found" for c in unknown))
    statuses: list[str] = []
    for s in query.statuses:
        statuses.extend(["closed"] if s == "closed" else ["open", "acknowledged", "in_progress"])
    views = await store.search(
        numbers=query.numbers, service_codes=query.service_codes, statuses=statuses,
        start=query.start, end=query.end, limit=o3.MAX_RESULTS,
    )
    return reply("service_requests", [o3.request_record(v) for v in views], fmt)


@open311
async def post_request(request: web.Request) -> web.Response:
    fmt = o3.format_of(request.match_info.get("ext", ""))
    if request.content_length is not None and request.content_length > o3.MAX_BODY:
        raise o3.bad_request(f"the request body is larger than {o3.MAX_BODY} bytes")
    try:
        body = await request.read()  # whole body; bounded by the app's client_max_size
    except web.HTTPRequestEntityTooLarge:
        raise o3.bad_request(f"the request body is larger than {o3.MAX_BODY} bytes") from None
    form = o3.merge_query(o3.parse_form(body, request.headers.get("Content-Type")),
                          request.query)
    head = o3.post_header(form)
    key = await request.app[API_KEYS].verify(head.api_key)
    if key is None:
        raise o3.Open311Errors(403, [
            "api_key was not provided" if not head.api_key else o3.INVALID_KEY])
    _check_jurisdiction(request, head.jurisdiction_id)
    if not head.service_code:
        raise o3.bad_request("service_code was not provided")
    store = request.app[CASE_STORE]
    stype = await store.service_type(head.service_code)
    if stype is None:
        raise o3.not_found(f"service_code {head.service_code[:80]!r} not found")
    new = o3.build_new_case(form, stype, {"api_key_id": key.id, "api_key": key.name})
    try:
        view = await store.open_case(new, actor=f"open311:{key.name}"[:80])
    except CaseError as exc:  # e.g. the service was retired between the two reads
        raise o3.bad_request(str(exc)) from None
    account_id = new.origin.get("account_id")
    # realtime service: the id now; the token too, so a client may poll tokens/{token}
    return reply("service_requests", [{
        "service_request_id": view.number,
        "token": view.token,
        "service_notice": o3.service_notice(view),
        "account_id": account_id,
    }], fmt)


@open311
async def get_request(request: web.Request) -> web.Response:
    number, fmt = _lookup(request, "service_request_id")
    view = await request.app[CASE_STORE].by_number(number) if is_case_number(number) else None
    if view is None:
        raise o3.not_found(f"service_request_id {number[:40]!r} not found")
    return reply("service_requests", [o3.request_record(view)], fmt)


@open311
async def get_token(request: web.Request) -> web.Response:
    token, fmt = _lookup(request, "token")
    view = await request.app[CASE_STORE].by_token(token) if len(token) <= 64 else None
    if view is None:
        raise o3.not_found(f"token {token[:64]!r} not found")
    return reply("service_requests", [{"service_request_id": view.number, "token": view.token}],
                 fmt)


@open311
async def unknown_resource(request: web.Request) -> web.Response:
    raise o3.not_found(f"no Open311 resource at {request.path[:120]}")


# --- public status page -------------------------------------------------------------------------


@public
async def status_lookup(request: web.Request) -> web.StreamResponse:
    number = request.query.get("number", "").strip().upper()
    if number:
        raise web.HTTPFound(request.app.router["case_status"].url_for(number=number[:40]))
    return aiohttp_jinja2.render_template("case_lookup.html", request, {})


@public
async def status_page(request: web.Request) -> web.StreamResponse:
    number = request.match_info["number"]
    view = await request.app[CASE_STORE].by_number(number) if is_case_number(number) else None
    if view is None:
        return aiohttp_jinja2.render_template(
            "case_not_found.html", request, {"number": number[:40]}, status=404)
    record = o3.request_record(view)
    return aiohttp_jinja2.render_template("case_status.html", request, {
        "case": view,
        "record": record,
        "status_label": {"open": "Open", "acknowledged": "Acknowledged",
                         "in_progress": "In progress", "closed": "Closed"}[view.status],
        "when": lambda dt: dt.strftime("%Y-%m-%d %H:%M UTC") if dt else "",
        "notes": [
            {"at": o3.w3(n.created_at), "shown": n.created_at.strftime("%Y-%m-%d %H:%M UTC"),
             "body": o3.mask_contacts(n.body, (view.citizen_email, view.citizen_phone))}
            for n in view.public_notes
        ],
    })


# --- API keys (admins) --------------------------------------------------------------------------


def _actor(request: web.Request) -> str:
    user = current_user(request)
    return getattr(user, "username", None) or "admin"


async def _keys_page(
    request: web.Request, *, new_key: str | None = None, message: str | None = None,
    error: str | None = None, status: int = 200,
) -> web.Response:
    keys = await request.app[API_KEYS].list()
    return aiohttp_jinja2.render_template("admin_apikeys.html", request, {
        "keys": keys, "new_key": new_key, "message": message, "error": error,
    }, status=status)


@require_role("admin")
async def apikeys_list(request: web.Request) -> web.Response:
    return await _keys_page(request)


@require_role("admin")
async def apikeys_create(request: web.Request) -> web.Response:
    form = await request.post()
    name = str(form.get("name", ""))
    try:
        view, key = await request.app[API_KEYS].create(name, actor=_actor(request))
    except CaseError as exc:
        return await _keys_page(request, error=str(exc), status=400)
    log.info("API key %d (%s) created by %s", view.id, view.name, _actor(request))
    return await _keys_page(request, new_key=key,
                            message=f"Key {view.id} ({view.name}) created.")


@require_role("admin")
async def apikeys_revoke(request: web.Request) -> web.Response:
    raw = request.match_info["key_id"]
    if not raw.isdigit() or len(raw) > 12:
        return await _keys_page(request, error="no such key", status=404)
    try:
        view = await request.app[API_KEYS].revoke(int(raw), actor=_actor(request))
    except CaseNotFound as exc:
        return await _keys_page(request, error=str(exc), status=404)
    except CaseError as exc:
        return await _keys_page(request, error=str(exc), status=400)
    log.info("API key %d (%s) revoked by %s", view.id, view.name, _actor(request))
    return await _keys_page(request, message=f"Key {view.id} ({view.name}) revoked.")


def add_routes(app: web.Application) -> None:
    r = app.router
    ext = r"{ext:(?:\.[A-Za-z0-9]+)?}"
    r.add_get(f"{PREFIX}/discovery{ext}", discovery, name="open311_discovery")
    r.add_get(f"{PREFIX}/services{ext}", services, name="open311_services")
    r.add_get(PREFIX + "/services/{tail}", service_definition, name="open311_service")
    r.add_get(f"{PREFIX}/requests{ext}", get_requests, name="open311_requests")
    r.add_post(f"{PREFIX}/requests{ext}", post_request, name="open311_post")
    r.add_get(PREFIX + "/requests/{tail}", get_request, name="open311_request")
    r.add_get(PREFIX + "/tokens/{tail}", get_token, name="open311_token")
    r.add_route("GET", PREFIX + "/{tail:.*}", unknown_resource, name="open311_unknown")
    r.add_route("POST", PREFIX + "/{tail:.*}", unknown_resource, name="open311_unknown_post")
    r.add_get("/status", status_lookup, name="case_lookup")
    r.add_get("/status/{number}", status_page, name="case_status")
    r.add_get("/admin/apikeys", apikeys_list, name="admin_apikeys")
    r.add_post("/admin/apikeys", apikeys_create, name="admin_apikeys_create")
    r.add_post("/admin/apikeys/{key_id}/revoke", apikeys_revoke, name="admin_apikeys_revoke")

