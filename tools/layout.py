"""The package's floors, read from the source: which module imports which, and each one's purpose.

    python tools/layout.py            print the Layout block
    python tools/layout.py --readme   rewrite it in README.md (between the layout markers)

``tests/test_layout.py`` uses :func:`import_graph` to forbid import cycles and private imports,
and checks that the README's block is what :func:`render` gives, so the drawing cannot go stale.
"""

from __future__ import annotations

import argparse
import ast
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "softmaxreg"
START, END = "<!-- layout:start -->", "<!-- layout:end -->"

# top to bottom: a module imports from its own floor or the floors below it
FLOORS = {
    "application": ["cli", "workflow", "plots", "images", "streaming"],
    "model tools": ["export", "inference", "gradcheck"],
    "estimators": ["estimators", "callbacks"],
    "backends and training": ["distributed", "training", "checkpoint", "objective"],
    "solvers": ["solvers", "proximal", "optim"],
    "files": ["persistence", "preprocessing", "io"],
    "the notes' math": ["network", "layers", "activations", "functional"],
}


def modules() -> dict[str, ast.Module]:
    """Every module of the package by dotted name from its root ("io.npz", "io.__init__")."""
    return {".".join(p.relative_to(PACKAGE).with_suffix("").parts): ast.parse(p.read_text())
            for p in sorted(PACKAGE.rglob("*.py"))}


def _target(module: str, node: ast.ImportFrom) -> str:
    package = module.split(".")[:-1]  # "io.npz" and "io.__init__" live in package "io"
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """(module -> package modules it imports, anywhere in it; private names imported across
    modules).  Imports inside functions count: they make cycles all the same."""
    mods = modules()
    known = lambda name: name if name in mods else f"{name}.__init__"  # noqa: E731
    graph: dict[str, set[str]] = {m: set() for m in mods}
    private = []
    for name, tree in mods.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            target = _target(name, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                graph[name].add(known(sub) if known(sub) in mods else known(target))
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    private.append(f"{name} imports {alias.name} from {target or '.'}")
    return graph, private


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path [a, b, ..., a], or None."""
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


def _purpose(tree: ast.Module) -> str:
    """The docstring's first sentence."""
    doc = " ".join((ast.get_docstring(tree) or "").split("\n\n")[0].split())
    return doc.split(". ")[0].rstrip(".")


def _wrapped(first: str, text: str) -> list[str]:
    return textwrap.wrap(text, 100, initial_indent=f"{first:<22} ", subsequent_indent=" " * 23)


def _short(name: str) -> str:
    return name.removesuffix(".__init__")


def render() -> str:
    """The Layout block: per floor, each module's purpose and what it imports from the package."""
    mods, (graph, _) = modules(), import_graph()
    leaves = {"exceptions", "_version", "_threads", "_array_api", "__init__", "__main__"}
    lines = ["```text"]
    for floor, members in FLOORS.items():
        lines.append(f"── {floor} " + "─" * (96 - len(floor)))
        for member in members:
            names = sorted(m for m in mods if m == member or m.startswith(f"{member}."))
            for name in names:
                shown = f"{name.replace('.', '/')}.py".replace("/__init__.py", "/__init__.py")
                lines += _wrapped(shown, _purpose(mods[name]))
                uses = sorted(_short(m) for m in graph[name] if _short(m) not in leaves
                              and not _short(m).startswith(f"{member}.") and _short(m) != member)
                if uses:
                    lines += _wrapped("", "→ " + ", ".join(uses))
    lines.append(f"── leaves, imported anywhere {'─' * 72}")
    lines.append("exceptions.py, _version.py, "
                 "_threads.py (BLAS thread limits, the evaluation threads)"
                 + (", _array_api.py" if "_array_api" in mods else ""))
    lines.append("```")
    return "\n".join(lines)


def placed(readme: str) -> tuple[int, int]:
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return start + len(START), end


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="rewrite README.md's block")
    args = parser.parse_args(argv)
    block = render()
    if not args.readme:
        print(block)
        return 0
    path = ROOT / "README.md"
    text = path.read_text()
    a, b = placed(text)
    path.write_text(text[:a] + "\n" + block + "\n" + text[b:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
