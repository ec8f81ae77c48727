"""HTTP handlers of the case store: Open311 GeoReport v2, the public status page, API keys.

Open311 answers every failure with the spec's error array in the format the URL asked for (400,
403, 404; 405 for another method, 414 for an over-long URL); nothing a client sends can produce a
500 or a plain-text answer. Access rules (`web/auth.py`): the Open311 API and the status page are
public (the API checks its own api_key, needs no CSRF token and never touches the session, so it
sets no cookie), the API-key page is for admins only. Browser apps on the origins of
CC_OPEN311_CORS_ORIGINS may call the API (CORS, with preflights).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from contactcenter.cases.keys import API_KEYS, CASE_STORE, ESTIMATES, MEDIA_STORE, OPEN311_CORS

from ..config import Settings, SettingsError
from ..keys import SETTINGS
from ..queues.models import ServiceType
from ..web.auth import csrf_exempt, current_user, public, require_role, stateless
from . import open311 as o3
from . import status_page
from .media import (
    MAX_MEDIA_BYTES,
    IntakeError,
    Photo,
    media_path,
    process_photo,
    read_multipart,
)
from .store import CaseError, CaseNotFound, CaseView, is_case_number

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIX = "/open311/v2"
OPEN311_CHANGESET = web.AppKey("open311_changeset", datetime)
MAX_UPLOAD = MAX_MEDIA_BYTES + 64 * 1024  # the photo and its part headers


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


# --- CORS ---------------------------------------------------------------------------------------

CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = frozenset({"content-type", "accept", "accept-language", "x-requested-with"})
CORS_MAX_AGE = "600"


def parse_cors_origins(raw: str) -> frozenset[str]:
    """CC_OPEN311_CORS_ORIGINS: a comma list of origins (scheme://host[:port]) or `*`."""
    out: set[str] = set()
    for item in raw.split(","):
        origin = item.strip().rstrip("/")
        if not origin:
            continue
        if origin == "*":
            out.add("*")
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path \
                or parts.query or parts.fragment or "@" in parts.netloc:
            raise SettingsError(f"CC_OPEN311_CORS_ORIGINS: {item.strip()!r} is not an origin "
                                "such as https://app.example.org (or *)")
        out.add(f"{parts.scheme}://{parts.netloc.lower()}")
    return frozenset(out)


def _allowed_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    allowed = request.app.get(OPEN311_CORS, frozenset())
    if not origin or not allowed:
        return None
    if "*" in allowed or origin.lower() in allowed:
        return origin
    return None


def _cors(request: web.Request, resp: web.StreamResponse) -> None:
    origin = _allowed_origin(request)
    resp.headers.add("Vary", "Origin")
    if origin is not None and not resp.prepared:
        # no Allow-Credentials: the API never uses cookies, keys travel in the request
        resp.headers["Access-Control-Allow-Origin"] = origin


def open311(handler: Handler) -> Handler:
    """Spec errors in the requested format; any unexpected failure is the spec's 400 'general
    service error' (logged with its traceback), never a 500. CORS headers for allowed origins;
    no session (no cookie)."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        fmt = _format(request)
        try:
            if len(request.raw_path) > o3.MAX_URL:
                raise o3.Open311Errors(414, [
                    f"the URL is longer than {o3.MAX_URL} bytes (at most "
                    f"{o3.MAX_RESULTS} service_request_id values fit)"])
            resp = await handler(request)
        except o3.Open311Errors as exc:
            resp = error_reply(exc, fmt)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = error_reply(o3.Open311Errors(exc.status, [exc.reason]), fmt)
        except Exception:
            log.exception("Open311 %s %s failed", request.method, request.path)
            resp = error_reply(
                o3.bad_request("general service error: the request could not be processed; "
                               "try again later"), fmt)
        _cors(request, resp)
        return resp

    return public(csrf_exempt(stateless(wrapper)))


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
                                           request.app[OPEN311_CHANGESET]), fmt)


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


def _base(request: web.Request) -> str:
    return str(request.url.origin())


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
        statuses.extend(["closed"] if s == "closed" else
                        ["open", "acknowledged", "in_progress", "waiting_citizen"])
    views = await store.search(
        numbers=query.numbers, service_codes=query.service_codes, statuses=statuses,
        start=query.start, end=query.end, limit=o3.MAX_RESULTS,
    )
    if not query.numbers:
        views = o3.whole_seconds(views)
    base = _base(request)
    return reply("service_requests",
                 [o3.request_record(v, base, await expected(request, v)) for v in views], fmt)


async def expected(request: web.Request, view: CaseView) -> datetime | None:
    """The honest expected time of an open case (cases/estimates.py)."""
    when, _basis = await request.app[ESTIMATES].expected(
        created_at=view.created_at, sla_due_at=view.sla_due_at, service=view.service_code,
        agency=view.agency_code)
    return when


def center_zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[SETTINGS].timezone)


async def check_photo(upload_data: bytes) -> Photo:
    """Decode and re-encode off the event loop (a 12-megapixel JPEG takes a moment)."""
    return await asyncio.to_thread(process_photo, upload_data)


async def submit(
    request: web.Request, form: o3.Form, stype: ServiceType, photo: Photo | None, *,
    origin: dict[str, Any], actor: str, photo_error: str | None = None,
    media_key: str | None = None,
) -> tuple[CaseView, o3.Filing]:
    """File a request: the one path of Open311 POST and the citizen web form. Every field
    error (and the photo's) is reported at once; no case is written unless all is well.
    `media_key`: a photo already stored by an earlier try of the web form."""
    store = request.app[CASE_STORE]
    try:
        filing = o3.build_request(form, stype, origin, center_zone(request))
    except o3.Open311Errors as exc:
        if photo_error:
            exc.errors.append(o3.Open311Error(400, photo_error))
        raise
    if photo_error:
        raise o3.bad_request(photo_error)
    case = filing.case
    if photo is not None:
        media_key = await request.app[MEDIA_STORE].save(photo, store.clock())
    if media_key is not None:
        key = media_key
        client_url = case.media_url
        case = dataclasses.replace(
            case, media_key=key, media_url=media_path(key),
            origin={**case.origin, "client_media_url": client_url} if client_url
            else case.origin)
    try:
        view = await store.open_case(case, actor=actor[:80])
    except CaseError as exc:  # e.g. the service was retired between the two reads
        raise o3.bad_request(str(exc)) from None
    return view, filing


async def read_post(request: web.Request) -> tuple[o3.Form, bytes | None]:
    """The fields of a POST (form-encoded or multipart) and the raw `media` upload, if any."""
    if request.content_type == "multipart/form-data":
        if request.content_length is not None and request.content_length > \
                o3.MAX_BODY + MAX_UPLOAD:
            raise o3.bad_request(f"the request body is larger than "
                                 f"{(o3.MAX_BODY + MAX_UPLOAD) // 2**20} MB")
        try:
            form, upload = await read_multipart(request)
        except IntakeError as exc:
            raise o3.bad_request(exc.message) from None
        return form, (upload.data if upload is not None else None)
    if request.content_length is not None and request.content_length > o3.MAX_BODY:
        raise o3.bad_request(f"the request body is larger than {o3.MAX_BODY} bytes")
    try:
        body = await request.read()  # whole body; bounded by the app's client_max_size
    except web.HTTPRequestEntityTooLarge:
        raise o3.bad_request(f"the request body is larger than {o3.MAX_BODY} bytes") from None
    return o3.parse_form(body, request.headers.get("Content-Type")), None


@open311
async def post_request(request: web.Request) -> web.Response:
    fmt = o3.format_of(request.match_info.get("ext", ""))
    form, upload = await read_post(request)
    form = o3.merge_query(form, request.query)
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
    photo = photo_error = None
    if upload is not None:
        try:
            photo = await check_photo(upload)
        except IntakeError as exc:
            photo_error = exc.message
    view, filing = await submit(request, form, stype, photo,
                                origin={"api_key_id": key.id, "api_key": key.name},
                                actor=f"open311:{key.name}", photo_error=photo_error)
    account_id = filing.case.origin.get("account_id")
    notice = " ".join(filter(None, [o3.service_notice(view), o3.notice_text(filing.notices)]))
    # realtime service: the id now; the token too, so a client may poll tokens/{token}
    return reply("service_requests", [{
        "service_request_id": view.number,
        "token": view.token,
        "service_notice": notice,
        "account_id": account_id,
    }], fmt)


@open311
async def get_request(request: web.Request) -> web.Response:
    number, fmt = _lookup(request, "service_request_id")
    view = await request.app[CASE_STORE].by_number(number) if is_case_number(number) else None
    if view is None:
        raise o3.not_found(f"service_request_id {number[:40]!r} not found")
    return reply("service_requests",
                 [o3.request_record(view, _base(request), await expected(request, view))], fmt)


@open311
async def get_updates(request: web.Request) -> web.Response:
    """servicerequestupdates: every public change (acknowledged, work started, public notes,
    closed with its resolution, reopened) between start_date and end_date (default: the last
    90 days; at most 90 days), oldest first, at most 1,000."""
    fmt = o3.format_of(request.match_info.get("ext", ""))
    _check_jurisdiction(request, request.query.get("jurisdiction_id"))
    store = request.app[CASE_STORE]
    query = o3.parse_request_query({k: v for k, v in request.query.items()
                                    if k in ("start_date", "end_date")}, store.clock())
    assert query.start is not None and query.end is not None
    updates = await store.public_updates(query.start, query.end, limit=o3.MAX_RESULTS)
    return reply("service_requests_updates", [o3.update_record(u) for u in updates], fmt)


@open311
async def get_token(request: web.Request) -> web.Response:
    token, fmt = _lookup(request, "token")
    view = await request.app[CASE_STORE].by_token(token) if len(token) <= 64 else None
    if view is None:
        raise o3.not_found(f"token {token[:64]!r} not found")
    return reply("service_requests", [{"service_request_id": view.number, "token": view.token}],
                 fmt)


@open311
async def media(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    key, dot, ext = name.rpartition(".")
    stored = await request.app[MEDIA_STORE].claimed(key) if dot and ext == "jpg" else None
    if stored is None:
        raise o3.not_found(f"no media {name[:60]!r}")
    return web.Response(body=stored.data, headers={
        "Content-Type": stored.content_type,
        "Cache-Control": "public, max-age=31536000, immutable",  # a key is never reused
        "Content-Disposition": "inline",
    })


async def _allowed_methods(request: web.Request) -> set[str]:
    """The methods the router has for this path (as aiohttp's own 405 would say)."""
    methods: set[str] = set()
    for resource in request.app.router.resources():
        if resource.name in ("open311_unknown",):
            continue
        match, allowed = await resource.resolve(request)
        if match is not None:
            methods.add(request.method)
        methods |= set(allowed)
    return methods


@open311
async def unknown_resource(request: web.Request) -> web.StreamResponse:
    """Every path under the API that no route took: 404, a preflight, OPTIONS or 405."""
    methods = await _allowed_methods(request) if request.method not in ("GET", "HEAD") \
        else set()
    if request.method == "OPTIONS" and methods:
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        wanted = request.headers.get("Access-Control-Request-Method")
        if wanted is not None and request.headers.get("Origin"):
            if _allowed_origin(request) is None:
                raise o3.Open311Errors(403, [
                    f"origin {request.headers['Origin'][:80]!r} may not call this API from a "
                    "browser (CC_OPEN311_CORS_ORIGINS)"])
            if wanted.upper() not in methods:
                raise o3.Open311Errors(405, [f"{wanted[:20]} is not allowed here ({allow})"])
            asked = {h.strip().lower() for h in
                     request.headers.get("Access-Control-Request-Headers", "").split(",")
                     if h.strip()}
            resp = web.Response(status=204, headers={
                "Access-Control-Allow-Methods": CORS_METHODS,
                "Access-Control-Allow-Headers": ", ".join(sorted(asked & CORS_HEADERS))
                or "Content-Type",
                "Access-Control-Max-Age": CORS_MAX_AGE,
            })
            return resp
        return web.Response(status=204, headers={"Allow": allow})
    if methods and request.method not in methods:
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        exc = o3.Open311Errors(405, [f"{request.method[:20]} is not allowed on "
                                     f"{request.path[:120]} (use {allow})"])
        resp = error_reply(exc, _format(request))
        resp.headers["Allow"] = allow
        return resp
    raise o3.not_found(f"no Open311 resource at {request.path[:120]}")


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
    r.add_get(f"{PREFIX}/servicerequestupdates{ext}", get_updates, name="open311_updates")
    # the `open311` Python wrapper asks for service/{code}.xml (singular): answer it too
    r.add_get(PREFIX + "/service/{tail}", service_definition, name="open311_service_alias")
    r.add_get(PREFIX + "/media/{name}", media, name="open311_media")
    r.add_route("*", PREFIX + "/{tail:.*}", unknown_resource, name="open311_unknown")
    status_page.add_routes(app)
    r.add_get("/admin/apikeys", apikeys_list, name="admin_apikeys")
    r.add_post("/admin/apikeys", apikeys_create, name="admin_apikeys_create")
    r.add_post("/admin/apikeys/{key_id}/revoke", apikeys_revoke, name="admin_apikeys_revoke")

