"""MkDocs hook: the API reference, one page per module.

``docs/api/<package>/index.md`` names every public module of a package with a line
``::: window_cascades.<package>.<module>`` (a new module needs its line there). When the site is
built, each such module gets a page of its own, ``api/<package>/<module>.md``, listed under its
package in the navigation, and the package page shows, where the module lines were, a table of
the modules with the first sentence of each one's docstring. ``docs/api/index.md`` (the public
Python API) and ``docs/api/vocabulary.md`` keep their modules on the page.

Before anything is built, the strict build stops (``PluginError``) when a public module has no
``:::`` line, when a line names a module that does not exist, and when a public function or
class of ``CHECKED_MODULES`` lacks a docstring or an ``Args`` entry for one of its
parameters (``scripts/check_docstrings.py``).
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import tomllib
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
MODULE_LINE = re.compile(r"^::: (window_cascades(?:\.[\w.]+)?)[ \t]*$\n?", re.M)
CROSS_REFERENCE = re.compile(r"\[(`[^`]+`)\]\[[\w.]*\]")


def _package_dirs() -> dict[str, Path]:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = {"window_cascades": ROOT / "window_cascades"}
    dirs |= {name: ROOT / folder for name, folder in mapping["package-dir"].items()}
    return dirs


def module_source(module: str) -> Path | None:
    """The source file of ``module`` (an installed name) in the repository, or None."""
    parts = module.split(".")
    dirs = _package_dirs()
    for cut in range(len(parts), 0, -1):
        base = dirs.get(".".join(parts[:cut]))
        if base is None:
            continue
        rest = parts[cut:]
        for path in (base.joinpath(*rest, "__init__.py"), base.joinpath(*rest).with_suffix(".py")):
            if rest or path.name == "__init__.py":
                if path.is_file():
                    return path
    return None


def public_modules() -> list[str]:
    """``window_cascades``, its own modules (``window_cascades.api``) and every module of its
    packages (the folders pyproject.toml maps under it) whose name, and every parent's, does not
    start with ``_``."""
    found = ["window_cascades"]
    found += [
        f"window_cascades.{p.stem}"
        for p in sorted((ROOT / "window_cascades").glob("*.py"))
        if not p.stem.startswith("_")
    ]
    for package, folder in _package_dirs().items():
        if package == "window_cascades":
            continue
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if any(p.startswith("_") for p in parts):
                continue
            found.append(".".join((package, *parts)))
    return found


def split_pages(docs_dir: Path) -> dict[str, list[str]]:
    """Package page (``api/<package>/index.md``) -> the modules it lists, the package itself
    excluded, in the page's order."""
    pages = {}
    for page in sorted((docs_dir / "api").glob("*/index.md")):
        package = f"window_cascades.{page.parent.name}"
        modules = MODULE_LINE.findall(page.read_text())
        pages[page.relative_to(docs_dir).as_posix()] = [m for m in modules if m != package]
    return pages


def _module_page(index: str, module: str) -> str:
    package = index.split("/")[1]
    short = module.removeprefix(f"window_cascades.{package}.")
    return f"api/{package}/{short}.md"


def first_sentence(module: str) -> str:
    """The first sentence of the module's docstring, as a table cell."""
    path = module_source(module)
    doc = ast.get_docstring(ast.parse(path.read_text())) if path else None
    if not doc:
        return ""
    paragraph = " ".join(doc.split("\n\n")[0].split())
    sentence = re.split(r"(?<=[.!?:])\s+(?=[A-Z`(])", paragraph)[0].rstrip(":")
    sentence = CROSS_REFERENCE.sub(r"\1", sentence)
    return sentence.replace("|", "\\|")


def on_config(config):
    pages = split_pages(Path(config["docs_dir"]))

    def expand(items):
        out = []
        for item in items:
            if isinstance(item, dict):
                (title, value), *_ = item.items()
                if isinstance(value, str) and value in pages:
                    children = [value] + [
                        {_module_page(value, m).split("/")[-1][:-3]: _module_page(value, m)}
                        for m in pages[value]
                    ]
                    out.append({title: children})
                    continue
                if isinstance(value, list):
                    out.append({title: expand(value)})
                    continue
            out.append(item)
        return out

    config["nav"] = expand(config["nav"])
    return config


def on_files(files, config):
    for index, modules in split_pages(Path(config["docs_dir"])).items():
        for module in modules:
            content = (
                f"# `{module}`\n\n"
                f"::: {module}\n"
                "    options:\n"
                "      show_root_heading: false\n"
                "      heading_level: 2\n"
            )
            files.append(File.generated(config, _module_page(index, module), content=content))
    return files


def on_page_markdown(markdown, page, config, files):
    index = page.file.src_uri
    modules = split_pages(Path(config["docs_dir"])).get(index)
    if not modules:
        return markdown
    table = ["| module | what it holds |", "| --- | --- |"]
    for module in modules:
        link = _module_page(index, module).split("/")[-1]
        table.append(f"| [`{module.split('.', 2)[-1]}`]({link}) | {first_sentence(module)} |")
    placed = False

    def replace(m: re.Match) -> str:
        nonlocal placed
        if m.group(1) not in modules:
            return m.group(0)
        if placed:
            return ""
        placed = True
        return "## Modules\n\n" + "\n".join(table) + "\n"

    return MODULE_LINE.sub(replace, markdown)


def _docstring_check():
    spec = importlib.util.spec_from_file_location(
        "check_docstrings", ROOT / "scripts" / "check_docstrings.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_pre_build(config):
    documented = set()
    for page in (Path(config["docs_dir"]) / "api").rglob("*.md"):
        documented |= set(MODULE_LINE.findall(page.read_text()))
    public = public_modules()
    missing = [m for m in public if m not in documented]
    if missing:
        raise PluginError(
            "modules missing from the API reference (add '::: module' to "
            "docs/api/<package>/index.md): " + ", ".join(missing)
        )
    gone = sorted(documented - set(public))
    if gone:
        raise PluginError("docs/api/ documents modules that do not exist: " + ", ".join(gone))
    problems = _docstring_check().problems()
    if problems:
        raise PluginError(
            "docstrings of the checked public API (scripts/check_docstrings.py):\n  "
            + "\n  ".join(problems)
        )
