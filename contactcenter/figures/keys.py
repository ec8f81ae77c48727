"""The figures feature's app key."""

from __future__ import annotations

from aiohttp import web

from .service import FiguresService

FIGURES = web.AppKey("figures", FiguresService)
