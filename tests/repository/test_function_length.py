"""No library function longer than ``MAX_LINES`` lines unless ``LONG_FUNCTIONS`` lists
it with the reason. A module may be as long as its family needs (one module per family, helpers
in a neutral module); a long function is where a reader loses the thread. Counted from the
``def`` line to the last line, the docstring left out (documentation never counts against a
function); nested functions count in the function that holds them."""

from __future__ import annotations

import ast

import tomllib

from tests.conftest import ROOT

MAX_LINES = 60
# "package.module.function" (methods: "package.module.Class.method") -> why it stays long
LONG_FUNCTIONS = {
    "window_cascades.commands.offline_options.base_parser": (
        "one add_argument per option of the offline evaluator, in --help order: a flat list "
        "with nothing to factor out"
    ),
    "window_cascades.commands.slurm_submit.build_parser": (
        "one add_argument per option of `submit`, in --help order: a flat list with nothing to "
        "factor out"
    ),
    "window_cascades.commands.serve.build_parser": (
        "one add_argument per option of `serve`, in --help order: a flat list with nothing to "
        "factor out"
    ),
}


def _library_files() -> dict[str, object]:
    """Import name -> source path of every library module (pyproject's package-dir)."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"window_cascades": "window_cascades", **setuptools["package-dir"]}
    found = {}
    for package, folder in folders.items():
        if package != "window_cascades" and package.count(".") != 1:
            continue  # a sub-package lies inside its package's folder
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            found[".".join((package, *parts))] = path
    return found


def code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from ``def`` to the function's end, its docstring left out."""
    total = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str):
            total -= first.end_lineno - first.lineno + 1
    return total


def function_lengths() -> dict[str, int]:
    """Qualified name -> ``code_lines`` of every top-level function and method."""
    lengths = {}
    for module, path in _library_files().items():
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            methods = node.body if isinstance(node, ast.ClassDef) else [node]
            prefix = f"{module}.{node.name}." if isinstance(node, ast.ClassDef) else f"{module}."
            for item in methods:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lengths[prefix + item.name] = code_lines(item)
    return lengths


def test_no_library_function_is_longer_than_the_limit_without_a_reason():
    lengths = function_lengths()
    assert len(lengths) > 500  # the scan saw the library
    long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    unlisted = {name: n for name, n in long.items() if name not in LONG_FUNCTIONS}
    assert not unlisted, (
        f"functions over {MAX_LINES} lines (split them, or list them in LONG_FUNCTIONS with "
        f"the reason): {unlisted}"
    )
    stale = sorted(set(LONG_FUNCTIONS) - set(long))
    assert not stale, f"LONG_FUNCTIONS lists functions no longer over the limit: {stale}"


def test_the_count_leaves_out_the_docstring_only():
    source = 'def f(x):\n    """Doc\n    string."""\n    y = x\n    return y\n'
    assert code_lines(ast.parse(source).body[0]) == 3
    assert code_lines(ast.parse("def g():\n    return 1\n").body[0]) == 2
