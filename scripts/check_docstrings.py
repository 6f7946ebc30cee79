"""Check that the public API's docstrings document every parameter, one entry each.

    python scripts/check_docstrings.py            # the checked modules; exit 1 on a problem
    python scripts/check_docstrings.py --all      # every public module (a report; exit 0)

For every public function, method and class (name not starting with ``_``) of the modules in
``CHECKED_MODULES`` and the packages in ``CHECKED_PACKAGES``, the docstring must exist
and its Google-style ``Args:`` section must have exactly one entry per parameter of the
signature (``self``/``cls``, ``*args`` and ``**kwargs`` aside; a class's ``__init__`` parameters
in the class's or ``__init__``'s docstring; a dataclass's fields under ``Args:`` or
``Attributes:``, or as attribute docstrings). A row such as ``id_conf: ...; ood_conf: ...``
documents ``id_conf`` only, so ``ood_conf`` is reported. The source is read, not imported (no
torch), so the check takes a fraction of a second. The documentation build runs it
(``docs/hooks/api_pages.py``) and so does the test suite (``tests/repository/test_docs.py``).

The scope: the public Python API and the modules a user imports beside it: the fitted cascade
and its decisions, the policy and metric registries with what a plugin policy or metric is
built from, the built-in policies (the examples a plugin policy follows), the dataset roles,
the cached-logits files, every metric's definition in ``uncertainty``, the classes a Lightning
config names (the member and cascade modules, the calibration callback, the torchmetrics
wrappers), and the whole ``datamodules`` package (the data contract a datamodule of one's own
implements, the image sources a config's data entry names, the shifted sets' corruptions, the
samplers). The other modules behind the commands (the rest of the Lightning modules, results
files, command plumbing) are not in it yet: ``--all`` lists what they lack.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]

CHECKED_MODULES = (
    "window_cascades",
    "window_cascades.api",
    "window_cascades.vocabulary.roles",
    "window_cascades.cascade.builtin_policies",
    "window_cascades.cascade.fitted",
    "window_cascades.cascade.decisions",
    "window_cascades.cascade.policies",
    "window_cascades.cascade.policy_parameters",
    "window_cascades.cascade.policy_registry",
    "window_cascades.cascade.metric_registry",
    "window_cascades.artifacts.cached_logits",
    "window_cascades.lightning_modules.member",
    "window_cascades.lightning_modules.cascade_module",
    "window_cascades.lightning_modules.callbacks.cascade_calibration",
    "window_cascades.lightning_modules.metric_wrappers",
    "window_cascades.uncertainty.definitions",
    "window_cascades.uncertainty.failure_detection",
    "window_cascades.uncertainty.guarantees",
    "window_cascades.uncertainty.names",
    "window_cascades.uncertainty.ood_detection",
    "window_cascades.uncertainty.paper_definitions",
    "window_cascades.uncertainty.probability_metrics",
    "window_cascades.uncertainty.scod",
    "window_cascades.uncertainty.scores",
    "window_cascades.uncertainty.selective",
    "window_cascades.uncertainty.targets",
    "window_cascades.uncertainty.temperature",
    "window_cascades.uncertainty.weighted_curve",
)
"""The modules whose public functions and classes must document every parameter."""

CHECKED_PACKAGES = ("window_cascades.datamodules",)
"""The packages whose every public module is checked (a new module in them is checked too)."""

ARGS_SECTIONS = ("Args", "Arguments", "Parameters")
SECTION = re.compile(r"^(\s*)([A-Z][A-Za-z ]*):\s*$")
ENTRY = re.compile(r"\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:")
SKIPPED_PARAMETERS = ("self", "cls")


def module_files() -> dict[str, Path]:
    """Every public module, by installed name -> its source file in the repository."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {"window_cascades": ROOT / "window_cascades" / "__init__.py"}
    for path in sorted((ROOT / "window_cascades").glob("*.py")):
        if not path.stem.startswith("_"):
            found[f"window_cascades.{path.stem}"] = path
    for package, folder in setuptools["package-dir"].items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if not any(p.startswith("_") for p in parts):
                found[".".join((package, *parts))] = path
    return found


def section_entries(docstring: str | None, sections: tuple[str, ...] = ARGS_SECTIONS) -> list:
    """The names of the entries of the docstring's ``sections`` (Google style), in order,
    repeated as often as they appear."""
    if not docstring:
        return []
    lines = docstring.expandtabs().splitlines()
    names: list[str] = []
    i = 0
    while i < len(lines):
        header = SECTION.match(lines[i])
        i += 1
        if not header or header.group(2) not in sections:
            continue
        base, indent = len(header.group(1)), None
        while i < len(lines):
            line = lines[i]
            if line.strip():
                current = len(line) - len(line.lstrip())
                if current <= base:
                    break
                indent = current if indent is None else indent
                entry = ENTRY.match(line)
                if current == indent and entry:
                    names.append(entry.group(1))
            i += 1
    return names


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = function.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    return [n for n in names if n not in SKIPPED_PARAMETERS]


