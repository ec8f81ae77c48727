"""Pause codes (why an operator pauses): one list admins manage at /admin/pause-codes. The
console and the wallboard offer the codes in use; a code is never deleted (the presence
history names it), only retired. With no code in the table (a database made before them) the
built-in list applies."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..web.code_list import CodeList
from .keys import CONSOLE
from .models import PauseCode

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


async def _changed(request: web.Request) -> None:
    """This process's consoles offer the new list at once (others within a minute)."""
    hub = request.app.get(CONSOLE)
    if hub is not None:
        await hub.operators.refresh_pause_reasons()


PAUSE_CODES = CodeList(
    model=PauseCode, path="/admin/pause-codes", entity="pause_code", title="Pause codes",
    label_max=80, changed=_changed,
    reserved={"wrap-up": "Code 'wrap-up' is the console's own (after-call work); choose "
                         "another."},
    intro="Operators choose one when they pause (the console) and supervisors when they pause "
          "an operator (the wallboard). Retired codes are no longer offered; the presence "
          "history keeps them.")


def add_routes(app: web.Application) -> None:
    PAUSE_CODES.add_routes(app, "admin_pause_codes")
