"""Wires prompts: the speech engine (CC_TTS_ENGINE, CC_TTS_VOICES), the audio library
(CC_PROMPTS_DIR), Asterisk's sounds directory (CC_SOUNDS_DIR) and the admin's audio routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..config import Settings
from ..keys import SESSIONS, SETTINGS
from .keys import PROMPTS
from .library import AudioLibrary
from .service import PromptService
from .voice import make_engine


def build(settings: Settings,
          sessions: async_sessionmaker[AsyncSession] | None = None) -> PromptService:
    library = AudioLibrary(settings.prompts_dir)
    engine = make_engine(settings.tts_engine, settings.tts_voices, settings.piper_binary,
                         tmp_dir=library.tmp_dir)
    return PromptService(library, engine, Path(settings.sounds_dir), sessions=sessions)


async def prompts_ctx(app: web.Application) -> AsyncIterator[None]:
    # its directories are made on first use (a process that never speaks writes nothing)
    app[PROMPTS] = build(app[SETTINGS], app[SESSIONS])
    yield


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(prompts_ctx)
