"""Class paths written before the ``window_cascades`` namespace, read as their new names.

Configs written by earlier releases (and Lightning's ``config.yaml`` of their runs) name the
project's classes by the packages' folder names: ``class_path: datamodules.DigitsDataModule``.
Those packages are now ``window_cascades.datamodules`` and so on; such a class path is read as
``window_cascades.datamodules.DigitsDataModule``, with a one-line notice, wherever a command
reads one: in a config file (the YAML loader of the LightningCLIs, [`PARSER_MODE`][]) and on
the command line ([`renamed_arguments`][]).

A package of the user's own with one of those names (a Lightning project's ``datamodules/``,
importable where the command runs) keeps its name: only a name that no package of the user's
provides is read as the project's.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

NAMESPACE = "window_cascades"
OLD_PACKAGES = (
    "vocabulary",
    "uncertainty",
    "cascade",
    "artifacts",
    "datamodules",
    "lightning_modules",
    "commands",
)
# a class: lower-case modules, then a CamelCase name (``cascade.yaml`` is a file, not a class)
OLD_PATH = re.compile(rf"^(?:{'|'.join(OLD_PACKAGES)})(?:\.[a-z_]\w*)*\.[A-Z]\w*$")
PARSER_MODE = "window_cascades_yaml"
"""jsonargparse's YAML loader that also reads the renamed class paths."""
_noticed: set[str] = set()


def _is_ours(package: str) -> bool:
    """Whether ``package`` (an old top-level name) is not a package of the user's: none of
    that name is importable, or the one found is this project's own folder (a checkout)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return True
    if spec is None or not spec.submodule_search_locations:
        return spec is None
    ours = Path(importlib.import_module(f"{NAMESPACE}.{package}").__path__[0]).resolve()
    return all(Path(p).resolve() == ours for p in spec.submodule_search_locations)


def renamed_class_path(value: object) -> str | None:
    """The ``window_cascades`` name of a class path written before the namespace, or None.

    Args:
        value: a config value, e.g. ``"datamodules.DigitsDataModule"``.

    Returns:
        ``"window_cascades.datamodules.DigitsDataModule"`` when ``value`` is a dotted path under
        one of the old package names, no package of the user's has that name, and the new path
        names an object that exists; None otherwise (the value is left as it is).

    Example:
        >>> renamed_class_path("datamodules.DigitsDataModule")
        'window_cascades.datamodules.DigitsDataModule'
        >>> renamed_class_path("torch.nn.Linear") is None
        True
    """
    if not isinstance(value, str) or not OLD_PATH.match(value):
        return None
    if not _is_ours(value.split(".")[0]):
        return None
    module, _, name = f"{NAMESPACE}.{value}".rpartition(".")
    try:
        found = hasattr(importlib.import_module(module), name)
    except ImportError:
        found = importlib.util.find_spec(f"{module}.{name}") is not None
    return f"{module}.{name}" if found else None


def _notice(old: str, new: str, where: str) -> None:
    if old not in _noticed:
        _noticed.add(old)
        print(
            f"notice: {where}class path {old!r} is its name before the window_cascades "
            f"namespace; read as {new!r} (rename it there to silence this)",
            file=sys.stderr,
        )


def renamed_values(data: object, where: str = "") -> object:
    """``data`` (a loaded config) with every old class path replaced by its new name."""
    if isinstance(data, dict):
        return {key: renamed_values(value, where) for key, value in data.items()}
    if isinstance(data, list):
        return [renamed_values(value, where) for value in data]
    new = renamed_class_path(data)
    if new is None:
        return data
    _notice(data, new, where)
    return new


def renamed_arguments(argv: list[str]) -> list[str]:
    """Command-line arguments with every old class path (``--data datamodules.X``,
    ``--data=datamodules.X``) replaced by its new name."""
    renamed = []
    for arg in argv:
        key, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        new = renamed_class_path(value)
        if new is None:
            renamed.append(arg)
            continue
        _notice(value, new, f"{key or 'argument'}: ")
        renamed.append(f"{key}{eq}{new}")
    return renamed


def load_config(value: str, path: str = "") -> object:
    """jsonargparse's YAML loader, then [`renamed_values`][] (its loader for
    [`PARSER_MODE`][])."""
    from jsonargparse import get_loader

    return renamed_values(get_loader("yaml")(value), f"{path or _nested_config()}: ".lstrip(": "))


def _nested_config() -> str:
    """The config file jsonargparse is reading when it gives no path (a file named by a key of
    another config, ``data: data.yaml``, or by ``--data FILE``): its private load stack, or
    "" where that is gone."""
    try:
        from jsonargparse._util import config_load_stack
    except ImportError:
        return ""
    stack = config_load_stack.get()
    return str(stack[-1][0]) if stack else ""


def register_parser_mode() -> str:
    """Register [`load_config`][] as jsonargparse's loader for [`PARSER_MODE`][]; returns
    the mode, for ``parser_kwargs={"parser_mode": ...}``."""
    import yaml
    from jsonargparse import set_loader

    set_loader(PARSER_MODE, load_config, exceptions=(yaml.YAMLError,))
    return PARSER_MODE
