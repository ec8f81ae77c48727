"""Pages where cases move: the agency work queue (/agency), the case page (/cases/{number})
with its actions and live updates, the case search (/cases) and the console's duplicate
suggestion (/cases/similar).

Who may do what: an `agency` user sees and works only cases of their agencies (another
agency's case is a 404, as if it did not exist); supervisors and admins see and work every
case; operators see every case, add notes and reopen a case closed at most CC_REOPEN_DAYS ago
(the citizen called back). Every action is a CSRF-checked POST and ends in the store, which
audits it, writes the case history and publishes `CaseChanged`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from ..cases.citizen_clock import citizen_clock
from ..cases.keys import CASE_STORE, ESTIMATES
from ..cases.models import CASE_STATUSES
from ..cases.store import CaseError, CaseNotFound, CaseView, normalize_case_number
from ..cases.timeline import fmt_duration
from ..keys import CLOCK, SESSIONS, SETTINGS
from ..web.auth import Principal, origin_ok, require_role, require_user
from . import queries as Q
from .keys import CASE_LIVE

CASE_ROLES = ("agency", "operator", "supervisor", "admin")
QUEUE_ROLES = ("agency", "supervisor", "admin")
# what each role may do on a case it can see
ACTIONS: dict[str, frozenset[str]] = {
    "agency": frozenset({"acknowledge", "start", "assign", "reassign", "note", "close",
                         "reopen"}),
    "supervisor": frozenset({"acknowledge", "start", "assign", "reassign", "note", "close",
                             "reopen"}),
    "admin": frozenset({"acknowledge", "start", "assign", "reassign", "note", "close",
                        "reopen"}),
    "operator": frozenset({"note", "reopen"}),
}
ALL_ACTIONS = frozenset().union(*ACTIONS.values())


def scope(user: Principal) -> tuple[str, ...] | None:
    """The agencies whose cases `user` may see; None: all."""
    return user.agencies if user.role == "agency" else None


def may_see(user: Principal, view: CaseView) -> bool:
    agencies = scope(user)
    return agencies is None or view.agency_code in agencies


def _zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[SETTINGS].timezone)


def _local(request: web.Request) -> Any:
    zone = _zone(request)

    def fmt(dt: datetime | None) -> str:
        return dt.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if dt else ""

    return fmt


def _query(request: web.Request) -> dict[str, str]:
    """The query string without NUL characters (PostgreSQL refuses them in a parameter)."""
    return {k: v.replace("\x00", "") for k, v in request.query.items()}


def _day(raw: str, label: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Q.QueryError(f"{label}: {raw[:20]!r} is not a date (YYYY-MM-DD)") from None


async def _visible_case(request: web.Request, user: Principal) -> CaseView:
    raw = request.match_info["number"]
    number = normalize_case_number(raw)
    view = await request.app[CASE_STORE].by_number(number) if number else None
    if view is None or not may_see(user, view):
        raise web.HTTPNotFound(text=f"no case {raw[:40]!r}")
    if number != raw:
        raise web.HTTPFound(f"/cases/{number}")
    return view


# --- the work queue -----------------------------------------------------------------------------


@require_role(*QUEUE_ROLES)
async def work_queue(request: web.Request) -> web.Response:
    user = require_user(request)
    q = _query(request)
    sessions = request.app[SESSIONS]
    all_agencies = await Q.agency_codes(sessions)
    mine = scope(user)
    choices = [(c, n) for c, n in all_agencies if mine is None or c in mine]
    agency = q.get("agency", "")
    if agency and agency not in {c for c, _ in choices}:
        agency = ""
    agencies = (agency,) if agency else mine
    error = None
    page = Q.QueuePage([], None, {})
    try:
        zone = _zone(request)
        day_from, day_to = _day(q.get("from", ""), "From"), _day(q.get("to", ""), "To")
        flt = Q.QueueFilter(
            agencies=agencies, service=q.get("service", "")[:80],
            status=q.get("status", Q.OPEN)[:20],
            created_from=datetime.combine(day_from, time(), zone) if day_from else None,
            created_to=datetime.combine(day_to + timedelta(days=1), time(), zone)
            if day_to else None,
            address=q.get("address", "")[:200], assignee=q.get("assignee", "")[:80])
        page = await Q.work_queue(sessions, flt, after=q.get("after") or None,
                                  timezone=request.app[SETTINGS].timezone)
    except Q.QueryError as exc:
        error = str(exc)
    now = request.app[CLOCK].now()
    keep = {k: v for k, v in q.items() if k not in ("after", "moved") and v}
    people: list[str] = []
    for code in (agencies or ()):
        people += [p for p in await Q.agency_people(sessions, code) if p not in people]
    return aiohttp_jinja2.render_template("agency/queue.html", request, {
        "page": page, "now": now, "error": error, "q": q, "agencies": choices,
        "agency": agency, "services": await request.app[CASE_STORE].service_types(),
        "statuses": [Q.OPEN, "all", *CASE_STATUSES],
        "people": people, "local": _local(request),
        "next_url": f"/agency?{urlencode({**keep, 'after': page.next_cursor})}"
        if page.next_cursor else None,
        "first_url": f"/agency?{urlencode(keep)}" if q.get("after") else None,
        "moved": q.get("moved", "")[:40],
    }, status=400 if error else 200)


# --- the case page ------------------------------------------------------------------------------


async def _render_case(request: web.Request, user: Principal, view: CaseView, *,
                       error: str | None = None, status: int = 200) -> web.Response:
    sessions = request.app[SESSIONS]
    page = await Q.case_page(sessions, view)
    now = request.app[CLOCK].now()
    steps, total = await citizen_clock(sessions, request.app[CASE_STORE], view, now)
    expected, basis = await request.app[ESTIMATES].expected(
        created_at=view.created_at, sla_due_at=view.sla_due_at, service=view.service_code,
        agency=view.agency_code)
    return aiohttp_jinja2.render_template("agency/case.html", request, {
        "page": page, "case": view, "now": now, "error": error,
        "clock_steps": steps, "clock_total": total, "dur": fmt_duration,
        "expected": expected, "expected_basis": basis,
        "done": request.query.get("done", "")[:40], "local": _local(request),
        "can": ACTIONS.get(user.role, frozenset()),
        "people": await Q.agency_people(sessions, view.agency_code),
        "codes": await Q.resolution_codes(sessions),
        "agencies": [(c, n) for c, n in await Q.agency_codes(sessions)
                     if c != view.agency_code],
        "reopen_days": request.app[SETTINGS].reopen_days,
    }, status=status)


@require_role(*CASE_ROLES)
async def case_page(request: web.Request) -> web.Response:
    user = require_user(request)
    return await _render_case(request, user, await _visible_case(request, user))


@require_role(*CASE_ROLES)
async def case_action(request: web.Request) -> web.Response:
    user = require_user(request)
    action = request.match_info["action"]
    if action not in ALL_ACTIONS:
        raise web.HTTPNotFound(text=f"no action {action[:40]!r}")
    view = await _visible_case(request, user)
    if action not in ACTIONS.get(user.role, frozenset()):
        raise web.HTTPForbidden(text=f"your role may not {action} a case")
    form = await request.post()

    def field(name: str, limit: int = 20_000) -> str:
        # not cut to the store's limits: too long is refused with a message, never shortened
        # (PostgreSQL stores no NUL character: one in a form is dropped, not a 500)
        return str(form.get(name, "") or "")[:limit].replace("\x00", "")

    store = request.app[CASE_STORE]
    who = user.username
    try:
        if action == "acknowledge":
            await store.acknowledge(view.number, actor=who)
        elif action == "start":
            await store.start(view.number, actor=who)
        elif action == "assign":
            await store.assign(view.number, field("assignee", 80) or None, actor=who)
        elif action == "reassign":
            await store.reassign(view.number, field("agency", 40), actor=who,
                                 reason=field("reason"))
        elif action == "note":
            await store.add_note(view.number, field("body"), author=who,
                                 public=field("public", 5) == "1")
        elif action == "close":
            code = field("code", 40)
            if not code:
                raise CaseError("choose a resolution code")
            await store.close(view.number, actor=who, reason=field("note"), code=code)
        elif action == "reopen":
            within = request.app[SETTINGS].reopen_days if user.role == "operator" else None
            await store.reopen(view.number, actor=who, reason=field("reason"),
                               within_days=within)
    except CaseNotFound:
        raise web.HTTPNotFound(text="no such case") from None
    except CaseError as exc:
        fresh = await store.by_number(view.number) or view
        return await _render_case(request, user, fresh, error=f"{exc}.", status=400)
    after = await store.by_number(view.number)
    if after is None or not may_see(user, after):  # reassigned out of the user's agencies
        raise web.HTTPSeeOther(f"/agency?moved={view.number}")
    raise web.HTTPSeeOther(f"/cases/{view.number}?done={action}")


@require_role(*CASE_ROLES)
async def case_ws(request: web.Request) -> web.WebSocketResponse:
    if not origin_ok(request):
        raise web.HTTPForbidden(text="websocket from another origin")
    user = require_user(request)
    view = await _visible_case(request, user)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=1024)
    await ws.prepare(request)
    live = request.app[CASE_LIVE]
    watcher = live.join(ws, view.number, user.id)
    try:
        async for _msg in ws:
            pass  # pages only listen; actions are CSRF-checked POSTs
    finally:
        await live.leave(watcher)
    return ws


# --- search and the duplicate suggestion --------------------------------------------------------


@require_role(*CASE_ROLES)
async def case_search(request: web.Request) -> web.Response:
    user = require_user(request)
    text = _query(request).get("q", "").strip()[:200]
    number = normalize_case_number(text) if text else None
    results = await Q.search(request.app[SESSIONS], text, agencies=scope(user),
                             timezone=request.app[SETTINGS].timezone) if text else []
    if number is not None and len(results) == 1 and results[0].number == number:
        raise web.HTTPFound(f"/cases/{results[0].number}")
    return aiohttp_jinja2.render_template("agency/search.html", request, {
        "text": text, "results": results, "now": request.app[CLOCK].now(),
        "local": _local(request)})


@require_role("operator", "supervisor", "admin")
async def similar(request: web.Request) -> web.Response:
    """JSON for the console: open cases of this service at this address, last 30 days."""
    q = _query(request)
    views = await Q.similar_open(request.app[SESSIONS], q.get("service", "")[:80],
                                 q.get("address", "")[:400], request.app[CLOCK].now(),
                                 timezone=request.app[SETTINGS].timezone)
    return web.json_response({"cases": [{
        "number": v.number, "status": v.status, "service": v.service_name,
        "address": v.address, "created_at": v.created_at.isoformat(),
        "description": v.description[:200]} for v in views]})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/agency", work_queue, name="agency_queue")
    r.add_get("/cases", case_search, name="case_search")
    r.add_get("/cases/similar", similar, name="case_similar")
    r.add_get("/cases/{number}", case_page, name="case_page")
    r.add_get("/cases/{number}/ws", case_ws, name="case_ws")
    r.add_post("/cases/{number}/{action}", case_action, name="case_action")
