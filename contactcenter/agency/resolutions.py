"""Resolution codes (how a case was closed): one global list admins manage at
/admin/resolutions. A code is never deleted (closed cases refer to it), only retired."""

from __future__ import annotations

import re

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from ..audit import audit
from ..cases.models import ResolutionCode
from ..keys import CLOCK, SESSIONS
from ..web.auth import require_role, require_user

CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


async def _page(request: web.Request, *, error: str | None = None, values: dict[str, str]
                | None = None, status: int = 200) -> web.Response:
    async with request.app[SESSIONS]() as db:
        rows = (await db.execute(select(ResolutionCode).order_by(ResolutionCode.id))).scalars()
        codes = list(rows)
    return aiohttp_jinja2.render_template("admin/resolutions.html", request, {
        "codes": codes, "error": error, "values": values or {},
        "saved": request.query.get("saved", "")[:40]}, status=status)


@require_role("admin")
async def listing(request: web.Request) -> web.Response:
    return await _page(request)


@require_role("admin")
async def create(request: web.Request) -> web.Response:
    form = await request.post()
    code = str(form.get("code", "")).strip().lower()
    label = str(form.get("label", "")).strip()
    values = {"code": code[:40], "label": label[:200]}
    if not CODE.match(code):
        return await _page(request, error="Code: 1 to 40 of a-z, 0-9, '.', '-', '_'.",
                           values=values, status=400)
    if not label or len(label) > 200:
        return await _page(request, error="Label: 1 to 200 characters.", values=values,
                           status=400)
    actor = require_user(request).username
    async with request.app[SESSIONS]() as db, db.begin():
        if (await db.execute(select(ResolutionCode.id).where(ResolutionCode.code == code))
                ).first() is not None:
            return await _page(request, error=f"Code {code!r} exists.", values=values,
                               status=400)
        db.add(ResolutionCode(code=code, label=label, active=True))
        audit(db, actor, "create", "resolution_code", code, {"label": label},
              at=request.app[CLOCK].now())
    raise web.HTTPFound(f"/admin/resolutions?saved={code}")


@require_role("admin")
async def toggle(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 12:
        raise web.HTTPNotFound(text="no such code")
    actor = require_user(request).username
    async with request.app[SESSIONS]() as db, db.begin():
        row = await db.get(ResolutionCode, int(raw))
        if row is None:
            raise web.HTTPNotFound(text="no such code")
        row.active = not row.active
        audit(db, actor, "update", "resolution_code", row.code, {"active": row.active},
              at=request.app[CLOCK].now())
        code = row.code
    raise web.HTTPFound(f"/admin/resolutions?saved={code}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/resolutions", listing, name="admin_resolutions")
    app.router.add_post("/admin/resolutions", create)
    app.router.add_post("/admin/resolutions/{id}/toggle", toggle)
