"""What faces the network: the HTTP listener of `contactcenter serve`, and who a request is from.

aiohttp gives a request's headers and body no deadline and takes any number of connections, so
~20,000 half-sent requests once used up the file limit: /health stopped answering and FastAGI
stopped accepting. Here a `ConnectionGuard` sits between each socket and aiohttp:
- a cap on connections per address (trusted proxies exempt) and in all, checked at the accept;
- a deadline for a request's line and headers, from its first byte (and from the accept);
- a request line over `max_url` bytes is answered 414 before aiohttp parses it;
- noisy events anyone can cause (refusals, time-outs, bad requests) log one line per interval.
The `request_hooks` middleware tells the guard when a request is being handled, and reads the
body under its own deadline. `forwarded` believes X-Forwarded-For/-Proto from configured proxies
only, and marks HTTPS answers with HSTS and a Secure session cookie.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import resource
import ssl
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..config import Network, Settings, address_in
from ..keys import SETTINGS
from ..security import SummaryLog
from .auth import Handler

log = logging.getLogger(__name__)

HSTS = "max-age=31536000"  # a year: browsers then refuse plain http:// for this host
COOKIE = "cc_session"
PROXIES = web.AppKey("trusted_proxies", tuple)
# File descriptors kept for everything that is not a client connection: the database pool,
# Redis, AMI links, log and spool files, the listening sockets.
FD_RESERVE = 512


# --- the connection guard -----------------------------------------------------------------------


# Open311 lists up to 1,000 ids in a GET (about 18 kB) and answers its own 414 (in the spec's
# error list) past o3.MAX_URL; past this the guard answers before aiohttp parses the line
MAX_URL = 64 * 1024 - 64


@dataclass(frozen=True, slots=True)
class HttpLimits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 4096
    max_per_address: int = 256
    max_url: int = MAX_URL
    exempt: tuple[Network, ...] = ()  # trusted proxies: many clients share their address

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            header_timeout=settings.http_header_timeout, body_timeout=settings.http_body_timeout,
            max_connections=settings.http_max_connections,
            max_per_address=settings.http_max_connections_per_address,
            exempt=settings.proxy_networks(),
        )


class ConnectionGuard:
    """The counts and rules shared by every connection of one listener."""

    def __init__(self, limits: HttpLimits, logger: logging.Logger = log) -> None:
        self.limits = limits
        self.notes = SummaryLog(logger)
        self.open = 0
        self.peak = 0
        self.accepted = 0
        self.per_address: Counter[str] = Counter()
        self.refused = 0
        self.timeouts = 0
        self.too_long = 0

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: _Guarded(self, factory())

    def admit(self, address: str) -> bool:
        if self.open >= self.limits.max_connections:
            self.refused += 1
            self.notes.event("HTTP connection refused",
                             f"{self.open} connections open (CC_HTTP_MAX_CONNECTIONS)")
            return False
        if self.per_address[address] >= self.limits.max_per_address \
                and not address_in(address, self.limits.exempt):
            self.refused += 1
            self.notes.event("HTTP connection refused", f"{address} has "
                             f"{self.per_address[address]} open (per-address cap)")
            return False
        self.open += 1
        self.accepted += 1
        self.peak = max(self.peak, self.open)
        self.per_address[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open -= 1
        self.per_address[address] -= 1
        if self.per_address[address] <= 0:
            del self.per_address[address]


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the guard's rules."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._address = "?"
        self._admitted = False
        self._closing = False
        self._busy = False  # a request is in aiohttp's handler
        self._line = 0  # bytes of the request line so far; -1 once it is whole
        self._timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self._guard.admit(self._address):
            transport.abort()  # before aiohttp ever sees it: no handler, no task, no fd kept
            return
        self._admitted = True
        self._transport = transport
        self._arm()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._admitted or self._closing:
            return
        if not self._busy and self._line >= 0:
            if self._timer is None:
                self._arm()  # the first byte of the next request on a kept-alive connection
            nl = data.find(b"\n")
            seen = self._line + (len(data) if nl < 0 else nl)
            if seen > self._guard.limits.max_url:
                self._uri_too_long()
                return
            self._line = -1 if nl >= 0 else seen
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def pause_writing(self) -> None:
        if self._admitted:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self._disarm()
        self._guard.release(self._address)
        self._inner.connection_lost(exc)

    # --- the handler's side (request_hooks) ---

    def request_started(self) -> None:
        self._busy = True
        self._disarm()

    def request_finished(self) -> None:
        # the answer may still be on its way out: the next request's clock starts with its
        # first byte (an idle kept-alive connection is aiohttp's keepalive_timeout's business)
        self._busy = False
        self._line = 0

    # --- rules ---

    def _arm(self) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._guard.limits.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self._busy or self._transport is None or self._closing:
            return
        self._guard.timeouts += 1
        self._guard.notes.event(
            "HTTP request headers too slow",
            f"{self._address}: none complete within {self._guard.limits.header_timeout:g} s; "
            "closed", logging.INFO)
        self._closing = True
        self._transport.abort()

    def _uri_too_long(self) -> None:
        assert self._transport is not None
        limit = self._guard.limits.max_url
        self._guard.too_long += 1
        self._guard.notes.event("HTTP 414", f"{self._address}: request line over {limit} bytes",
                                logging.INFO)
        body = f"414 URI Too Long: the request line is over {limit} bytes\n".encode()
        self._transport.write(
            b"HTTP/1.1 414 URI Too Long\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        self._closing = True
        self._disarm()
        self._transport.close()


@web.middleware
async def request_hooks(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tells the guard a request is being handled, and reads its body under a deadline (a
    trickled body must not hold the connection and a handler for ever)."""
    transport = request.transport
    guarded = transport.get_protocol() if transport is not None else None
    if not isinstance(guarded, _Guarded):
        return await handler(request)  # not behind the guard (tests' own servers)
    guarded.request_started()
    try:
        if request.body_exists and (request.content_length is None
                                    or request.content_length <= request.client_max_size):
            timeout = request.app[SETTINGS].http_body_timeout
            try:
                async with asyncio.timeout(timeout):
                    await request.read()  # kept by aiohttp for post(), json(), read()
            except TimeoutError:
                guarded.guard.notes.event(
                    "HTTP request body too slow",
                    f"{request.remote}: not complete within {timeout:g} s", logging.INFO)
                raise web.HTTPRequestTimeout(
                    text=f"the request body did not arrive within {timeout:g} s",
                    headers={"Connection": "close"}) from None
        return await handler(request)
    finally:
        guarded.request_finished()


