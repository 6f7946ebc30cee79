"""A command's arguments and config files, checked before anything heavy is imported.

With the standard library and PyYAML only (well under a second), [`precheck`][] checks what
can be checked without building the parser: the subcommand, that every config file exists and
is valid YAML (the error names the file, line and column), that every top-level key and every
key of this project's own classes (``model``, ``calibration``, ``results``, ``cache``,
``preemption``; read from their source, not imported) is known, with the closest known key
suggested, and that a ``--ckpt_path`` is a complete zip archive. A problem is an
[`InputError`][] naming the argument or file.

The calibration callback also takes every declared policy parameter (``--calibration.width``,
...): the names the library declares are read from ``cascade/``'s source the same way; a key
that is none of them is looked up in the policy registry too when it is already imported (a
plugin's parameters) before it is refused.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1] / "lightning_modules"  # what init_arguments reads
POLICIES = Path(__file__).resolve().parents[1] / "cascade"  # where policy parameters are declared
COMMON_KEYS = (
    "config",
    "print_config",
    "seed_everything",
    "trainer",
    "model",
    "data",
    "optimizer",
    "lr_scheduler",
    "ckpt_path",
    "weights_only",
)
SUBCOMMAND_KEYS = {
    "fit": (),
    "validate": ("verbose",),
    "test": ("verbose",),
    "predict": ("return_predictions",),
}


class InputError(ValueError):
    """An argument or config file the command cannot use (the message says which and why)."""


@dataclass(frozen=True)
class CommandSpec:
    """What [`precheck`][] knows of one command without importing it.

    Attributes:
        script: the script's name, as messages show it.
        subcommands: the accepted subcommands.
        groups: the extra top-level groups (``add_arguments_to_parser``).
        class_keys: group -> (source file relative to this folder, class name) whose
            ``__init__`` arguments are the group's keys.
        fixed_keys: group -> its keys, for groups added argument by argument.
        cli: ``module:class`` of the LightningCLI to run.
        parameter_groups: groups that also take every declared policy parameter.
    """

    script: str
    subcommands: tuple[str, ...]
    groups: tuple[str, ...]
    class_keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    fixed_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cli: str = ""
    parameter_groups: tuple[str, ...] = ()

    def top_keys(self, subcommand: str) -> set[str]:
        return {*COMMON_KEYS, *SUBCOMMAND_KEYS.get(subcommand, ()), *self.groups}

    def group_keys(self, group: str) -> set[str] | None:
        """The keys of ``group``, or None where only the full parser knows them."""
        if group in self.fixed_keys:
            return set(self.fixed_keys[group])
        if group == "trainer":
            return lightning_trainer_keys()
        if group in self.class_keys:
            keys = set(init_arguments(ROOT / self.class_keys[group][0], self.class_keys[group][1]))
            if group in self.parameter_groups:
                keys |= set(declared_parameter_names())
            return keys
        return None

    def registered_keys(self, group: str) -> set[str]:
        """Keys of ``group`` only the policy registry knows (a plugin's parameters), for a group
        in ``parameter_groups``, when the registry is already imported (loading a plugin
        imports it); it is never imported here, so the check stays ahead of torch."""
        registry = sys.modules.get("window_cascades.cascade.policy_parameters")
        if group not in self.parameter_groups or registry is None:
            return set()
        return set(registry.declared_parameters())


@functools.cache
def lightning_trainer_keys() -> set[str] | None:
    """The ``trainer`` group's keys: the arguments of the installed Lightning's ``Trainer``,
    read from its source (``lightning/pytorch/trainer/trainer.py``; Lightning is not imported);
    None when that file cannot be read."""
    spec = importlib.util.find_spec("lightning")  # a top-level package: found, not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    source = Path(spec.submodule_search_locations[0]) / "pytorch" / "trainer" / "trainer.py"
    try:
        return set(init_arguments(source, "Trainer"))
    except (OSError, SyntaxError, LookupError):
        return None


#: our own classes' modules, by the names a config may give them (the legacy ones included)
_OWN_PREFIXES = {
    "window_cascades.": "window_cascades.",
    "datamodules.": "window_cascades.datamodules.",
}


def class_init_keys(class_path: str) -> set[str] | None:
    """The ``init_args`` keys of one of this package's classes (``window_cascades....`` or an
    earlier release's ``datamodules.X``), read from its source (nothing imported); None for
    another package's class, a class whose ``__init__`` takes ``**kwargs``, or one not found."""
    prefix = next((p for p in _OWN_PREFIXES if class_path.startswith(p)), None)
    if prefix is None or "." not in class_path:
        return None
    module, _, name = (_OWN_PREFIXES[prefix] + class_path[len(prefix) :]).rpartition(".")
    return _class_keys_in(module, name, 0)


def _module_source(module: str) -> Path | None:
    """The source file of ``window_cascades.<package>[.<module>...]``, found without importing
    the package (only ``window_cascades`` itself, which imports nothing heavy)."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    try:
        spec = importlib.util.find_spec(".".join(parts[:2]))
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if len(parts) == 2:
        return Path(spec.origin) if spec.origin else None
    if not spec.submodule_search_locations:
        return None
    folder = Path(spec.submodule_search_locations[0]).joinpath(*parts[2:-1])
    for candidate in (folder / f"{parts[-1]}.py", folder / parts[-1] / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _class_keys_in(module: str, name: str, depth: int) -> set[str] | None:
    source = _module_source(module)
    if source is None or source.suffix != ".py" or depth > 3:
        return None
    try:
        tree = ast.parse(source.read_text(), str(source))
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            init = next(
                (i for i in node.body if isinstance(i, ast.FunctionDef) and i.name == "__init__"),
                None,
            )
            if init is None or init.args.kwarg is not None:
                return None
            args = init.args.posonlyargs + init.args.args + init.args.kwonlyargs
            return {a.arg for a in args[1:]}
        if isinstance(node, ast.ImportFrom) and any(a.name == name for a in node.names):
            base = node.module or ""
            if node.level:  # relative to this module's package
                package = module if source.name == "__init__.py" else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            alias = next(a for a in node.names if a.name == name)
            return _class_keys_in(base, alias.name, depth + 1)
    return None


def init_arguments(source: Path, class_name: str) -> list[str]:
    """Names of the ``__init__`` arguments of ``class_name`` in ``source`` (parsed, not run)."""
    tree = ast.parse(source.read_text(), str(source))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args.posonlyargs + item.args.args + item.args.kwonlyargs
                    return [a.arg for a in args[1:]]
    raise LookupError(f"{source}: no class {class_name} with an __init__")


def declared_parameter_names(folder: Path = POLICIES) -> list[str]:
    """Names of the policy parameters declared in ``folder``'s modules: the first argument of
    every ``parameter("name", ...)`` and ``PolicyParameter("name", ...)`` call (parsed, not
    run)."""
    names = []
    for source in sorted(folder.glob("*.py")):
        text = source.read_text()
        if "parameter(" not in text.lower():
            continue
        for node in ast.walk(ast.parse(text, str(source))):
            called = node.func if isinstance(node, ast.Call) else None
            name = getattr(called, "id", getattr(called, "attr", None))
            if name in ("parameter", "PolicyParameter") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    names.append(first.value)
    return list(dict.fromkeys(names))


def _unknown(key: str, known: set[str], where: str) -> InputError:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listed = f"; known: {', '.join(sorted(known))}" if len(known) <= 16 else ""
    return InputError(f"{where}: unknown key {key!r}{hint}{listed}")


def load_yaml_file(path: Path, option: str) -> object:
    """The parsed YAML of ``path``; a missing file or invalid YAML names the file and line."""
    if not path.is_file():
        raise InputError(f"{option} {path}: file not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(
            f"{option} {path}: invalid YAML{where}: {err.problem or err.context}"
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise InputError(f"{option} {path}: invalid YAML: {err}") from None
    except ValueError as err:  # PyYAML converts numbers itself: a 5,000-digit integer
        raise InputError(f"{option} {path}: {_long_number(path.read_text(), err)}") from None


def _long_number(text: str, err: ValueError) -> str:
    """Where a YAML file holds a number Python cannot convert: its line and key."""
    for number, line in enumerate(text.splitlines(), 1):
        digits = max((len(m) for m in re.findall(r"\d+", line)), default=0)
        if digits > 1000:
            key = line.split(":", 1)[0].strip(" -{") if ":" in line else None
            field = f", field {key!r}" if key else ""
            return f"line {number}{field}: a {digits}-digit number is not a usable value"
    return f"invalid value ({str(err)[:160]})"


CHECKPOINT_NAMES = ("last", "hpc", "best", "registry")


def check_checkpoint_file(path: Path, option: str = "--ckpt_path") -> None:
    """A checkpoint file that is a complete zip archive (what ``torch.save`` and Lightning
    write): a truncated or foreign file is refused before anything is imported (a missing one
    by the command, which names what it expected)."""
    import zipfile

    if path.is_file() and not zipfile.is_zipfile(path):
        raise InputError(
            f"{option} {path}: not a checkpoint written by torch.save / Lightning (not a complete "
            "zip archive: truncated, or a file of another format)"
        )


def _check_config(path: Path, option: str, spec: CommandSpec, subcommand: str) -> None:
    """A whole config (``--config``): valid YAML, known keys, and valid YAML in the files its
    groups name (e.g. ``data: data.yaml``, relative to the config's folder)."""
    data = load_yaml_file(path, option)
    if data is None:
        return
    if not isinstance(data, dict):
        raise InputError(f"{option} {path}: expected a mapping of keys, got {type(data).__name__}")
    _check_keys(data, spec, subcommand, str(path))
    for key, value in data.items():
        if isinstance(value, str) and value.endswith((".yaml", ".yml")):
            group = load_yaml_file(path.parent / value, f"{path}: {key}:")
            _check_class_args(group, str(key), str(path.parent / value))


def _check_class_args(value: object, group: str, where: str) -> None:
    """A group given as ``class_path`` + ``init_args`` (e.g. ``data``) of one of this package's
    classes: every ``init_args`` key known (read from the class's source)."""
    if not isinstance(value, dict) or not isinstance(value.get("class_path"), str):
        return
    args = value.get("init_args")
    known = class_init_keys(value["class_path"])
    if known is None or not isinstance(args, dict):
        return
    for key in args:
        if key not in known:
            raise _unknown(f"{group}.{key}", {f"{group}.{k}" for k in known}, where)


def _check_keys(data: dict, spec: CommandSpec, subcommand: str, where: str) -> None:
    top = spec.top_keys(subcommand)
    for key, value in data.items():
        if key not in top:
            raise _unknown(str(key), top, where)
        known = spec.group_keys(key)
        if known is not None and isinstance(value, dict):
            for sub in value:
                if sub not in known and sub not in spec.registered_keys(key):
                    raise _unknown(f"{key}.{sub}", {f"{key}.{k}" for k in known}, where)
        if key not in spec.class_keys and key != "trainer":
            _check_class_args(value, str(key), where)


def precheck(argv: list[str], spec: CommandSpec) -> None:
    """Check ``argv`` (without the program name) as far as it can be without imports.

    Raises:
        InputError: naming the argument or file, and what was expected.
    """
    if any(
        a in ("-h", "--help") or a.startswith(("--print_config", "--print_shtab")) for a in argv
    ):
        return
    if not argv or argv[0].startswith("-"):
        raise InputError(f"{spec.script}: give a subcommand first: {', '.join(spec.subcommands)}")
    subcommand = argv[0]
    if subcommand not in spec.subcommands:
        close = difflib.get_close_matches(subcommand, spec.subcommands, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(
            f"{spec.script}: unknown subcommand {subcommand!r}{hint}; expected one of "
            f"{', '.join(spec.subcommands)}"
        )
    args = argv[1:]
    for i, arg in enumerate(args):
        if not arg.startswith("--") and arg != "-c":
            continue
        name, _, value = arg.lstrip("-").partition("=")
        name = name.removesuffix("+")  # jsonargparse's append to a list: --trainer.callbacks+=X
        if not value and i + 1 < len(args) and not args[i + 1].startswith("--"):
            value = args[i + 1]
        name = "config" if name == "c" else name
        parts = name.split(".")
        if parts[0] == "config":
            if value:
                _check_config(Path(value), f"--{name}", spec, subcommand)
            continue
        if name == "ckpt_path" and value and value not in CHECKPOINT_NAMES:
            check_checkpoint_file(Path(value))
            continue
        if len(parts) == 1 and value.endswith((".yaml", ".yml")):  # a group from a file
            _check_class_args(load_yaml_file(Path(value), f"--{name}"), name, value)
        _check_keys(
            {parts[0]: dict.fromkeys(parts[1:2]) if len(parts) > 1 else value},
            spec,
            subcommand,
            f"--{name}",
        )
