"""Plugins: a user's own policies and metrics, registered from their own file or module, and
``--plugin PATH_OR_MODULE``, the option every command takes.

A plugin is any Python file or importable module that registers entries when imported
(``register_policy``, ``register_metric``; CONTRIBUTING.md, "Add a policy"). Nothing of the
library is edited: every command takes ``--plugin`` (repeatable), and installed packages
declare theirs in the entry-point group [`ENTRY_POINT_GROUP`][], which every command loads::

    # the plugin package's pyproject.toml
    [project.entry-points."window_cascades.plugins"]
    my_policies = "my_package.cascade_policies"

In Python, ``import my_plugin`` is enough; ``window_cascades.load_plugins`` loads files by path.

A command loads its plugins first (the installed ones, then each ``--plugin``), so that a plugin
policy's parameters are options of the parser built after it (``evaluate-logits --help``,
``--list-policies``, the cascade's ``--calibration.parameters``); it then parses the other
arguments. The process's ``sys.argv`` is left as it came, so a re-run of it (Lightning's DDP
launch) loads the same plugins. ``--plugin`` is read up to a bare ``--`` (what follows belongs
to another program, e.g. ``submit``'s pipeline options).

Loading is idempotent (a file or module is imported once per process, however often it is
named), so the dispatcher and the subcommand may both load the same plugins. A file is imported
under a module name of its own ([`plugin_module_name`][]), so two files of the same name do not
replace each other and a plugin file never shadows an installed module. Only the standard
library is imported here (the commands read their arguments before torch is imported); the
plugins import what they register with.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

ENTRY_POINT_GROUP = "window_cascades.plugins"
"""The entry-point group of installed plugins (each entry names a module, or a function that
registers when called with no arguments)."""

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginError",
    "load_plugin",
    "load_plugins",
    "load_entry_point_plugins",
    "plugin_module_name",
    "is_plugin_file",
    "split_plugin_arguments",
    "load_command_plugins",
    "forwarded_plugins",
    "plugin_error",
    "add_plugin_option",
]


class PluginError(ValueError):
    """A plugin that cannot be loaded: the file is missing, the module cannot be imported, or
    importing it raised. The message is one line and starts with what was given
    (``--plugin X: ...`` for the option, ``entry point NAME = VALUE: ...`` for an installed one).
    """


_LOADED: dict[str, ModuleType] = {}  # resolved file path or module name -> module
_ENTRY_POINTS_LOADED = False


def is_plugin_file(spec: str) -> bool:
    """Whether ``spec`` names a file (a ``.py`` name or a path with a separator) rather than a
    module name (``my_package.policies``)."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def plugin_module_name(path: str | Path) -> str:
    """The module name a plugin file is imported under: its stem and a hash of its resolved
    path (``window_cascades_plugin_my_policy_1a2b3c4d``), unique per file."""
    resolved = Path(path).resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
    stem = "".join(c if c.isalnum() else "_" for c in resolved.stem)
    return f"window_cascades_plugin_{stem}_{digest}"


def _raised(err: BaseException, where: str | None = None) -> str:
    """``Type: message (file:line)`` of an exception raised while importing a plugin, at the
    innermost frame inside ``where`` (the plugin's file) when it has one."""
    frames = traceback.extract_tb(err.__traceback__)
    inside = [f for f in frames if where is not None and Path(f.filename) == Path(where)]
    frame = (inside or frames or [None])[-1]
    at = f" ({Path(frame.filename).name}:{frame.lineno})" if frame is not None else ""
    message = " ".join(str(err).split())
    return f"{type(err).__name__}: {message}{at}" if message else f"{type(err).__name__}{at}"


def _load_file(spec: str, what: str) -> ModuleType:
    path = Path(spec).expanduser()
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "no such file"
        raise PluginError(
            f"{what}: {kind} ({path.resolve()}); expected a .py file or a module name"
        )
    key = str(path.resolve())
    if key in _LOADED:
        return _LOADED[key]
    name = plugin_module_name(path)
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise PluginError(f"{what}: {path} cannot be imported as Python (expected a .py file)")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # as an import does: dataclasses and pickling look it up
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[name]
        raise PluginError(f"{what}: importing it raised {_raised(err, key)}") from err
    _LOADED[key] = module
    return module


def _load_module(spec: str, what: str) -> ModuleType:
    if spec in _LOADED:
        return _LOADED[spec]
    if not spec.replace(".", "").replace("_", "").isalnum() or spec.startswith("."):
        raise PluginError(f"{what}: not a module name nor a .py file")
    try:
        module = importlib.import_module(spec)
    except ModuleNotFoundError as err:
        if err.name is not None and (spec == err.name or spec.startswith(err.name + ".")):
            raise PluginError(
                f"{what}: no module named {err.name!r} (not installed, and not on the path; a "
                "file needs its path, e.g. ./my_plugin.py)"
            ) from err
        raise PluginError(f"{what}: importing it raised {_raised(err)}") from err
    except Exception as err:
        raise PluginError(f"{what}: importing it raised {_raised(err)}") from err
    _LOADED[spec] = module
    return module


