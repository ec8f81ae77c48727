"""The call-back feature's app keys."""

from __future__ import annotations

from aiohttp import web

from .service import Callbacks, Speaker

CALLBACKS = web.AppKey("callbacks", Callbacks)
# what turns a sentence into a sound Asterisk can play (the IVR's voice); a test may set its own
CALLBACK_SPEAKER: web.AppKey[Speaker] = web.AppKey("callback_speaker")
