"""DESIGN rule 1: only telephony/ knows Asterisk; no domain package imports telephony/ (or
panoramisk), not even for typing, so the protocol edge can change without touching them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "contactcenter"
DOMAIN = ("ivr", "agents", "cases", "supervisor", "admin", "web", "notify", "prompts", "agency")


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
# schema.py: the declarative Base every models module shares; audit.py: the audit table and
# its writer, which every feature calls.
KERNEL = ("app.py", "keys.py", "config.py", "db.py", "bus.py", "events.py", "clock.py",
          "schema.py", "audit.py")
FEATURES = ("agents", "cases", "supervisor", "admin", "ivr", "telephony", "queues", "notify",
            "prompts", "agency")


@pytest.mark.parametrize("module", KERNEL)
def test_the_kernel_imports_no_feature(module: str) -> None:
    feature = tuple(f"contactcenter.{name}" for name in FEATURES)
    bad = [mod for mod in imported_modules(PACKAGE / module) if mod.startswith(feature)]
    assert not bad, f"{module} imports {bad}: a feature's keys and wiring live in its folder"



# Issue 16: one home per table, in the feature that writes it. cases/models.py holds the case
# tables, plus these, which the case writer (cases/writer.py) and the case store write.
CASES_ALSO = {
    "citizens": "a case's citizen, matched by cases/citizens.py",
    "calls": "written by the case writer with the citizen and case links",
    "call_legs": "the call's queue visits, written with the call",
    "resolution_codes": "how a case was closed; the case store checks it on close",
}


def declared_tables(path: Path) -> list[str]:
    """The __tablename__ of every class a file declares on the shared `Base`."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and b.id == "Base" for b in node.bases):
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant)
                        and any(isinstance(t, ast.Name) and t.id == "__tablename__"
                                for t in stmt.targets)):
                    out.append(str(stmt.value.value))
    return out


def test_the_table_check_sees_a_table() -> None:
    assert "case_notes" in declared_tables(PACKAGE / "cases" / "models.py")
    assert declared_tables(PACKAGE / "web" / "models.py") == ["users", "web_sessions", "api_keys"]


def test_cases_models_holds_only_the_cases_tables() -> None:
    tables = declared_tables(PACKAGE / "cases" / "models.py")
    stray = [t for t in tables if not t.startswith("case") and t not in CASES_ALSO]
    assert not stray, f"{stray}: declare them in the models.py of the feature that writes them"


def test_every_table_module_is_in_the_schema_registry() -> None:
    """Alembic's env reads the registry's metadata: a models module it does not import is a
    table autogenerate would want to drop."""
    from contactcenter import schema_registry

    registered = {m.__name__ for m in schema_registry.MODEL_MODULES}
    homes: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tables = declared_tables(path)
        if tables:
            homes[".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)] = tables
    assert len(homes) == len(registered) and set(homes) == registered, (set(homes), registered)
    misplaced = [m for m in homes if not m.endswith(".models") and m != "contactcenter.audit"]
    assert not misplaced, f"{misplaced}: a feature's tables live in its models.py"
    everywhere = [t for tables in homes.values() for t in tables]
    assert len(everywhere) == len(set(everywhere)), "a table declared twice"
    assert set(everywhere) == set(schema_registry.metadata.tables)