def _decorated(node, *names: str) -> bool:
    for d in node.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
        if name in names:
            return True
    return False


def _compare(where: str, docstring: str | None, wanted: list[str], entries: list[str]) -> list:
    if docstring is None:
        return [f"{where}: no docstring"]
    missing = [p for p in wanted if p not in entries]
    twice = sorted({e for e in entries if entries.count(e) > 1})
    out = []
    if missing:
        out.append(f"{where}: no Args entry for {', '.join(missing)}")
    if twice:
        out.append(f"{where}: more than one entry for {', '.join(twice)}")
    return out


def _function(node, where: str) -> list[str]:
    if _decorated(node, "overload", "property", "setter", "cached_property"):
        return []
    doc = ast.get_docstring(node)
    return _compare(where, doc, _parameters(node), section_entries(doc))


def _dataclass_fields(node: ast.ClassDef) -> tuple[list[str], set[str]]:
    fields, documented = [], set()
    for k, item in enumerate(node.body):
        if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
            continue
        annotation = ast.unparse(item.annotation)
        if annotation.startswith(("ClassVar", "typing.ClassVar")):
            continue
        fields.append(item.target.id)
        after = node.body[k + 1] if k + 1 < len(node.body) else None
        if isinstance(after, ast.Expr) and isinstance(getattr(after, "value", None), ast.Constant):
            documented.add(item.target.id)
    return fields, documented


def _class(node: ast.ClassDef, where: str) -> list[str]:
    doc = ast.get_docstring(node)
    init = next(
        (n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None
    )
    if init is not None:
        entries = section_entries(doc) + section_entries(ast.get_docstring(init))
        wanted = [p for p in _parameters(init) if p not in ("args", "kwargs")]
        problems = _compare(where, doc, wanted, entries)
    elif _decorated(node, "dataclass"):
        fields, documented = _dataclass_fields(node)
        entries = section_entries(doc, (*ARGS_SECTIONS, "Attributes"))
        problems = _compare(where, doc, [f for f in fields if f not in documented], entries)
    else:
        problems = [] if doc is not None else [f"{where}: no docstring"]
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and not item.name.startswith(
            "_"
        ):
            problems += _function(item, f"{where}.{item.name}")
    return problems


def module_problems(name: str, path: Path) -> list[str]:
    """What the public functions and classes of one module lack."""
    problems = []
    for node in ast.parse(path.read_text()).body:
        if node.__class__.__name__ in ("FunctionDef", "AsyncFunctionDef", "ClassDef"):
            if node.name.startswith("_"):
                continue
            where = f"{name}.{node.name}"
            if isinstance(node, ast.ClassDef):
                problems += _class(node, where)
            else:
                problems += _function(node, where)
    return problems


def checked_modules() -> tuple[str, ...]:
    """[`CHECKED_MODULES`][] and every public module of [`CHECKED_PACKAGES`][], sorted."""
    inside = [
        m for m in module_files() for p in CHECKED_PACKAGES if m == p or m.startswith(p + ".")
    ]
    return tuple(sorted({*CHECKED_MODULES, *inside}))


def problems(modules: tuple[str, ...] | None = None) -> list[str]:
    """Every problem of ``modules`` (installed names; None: [`checked_modules`][]), one line
    each."""
    modules = checked_modules() if modules is None else modules
    files = module_files()
    unknown = [m for m in modules if m not in files]
    if unknown:
        return [f"{m}: not a public module (CHECKED_MODULES)" for m in unknown]
    return [p for m in modules for p in module_problems(m, files[m])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--all", action="store_true", help="report every public module (exit 0), by module"
    )
    args = parser.parse_args(argv)
    checked = checked_modules()
    if args.all:
        files = module_files()
        counts = {m: module_problems(m, p) for m, p in files.items()}
        for module, found in sorted(counts.items(), key=lambda kv: -len(kv[1])):
            if found:
                mark = "checked" if module in checked else "not checked"
                print(f"{len(found):4d}  {module} ({mark})")
        print(f"{sum(map(len, counts.values()))} problems in {len(files)} public modules")
        return 0
    found = problems()
    for line in found:
        print(line)
    print(f"{len(found)} problems in {len(checked)} checked modules", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