def load_plugin(spec: str | Path, what: str | None = None) -> ModuleType:
    """Import one plugin: a Python file (by path) or a module (by name), once per process.

    Args:
        spec: a path to a ``.py`` file (relative to the current folder, or absolute) or a module
            name importable from ``sys.path`` (``my_package.policies``).
        what: how the plugin was given, for messages (default ``--plugin <spec>``).

    Returns:
        The imported module (the same object when loaded before).

    Raises:
        PluginError: one line naming ``what``: no such file, no such module, or the exception
            importing it raised (type, message, and the plugin's line).

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "hello.py").write_text("GREETING = 'registered'\\n")
        >>> load_plugin(folder / "hello.py").GREETING
        'registered'
        >>> load_plugin(folder / "missing.py")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        window_cascades.commands.plugins.PluginError: --plugin .../missing.py: no such file (...)...
    """
    spec = str(spec)
    what = what or f"--plugin {spec}"
    if not spec.strip():
        raise PluginError(f"{what}: empty; expected a .py file or a module name")
    if is_plugin_file(spec) or Path(spec).is_file():
        return _load_file(spec, what)
    return _load_module(spec, what)


def load_entry_point_plugins() -> list[ModuleType]:
    """Load every installed plugin of the entry-point group [`ENTRY_POINT_GROUP`][] (once per
    process; later calls load nothing and return an empty list).

    An entry names a module (imported) or a function (called with no arguments).

    Returns:
        The modules of the entries loaded by this call, in the order Python lists them.

    Raises:
        PluginError: ``entry point NAME = VALUE (group ...): ...``, when one cannot be loaded.
    """
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return []
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    loaded = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        what = f"entry point {entry.name} = {entry.value} (group {ENTRY_POINT_GROUP})"
        if entry.value in _LOADED:
            continue
        try:
            found = entry.load()
            if not isinstance(found, ModuleType) and callable(found):
                found()
                found = sys.modules[entry.module]
        except Exception as err:
            raise PluginError(f"{what}: loading it raised {_raised(err)}") from err
        _LOADED[entry.value] = found
        loaded.append(found)
    return loaded


def load_plugins(specs: Iterable[str | Path] = (), entry_points: bool = True) -> list[ModuleType]:
    """Load the installed plugins (entry points) and then each of ``specs``.

    Args:
        specs: plugin files (paths) or module names, in order (see [`load_plugin`][]).
        entry_points: also load the installed plugins of [`ENTRY_POINT_GROUP`][] (once per
            process).

    Returns:
        The modules of ``specs``, in order.

    Raises:
        PluginError: naming the first plugin that cannot be loaded.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.py").write_text("LOADS = 1\\n")
        >>> [m.LOADS for m in load_plugins([folder / "a.py", folder / "a.py"])]  # imported once
        [1, 1]
    """
    if entry_points:
        load_entry_point_plugins()
    return [load_plugin(spec) for spec in specs]


OPTION = "--plugin"
HELP = (
    "a Python file or module that registers policies or metrics (repeatable; loaded before "
    "the options are read, with the installed plugins of the entry-point group "
    "window_cascades.plugins)"
)


def split_plugin_arguments(argv: list[str]) -> tuple[list[str], list[str]]:
    """``(plugins, others)``: the values of every ``--plugin X`` / ``--plugin=X`` before a bare
    ``--``, in order, and the other arguments, in order.

    Raises:
        PluginError: a ``--plugin`` without a value.
    """
    plugins, others = [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            others += argv[i:]
            break
        if arg == OPTION:
            if i + 1 == len(argv) or argv[i + 1].startswith("--"):
                raise PluginError(f"{OPTION}: expected a .py file or a module name after it")
            plugins.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith(OPTION + "="):
            plugins.append(arg[len(OPTION) + 1 :])
        else:
            others.append(arg)
        i += 1
    return plugins, others


def load_command_plugins(argv: list[str]) -> tuple[list[str], list[str]]:
    """Load the installed plugins and ``argv``'s ``--plugin`` ones; returns ``(plugins,
    others)`` as [`split_plugin_arguments`][].

    Raises:
        PluginError: ``--plugin X: ...`` (one line) for the first one that cannot be loaded.
    """
    plugins, others = split_plugin_arguments(list(argv))
    load_plugins(plugins)
    return plugins, others


def forwarded_plugins(plugins: list[str]) -> list[str]:
    """``--plugin X`` arguments for a command run elsewhere (a SLURM job, another folder): file
    paths made absolute, module names as given."""
    return [f"{OPTION}={Path(p).expanduser().resolve() if _is_file(p) else p}" for p in plugins]


def _is_file(spec: str) -> bool:
    return is_plugin_file(spec) or Path(spec).is_file()


def plugin_error(err: PluginError, argv: list[str] = ()) -> int:
    """Print a plugin that cannot be loaded as one line, ``error: ...``, on stderr; returns 2.
    With ``--traceback`` in ``argv`` (or ``WINDOW_CASCADES_TRACEBACK=1``) the error is raised
    instead, with the plugin's own traceback as its cause."""
    if "--traceback" in argv or os.environ.get("WINDOW_CASCADES_TRACEBACK") == "1":
        raise err
    print(f"error: {err}", file=sys.stderr)
    return 2


def add_plugin_option(parser: argparse.ArgumentParser) -> None:
    """``--plugin`` in ``parser``'s help (its values are taken out of the arguments and loaded
    before the parser reads them)."""
    parser.add_argument(OPTION, action="append", default=[], metavar="PATH_OR_MODULE", help=HELP)
