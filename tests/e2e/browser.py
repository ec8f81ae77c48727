"""How the browser tests start Debian's chromium (never a downloaded browser)."""

from __future__ import annotations

import os
from typing import Any

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# libfaketime (`faketime ... make test`, which moves the product's clock) hangs chromium: the
# browser keeps the real clock; pages take times from the server anyway.
_NOT_FOR_THE_BROWSER = ("LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC")


def browser_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _NOT_FOR_THE_BROWSER}


async def launch(pw: Any, **options: Any) -> Any:
    """`pw`: an async Playwright; returns the launched Browser."""
    return await pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS,
                                    env=browser_env(), **options)
