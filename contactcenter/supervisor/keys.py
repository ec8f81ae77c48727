"""The supervisor feature's app state: statistics, wallboard push, metrics (its plugin.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .plugin import SupervisorFeature

SUPERVISOR: web.AppKey[SupervisorFeature] = web.AppKey("supervisor")
