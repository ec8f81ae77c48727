"""Accounts on the web: sessions, log-in, roles per route, CSRF, security headers.

Every route declares who may use it with `@public` or `@require_role(...)`; the `guard`
middleware refuses any route that declares nothing (deny by default), so a new route cannot be
forgotten. State-changing requests need the session's CSRF token (form field `_csrf` or header
`X-CSRF-Token`) unless the route is `@csrf_exempt` (machine APIs authenticated by API key).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session
from aiohttp_session import setup as session_setup
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from sqlalchemy import select

from ..config import KEY_HINT, SettingsError, key_weakness
from ..events import SessionEnded
from ..keys import BUS, CLOCK, SESSIONS, SETTINGS
from ..security import PasswordPool, SummaryLog
from .api_keys import active_api_key
from .login_limit import LoginLimiter, Refusal
from .models import User
from .sessions import end_session, open_session, session_user

log = logging.getLogger(__name__)
# Websocket close code for "this user signed out" (console and wallboard); the pages then check
# their session and go to the log-in page if it is gone.
SIGNED_OUT = 4401

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H")

# agency: staff of one or more agencies, who see and work only their agencies' cases
ROLES = ("operator", "supervisor", "admin", "agency")
STAFF = ("supervisor", "admin")
ANY_USER = ROLES
SESSION_MAX_AGE = 12 * 3600
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Principal:
    id: int
    username: str
    role: str
    display_name: str
    interface: str | None
    queues: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    agencies: tuple[str, ...] = ()  # role "agency": the codes of their agencies


API_CLIENT_ROLE = "api"  # a request authenticated by API key, not a person


# --- declaring access ---------------------------------------------------------------------------


def require_role(*roles: str, api_key: bool = False) -> Callable[[H], H]:
    """Only signed-in users with one of `roles` (and, with api_key=True, API-key clients)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def mark(handler: H) -> H:
        handler.__cc_roles__ = frozenset(roles)  # type: ignore[attr-defined]
        handler.__cc_api_key__ = api_key  # type: ignore[attr-defined]
        return handler

    return mark


def public(handler: H) -> H:
    handler.__cc_roles__ = None  # type: ignore[attr-defined]
    return handler


def csrf_exempt(handler: H) -> H:
    handler.__cc_csrf_exempt__ = True  # type: ignore[attr-defined]
    return handler


def stateless(handler: H) -> H:
    """A public route that needs no session (the Open311 API, the citizen form): the session is
    neither read nor written, so its answers never carry a Set-Cookie, and there is no CSRF
    check: only for routes whose POSTs something else guards (an API key, a signed token)."""
    handler.__cc_stateless__ = True  # type: ignore[attr-defined]
    return handler


def route_access(handler: Any) -> tuple[bool, frozenset[str] | None, bool]:
    """(declared, roles or None for public, api_key allowed)."""
    if not hasattr(handler, "__cc_roles__"):
        return False, frozenset(), False
    return True, handler.__cc_roles__, getattr(handler, "__cc_api_key__", False)


# --- who is asking ------------------------------------------------------------------------------

USER_KEY = "cc_user"


def current_user(request: web.Request) -> Principal | None:
    return request.get(USER_KEY)


def require_user(request: web.Request) -> Principal:
    user = current_user(request)
    if user is None:
        raise web.HTTPUnauthorized(text="sign in first")
    return user


async def _load_user(request: web.Request) -> Principal | None:
    session = await get_session(request)
    token = session.get("sid")
    if not isinstance(token, str) or not token:
        return None
    async with request.app[SESSIONS]() as db:
        # the row, not the cookie, says whether this session is still signed in
        user = await session_user(db, token, request.app[CLOCK].now())
    if user is None or not user.active or session.get("ver") != _user_version(user):
        session.invalidate()
        return None
    return _principal(user)


def _principal(user: User) -> Principal:
    return Principal(
        user.id, user.username, user.role, user.display_name or user.username, user.interface,
        tuple(user.queues or ()), tuple(user.languages or ()), tuple(user.agencies or ()),
    )


def _user_version(user: User) -> str:
    # A password or role change signs out every session of that user.
    # ...and so does a change of an agency user's agencies (what they may see)
    extra = "|" + ",".join(sorted(user.agencies or ())) if user.role == "agency" else ""
    return hashlib.sha256(
        f"{user.password_hash}|{user.role}{extra}".encode()).hexdigest()[:16]


