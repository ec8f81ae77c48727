"""How the browser tests start Debian's chromium (never a downloaded browser)."""

from __future__ import annotations

from typing import Any

from tests.conftest import real_clock_env

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


async def launch(pw: Any, **options: Any) -> Any:
    """`pw`: an async Playwright; returns the launched Browser. Under `faketime ... make test`
    the browser keeps the real clock (pages take their times from the server anyway)."""
    return await pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS,
                                    env=real_clock_env(), **options)
