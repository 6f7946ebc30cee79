"""Entry points of the LightningCLI commands: arguments checked before the heavy imports, and
errors caused by the user's input printed as one line.

``scripts/train_member.py`` and ``scripts/evaluate_cascade.py`` call [`run_command`][]. It
first checks what can be checked without building the parser (``window_cascades.commands.precheck``:
the subcommand, config files and keys, with the closest known key suggested). Then it imports
Lightning and runs the CLI; an error caused by input (a bad value, a missing file, an output
folder that cannot take the run) is printed as ``error: ...`` and the command exits with
status 2. ``--traceback`` (or ``WINDOW_CASCADES_TRACEBACK=1``) shows the
full traceback instead.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import yaml

from window_cascades.commands.cli_errors import condense, one_line
from window_cascades.commands.console import quiet_third_party
from window_cascades.commands.legacy_class_paths import renamed_arguments
from window_cascades.commands.plugins import PluginError, load_command_plugins
from window_cascades.commands.precheck import CommandSpec, InputError, precheck

__all__ = ["CASCADE", "MEMBER", "USER_ERRORS", "condense", "report_error", "run_command"]

MEMBER = CommandSpec(
    "train_member.py",
    ("fit", "validate", "test", "predict"),
    ("checkpoint", "preemption", "cache"),
    class_keys={
        "model": ("member.py", "MemberModule"),
        "preemption": ("callbacks/preemption.py", "PreemptionCheckpoint"),
    },
    fixed_keys={"cache": ("logits_dir", "member", "features", "features_dtype")},
    cli="window_cascades.commands.cli:MemberCLI",
)
CASCADE = CommandSpec(
    "evaluate_cascade.py",
    ("test", "predict"),
    ("calibration", "results", "predictions"),
    class_keys={
        "model": ("cascade_module.py", "CascadeModule"),
        "calibration": ("callbacks/cascade_calibration.py", "CascadeCalibration"),
        "results": ("callbacks/results_writer.py", "CascadeResultsWriter"),
        "predictions": ("callbacks/predictions_writer.py", "CascadePredictionsWriter"),
    },
    cli="window_cascades.commands.cli:CascadeCLI",
    parameter_groups=("calibration",),
)


USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    yaml.YAMLError,
)


def run_command(spec: CommandSpec, argv: list[str] | None = None, prog: str | None = None) -> int:
    """Load the plugins (``--plugin``), precheck ``argv``, then run the LightningCLI; returns
    the exit status. ``prog``: the program name that help and errors show (default: the
    script's).

    ``sys.argv`` is left as it came (Lightning's DDP launch re-runs it, plugins included); the
    CLI is given the arguments left after ours (``--plugin``, ``--traceback``, ``--verbose``).
    """
    if prog:
        spec = replace(spec, script=prog)
    argv = list(sys.argv[1:] if argv is None else argv)
    traceback = traceback_requested("--traceback" in argv)
    argv = [a for a in argv if a != "--traceback"]
    argv, verbose = split_verbose(argv)
    quiet_third_party(verbose)
    try:  # before any parser: a plugin policy's parameters are --calibration.parameters
        _, argv = load_command_plugins(argv)
    except PluginError as err:
        return report_error(err, traceback)
    argv = renamed_arguments(argv)  # class paths written before the window_cascades namespace
    try:
        precheck(argv, spec)
    except InputError as err:
        return report_error(err, traceback)
    import importlib
    from argparse import ArgumentError

    module, name = spec.cli.split(":")
    cli_class = getattr(importlib.import_module(module), name)
    parser_kwargs = {"exit_on_error": False, **({"prog": prog} if prog else {})}
    try:
        cli_class(args=argv, parser_kwargs=parser_kwargs)
    except ArgumentError as err:
        return report_error(InputError(one_line(err, argv) or condense(str(err))), traceback, err)
    except USER_ERRORS as err:
        return report_error(err, traceback)
    return 0


def split_verbose(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without our bare ``--verbose`` flag, and whether it was there.

    ``--verbose true|false`` (or ``--verbose=...``) is left alone: it is the ``test`` and
    ``validate`` subcommands' own option (print the results table), which always takes a value.
    """
    kept, verbose = [], False
    for i, arg in enumerate(argv):
        if arg == "--verbose" and (i + 1 == len(argv) or argv[i + 1].startswith("--")):
            verbose = True
        else:
            kept.append(arg)
    return kept, verbose


def traceback_requested(flag: bool = False) -> bool:
    """``flag`` (a ``--traceback`` argument) or ``WINDOW_CASCADES_TRACEBACK=1``."""
    return flag or os.environ.get("WINDOW_CASCADES_TRACEBACK") == "1"


def report_error(err: BaseException, traceback: bool, cause: BaseException | None = None) -> int:
    """Print ``err`` as one line on stderr and return 2; re-raise it when ``traceback``."""
    if traceback:
        raise cause or err
    message = str(err).strip() or type(err).__name__
    if isinstance(err, FileNotFoundError | PermissionError) and err.filename:
        message = f"{err.filename}: {err.strerror}"
    print(f"error: {message}", file=sys.stderr)
    print("(add --traceback for the full traceback)", file=sys.stderr)
    return 2


def run_member(argv: list[str] | None = None, prog: str | None = None) -> int:
    """``window-cascades member``: fit a member or cache its logits."""
    return run_command(MEMBER, argv, prog)


def run_cascade(argv: list[str] | None = None, prog: str | None = None) -> int:
    """``window-cascades cascade``: test (calibrate + evaluate) or predict."""
    return run_command(CASCADE, argv, prog)
