"""The Asterisk edge's app state that other parts read: the FastAGI server (agi_plugin.py)."""

from __future__ import annotations

from aiohttp import web

from .agi import FastAgiServer

AGI_SERVER = web.AppKey("agi_server", FastAgiServer)
