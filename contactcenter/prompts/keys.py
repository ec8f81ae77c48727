"""The prompts feature's app state."""

from __future__ import annotations

from aiohttp import web

from .service import PromptService

PROMPTS = web.AppKey("prompts", PromptService)
