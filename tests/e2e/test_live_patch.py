"""ccLive.patch (static/live.js), the live pages' renderer, in chromium: it reaches the described
DOM from any start, keeps the nodes it can (by key, else by place and tag), and puts text in as
text."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from tests.e2e.browser import launch

pytestmark = [pytest.mark.e2e]

LIVE_JS = Path(__file__).resolve().parents[2] / "contactcenter" / "static" / "live.js"

CHECKS = """() => {
  const { h, patch } = ccLive;
  const root = document.createElement("div");
  document.body.appendChild(root);
  const row = (k, text, extra) => h("p", { key: k, class: "r-" + k, ...(extra || {}) }, text);
  const out = {};

  patch(root, [row("a", "A"), row("b", "B"), row("c", "C", { "data-x": "1" })]);
  const [a, b, c] = root.children;
  out.first = root.innerHTML;

  // reordered, one gone, one new, an attribute dropped: the kept nodes are the same objects
  patch(root, [row("c", "C2"), row("a", "A"), row("d", "D")]);
  out.second = root.innerHTML;
  out.kept = root.children[0] === c && root.children[1] === a && !b.isConnected;

  // a node changed by someone else (a ticker) is put right on the next patch
  a.textContent = "changed";
  a.setAttribute("hidden", "");
  patch(root, [row("c", "C2"), row("a", "A"), row("d", "D")]);
  out.third = root.innerHTML;
  out.stillSame = root.children[1] === a;

  // unkeyed children: matched by place and tag; text is text
  patch(root, [h("span", null, "<b>x</b>"), "tail", h("em", { title: 'q"' }, 5)]);
  out.fourth = root.innerHTML;
  out.bold = root.querySelectorAll("b").length;
  return out;
}"""


async def test_patch_reaches_the_description_and_keeps_nodes() -> None:
    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await browser.new_page()
            await page.add_script_tag(path=str(LIVE_JS))
            out = await page.evaluate(CHECKS)
        finally:
            await browser.close()
    assert out["first"] == ('<p class="r-a">A</p><p class="r-b">B</p>'
                            '<p class="r-c" data-x="1">C</p>')
    assert out["second"] == '<p class="r-c">C2</p><p class="r-a">A</p><p class="r-d">D</p>'
    assert out["kept"] is True
    assert out["third"] == out["second"] and out["stillSame"] is True
    assert out["fourth"] == '<span>&lt;b&gt;x&lt;/b&gt;</span>tail<em title="q&quot;">5</em>'
    assert out["bold"] == 0
