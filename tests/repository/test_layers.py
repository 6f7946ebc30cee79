"""The import graph of the library, read from the source: every import of the project goes
through its one name, ``window_cascades``; no circle between modules (imports inside functions
count too) and no import from a higher layer (CONTRIBUTING.md, "Layers")."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

NAME = "window_cascades"  # the one import name: window_cascades.<package>.<module>

# bottom to top; a package may import its own layer's package and the layers below it, never a
# package beside it on the same layer nor one above (CONTRIBUTING.md, "Layers"). The top one is
# the public API, the modules of window_cascades/ itself.
LAYERS = [
    ("vocabulary", "uncertainty"),
    ("cascade",),
    ("artifacts", "datamodules"),
    ("lightning_modules",),
    ("commands",),
    (NAME,),
]
LAYER = {pkg: level for level, pkgs in enumerate(LAYERS) for pkg in pkgs}
# folders of the repository that hold Python but are no package of the library
NOT_LIBRARY = {"tests", "scripts", "benchmarks", "docs", "configs"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(parts if parts[0] == NAME else (NAME, *parts))


def _package(module: str) -> str | None:
    """The layer package of a project module (``window_cascades.cascade.x`` -> ``cascade``;
    ``window_cascades`` and ``window_cascades.__main__`` -> ``window_cascades``)."""
    parts = module.split(".")
    if parts[0] != NAME:
        return None
    return parts[1] if len(parts) > 1 and parts[1] in LAYER else NAME


def library_sources() -> dict[str, str]:
    """Module name -> source text, for every module the wheel installs."""
    return {
        _module_name(p): p.read_text()
        for pkg in LAYER
        for p in sorted((ROOT / pkg).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def imported_modules(source: str, where: str, modules: set[str]) -> set[str]:
    """The modules ``source`` imports anywhere (``from a import b`` is ``a.b`` when that is a
    module of ``modules``)."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{where}: relative import (write the full module path)"
            for a in node.names:
                full = f"{node.module}.{a.name}"
                targets.add(full if full in modules else node.module)
    return targets


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its file (a package's
    ``__init__`` is the package's name)."""
    modules = set(sources)
    return {
        name: {
            t
            for t in imported_modules(text, name, modules)
            if t.split(".")[0] == NAME and t != name
        }
        for name, text in sources.items()
    }


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import of ``graph`` against the layer order, as ``"a imports b"``."""
    wrong = []
    for module, targets in graph.items():
        own = _package(module)
        for target in targets:
            top = _package(target)
            if top != own and (top is None or LAYER[top] >= LAYER[own]):
                wrong.append(f"{module} imports {target}")
    return sorted(wrong)


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
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - NOT_LIBRARY
    assert packages == set(LAYER), "a new top-level package needs its place in LAYERS"


def test_no_module_imports_upward_or_sideways():
    wrong = layer_violations(import_graph(library_sources()))
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_circle_between_modules():
    cycle = find_cycle(import_graph(library_sources()))
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_every_import_of_the_project_goes_through_its_one_name():
    """No file of the repository imports a package by its folder's name (``import cascade``,
    ``from datamodules import ...``): installed, only ``window_cascades`` exists, and in a user's
    folder those names are the user's own packages."""
    folders = {pkg for pkg in LAYER if pkg != NAME} | {"configs"}
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        if {".venv", "site", "build", "__pycache__"} & set(path.parts):
            continue
        for target in imported_modules(path.read_text(), str(path), set()):
            if target.split(".")[0] in folders:
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_checks_find_a_circle_and_an_upward_import():
    """The checker itself, on the real graph: an upward import planted into a module of
    ``cascade`` (from ``commands``) and one into the maths (from ``cascade``) are refused, and
    a planted circle is found."""
    sources = library_sources()
    assert not layer_violations(import_graph(sources))
    planted = {
        **sources,
        f"{NAME}.cascade.planted": "from window_cascades.commands.cli import MemberCLI\n",
        f"{NAME}.uncertainty.planted": "import window_cascades.cascade.engine\n",
    }
    assert layer_violations(import_graph(planted)) == [
        f"{NAME}.cascade.planted imports {NAME}.commands.cli",
        f"{NAME}.uncertainty.planted imports {NAME}.cascade.engine",
    ]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert LAYER["cascade"] < LAYER["artifacts"] < LAYER["lightning_modules"] < LAYER["commands"]
