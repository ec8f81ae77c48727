"""Admin pages for reference data: queues, service types, agencies, users, the audit log.

Every handler is admin-only; every POST carries the CSRF token (checked by the guard) and is
validated server-side (forms.py, then the store rules in services.py) before anything is saved.
A form with problems is shown again with the typed values and a message next to each field.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..agency.models import Agency
from ..audit import AuditLog, audit
from ..events import QueuesChanged, SessionEnded
from ..keys import BUS, CLOCK, SESSIONS, SETTINGS
from ..queues.directory import QueueInfo, fingerprint
from ..queues.models import PbxConfigStatus, Queue, ServiceType
from ..web.auth import ROLES, require_role, require_user
from ..web.models import User
from ..web.sessions import count_user_sessions, end_user_sessions
from . import forms, services
from .services import FieldError

admin_only = require_role("admin")
SLA_MODE_NAMES = (("calendar", "Calendar hours (every hour counts)"),
                  ("business", "Business hours of the agency's calendar"))

_Row = TypeVar("_Row", Queue, ServiceType, Agency, User)
_Create = Callable[[AsyncSession, str, dict[str, Any], Iterable[str]], Awaitable[Any]]
_Update = Callable[[AsyncSession, str, Any, dict[str, Any], Iterable[str]], Awaitable[Any]]


def _render(request: web.Request, template: str, context: dict[str, Any],
            status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(f"admin/{template}", request, context, status=status)


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise web.HTTPNotFound(text="no such item")
    return int(raw)


def _saved(location: str, what: str) -> web.HTTPFound:
    return web.HTTPFound(f"{location}?saved={what}")


async def _row(request: web.Request, model: type[_Row], missing: str) -> _Row | None:
    """The row a form page edits: None for a new one (no `id` in the URL), else it or a 404."""
    if "id" not in request.match_info:
        return None
    async with request.app[SESSIONS]() as db:
        row = await db.get(model, _id(request))
    if row is None:
        raise web.HTTPNotFound(text=missing)
    return row


async def _save(request: web.Request, form: forms.Form, model: type[_Row], create: _Create,
                update: _Update, fields: Iterable[str], *, back: str,
                label: Callable[[_Row], str], missing: str,
                saved: Callable[[_Row], Awaitable[None]] | None = None) -> _Row | None:
    """Create (no `id` in the URL) or update one row from a parsed form, then redirect to
    `back`. When the form or a store rule fails, the message is next to its field and the row
    as it is now (None when creating) comes back, for the caller to show the form again."""
    actor = require_user(request).username
    creating = "id" not in request.match_info
    if form.ok:
        try:
            async with request.app[SESSIONS]() as db, db.begin():
                if creating:
                    row = await create(db, actor, form.values, fields)
                else:
                    row = await db.get(model, _id(request))
                    if row is None:
                        raise web.HTTPNotFound(text=missing)
                    await update(db, actor, row, form.values, fields)
            if saved is not None:  # committed: tell the rest of the site
                await saved(row)
            raise _saved(back, label(row))
        except FieldError as exc:
            form.errors[exc.field] = exc.message
    if creating:
        return None
    async with request.app[SESSIONS]() as db:
        return await db.get(model, _id(request))


@admin_only
async def index(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        counts = {
            name: (await db.execute(select(func.count()).select_from(model))).scalar_one()
            for name, model in (("queues", Queue), ("services", ServiceType),
                                ("agencies", Agency), ("users", User))
        }
        recent = (await db.execute(
            select(AuditLog).order_by(AuditLog.id.desc()).limit(10))).scalars().all()
    return _render(request, "index.html", {"counts": counts, "recent": recent})


# --- queues -------------------------------------------------------------------------------------


def _queue_form_values(queue: Queue | None) -> dict[str, Any]:
    if queue is None:
        values: dict[str, Any] = {
            "name": "", "display_name": "", "strategy": "ringall", "service_level_seconds": 15,
            "service_level_target": 80, "short_abandon_seconds": 5,
            "max_wait_target_seconds": 60, "wrapup_seconds": 30, "ring_timeout_seconds": 15,
            "timezone": "UTC", "group_name": "main", "holidays_text": "", "office_hours": {},
            "retry_seconds": 5, "joinempty": "yes", "leavewhenempty": "no",
            "announce_frequency": 60, "announce_position": True, "announce_holdtime": "once",
            "periodic_announce": "", "periodic_announce_frequency": 0, "musicclass": "default",
            "weight": 0, "language_wait_seconds": 30, "max_wait_seconds": 0,
        }
    else:
        values = {k: getattr(queue, k) for k in ("name", *forms.QUEUE_FIELDS)}
        values["service_level_target"] = round(queue.service_level_target * 100)
        values["holidays_text"] = "\n".join(queue.holidays or [])
    for day in forms.WEEKDAYS:
        span = (values.get("office_hours") or {}).get(day) or ["", ""]
        values[f"open_{day}"], values[f"close_{day}"] = span[0], span[1]
    return values


def _queue_choices() -> dict[str, Any]:
    return {"strategies": forms.STRATEGIES, "weekdays": forms.WEEKDAY_NAMES,
            "empty_rules": [(x, x) for x in forms.EMPTY_RULES],
            "holdtimes": [(x, x) for x in forms.HOLDTIME]}


async def _asterisk_status(request: web.Request, rows: Iterable[Queue]) -> list[dict[str, Any]]:
    """Per configured Asterisk: did it load what the store holds now? (the bridge writes
    `pbx_config_status` after each apply; its fingerprint is of the queues it applied)."""
    settings = request.app[SETTINGS]
    current = fingerprint(QueueInfo.from_row(q) for q in rows)
    async with request.app[SESSIONS]() as db:
        status = {s.server: s for s in (await db.execute(select(PbxConfigStatus))).scalars()}
    tz = ZoneInfo(settings.timezone)  # validated at start-up
    out = []
    for ep in settings.ami_endpoints() if settings.ami_enabled else []:
        s = status.get(ep.name)
        item: dict[str, Any] = {"server": ep.name, "state": "never", "message": "",
                                "at": None}
        if not settings.asterisk_conf_dir:
            item["state"] = "off"
        elif s is not None:
            at = s.attempted_at.astimezone(tz)
            item["at"] = at.strftime("%H:%M:%S")
            item["message"] = s.message
            if not s.ok:
                item["state"] = "refused"
            elif s.fingerprint == current:
                item["state"] = "applied"
            else:
                item["state"] = "pending"
        out.append(item)
    return out


@admin_only
async def queues(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        rows = (await db.execute(select(Queue).order_by(Queue.name))).scalars().all()
    return _render(request, "queues.html", {"queues": rows, "saved": request.query.get("saved"),
                                            "deleted": request.query.get("deleted"),
                                            "asterisk": await _asterisk_status(request, rows)})


@admin_only
async def queue_form(request: web.Request) -> web.Response:
    queue = await _row(request, Queue, "no such queue")
    return _render(request, "queue_form.html", {
        "queue": queue, "values": _queue_form_values(queue), "errors": {},
        **_queue_choices(),
    })


@admin_only
async def queue_save(request: web.Request) -> web.Response:
    creating = "id" not in request.match_info
    form = forms.parse_queue(await request.post(), creating=creating)

    async def changed(row: Queue) -> None:
        # every process (bridge, wallboards, consoles, IVR) reloads its QueueDirectory
        await request.app[BUS].publish(QueuesChanged(
            names=(row.name,), actor=require_user(request).username,
            at=request.app[CLOCK].now()))

    queue = await _save(request, form, Queue, services.create_queue, services.update_queue,
                        forms.QUEUE_FIELDS, back="/admin/queues", label=lambda r: r.name,
                        missing="no such queue", saved=changed)
    values = {**form.values, "service_level_target": form.raw.get("service_level_target", "")}
    for key in forms.QUEUE_NUMBERS:
        values[key] = form.raw.get(key, "")
    return _render(request, "queue_form.html", {
        "queue": queue, "values": values, "errors": form.errors,
        **_queue_choices(),
    }, status=400)


@admin_only
async def queue_delete(request: web.Request) -> web.Response:
    """Delete a queue; every Asterisk drops it at the next apply (the bridge follows
    `QueuesChanged`). Refused, with the reason on the form, while something routes to it."""
    actor = require_user(request).username
    try:
        async with request.app[SESSIONS]() as db, db.begin():
            queue = await db.get(Queue, _id(request))
            if queue is None:
                raise web.HTTPNotFound(text="no such queue")
            name = queue.name
            await services.delete_queue(db, actor, queue, request.app[SETTINGS].general_queue)
    except FieldError as exc:
        queue = await _row(request, Queue, "no such queue")
        return _render(request, "queue_form.html", {
            "queue": queue, "values": _queue_form_values(queue), "errors": {"name": exc.message},
            **_queue_choices(),
        }, status=400)
    await request.app[BUS].publish(QueuesChanged(names=(name,), actor=actor,
                                                 at=request.app[CLOCK].now()))
    raise web.HTTPFound(f"/admin/queues?deleted={name}")


# --- service types ------------------------------------------------------------------------------


async def _choices(request: web.Request) -> tuple[list[Agency], list[Queue]]:
    async with request.app[SESSIONS]() as db:
        agencies = (await db.execute(select(Agency).order_by(Agency.name))).scalars().all()
        queue_rows = (await db.execute(select(Queue).order_by(Queue.name))).scalars().all()
    return list(agencies), list(queue_rows)


@admin_only
async def service_types(request: web.Request) -> web.Response:
    agencies, queue_rows = await _choices(request)
    async with request.app[SESSIONS]() as db:
        rows = (await db.execute(select(ServiceType).order_by(ServiceType.code))).scalars().all()
    return _render(request, "services.html", {
        "services": rows, "agencies": {a.id: a for a in agencies},
        "queues": {q.id: q for q in queue_rows}, "saved": request.query.get("saved"),
    })


@admin_only
async def service_type_form(request: web.Request) -> web.Response:
    st = await _row(request, ServiceType, "no such service type")
    agencies, queue_rows = await _choices(request)
    if st is None:
        values: dict[str, Any] = {"code": "", "name": "", "description": "", "group_name": "",
                                  "keywords": "", "sla_hours": 72, "sla_mode": "calendar",
                                  "agency_id": None,
                                  "queue_id": None, "active": True, "attributes_text": "[]"}
    else:
        values = {k: getattr(st, k) for k in ("code", *forms.SERVICE_FIELDS)}
        values["attributes_text"] = json.dumps(st.attributes or [], indent=2)
    return _render(request, "service_form.html", {
        "service": st, "values": values, "errors": {}, "agencies": agencies,
        "queues": queue_rows, "sla_modes": SLA_MODE_NAMES,
    })


@admin_only
async def service_type_save(request: web.Request) -> web.Response:
    creating = "id" not in request.match_info
    agencies, queue_rows = await _choices(request)
    raw = await request.post()
    form = forms.parse_service_type(raw, creating=creating,
                                    agency_ids={a.id for a in agencies},
                                    queue_ids={q.id for q in queue_rows})
    st = await _save(request, form, ServiceType, services.create_service_type,
                     services.update_service_type, forms.SERVICE_FIELDS, back="/admin/services",
                     label=lambda r: r.code, missing="no such service type")
    values = {**form.values, "sla_hours": raw.get("sla_hours", ""),
              "agency_id": _int_or_none(raw.get("agency_id")),
              "queue_id": _int_or_none(raw.get("queue_id"))}
    return _render(request, "service_form.html", {
        "service": st, "values": values, "errors": form.errors, "agencies": agencies,
        "queues": queue_rows, "sla_modes": SLA_MODE_NAMES,
    }, status=400)


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


# --- agencies -----------------------------------------------------------------------------------


@admin_only
async def agencies(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        rows = (await db.execute(select(Agency).order_by(Agency.code))).scalars().all()
    return _render(request, "agencies.html", {"agencies": rows,
                                              "saved": request.query.get("saved")})


@admin_only
async def agency_form(request: web.Request) -> web.Response:
    agency = await _row(request, Agency, "no such agency")
    values: dict[str, Any] = (
        {"code": "", "name": "", "email": "", "phone": "", "office_hours": {}, "holidays": []}
        if agency is None else
        {k: getattr(agency, k) or "" for k in ("code", *forms.AGENCY_FIELDS)})
    values["holidays_text"] = "\n".join(values.get("holidays") or [])
    for day in forms.WEEKDAYS:
        span = (values.get("office_hours") or {}).get(day) or ["", ""]
        values[f"open_{day}"], values[f"close_{day}"] = span[0], span[1]
    return _render(request, "agency_form.html", {"agency": agency, "values": values,
                                                 "errors": {}, "weekdays": forms.WEEKDAY_NAMES})


@admin_only
async def agency_save(request: web.Request) -> web.Response:
    creating = "id" not in request.match_info
    raw = await request.post()
    form = forms.parse_agency(raw, creating=creating)
    agency = await _save(request, form, Agency, services.create_agency, services.update_agency,
                         forms.AGENCY_FIELDS, back="/admin/agencies", label=lambda r: r.code,
                         missing="no such agency")
    values = {**form.values,
              **{k: str(raw.get(k, "") or "") for k in ("code", "name", "email", "phone")}}
    return _render(request, "agency_form.html", {"agency": agency, "values": values,
                                                 "errors": form.errors,
                                                 "weekdays": forms.WEEKDAY_NAMES}, status=400)


# --- users --------------------------------------------------------------------------------------


async def _queue_names(request: web.Request) -> list[str]:
    async with request.app[SESSIONS]() as db:
        return list((await db.execute(select(Queue.name).order_by(Queue.name))).scalars())


async def _agency_codes(request: web.Request) -> list[str]:
    async with request.app[SESSIONS]() as db:
        return list((await db.execute(select(Agency.code).order_by(Agency.code))).scalars())


@admin_only
async def users(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        rows = (await db.execute(select(User).order_by(User.username))).scalars().all()
    return _render(request, "users.html", {"users": rows, "saved": request.query.get("saved")})


@admin_only
async def user_form(request: web.Request) -> web.Response:
    target = await _row(request, User, "no such user")
    values = ({"username": "", "display_name": "", "role": "operator", "interface": "",
               "queues": [], "languages": [], "agencies": [], "active": True} if target is None else
              {k: getattr(target, k) for k in ("username", *forms.USER_FIELDS)})
    return _render(request, "user_form.html", {
        "target": target, "values": values, "errors": {}, "roles": ROLES,
        "queue_names": await _queue_names(request), "sessions": await _sessions(request, target),
        "agency_codes": await _agency_codes(request),
        "ended": request.query.get("ended", "") if request.query.get("ended", "").isdigit()
        else "",
    })


@admin_only
async def user_save(request: web.Request) -> web.Response:
    creating = "id" not in request.match_info
    queue_names = await _queue_names(request)
    raw = await request.post()
    agency_codes = await _agency_codes(request)
    form = forms.parse_user(raw, creating=creating, roles=ROLES, queue_names=set(queue_names),
                            agency_codes=set(agency_codes))
    try:
        target = await _save(request, form, User, services.create_user, services.update_user,
                             forms.USER_FIELDS, back="/admin/users", label=lambda r: r.username,
                             missing="no such user")
    except web.HTTPFound:
        if not creating:  # a new password, role or state signed the user out: close sockets
            await _signed_out(request, _id(request))
        raise
    values = {**form.values, "interface": form.values.get("interface") or ""}
    return _render(request, "user_form.html", {
        "target": target, "values": values, "errors": form.errors, "roles": ROLES,
        "queue_names": queue_names, "sessions": await _sessions(request, target),
        "agency_codes": agency_codes,
    }, status=400)


async def _sessions(request: web.Request, target: User | None) -> int:
    if target is None:
        return 0
    async with request.app[SESSIONS]() as db:
        return await count_user_sessions(db, target.id, request.app[CLOCK].now())


async def _signed_out(request: web.Request, user_id: int) -> None:
    """Close the user's console and wallboard sockets in every web process when they have no
    session left (their pages then go to the log-in page)."""
    async with request.app[SESSIONS]() as db:
        user = await db.get(User, user_id)
        if user is None or await count_user_sessions(db, user_id, request.app[CLOCK].now()):
            return
    bus = request.app.get(BUS)
    if bus is not None:
        await bus.publish(SessionEnded(user_id=user.id, username=user.username,
                                       at=request.app[CLOCK].now()))


@admin_only
async def user_end_sessions(request: web.Request) -> web.Response:
    """"End all sessions": every browser signed in as the user is signed out at once (a lost
    laptop, a shared desk, a suspicion)."""
    actor = require_user(request).username
    async with request.app[SESSIONS]() as db, db.begin():
        target = await db.get(User, _id(request))
        if target is None:
            raise web.HTTPNotFound(text="no such user")
        ended = await end_user_sessions(db, target.id)
        audit(db, actor, "end_sessions", "user", target.username, {"sessions": ended})
    await _signed_out(request, target.id)
    raise web.HTTPFound(f"/admin/users/{target.id}?ended={ended}")


# --- audit log ----------------------------------------------------------------------------------

AUDIT_PAGE = 100


@admin_only
async def audit_log(request: web.Request) -> web.Response:
    entity = request.query.get("entity", "")
    before = request.query.get("before", "")
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(AUDIT_PAGE)
    if entity:
        query = query.where(AuditLog.entity == entity)
    if before.isdigit():
        query = query.where(AuditLog.id < int(before))
    async with request.app[SESSIONS]() as db:
        rows = (await db.execute(query)).scalars().all()
        entities = sorted((await db.execute(select(AuditLog.entity).distinct())).scalars())
    return _render(request, "audit.html", {
        "rows": rows, "entity": entity, "entities": entities,
        "more": rows[-1].id if len(rows) == AUDIT_PAGE else None,
    })


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin", index, name="admin")
    r.add_get("/admin/audit", audit_log, name="admin_audit")
    for path, listing, form, save in (
        ("queues", queues, queue_form, queue_save),
        ("services", service_types, service_type_form, service_type_save),
        ("agencies", agencies, agency_form, agency_save),
        ("users", users, user_form, user_save),
    ):
        r.add_get(f"/admin/{path}", listing)
        r.add_get(f"/admin/{path}/new", form)
        r.add_post(f"/admin/{path}/new", save)
        r.add_get(f"/admin/{path}/{{id}}", form)
        r.add_post(f"/admin/{path}/{{id}}", save)
    r.add_post("/admin/users/{id}/sessions/end", user_end_sessions)
    r.add_post("/admin/queues/{id}/delete", queue_delete)
