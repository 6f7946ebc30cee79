"""Errors of a LightningCLI run (jsonargparse, Lightning, wandb, a missing extra) as one line
that names the file and key, with the closest known key where one was misspelled.

jsonargparse reports a bad key or value in several lines (its usage, a ``tip:``, a Union's
subtypes and the whole given value) without the file the key came from; Lightning and wandb
raise their own exception classes. ``one_line`` turns each kind it knows into one line;
``key_origin`` finds the file that set a key, reading the arguments as jsonargparse
applies them (later ones win; a group given as a YAML file, e.g. ``data: data.yaml``, is read
relative to the config naming it). Only the standard library and PyYAML are imported here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from window_cascades.commands.extras import missing_extra_message
from window_cascades.commands.precheck import InputError, lightning_trainer_keys


class CLIInputError(InputError):
    """An input or environment error of a LightningCLI run, in one line (its cause chained)."""


_UNKNOWN_OPTION = re.compile(r"(Group|Subcommand) '([^']+)' does not accept option '([^']+)'")
_UNION = "Does not validate against any of the Union subtypes"
#: the class a Union's subtype names -> the group of the config it stands for
_SUBTYPE_GROUPS = {"LightningDataModule": "data", "LightningModule": "model"}


def condense(message: str) -> str:
    """jsonargparse's multi-line parse error as one line: the key, the value, the expectation."""
    keys = re.findall(r'Parser key "([^"]+)"', message)
    if not keys:
        return " ".join(line.strip() for line in message.splitlines() if line.strip())
    key = ".".join(k for k in keys if k != "init_args")
    value = re.findall(r"(?:Given value|Got value): (.*)", message)
    nested = re.search(r"NestedArg\(key='([^']+)', val='([^']*)'\)", message)
    if nested:
        key, value = f"{keys[0]}.{nested.group(1)}", [nested.group(2)]
    expected = re.findall(r"Expected a <class '([^']+)'>", message)
    expected = [e for e in dict.fromkeys(expected) if e != "NoneType"] or ["another value"]
    other = [
        line.strip()
        for line in message.splitlines()[1:]
        if line.strip()
        and not re.match(r"(- )?(Given value|Subtypes|Errors|Expected a|Does not)", line.strip())
    ]
    detail = f" ({other[-1]})" if other and not expected else ""
    shown = f" {value[-1]}" if value else ""
    return f"--{key}{shown}: expected {' or '.join(expected)}{detail}"


