"""The package's floors: no import cycle (imports inside functions count), no module importing
another module's private names, no module but the estimators' own touching an estimator's
private attributes, and the README's Layout block as ``tools/layout.py`` draws it from the
source.  Read with ``ast``, so a lazy import cannot hide a cycle."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import layout  # noqa: E402


def test_no_import_cycle():
    graph, _ = layout.import_graph()
    cycle = layout.find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_no_private_names_imported_across_modules():
    _, private = layout.import_graph()
    assert private == []


def _estimator_privates() -> set[str]:
    """Private attributes and methods that the estimators define on themselves."""
    tree = ast.parse((layout.PACKAGE / "estimators.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("_") \
                and not node.name.startswith("__"):
            names.add(node.name)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "self" and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            names.add(node.attr)
    return names


def test_only_the_estimators_touch_their_private_attributes():
    privates = _estimator_privates()
    assert {"_opt", "_seed", "_set_network", "_penalties"} <= privates  # the scan sees them
    offenders = []
    for name, tree in layout.modules().items():
        if name == "estimators":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in privates \
                    and not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                offenders.append(f"{name}:{node.lineno} .{node.attr}")
    assert offenders == []


def test_every_module_sits_on_a_floor_and_the_readme_draws_them():
    placed = {m for members in layout.FLOORS.values() for m in members}
    leaves = {"exceptions", "_version", "_threads", "_array_api", "__init__", "__main__"}
    unplaced = {m.split(".")[0] for m in layout.modules()} - placed - leaves
    assert unplaced == set(), "add these modules to tools/layout.py FLOORS"
    readme = (ROOT / "README.md").read_text()
    a, b = layout.placed(readme)
    assert readme[a:b].strip() == layout.render(), "run: python tools/layout.py --readme"
