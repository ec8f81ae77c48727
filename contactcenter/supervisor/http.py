"""The supervisor's pages and APIs: /wallboard (+ its websocket and actions), /reports (+ CSV),
/api/queues and /metrics.

Access: pages and actions are for supervisors and admins. `/api/queues` and `/metrics` also take
an API key (`X-API-Key` header) so other dashboards and Prometheus can read them without a person's
session; neither carries personal data (no caller IDs, only counts and operators' states).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from typing import Any, TypeVar

import aiohttp_jinja2
from aiohttp import web
from prometheus_client.exposition import choose_encoder
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.agents.models import PauseCode
from contactcenter.cases.keys import CASE_STORE
from contactcenter.keys import PBX, SESSIONS
from contactcenter.supervisor.keys import SUPERVISOR
from contactcenter.web.auth import current_user, origin_ok, require_role, require_user

from . import reports
from .charts import Series, bar_chart
from .services import ActionError
from .stats import QueueConfig, QueueStats, to_json
from .wallboard import tv_snapshot

log = logging.getLogger(__name__)

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]
STAFF = ("supervisor", "admin")
SLA_COUNT_TIMEOUT = 2.0  # seconds the board waits for the case counts
SLA_COUNT_TTL = 15.0  # seconds one count serves every board of the process
CSV_WARN_ROWS = 200_000  # a calls CSV longer than this gets a size warning on the reports page
PAUSE_REASONS = ("break", "lunch", "training", "case work", "meeting", "supervisor")


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    """A JSON object or a form, as a dict of strings; a clear 400 otherwise."""
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPBadRequest(
                text=json.dumps({"error": "the body is not valid JSON"}),
                content_type="application/json",
            ) from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(
                text=json.dumps({"error": "the body must be a JSON object"}),
                content_type="application/json",
            )
        return {k: v if isinstance(v, str) else "" for k, v in data.items()}
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


# --- wallboard ----------------------------------------------------------------------------------


def _group(request: web.Request) -> tuple[str, list[str]]:
    svc = request.app[SUPERVISOR].service
    groups = svc.stats.groups() or ["main"]
    group = request.query.get("group") or groups[0]
    if group not in groups:
        raise web.HTTPNotFound(text=f"no queue group {group[:80]!r}; groups: {', '.join(groups)}")
    return group, groups


class CaseCounts:
    """Open cases at risk and overdue (the store's one definition, counted in SQL), shared by
    every board of this process for SLA_COUNT_TTL seconds: a wall of screens refreshing it
    costs one query, not one each."""

    def __init__(self) -> None:
        self.value: dict[str, int] | None = None
        self.at = -1e9
        self.lock = asyncio.Lock()

    async def get(self, request: web.Request) -> dict[str, int] | None:
        """None when the store does not answer quickly: the board still shows the calls."""
        store = request.app.get(CASE_STORE)
        if store is None:
            return None
        async with self.lock:
            if time.monotonic() - self.at < SLA_COUNT_TTL:
                return self.value
            try:
                self.value = await asyncio.wait_for(store.sla_counts(), SLA_COUNT_TIMEOUT)
            except Exception as exc:  # a dead or slow database must not take the board down
                log.warning("case SLA counts unavailable: %r", exc)
                self.value = None
            self.at = time.monotonic()
            return self.value


CASE_COUNTS = web.AppKey("case_counts", CaseCounts)


async def case_sla_counts(request: web.Request) -> dict[str, int] | None:
    return await request.app[CASE_COUNTS].get(request)


@require_role(*STAFF)
async def wallboard_cases(request: web.Request) -> web.Response:
    """The board's "cases at risk N, overdue M", refreshed by wallboard.js every minute."""
    counts = await case_sla_counts(request)
    if counts is None:
        return web.json_response({"error": "case counts unavailable"}, status=503)
    return web.json_response(counts)


async def _pause_codes(request: web.Request) -> list[tuple[str, str]]:
    """The pause codes admins keep in use (/admin/pause-codes); the built-in ones without."""
    try:
        async with request.app[SESSIONS]() as db:
            rows = (await db.execute(select(PauseCode).order_by(PauseCode.id))).scalars().all()
    except SQLAlchemyError:  # the store is down: the page still shows the live figures
        rows = []
    if not rows:
        return [(r, r) for r in PAUSE_REASONS]
    return [(r.code, r.label) for r in rows if r.active]


@require_role(*STAFF)
async def wallboard_page(request: web.Request) -> web.Response:
    group, groups = _group(request)
    snapshot = request.app[SUPERVISOR].service.snapshot(group)
    return aiohttp_jinja2.render_template(
        "supervisor/wallboard.html", request,
        {"group": group, "groups": groups, "snapshot": snapshot,
         "reasons": await _pause_codes(request),
         "tz": request.app[SUPERVISOR].service.settings.timezone,
         "cases": await case_sla_counts(request)},
    )


@require_role(*STAFF)
async def wallboard_tv(request: web.Request) -> web.Response:
    """The wallboard for a TV on the wall: every queue of the group on one screen, large, no
    controls, no caller's name or number (the server never sends them to it)."""
    group, _ = _group(request)
    snapshot = tv_snapshot(request.app[SUPERVISOR].service.snapshot(group))
    return aiohttp_jinja2.render_template(
        "supervisor/wallboard_tv.html", request, {"group": group, "snapshot": snapshot})


@require_role(*STAFF)
async def wallboard_ws(request: web.Request) -> web.WebSocketResponse:
    if not origin_ok(request):
        raise web.HTTPForbidden(text="websocket from another origin")
    group, _ = _group(request)
    hub = request.app[SUPERVISOR].hub
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=4096)
    await ws.prepare(request)
    user = current_user(request)
    client = hub.join(ws, group, user_id=user.id if user is not None else None,
                      tv=request.query.get("tv") == "1")
    try:
        async for _msg in ws:
            pass  # screens only listen; actions go through the CSRF-checked POSTs
    finally:
        await hub.leave(client)
    return ws


