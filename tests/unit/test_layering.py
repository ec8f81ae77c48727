"""DESIGN rule 1: only telephony/ knows Asterisk; no domain package imports telephony/ (or
panoramisk), not even for typing, so the protocol edge can change without touching them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "contactcenter"
DOMAIN = ("ivr", "agents", "cases", "supervisor", "admin", "web", "agency")


def imported_modules(path: Path) -> list[str]:
    """Every module a file imports, relative imports resolved against the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(parts[: len(parts) - node.level]) if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out += [mod] + [f"{mod}.{a.name}" for a in node.names]
    return out


def test_the_check_sees_a_relative_import() -> None:
    mods = imported_modules(PACKAGE / "ivr" / "plugin.py")
    assert "contactcenter.ivr.engine" in mods and "contactcenter.keys" in mods


@pytest.mark.parametrize("package", DOMAIN)
def test_domain_packages_never_import_telephony(package: str) -> None:
    bad = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for mod in imported_modules(path):
            if mod.startswith(("contactcenter.telephony", "panoramisk")):
                bad.append(f"{path.relative_to(PACKAGE)}: {mod}")
    assert not bad, bad


# The kernel: the app factory and what every feature shares. It wires features by name
# (`app.PLUGINS`), never by import; `web/` is the kernel's HTTP edge (sign-in, the guard).
KERNEL = ("app.py", "keys.py", "config.py", "db.py", "bus.py", "events.py", "clock.py")
FEATURES = ("agents", "cases", "supervisor", "admin", "ivr", "telephony", "queues", "agency")


@pytest.mark.parametrize("module", KERNEL)
def test_the_kernel_imports_no_feature(module: str) -> None:
    feature = tuple(f"contactcenter.{name}" for name in FEATURES)
    bad = [mod for mod in imported_modules(PACKAGE / module) if mod.startswith(feature)]
    assert not bad, f"{module} imports {bad}: a feature's keys and wiring live in its folder"

