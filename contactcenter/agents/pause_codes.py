"""Pause codes (why an operator pauses): one list admins manage at /admin/pause-codes. The
console and the wallboard offer the codes in use; a code is never deleted (the presence
history names it), only retired. With no code in the table (a database made before them) the
built-in list applies."""

from __future__ import annotations

import re

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..audit import AuditLog
from ..keys import CLOCK, SESSIONS
from ..web.auth import require_role, require_user
from .keys import CONSOLE
from .models import PauseCode

CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
# The fallback, and the seed of migration 0013_presence.
DEFAULTS: dict[str, str] = {
    "break": "Break",
    "lunch": "Lunch",
    "training": "Training",
    "case-work": "Case work",
    "meeting": "Meeting",
    "supervisor": "With a supervisor",
}


async def active_codes(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """The codes in use, in the admins' order (by id); the built-in list if none is stored."""
    async with sessions() as db:
        rows = (await db.execute(select(PauseCode).order_by(PauseCode.id))).scalars().all()
    if not rows:
        return dict(DEFAULTS)
    return {r.code: r.label for r in rows if r.active}


async def _page(request: web.Request, *, error: str | None = None,
                values: dict[str, str] | None = None, status: int = 200) -> web.Response:
    async with request.app[SESSIONS]() as db:
        codes = list((await db.execute(select(PauseCode).order_by(PauseCode.id))).scalars())
    return aiohttp_jinja2.render_template("admin/pause_codes.html", request, {
        "codes": codes, "error": error, "values": values or {},
        "saved": request.query.get("saved", "")[:40]}, status=status)


async def _changed(request: web.Request) -> None:
    """This process's consoles offer the new list at once (others within a minute)."""
    hub = request.app.get(CONSOLE)
    if hub is not None:
        await hub.operators.refresh_pause_reasons()


@require_role("admin")
async def listing(request: web.Request) -> web.Response:
    return await _page(request)


@require_role("admin")
async def create(request: web.Request) -> web.Response:
    form = await request.post()
    code = str(form.get("code", "")).strip().lower()
    label = str(form.get("label", "")).strip()
    values = {"code": code[:40], "label": label[:80]}
    if not CODE.match(code):
        return await _page(request, error="Code: 1 to 40 of a-z, 0-9, '.', '-', '_'.",
                           values=values, status=400)
    if code == "wrap-up":
        return await _page(request, error="Code 'wrap-up' is the console's own (after-call "
                           "work); choose another.", values=values, status=400)
    if not label or len(label) > 80:
        return await _page(request, error="Label: 1 to 80 characters.", values=values,
                           status=400)
    actor = require_user(request).username
    async with request.app[SESSIONS]() as db, db.begin():
        if (await db.execute(select(PauseCode.id).where(PauseCode.code == code))
                ).first() is not None:
            return await _page(request, error=f"Code {code!r} exists.", values=values,
                               status=400)
        db.add(PauseCode(code=code, label=label, active=True))
        db.add(AuditLog(actor=actor, action="create", entity="pause_code", entity_id=code,
                        detail={"label": label}, at=request.app[CLOCK].now()))
    await _changed(request)
    raise web.HTTPFound(f"/admin/pause-codes?saved={code}")


@require_role("admin")
async def toggle(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 12:
        raise web.HTTPNotFound(text="no such code")
    actor = require_user(request).username
    async with request.app[SESSIONS]() as db, db.begin():
        row = await db.get(PauseCode, int(raw))
        if row is None:
            raise web.HTTPNotFound(text="no such code")
        row.active = not row.active
        db.add(AuditLog(actor=actor, action="update", entity="pause_code",
                        entity_id=row.code, detail={"active": row.active},
                        at=request.app[CLOCK].now()))
        code = row.code
    await _changed(request)
    raise web.HTTPFound(f"/admin/pause-codes?saved={code}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/pause-codes", listing, name="admin_pause_codes")
    app.router.add_post("/admin/pause-codes", create)
    app.router.add_post("/admin/pause-codes/{id}/toggle", toggle)
