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
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from prometheus_client.exposition import choose_encoder

from contactcenter.cases.keys import CASE_STORE
from contactcenter.keys import PBX, SESSIONS
from contactcenter.supervisor.keys import SUPERVISOR
from contactcenter.web.auth import current_user, origin_ok, require_role, require_user

from . import reports
from .charts import Series, bar_chart
from .services import ActionError
from .stats import to_json

log = logging.getLogger(__name__)

STAFF = ("supervisor", "admin")
SLA_COUNT_TIMEOUT = 2.0  # seconds the board waits for the case counts
SLA_COUNT_TTL = 15.0  # seconds one count serves every board of the process
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


@require_role(*STAFF)
async def wallboard_page(request: web.Request) -> web.Response:
    group, groups = _group(request)
    snapshot = request.app[SUPERVISOR].service.snapshot(group)
    return aiohttp_jinja2.render_template(
        "supervisor/wallboard.html", request,
        {"group": group, "groups": groups, "snapshot": snapshot, "reasons": PAUSE_REASONS,
         "tz": request.app[SUPERVISOR].service.settings.timezone,
         "cases": await case_sla_counts(request)},
    )


@require_role(*STAFF)
async def wallboard_ws(request: web.Request) -> web.WebSocketResponse:
    if not origin_ok(request):
        raise web.HTTPForbidden(text="websocket from another origin")
    group, _ = _group(request)
    hub = request.app[SUPERVISOR].hub
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=4096)
    await ws.prepare(request)
    user = current_user(request)
    client = hub.join(ws, group, user_id=user.id if user is not None else None)
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


def _range(request: web.Request) -> reports.DateRange:
    svc = request.app[SUPERVISOR].service
    today = svc.stats.local_day(svc.clock())
    return reports.parse_range(request.query, today)


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
    sessions = request.app[SESSIONS]
    report = await reports.call_report(sessions, rng, svc.stats)
    sla = await reports.sla_report(sessions, rng, svc.tz, svc.clock(), svc.settings.timezone)
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
         "query": {"from": rng.first.isoformat(), "to": rng.last.isoformat()}},
    )


def _csv_range(request: web.Request) -> reports.DateRange:
    """The report range of a CSV download; a bad one is a plain 400 with the reason."""
    try:
        return _range(request)
    except reports.ReportError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


def _csv_response(text: str, name: str) -> web.Response:
    return web.Response(
        text=text, content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@require_role(*STAFF)
async def calls_csv(request: web.Request) -> web.Response:
    rng = _csv_range(request)
    svc = request.app[SUPERVISOR].service
    text = await reports.calls_csv(request.app[SESSIONS], rng, svc.tz)
    return _csv_response(text, f"calls-{rng.first}-{rng.last}.csv")


@require_role(*STAFF)
async def summary_csv(request: web.Request) -> web.Response:
    rng = _csv_range(request)
    svc = request.app[SUPERVISOR].service
    report = await reports.call_report(request.app[SESSIONS], rng, svc.stats)
    return _csv_response(reports.summary_csv(report), f"summary-{rng.first}-{rng.last}.csv")


def add_routes(app: web.Application) -> None:
    app[CASE_COUNTS] = CaseCounts()
    r = app.router
    r.add_get("/wallboard", wallboard_page, name="wallboard")
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
