"""One rule for writing a figure (issue 16): the Jinja filters (web/formats.py, as the app
registers them) and ccLive.fmt (static/live.js, run in chromium) print the same text for the same
values, and that text is the documented one."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import pytest
from playwright.async_api import async_playwright

from contactcenter.app import create_app
from tests.conftest import app_settings
from tests.e2e.browser import launch

pytestmark = [pytest.mark.e2e]

LIVE_JS = Path(__file__).resolve().parents[2] / "contactcenter" / "static" / "live.js"
# (filter, digits or None, value, text): what a page shows
SPEC: list[tuple[str, int | None, Any, str]] = [
    ("count", None, None, "—"), ("count", None, 0, "0"), ("count", None, 7, "7"),
    ("count", None, 2.5, "3"), ("count", None, 12345, "12345"),
    ("percent", None, 0.5, "50.0%"), ("percent", None, 1, "100.0%"),
    ("percent", None, 0.3333, "33.3%"), ("percent", None, 0.0, "0.0%"),
    ("percent", None, None, "—"), ("percent", 0, 0.5, "50%"), ("percent", 0, 0.995, "100%"),
    ("seconds", None, 14.5, "14.5 s"), ("seconds", None, 121.75, "121.8 s"),
    # an exact half: Python's "%.1f" gave 0.2, JavaScript's toFixed(1) 0.3; the rule is half up
    ("seconds", None, 0.25, "0.3 s"), ("seconds", 0, 14.5, "15 s"), ("seconds", None, None, "—"),
    # 1.45 is stored as 1.4499999999999999556: toFixed(1) and "%.1f" write 1.4, a reader 1.5
    ("seconds", None, 1.45, "1.5 s"), ("percent", None, 0.0145, "1.5%"),
    ("duration", None, 0, "0:00"), ("duration", None, 59.9, "0:59"), ("duration", None, 61, "1:01"),
    ("duration", None, 600, "10:00"), ("duration", None, 3600, "1:00:00"),
    ("duration", None, 3723.9, "1:02:03"), ("duration", None, -5, "0:00"),
    ("duration", None, None, "—"), ("duration", None, math.nan, "—"),
    ("percent", None, math.inf, "—"),
]
CALLS = [("count", None), ("percent", None), ("percent", 0), ("seconds", None), ("seconds", 0),
         ("duration", None)]


def values() -> list[Any]:
    """Edges (halves, nines, negatives, missing ones) and many plain figures."""
    rnd = random.Random(16)
    edge: list[Any] = [None, math.nan, math.inf, -math.inf, 0, -0.0, 1, -1, 0.5, 0.05, 0.005,
                       0.0005, 0.25, 0.125, 0.995, 0.9995, 1 / 3, 2 / 3, 59.5, 59.999, 60,
                       3599.5, 3600, 86399.99, 1e6, -0.04, -0.05, 12.345, 14.45, 0.1 + 0.2]
    rates = [rnd.random() for _ in range(300)]
    secs = [round(rnd.uniform(0, 5000), rnd.choice([0, 1, 2, 3])) for _ in range(300)]
    thirds = [n / d for d in (3, 6, 7, 8, 16, 40, 400) for n in range(0, d + 1)]
    # every boundary of a tenth: rates of n / 2000 (x.x5 %) and times of n / 100 (x.x5 s),
    # where a rule that rounds the decimal literal (toFixed, "%.1f") and ours part ways
    halves = [n / 2000 for n in range(2001)] + [n / 100 for n in range(0, 2000, 5)]
    return edge + rates + secs + thirds + halves


def jinja_rows(vals: list[Any]) -> list[list[str]]:
    """Through the app's own Jinja environment: the filters as the templates see them."""
    app = create_app(app_settings("postgresql+asyncpg://postgres@127.0.0.1:5432/unused"))
    env = aiohttp_jinja2.get_env(app)
    cells = "|".join(f"{{{{ v|fmt_{name}{'' if d is None else f'({d})'} }}}}" for name, d in CALLS)
    tpl = env.from_string("{% for v in vals %}" + cells + "\n{% endfor %}")
    return [line.split("|") for line in tpl.render(vals=vals).splitlines()]


async def js_rows(vals: list[Any]) -> list[list[str]]:
    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await browser.new_page()
            await page.add_script_tag(path=str(LIVE_JS))
            return await page.evaluate(
                """([vals, calls]) => vals.map((v) => calls.map(([name, d]) =>
                     d === null ? ccLive.fmt[name](v) : ccLive.fmt[name](v, d)))""",
                [vals, [list(c) for c in CALLS]])
        finally:
            await browser.close()


async def test_jinja_and_javascript_write_figures_alike() -> None:
    vals = values()
    spec_vals = [v for _, _, v, _ in SPEC]
    py = jinja_rows(vals + spec_vals)
    js = await js_rows(vals + spec_vals)
    assert len(py) == len(js) == len(vals) + len(SPEC)
    differ = [(v, p, j) for v, p, j in zip(vals + spec_vals, py, js, strict=True) if p != j]
    assert differ == [], differ[:5]
    # and what both write is the rule
    for (name, digits, value, text), row in zip(SPEC, py[len(vals):], strict=True):
        assert row[CALLS.index((name, digits))] == text, (name, digits, value)
