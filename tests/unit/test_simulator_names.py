"""The simulator never reuses a name of the product's: `Pbx`, `QueueConfig`, `AmiClient`,
`Bridge`… each mean one thing in a grep, an import or a traceback (its stand-ins are `Sim*`)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "contactcenter"
SIMULATOR = PACKAGE / "telephony" / "simulator"


def defined(paths: list[Path]) -> dict[str, Path]:
    """Every class name defined in `paths`, with a file that defines it."""
    out: dict[str, Path] = {}
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                out.setdefault(node.name, path)
    return out


def test_the_check_sees_the_simulators_classes() -> None:
    assert "SimPbx" in defined(sorted(SIMULATOR.rglob("*.py")))


def test_no_simulator_class_has_a_product_class_name() -> None:
    sim = defined(sorted(SIMULATOR.rglob("*.py")))
    product = defined([p for p in sorted(PACKAGE.rglob("*.py"))
                       if SIMULATOR not in p.parents and "migrations" not in p.parts])
    clashes = {name: (str(sim[name].relative_to(PACKAGE)), str(product[name].relative_to(PACKAGE)))
               for name in sim.keys() & product.keys()}
    assert not clashes, clashes
