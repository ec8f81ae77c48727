"""Resolution codes (how a case was closed): one global list admins manage at
/admin/resolutions. A code is never deleted (closed cases refer to it), only retired."""

from __future__ import annotations

from aiohttp import web

from ..cases.models import ResolutionCode
from ..web.code_list import CodeList

RESOLUTIONS = CodeList(
    model=ResolutionCode, path="/admin/resolutions", entity="resolution_code",
    title="Resolution codes", label_max=200,
    intro="Agencies choose one when they close a case (with a public note). Retired codes "
          "stay on the cases that used them.")


def add_routes(app: web.Application) -> None:
    RESOLUTIONS.add_routes(app, "admin_resolutions")
