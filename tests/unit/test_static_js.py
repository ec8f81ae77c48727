"""static/*.js are written in one dialect (classic scripts, strict, const/let and arrow functions,
no build step), and the live pages open their websockets through the one helper, live.js."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "contactcenter" / "static"
TEMPLATES = STATIC.parent / "templates"
SCRIPTS = sorted(STATIC.glob("*.js"))


def code_of(path: Path) -> str:
    """The file without its comments and string literals (what the rules are about)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', '""', text)
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)


def test_there_are_scripts() -> None:
    assert {p.name for p in SCRIPTS} >= {"live.js", "wallboard.js", "wallboard-tv.js",
                                         "console.js", "case.js"}


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_one_dialect(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    first_code = next(i for i, line in enumerate(lines) if line and not line.startswith("//"))
    assert lines[first_code] == '"use strict";', f"{path.name}: strict mode on its first line"
    code = code_of(path)
    assert not re.search(r"\bvar\s", code), f"{path.name}: var (const or let)"
    assert not re.search(r"\bfunction\s*\(", code), f"{path.name}: function () {{}} (an arrow)"
    assert not re.search(r"^\s*(import|export)\b", code, re.M), f"{path.name}: a module"
    # one scope per file: an arrow IIFE (live.js hands its one object to window.ccLive)
    body = [line for line in lines[first_code + 1:] if line.strip()]
    assert body[0] in ("(() => {", "window.ccLive = (() => {"), f"{path.name}: {body[0]!r}"
    assert body[-1] == "})();", f"{path.name}: {body[-1]!r}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_only_live_js_opens_a_socket(path: Path) -> None:
    code = code_of(path)
    if path.name == "live.js":
        assert "new WebSocket(" in code
    else:
        assert "WebSocket(" not in code, f"{path.name}: use ccLive.socket"


def test_every_page_of_a_live_script_loads_live_js_first() -> None:
    users = {p.name for p in SCRIPTS if "ccLive." in code_of(p)}
    assert users >= {"wallboard.js", "wallboard-tv.js", "console.js", "case.js"}
    for template in TEMPLATES.rglob("*.html"):
        srcs = re.findall(r'<script src="/static/([\w.-]+)"', template.read_text(encoding="utf-8"))
        for name in users & set(srcs):
            assert "live.js" in srcs and srcs.index("live.js") < srcs.index(name), \
                f"{template.relative_to(TEMPLATES)}: live.js before {name}"