@require_role(*STAFF)
async def agent_action(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await _body(request)
    feature = request.app[SUPERVISOR]
    try:
        result = await feature.service.agent_action(
            request.app.get(PBX), user.username, request.match_info["action"],
            body.get("interface", ""), body.get("reason", ""),
        )
    except ActionError as exc:
        return _error(str(exc), exc.status)
    return web.json_response(result)


@require_role(*STAFF)
async def broadcast(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await _body(request)
    try:
        msg = await request.app[SUPERVISOR].service.broadcast(user.username, body.get("text", ""))
    except ActionError as exc:
        return _error(str(exc), exc.status)
    return web.json_response({"ok": True, "at": msg.at.isoformat()})


# --- API and metrics ----------------------------------------------------------------------------


@require_role(*STAFF, api_key=True)
async def api_queues(request: web.Request) -> web.Response:
    window = request.query.get("window", "today")
    if window not in ("today", "hour"):
        return _error("window must be 'today' or 'hour'", 400)
    return web.json_response(request.app[SUPERVISOR].service.api_queues(window), dumps=to_json)


@require_role(*STAFF, api_key=True)
async def metrics(request: web.Request) -> web.Response:
    # the client library's own negotiation: OpenMetrics for a scraper that asks, else text 0.0.4
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(request.app[SUPERVISOR].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": content_type})


# --- reports ------------------------------------------------------------------------------------


def _range(request: web.Request, max_days: int | None = reports.MAX_DAYS) -> reports.DateRange:
    svc = request.app[SUPERVISOR].service
    today = svc.stats.local_day(svc.clock())
    return reports.parse_range(request.query, today, max_days=max_days)


async def _heavy(
    request: web.Request, fn: Callable[..., Awaitable[T]], *args: Any
) -> T:
    """`fn(sessions, *args)` in the report worker process (supervisor/offloop.py); in this
    process only when it has none (an in-memory database another process cannot see)."""
    worker = request.app[SUPERVISOR].offloop
    if worker is None:
        return await fn(request.app[SESSIONS], *args)
    return await worker.run(fn, *args)


StatsSpec = tuple[tzinfo, QueueConfig, tuple[QueueConfig, ...]]


def _stats_spec(request: web.Request) -> StatsSpec:
    """What a report needs of the live statistics (time zone, thresholds), small to pickle."""
    stats = request.app[SUPERVISOR].service.stats
    return stats.tz, stats.default, tuple(stats.queues.values())


def _stats(spec: StatsSpec) -> QueueStats:
    tz, default, queues = spec
    return QueueStats(queues, tz=tz, default=default)


async def page_work(
    sessions: Sessions, rng: reports.DateRange, spec: StatsSpec, now: datetime
) -> tuple[reports.CallReport, list[reports.SlaRow]]:
    """The reports page's figures (run in the report worker)."""
    calls = reports.call_report(sessions, rng, _stats(spec))
    # str(ZoneInfo) is its key: the center's zone, for agencies' business hours
    sla = reports.sla_report(sessions, rng, spec[0], now, str(spec[0]))
    if reports.parallel_reads(sessions):  # the calls' and the cases' queries at once
        return await asyncio.gather(calls, sla)
    return await calls, await sla


async def summary_work(
    sessions: Sessions, rng: reports.DateRange, spec: StatsSpec
) -> reports.CallReport:
    return await reports.call_report(sessions, rng, _stats(spec))


@require_role(*STAFF)
async def reports_page(request: web.Request) -> web.Response:
    svc = request.app[SUPERVISOR].service
    try:
        rng = _range(request)
    except reports.ReportError as exc:
        return aiohttp_jinja2.render_template(
            "supervisor/reports.html", request,
            {"error": str(exc), "query": dict(request.query), "report": None,
             "tz": svc.settings.timezone}, status=400,
        )
    report, sla = await _heavy(request, page_work, rng, _stats_spec(request), svc.clock())
    cases = await case_sla_counts(request)
    hours = [f"{h:02d}" for h in range(24)]
    days = list(report.by_day)
    charts = {
        "by_hour": bar_chart(
            "Calls by hour of day", hours,
            [Series("all calls", [b.calls for b in report.by_hour]),
             Series("answered", [b.queued.answered for b in report.by_hour]),
             Series("abandoned", [b.queued.abandoned for b in report.by_hour])],
        ),
        "by_day": bar_chart(
            "Calls by day", [d.strftime("%m-%d") for d in days],
            [Series("all calls", [report.by_day[d].calls for d in days]),
             Series("answered", [report.by_day[d].queued.answered for d in days]),
             Series("abandoned", [report.by_day[d].queued.abandoned for d in days])],
        ),
        "sl_by_day": bar_chart(
            "Service level by day", [d.strftime("%m-%d") for d in days],
            [Series("service level", [report.by_day[d].queued.service_level or 0.0
                                      for d in days])],
            percent=True, height=200,
        ),
    }
    return aiohttp_jinja2.render_template(
        "supervisor/reports.html", request,
        {"error": None, "report": report, "sla": sla, "charts": charts, "rng": rng,
         "cases": cases,
         "tz": svc.settings.timezone, "queues": svc.stats.queues,
         "csv_warning": _csv_warning(report.total.calls),
         "query": {"from": rng.first.isoformat(), "to": rng.last.isoformat()}},
    )


def _csv_warning(calls: int) -> str | None:
    """Said beside the download link when the file will be large (it streams either way)."""
    if calls < CSV_WARN_ROWS:
        return None
    mb = calls * reports.BYTES_PER_ROW / 2**20
    return (f"The calls CSV of this range has {calls:,} rows (about {mb:,.0f} MB): it downloads "
            "as it is written and may take a while; spreadsheets open at most 1,048,576 rows.")


def _csv_range(request: web.Request, max_days: int | None = reports.MAX_DAYS
               ) -> reports.DateRange:
    """The report range of a CSV download; a bad one is a plain 400 with the reason."""
    try:
        return _range(request, max_days)
    except reports.ReportError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


def _csv_response(text: str, name: str) -> web.Response:
    return web.Response(
        text=text, content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@require_role(*STAFF)
async def calls_csv(request: web.Request) -> web.StreamResponse:
    """Any range, streamed: each chunk of rows goes out as soon as it is read, so memory stays
    flat and the loop is held for one chunk at a time."""
    rng = _csv_range(request, max_days=None)
    svc = request.app[SUPERVISOR].service
    resp = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="calls-{rng.first}-{rng.last}.csv"'})
    if request.method == "HEAD":  # headers only: a body here would corrupt a kept-alive link
        return resp
    resp.enable_chunked_encoding()

    async def write(data: bytes) -> None:
        # the 200 goes out with the header row: a dead database fails before, as a 500
        if not resp.prepared:
            await resp.prepare(request)
        await resp.write(data)  # awaited: the next rows are read once these are sent

    await reports.write_calls_csv(request.app[SESSIONS], rng, svc.tz, write)
    await resp.write_eof()
    return resp


@require_role(*STAFF)
async def summary_csv(request: web.Request) -> web.Response:
    rng = _csv_range(request)
    report = await _heavy(request, summary_work, rng, _stats_spec(request))
    return _csv_response(reports.summary_csv(report), f"summary-{rng.first}-{rng.last}.csv")


def add_routes(app: web.Application) -> None:
    app[CASE_COUNTS] = CaseCounts()
    r = app.router
    r.add_get("/wallboard", wallboard_page, name="wallboard")
    r.add_get("/wallboard/tv", wallboard_tv, name="wallboard_tv")
    r.add_get("/wallboard/ws", wallboard_ws, name="wallboard_ws")
    r.add_get("/wallboard/cases", wallboard_cases, name="wallboard_cases")
    r.add_post("/wallboard/agents/{action}", agent_action, name="wallboard_agent_action")
    r.add_post("/wallboard/broadcast", broadcast, name="wallboard_broadcast")
    r.add_get("/reports", reports_page, name="reports")
    r.add_get("/reports/calls.csv", calls_csv, name="reports_calls_csv")
    r.add_get("/reports/summary.csv", summary_csv, name="reports_summary_csv")
    r.add_get("/api/queues", api_queues, name="api_queues")
    r.add_get("/metrics", metrics, name="metrics")


__all__ = ["add_routes"]
