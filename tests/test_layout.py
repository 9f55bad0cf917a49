"""The package's floors: no import cycle (imports inside functions count), no module importing
another module's private names, and no module but the estimators' own touching an estimator's
private attributes.  Read from the source with ``ast``, so a lazy import cannot hide a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "softmaxreg"


def _modules() -> dict[str, ast.Module]:
    return {
        ".".join(path.relative_to(PACKAGE).with_suffix("").parts): ast.parse(path.read_text())
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The module (dotted from the package root, "" for the root) a relative import names."""
    package = module.split(".")[:-1]  # "io.npz" and "io.__init__" live in package "io"
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """(module -> package modules it imports, private names imported across modules)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    private = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            target = _resolve(name, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                if sub in modules or f"{sub}.__init__" in modules:
                    graph[name].add(sub if sub in modules else f"{sub}.__init__")
                elif target in modules or f"{target}.__init__" in modules:
                    graph[name].add(target if target in modules else f"{target}.__init__")
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    private.append(f"{name} imports {alias.name} from {target or '.'}")
    return graph, private


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle():
    graph, _ = import_graph()
    # the package's __init__ imports the floors it re-exports; a floor importing it back is a cycle
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_no_private_names_imported_across_modules():
    _, private = import_graph()
    assert private == []


def _estimator_privates() -> set[str]:
    """Private attributes and methods that the estimators define on themselves."""
    tree = ast.parse((PACKAGE / "estimators.py").read_text())
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
    for name, tree in _modules().items():
        if name == "estimators":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in privates \
                    and not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                offenders.append(f"{name}:{node.lineno} .{node.attr}")
    assert offenders == []