async def api_key_valid(request: web.Request, key: str | None) -> bool:
    if not key:
        return False
    async with request.app[SESSIONS]() as db:
        return await active_api_key(db, key) is not None


# --- CSRF ---------------------------------------------------------------------------------------


async def csrf_token(request: web.Request) -> str:
    session = await get_session(request)
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(24)
    return str(token)


async def _csrf_ok(request: web.Request) -> bool:
    session = await get_session(request)
    expected = session.get("csrf")
    if not expected:
        return False
    sent = request.headers.get("X-CSRF-Token")
    if sent is None and request.content_type in (
        "application/x-www-form-urlencoded", "multipart/form-data"
    ):
        sent = (await request.post()).get("_csrf")  # type: ignore[assignment]
    return isinstance(sent, str) and secrets.compare_digest(sent, str(expected))


# --- middlewares --------------------------------------------------------------------------------


def _wants_html(request: web.Request) -> bool:
    if request.path.startswith(("/api/", "/open311/", "/metrics")):
        return False
    return "text/html" in request.headers.get("Accept", "text/html")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route
    # 404/405 (no resource) and static files need no rule
    if route.resource is None or isinstance(route.resource, web.StaticResource):
        return await handler(request)
    declared, roles, api_key = route_access(route.handler)
    if not declared:
        log.error("route %s %s declares no role: refused", request.method, request.path)
        raise web.HTTPForbidden(text="this route declares no access rule")
    if roles is None and getattr(route.handler, "__cc_stateless__", False):
        return await handler(request)  # public, no session: no cookie, no CSRF (API keys)
    user = await _load_user(request)
    if user is not None:
        request[USER_KEY] = user
    if roles is not None:
        if user is None:
            if api_key and await api_key_valid(request, request.headers.get("X-API-Key")):
                return await handler(request)
            if _wants_html(request) and request.method == "GET":
                raise web.HTTPFound(f"/login?next={quote(request.path_qs)}")
            raise web.HTTPUnauthorized(text="sign in first")
        if user.role not in roles:
            if _wants_html(request):
                # rendered before the context-processor middleware runs: pass its context
                context = {**await template_context(request), "needed": sorted(roles)}
                return aiohttp_jinja2.render_template(
                    "forbidden.html", request, context, status=403
                )
            raise web.HTTPForbidden(text="your role may not do this")
    if request.method in UNSAFE and not getattr(route.handler, "__cc_csrf_exempt__", False):
        if not await _csrf_ok(request):
            raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page")
    return await handler(request)


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        resp = exc
        _headers(resp)
        raise
    _headers(resp)
    return resp


def _headers(resp: web.StreamResponse) -> None:
    if resp.prepared:
        return
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "same-origin")


Origin = tuple[str, str, int]


