"""MkDocs hook: the package as it is installed, for the API reference.

The repository keeps one folder per package at its top (``cascade/``, ``datamodules/``, ...),
which ``pyproject.toml`` installs under one import name, ``window_cascades`` (its
``[tool.setuptools.package-dir]``). The API reference reads the source files without importing
them, so it needs that installed layout on disk: this hook lays it out as symbolic links under
``build/docs-layout/window_cascades/`` (ignored by git) when MkDocs loads this hook, before any
plugin is configured (mkdocstrings drops a search path that does not exist yet), and
``mkdocs.yml`` points mkdocstrings there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
LAYOUT = ROOT / "build" / "docs-layout"


def lay_out(target: Path = LAYOUT) -> Path:
    """Symbolic links under ``target`` that give every module its installed path; returns
    ``target``."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    shutil.rmtree(target, ignore_errors=True)
    top = target / "window_cascades"
    top.mkdir(parents=True)
    for path in (ROOT / "window_cascades").glob("*.py"):
        (top / path.name).symlink_to(path)
    for package, folder in sorted(setuptools["package-dir"].items()):
        parts = package.split(".")
        if len(parts) != 2 or not any((ROOT / folder).rglob("*.py")):
            continue  # nested mappings lie inside their parent's folder; data-only folders
        (top / parts[1]).symlink_to(ROOT / folder, target_is_directory=True)
    return target


lay_out()  # on import: mkdocstrings reads its search paths in its own on_config
