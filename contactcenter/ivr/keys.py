"""The IVR's app state: the engine the FastAGI server runs (telephony/agi_plugin.py)."""

from __future__ import annotations

from aiohttp import web

from .engine import IvrEngine

IVR_ENGINE = web.AppKey("ivr_engine", IvrEngine)
