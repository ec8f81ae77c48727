"""The notifier's app state (notify/sender_plugin.py)."""

from __future__ import annotations

from aiohttp import web

from .services import Notifier

NOTIFIER = web.AppKey("notifier", Notifier)
