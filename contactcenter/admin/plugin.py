"""Wires the admin feature: reference-data pages and the IVR menu editor."""

from __future__ import annotations

from aiohttp import web

from . import http, ivr_http


def setup(app: web.Application) -> None:
    http.add_routes(app)
    ivr_http.add_routes(app)
