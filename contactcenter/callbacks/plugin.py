"""Wires call-backs (bridge role: they need the PBX and the FastAGI server): the service
subscribed to case closures, its placing loop, the FastAGI script `/callback`, and its part of
/health. Off unless CC_CALLBACK_CHANNEL says how to reach a citizen."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from contactcenter.cases.keys import CASE_STORE
from contactcenter.config import SettingsError
from contactcenter.events import CaseChanged
from contactcenter.keys import AGI_ROUTES, BUS, CLOCK, HEALTH, PBX, SESSIONS, SETTINGS

from ..prompts import plugin as prompts_plugin
from ..prompts.keys import PROMPTS
from ..prompts.library import atomic_write
from ..prompts.service import PromptService
from .keys import CALLBACK_SPEAKER, CALLBACKS
from .policy import CallbackRules, parse_hours
from .service import Callbacks, Speaker

log = logging.getLogger(__name__)

SCRIPT = "/callback"  # the dialplan's [cc-callback]: AGI(agi://host:4573/callback)
CONTEXT = "cc-callback"
# a call-back's sentences live beside the menu's prompts but not among them: a menu publish
# prunes <lang>/311/, which must never take a sentence away from a call in progress
SOUNDS = "311-callback"
KEEP_DAYS = 2


def prompt_speaker(prompts: PromptService, sounds_dir: Path) -> Speaker:
    """The IVR's voice for call-backs: the sentence spoken (cached by its words), written
    atomically to <CC_SOUNDS_DIR>/<lang>/311-callback/<hash>.wav; returns the name to play."""

    def write(path: Path, sha: str) -> None:
        if path.is_file():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, prompts.library.get(sha))
        cutoff = path.stat().st_mtime - KEEP_DAYS * 86400
        for old in path.parent.glob("*.wav"):  # sentences of finished call-backs
            if old.stat().st_mtime < cutoff:
                old.unlink(missing_ok=True)

    async def speak(text: str, language: str) -> str:
        sha = await prompts.speak(text, language)
        name = f"{SOUNDS}/{sha[:16]}"
        await asyncio.to_thread(write, sounds_dir / language / f"{name}.wav", sha)
        return name

    return speak


def rules_of(settings: Any) -> CallbackRules:
    try:
        start, end = parse_hours(settings.callback_hours)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return CallbackRules(start, end, max(1, settings.callback_attempts),
                         timedelta(minutes=settings.callback_retry_minutes),
                         timedelta(seconds=settings.callback_answer_seconds))


async def callbacks_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.callback_channel:
        yield
        return
    if CALLBACK_SPEAKER not in app:  # the bridge role has no prompts feature: its own voice
        prompts = app[PROMPTS] if PROMPTS in app else prompts_plugin.build(settings)
        app[CALLBACK_SPEAKER] = prompt_speaker(prompts, Path(settings.sounds_dir))

    async def originate(phone: str, variables: dict[str, str]) -> None:
        await app[PBX].originate(settings.callback_channel.format(number=phone), CONTEXT, "s",
                                 caller_id=settings.callback_caller_id, variables=variables)

    service = Callbacks(app[SESSIONS], app[CASE_STORE], app[CLOCK].now,
                        ZoneInfo(settings.timezone), rules_of(settings), originate,
                        app[CALLBACK_SPEAKER])
    app[CALLBACKS] = service
    app[AGI_ROUTES][SCRIPT] = service.session
    sub = app[BUS].subscribe(service.on_event, types=(CaseChanged,), name="callbacks")
    task = asyncio.get_running_loop().create_task(service.run(), name="callbacks")

    async def check() -> dict[str, Any]:
        return {"ok": True, "placed": service.placed, "refused": service.failures,
                "last_error": service.last_error}

    app[HEALTH]["callbacks"] = check
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sub.close()


def setup(app: web.Application) -> None:
    rules_of(app[SETTINGS])  # a bad CC_CALLBACK_HOURS stops start-up with its reason
    app.cleanup_ctx.append(callbacks_ctx)
