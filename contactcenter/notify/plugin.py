"""Wires the citizens' opt-out pages into the web processes."""

from __future__ import annotations

from aiohttp import web

from .http import add_routes


def setup(app: web.Application) -> None:
    add_routes(app)
