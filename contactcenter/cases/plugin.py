"""Wires the case store: its services, Open311, the status page, API keys, photos and the
citizen web form."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from contactcenter.cases.keys import API_KEYS, CASE_STORE, ESTIMATES, MEDIA_STORE, OPEN311_CORS

from ..keys import BUS, CLOCK, SESSIONS, SETTINGS
from . import webform
from .estimates import Estimates
from .http import OPEN311_CHANGESET, add_routes, parse_cors_origins
from .media import MediaStore
from .store import ApiKeys, CaseStore

log = logging.getLogger(__name__)


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    # runs after the database and bus contexts, which create SESSIONS and BUS
    # discovery's changeset: the endpoints change only when the server (re)starts
    app[OPEN311_CHANGESET] = app[CLOCK].now().replace(microsecond=0)
    app[CASE_STORE] = CaseStore(app[SESSIONS], app[BUS], clock=app[CLOCK].now,
                                timezone=app[SETTINGS].timezone)
    app[API_KEYS] = ApiKeys(app[SESSIONS], app[CLOCK].now)
    app[MEDIA_STORE] = MediaStore(app[SESSIONS])
    app[ESTIMATES] = Estimates(app[SESSIONS], app[CLOCK].now,
                               min_closed=app[SETTINGS].estimate_min_closed)
    yield


def setup(app: web.Application) -> None:
    app[OPEN311_CORS] = parse_cors_origins(app[SETTINGS].open311_cors_origins)
    app.cleanup_ctx.append(store_ctx)
    add_routes(app)
    webform.setup(app)
