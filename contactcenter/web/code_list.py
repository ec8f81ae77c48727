"""An admin-managed list of codes (resolution codes, pause codes): one page to list, add, retire
and bring back. A code is never deleted, because history rows name it; it is only retired."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from ..audit import audit
from ..keys import CLOCK, SESSIONS
from .auth import require_role, require_user

CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


class CodeRow(Protocol):
    id: Any
    code: Any
    label: Any
    active: Any


@dataclass(frozen=True)
class CodeList:
    """One list: its table, its page's words, and what else must know when it changes."""

    model: Any  # a mapped class with id, code, label, active
    path: str  # e.g. /admin/resolutions
    entity: str  # the audit log's name for a row
    title: str
    intro: str
    label_max: int
    reserved: dict[str, str] = field(default_factory=dict)  # code -> why it is refused
    changed: Callable[[web.Request], Awaitable[None]] | None = None

    async def _page(self, request: web.Request, *, error: str | None = None,
                    values: dict[str, str] | None = None, status: int = 200) -> web.Response:
        async with request.app[SESSIONS]() as db:
            codes = list((await db.execute(select(self.model).order_by(self.model.id))).scalars())
        return aiohttp_jinja2.render_template("admin/code_list.html", request, {
            "codes": codes, "error": error, "values": values or {}, "list": self,
            "saved": request.query.get("saved", "")[:40]}, status=status)

    async def listing(self, request: web.Request) -> web.Response:
        return await self._page(request)

    async def create(self, request: web.Request) -> web.Response:
        form = await request.post()
        code = str(form.get("code", "")).strip().lower()
        label = str(form.get("label", "")).strip()
        values = {"code": code[:40], "label": label[:self.label_max]}
        error = None
        if not CODE.match(code):
            error = "Code: 1 to 40 of a-z, 0-9, '.', '-', '_'."
        elif code in self.reserved:
            error = self.reserved[code]
        elif not label or len(label) > self.label_max:
            error = f"Label: 1 to {self.label_max} characters."
        if error:
            return await self._page(request, error=error, values=values, status=400)
        actor = require_user(request).username
        async with request.app[SESSIONS]() as db, db.begin():
            if (await db.execute(select(self.model.id).where(self.model.code == code))
                    ).first() is not None:
                return await self._page(request, error=f"Code {code!r} exists.",
                                        values=values, status=400)
            db.add(self.model(code=code, label=label, active=True))
            audit(db, actor, "create", self.entity, code, {"label": label},
                  at=request.app[CLOCK].now())
        return await self._done(request, code)

    async def toggle(self, request: web.Request) -> web.Response:
        raw = request.match_info["id"]
        if not raw.isdigit() or len(raw) > 12:
            raise web.HTTPNotFound(text="no such code")
        actor = require_user(request).username
        async with request.app[SESSIONS]() as db, db.begin():
            row: CodeRow | None = await db.get(self.model, int(raw))
            if row is None:
                raise web.HTTPNotFound(text="no such code")
            row.active = not row.active
            audit(db, actor, "update", self.entity, row.code, {"active": row.active},
                  at=request.app[CLOCK].now())
            code = str(row.code)
        return await self._done(request, code)

    async def _done(self, request: web.Request, code: str) -> web.Response:
        if self.changed is not None:
            await self.changed(request)
        raise web.HTTPFound(f"{self.path}?saved={code}")

    def add_routes(self, app: web.Application, name: str) -> None:
        # the guard reads marks on a plain function (a bound method takes no attributes)
        def admin(method: Callable[[web.Request], Awaitable[web.Response]]
                  ) -> Callable[[web.Request], Awaitable[web.Response]]:
            async def handler(request: web.Request) -> web.Response:
                return await method(request)
            return require_role("admin")(handler)

        app.router.add_get(self.path, admin(self.listing), name=name)
        app.router.add_post(self.path, admin(self.create))
        app.router.add_post(self.path + "/{id}/toggle", admin(self.toggle))
