"""The serving process freezes its heap once started (full collections then skip it) and gives
it back to the collector when the app stops."""

from __future__ import annotations

import gc
from typing import Any

from contactcenter.app import create_app
from contactcenter.keys import PBX
from tests.conftest import app_settings
from tests.integration.supervisor.conftest import FakePbx


async def test_heap_is_frozen_while_the_app_runs(aiohttp_client: Any, migrated_url: str) -> None:
    gc.unfreeze()
    app = create_app(app_settings(migrated_url))
    app[PBX] = FakePbx()
    client = await aiohttp_client(app)
    assert gc.get_freeze_count() > 0
    assert (await client.get("/health")).status in (200, 503)
    await client.close()
    assert gc.get_freeze_count() == 0
