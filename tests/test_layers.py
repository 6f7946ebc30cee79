"""The import graph of the library, read from the source: no circle between modules (imports
inside functions count too) and no import from a higher layer (CONTRIBUTING.md, "Layers")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# bottom to top; a package may import its own layer's package and the layers below it, never a
# package beside it on the same floor nor one above (CONTRIBUTING.md, "Layers")
LAYERS = [
    ("vocabulary", "uncertainty"),
    ("cascade",),
    ("artifacts", "datamodules"),
    ("lightning_modules",),
    ("commands",),
]
LAYER = {pkg: level for level, pkgs in enumerate(LAYERS) for pkg in pkgs}
PROJECT = {*LAYER, "scripts", "benchmarks", "tests"}  # the last three are never imported


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_modules() -> dict[str, Path]:
    return {
        _module_name(p): p
        for pkg in LAYER
        for p in sorted((ROOT / pkg).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its file (a package's
    ``__init__`` is the package's name; ``from a import b`` is ``a.b`` when that is a module)."""
    modules = library_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name}: relative import (write the full module path)"
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    targets.add(full if full in modules else node.module)
        graph[name] = {t for t in targets if t.split(".")[0] in PROJECT and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_layer_order_covers_every_library_package():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == set(LAYER), "a new top-level package needs its place in LAYERS"


def test_no_module_imports_upward_or_sideways():
    wrong = []
    for module, targets in import_graph().items():
        own = module.split(".")[0]
        for target in targets:
            top = target.split(".")[0]
            if top != own and (top not in LAYER or LAYER[top] >= LAYER[own]):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_no_import_circle_between_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checks_find_a_circle_and_an_upward_import():
    """The checker itself: a planted circle and an upward import are found."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert LAYER["cascade"] < LAYER["artifacts"] < LAYER["lightning_modules"] < LAYER["commands"]
