"""The agency feature's app state (set in agency/plugin.py)."""

from __future__ import annotations

from aiohttp import web

from .live import CaseLive

CASE_LIVE = web.AppKey("case_live", CaseLive)