# --- who the request is from --------------------------------------------------------------------


def _client(forwarded_for: list[str], proxies: tuple[Network, ...]) -> str | None:
    """The client in X-Forwarded-For: the right-most address that is not one of our proxies
    (everything left of it was written by the client and proves nothing)."""
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if not address_in(hop, proxies):
            return hop if _is_ip(hop) else None
    return hops[0] if hops else None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@web.middleware
async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Behind a configured proxy: the client's address and scheme from X-Forwarded-For/-Proto
    (from anyone else those headers are ignored). Answers over HTTPS get HSTS and a Secure
    session cookie; so do all answers when CC_PUBLIC_URL is https."""
    proxies: tuple[Network, ...] = request.app[PROXIES]
    if proxies and address_in(request.remote, proxies):
        changes: dict[str, Any] = {}
        protos = request.headers.get("X-Forwarded-Proto", "").split(",")
        if protos[-1].strip().lower() in ("http", "https"):
            changes["scheme"] = protos[-1].strip().lower()
        client = _client(request.headers.getall("X-Forwarded-For", []), proxies)
        if client:
            changes["remote"] = client
        if changes:
            request = request.clone(**changes)
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        _mark_secure(request, exc)
        raise
    _mark_secure(request, resp)
    return resp


def _mark_secure(request: web.Request, resp: web.StreamResponse) -> None:
    if resp.prepared:
        return
    if request.secure:
        resp.headers.setdefault("Strict-Transport-Security", HSTS)
    cookie = resp.cookies.get(COOKIE)
    if cookie is not None and (
            request.secure or request.app[SETTINGS].public_url.startswith("https://")):
        cookie["secure"] = True


def setup(app: web.Application) -> None:
    """The outermost middlewares: before sessions, so they see the client's real scheme and
    address and the cookie the session middleware set."""
    app[PROXIES] = app[SETTINGS].proxy_networks()
    app.middlewares.insert(0, request_hooks)
    app.middlewares.insert(0, forwarded)


# --- serving ------------------------------------------------------------------------------------


class _ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server log, where a malformed request (anyone can send one) is one throttled
    line instead of an ERROR with a traceback; real errors keep theirs."""

    def __init__(self, guard: ConnectionGuard) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})
        self.guard = guard

    def exception(self, msg: object, *args: object, exc_info: Any = True,
                  **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            text = str(msg) % args if args else str(msg)
            self.guard.notes.event("HTTP bad request", f"{text}: "
                                   f"{type(exc).__name__}: {exc.message!r}", logging.INFO)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


class _GuardedSite(web.TCPSite):
    """A TCP site whose connections go through the guard."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, guard: ConnectionGuard,
                 **kwargs: Any) -> None:
        super().__init__(runner, host, port, **kwargs)
        self.guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner
        server = self._runner.server
        assert server is not None
        tls = self._ssl_context
        self._server = await asyncio.get_running_loop().create_server(
            self.guard.wrap(server), self._host, self._port, ssl=tls, backlog=self._backlog,
            # a TLS handshake comes before the guard counts the connection: it gets no more
            # time than a request's headers
            ssl_handshake_timeout=self.guard.limits.header_timeout if tls else None,
        )

    @property
    def bound_port(self) -> int:
        server = self._server
        assert isinstance(server, asyncio.Server) and server.sockets
        return int(server.sockets[0].getsockname()[1])


@dataclass
class Served:
    runner: web.AppRunner
    site: _GuardedSite
    guard: ConnectionGuard

    @property
    def port(self) -> int:
        return self.site.bound_port

    async def close(self) -> None:
        await self.runner.cleanup()


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def serve_http(app: web.Application, settings: Settings, *, host: str | None = None,
                     port: int | None = None, handle_signals: bool = False) -> Served:
    """Start the app on a guarded listener (port 0: any free port; see `Served.port`)."""
    limits = HttpLimits.from_settings(settings)
    guard = ConnectionGuard(limits)
    runner = web.AppRunner(
        app, handle_signals=handle_signals,
        keepalive_timeout=limits.header_timeout,  # an idle kept-alive connection
        max_line_size=limits.max_url + 64,  # the guard answers 414 before aiohttp would fail
        lingering_time=2.0,  # after a refused body, read no more than this
        logger=_ServerLog(guard),
    )
    await runner.setup()
    site = _GuardedSite(runner, settings.http_host if host is None else host,
                        settings.http_port if port is None else port, guard,
                        ssl_context=tls_context(settings), backlog=1024)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("HTTP%s listening on %s:%s", "S" if settings.tls_cert else "",
             settings.http_host if host is None else host, site.bound_port)
    return Served(runner, site, guard)


def run(app: web.Application, settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM (what `web.run_app` did, with the guard in front)."""

    async def main() -> None:
        served = await serve_http(app, settings, handle_signals=True)
        try:
            await asyncio.Event().wait()
        finally:
            await served.close()

    with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):
        asyncio.run(main())


def fit_file_limit(settings: Settings, agi: bool) -> Settings:
    """Raise the soft file limit (ulimit -n) as far as the connection caps need, or lower the
    caps to what it allows: running out of descriptors stops every listener at once."""
    need = settings.http_max_connections + (settings.agi_max_sessions if agi else 0) + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(hard, need)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft >= need:
        return settings
    room = max(64, soft - FD_RESERVE)
    agi_share = settings.agi_max_sessions if agi else 0
    total = settings.http_max_connections + agi_share
    http = max(32, room * settings.http_max_connections // total)
    changes: dict[str, int] = {
        "http_max_connections": http,
        "http_max_connections_per_address": min(settings.http_max_connections_per_address, http),
    }
    if agi:
        changes["agi_max_sessions"] = max(32, room - http)
    log.warning("the file limit (ulimit -n) is %d: serving at most %d HTTP connections%s; raise "
                "it to %d for the configured caps", soft, http,
                f" and {changes['agi_max_sessions']} IVR sessions" if agi else "", need)
    return settings.replace(**changes)