def _yaml_keys(path: Path, prefix: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    """(dotted key, file) of every key ``path`` sets, under ``prefix``; a group given as a
    YAML file is read too (relative to ``path``'s folder), ``init_args`` levels dropped."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError, ValueError):
        return
    yield from _mapping_keys(data, prefix, path, depth)


def _mapping_keys(data: object, prefix: str, path: Path, depth: int) -> Iterator[tuple[str, str]]:
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        dotted = f"{prefix}{key}" if str(key) != "init_args" else prefix.rstrip(".")
        if str(key) != "init_args":
            yield dotted, str(path)
        if isinstance(value, dict):
            yield from _mapping_keys(value, f"{dotted}." if dotted else "", path, depth)
        elif isinstance(value, str) and value.endswith((".yaml", ".yml")) and depth < 4:
            yield from _yaml_keys(path.parent / value, f"{dotted}.", depth + 1)


def key_origin(argv: Sequence[str], key: str) -> str | None:
    """The file, or the ``--option`` of the command line, that set ``key`` (dotted, e.g.
    ``trainer.max_epoch`` or ``data``) last in ``argv``; None when nothing there sets it.

    A key is set by a source that sets it or any key inside it (``data`` by the file holding
    the data's ``init_args``).
    """
    origin = None

    def sets(defined: str) -> bool:
        return defined == key or defined.startswith(f"{key}.")

    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            i += 1
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        name = name.removesuffix("+")
        if not eq and i + 1 < len(args) and not args[i + 1].startswith("-"):
            value, i = args[i + 1], i + 1
        name = "config" if name == "c" else name
        if name == "config":
            found = [file for defined, file in _yaml_keys(Path(value), "") if sets(defined)]
            origin = found[-1] if found else origin
        elif "." not in name and value.endswith((".yaml", ".yml")):
            found = [file for defined, file in _yaml_keys(Path(value), f"{name}.") if sets(defined)]
            origin = found[-1] if found else (f"--{name} {value}" if sets(name) else origin)
        elif sets(name.replace(".init_args", "")) or key.startswith(f"{name}."):
            origin = f"--{name}"
        i += 1
    return origin


def _close(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_option(match: re.Match, argv: Sequence[str]) -> str:
    kind, owner, option = match.groups()
    key = option if kind == "Subcommand" else f"{owner}.{option}"
    group, _, rest = key.partition(".")
    hint = ""
    if group == "trainer" and rest:
        known = lightning_trainer_keys() or set()
        hint = _close(key, [f"trainer.{k}" for k in known])
    origin = key_origin(argv, key)
    where = f"{origin}: " if origin else ""
    return f"{where}unknown key {key!r}{hint}"


def _union(message: str, argv: Sequence[str]) -> str:
    """A Union's "does not validate" report: the one error that is not "expected None", with
    the group it was given for and the file that gave it."""
    errors = re.findall(r"^\s*- (.*)$", message, flags=re.M)
    errors = [e for e in errors if not e.startswith("Expected a <class 'NoneType'>")]
    subtypes = re.search(r"Subtypes: \[(.*)\]", message)
    group = next(
        (g for cls, g in _SUBTYPE_GROUPS.items() if subtypes and cls in subtypes.group(1)), None
    )
    origin = key_origin(argv, group) if group else None
    where = f"{origin}: " if origin else ""
    label = f"{group}: " if group else ""
    detail = errors[0] if errors else message.splitlines()[0]
    return f"{where}{label}{detail}"


def one_line(err: BaseException, argv: Sequence[str] = ()) -> str | None:
    """The one line (without ``error:``) for an error of a LightningCLI run caused by its input
    or its environment; None for an error it does not know (shown as it is).

    Known: jsonargparse's parse errors (an unknown key, a bad value, a Union that does not
    validate), a missing extra's ``ImportError``, wandb's usage and login errors, and
    Lightning's ``MisconfigurationException`` (e.g. a GPU accelerator where none is visible).

    Args:
        err: the exception.
        argv: the arguments the CLI was given (to find the file a key came from).
    """
    message = str(err)
    if (extra := missing_extra_message(err)) is not None:
        return extra
    module = type(err).__module__
    if module.startswith("wandb"):
        first = message.strip().splitlines()[0] if message.strip() else type(err).__name__
        return (
            f"wandb: {first} (run 'wandb login', or set WANDB_MODE=offline and sync later with "
            "wandb sync)"
        )
    if type(err).__name__ == "MisconfigurationException":
        return _misconfiguration(message, argv)
    from argparse import ArgumentError

    if not isinstance(err, ArgumentError | ValueError | TypeError):
        return None
    if match := _UNKNOWN_OPTION.search(message):
        return _unknown_option(match, argv)
    if 'Parser key "' in message:
        line = condense(message)
        key = re.match(r"--(\S+)", line)
        origin = key_origin(argv, key.group(1)) if key else None
        return f"{origin}: {line}" if origin and not origin.startswith("--") else line
    if _UNION in message:
        return _union(message, argv)
    if isinstance(err, ArgumentError):
        return condense(message)
    return None


def _misconfiguration(message: str, argv: Sequence[str]) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "invalid Trainer settings"
    if "gpu backend" in first or "accelerator is not available" in first:
        origin = key_origin(argv, "trainer.accelerator")
        where = f"{origin}: " if origin and not origin.startswith("--") else ""
        return (
            f"{where}--trainer.accelerator: {first.rstrip('!.')}: no GPU is visible on this "
            "machine; use --trainer.accelerator=auto (GPU when there is one) or cpu"
        )
    return f"Trainer: {first}"