def _origin(url: str) -> Origin | None:
    """(scheme, host, port) of an origin or base URL; None if it is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def origin_ok(request: web.Request) -> bool:
    """Websocket upgrades: the page must come from this site, scheme, host and port alike (an
    http:// page of the same host, e.g. one a network attacker injected, is another origin)."""
    got = _origin(request.headers.get("Origin", ""))
    if got is None:
        return False
    own = _origin(f"{request.scheme}://{request.host}")
    public = _origin(request.app[SETTINGS].public_url) if request.app[SETTINGS].public_url \
        else None
    return got in (own, public)


# --- log-in throttling (web/login_limit.py) and the argon2 threads -------------------------------

LOGIN_LIMITER = web.AppKey("login_limiter", LoginLimiter)
PASSWORDS = web.AppKey("password_pool", PasswordPool)
_refusals = SummaryLog(log)  # a refusal costs an attacker nothing: one line per 10 s at most


# --- pages --------------------------------------------------------------------------------------

HOME_BY_ROLE = {"operator": "/console", "supervisor": "/wallboard", "admin": "/admin",
                "agency": "/agency"}


# Browsers drop tabs and newlines from URLs and read "\\" as "/": "/\t/evil.example" or
# "/\\evil.example" would be another site.
_UNSAFE_IN_NEXT = re.compile(r"[\x00-\x1f\x7f\\]")


def _safe_next(value: str | None) -> str | None:
    """A same-site path to go to after log-in, or None."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return None
    if _UNSAFE_IN_NEXT.search(value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


@public
async def login_page(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template(
        "login.html", request,
        {"next": _safe_next(request.query.get("next")) or "", "error": None, "username": ""},
    )


@public
async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    username = str(form.get("username", "")).strip()[:80]
    password = str(form.get("password", ""))[:1024]
    nxt = _safe_next(str(form.get("next", "")))
    address = request.remote or "?"

    def again(error: str, status: int, retry_after: int | None = None) -> web.Response:
        resp = aiohttp_jinja2.render_template(
            "login.html", request,
            {"next": nxt or "", "error": error, "username": username}, status=status,
        )
        if retry_after is not None:
            resp.headers["Retry-After"] = str(retry_after)
        return resp

    limiter = request.app[LOGIN_LIMITER]
    ticket = limiter.admit(username.lower(), address)  # counted before any await
    if isinstance(ticket, Refusal):
        _refusals.event("log-in refused", f"{ticket.status} for {username!r} from {address}")
        return again(ticket.message, ticket.status, ticket.retry_after)
    ok = tried = False
    try:
        async with request.app[SESSIONS]() as db:
            user = (
                await db.execute(select(User).where(User.username == username))
            ).scalar_one_or_none()
        tried = True
        # an unknown or disabled name costs the same argon2 run as a known one
        ok = await request.app[PASSWORDS].verify(
            user.password_hash if user is not None and user.active else None, password)
    finally:
        limiter.done(ticket, ok, tried=tried)
    if not ok or user is None:
        log.info("failed log-in for %r from %s", username, address)
        return again("Wrong user name or password.", 401)
    async with request.app[SESSIONS]() as db, db.begin():
        token = await open_session(db, user.id, request.app[CLOCK].now())
    session = await new_session(request)  # a fresh cookie and a fresh token: no fixation
    session["sid"] = token
    session["ver"] = _user_version(user)
    session["csrf"] = secrets.token_urlsafe(24)
    raise web.HTTPFound(nxt or HOME_BY_ROLE.get(user.role, "/"))


@require_role(*ANY_USER)
async def logout(request: web.Request) -> web.Response:
    session = await get_session(request)
    token = session.get("sid")
    if isinstance(token, str) and token:
        async with request.app[SESSIONS]() as db, db.begin():
            await end_session(db, token)  # a copy of the cookie is signed out too
    session.invalidate()
    user = current_user(request)
    bus = request.app.get(BUS)
    if user is not None and bus is not None:
        # the console and wallboard sockets of this user close everywhere (a shared desk PC
        # must not keep showing the last operator's callers in another tab)
        await bus.publish(SessionEnded(user_id=user.id, username=user.username,
                                       at=request.app[CLOCK].now()))
    raise web.HTTPFound("/login")


async def template_context(request: web.Request) -> dict[str, Any]:
    # aiohttp-jinja2 runs context processors for every request: a stateless API must not get
    # a session (and its cookie) from the CSRF token below
    if getattr(request.match_info.route.handler, "__cc_stateless__", False):
        return {}
    user = current_user(request)
    token = await csrf_token(request)
    return {"user": user, "csrf_token": token, "demo": request.app[SETTINGS].demo}


def cookie_key(secret: str) -> bytes:
    """32 raw bytes derived from CC_SECRET_KEY (aiohttp-session makes the Fernet key)."""
    return hashlib.sha256(secret.encode()).digest()


def setup(app: web.Application, *, pages: bool = True) -> None:
    """Sessions, CSRF and the route guard; with `pages`, also /login and /logout (the bridge
    process serves no pages: a log-in there would spend its loop, the IVR's, on argon2)."""
    settings = app[SETTINGS]
    if settings.secret_key and (why := key_weakness(settings.secret_key)):
        raise SettingsError(f"CC_SECRET_KEY {why}; {KEY_HINT}")
    secret = settings.secret_key or secrets.token_urlsafe(32)  # tests: a per-process key
    session_setup(
        app,
        EncryptedCookieStorage(
            cookie_key(secret), cookie_name="cc_session", max_age=SESSION_MAX_AGE,
            httponly=True, samesite="Lax",
        ),
    )
    app.middlewares.append(security_headers)
    app.middlewares.append(guard)
    if not pages:
        return
    app[LOGIN_LIMITER] = LoginLimiter()
    pool = app[PASSWORDS] = PasswordPool()

    async def warm_up(app: web.Application) -> None:
        await pool.warm_up()

    async def close_pool(app: web.Application) -> None:
        pool.close()

    app.on_startup.append(warm_up)
    app.on_cleanup.append(close_pool)
    app.router.add_get("/login", login_page, name="login")
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout, name="logout")
