"""``window-cascades``: one command with a subcommand for every job a user runs.

    window-cascades init [quickstart]                        # a shipped experiment into ./configs/
    window-cascades pipeline --config quickstart             # train members, calibrate, evaluate
    window-cascades pipeline --config EXPERIMENT.yaml        # (a file, or a shipped config's name)
    window-cascades member fit --config member.yaml ...       # one member (LightningCLI)
    window-cascades member predict ...                        # cache a member's logits
    window-cascades cascade test --config cascade.yaml ...    # calibrate + evaluate a cascade
    window-cascades cascade predict ...                       # apply a calibrated cascade
    window-cascades evaluate-logits --logits-dir DIR ...      # every policy on cached logits
    window-cascades submit EXPERIMENT [options] [-- ...]      # the whole experiment on SLURM
    window-cascades readme-table RESULTS_DIR                  # the README's results table

Each subcommand is the command of the same job under ``scripts/`` (which stay as thin
wrappers), with the same options, checks and one-line errors (exit status 2, before the heavy
imports); ``window-cascades SUBCOMMAND --help`` lists its options, and help and errors name
the program ``window-cascades SUBCOMMAND``. Nothing heavy is imported to dispatch, except
the plugins: every subcommand takes ``--plugin PATH_OR_MODULE`` (repeatable, before or after
the subcommand), loaded here with the installed ones before any parser is built
(``window_cascades.commands.plugins``).
``sys.argv`` is left as it came (a DDP launch re-runs it: ``window-cascades member fit ...``);
the subcommand gets its arguments and program name as parameters.
"""

from __future__ import annotations

import importlib
import sys

from window_cascades.commands.interrupts import quiet_on_closed_pipe
from window_cascades.commands.plugins import (
    OPTION,
    PluginError,
    load_command_plugins,
    plugin_error,
)

# name -> (module:function taking (argv, prog), one line for --help); a function marked
# "argv" reads its arguments from sys.argv[1:] and its name from sys.argv[0] instead (the
# offline evaluator exits 143 on SIGTERM only when run as a command, i.e. given no argv)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "init": (
        "window_cascades.commands.shipped_configs:init_main",
        "write a shipped experiment's configs (default: quickstart) into ./configs/",
    ),
    "pipeline": (
        "window_cascades.commands.pipeline_command:main",
        "a whole experiment: train the members, cache their logits, calibrate, evaluate",
    ),
    "member": (
        "window_cascades.commands.cli_entry:run_member",
        "fit one member, or cache its logits (predict)",
    ),
    "cascade": (
        "window_cascades.commands.cli_entry:run_cascade",
        "calibrate and evaluate a cascade (test), or apply a calibrated one (predict)",
    ),
    "evaluate-logits": (
        "window_cascades.commands.offline:main argv",
        "every policy on cached logits, no model run (sweeps, bootstrap, report)",
    ),
    "submit": (
        "window_cascades.commands.slurm_submit:main",
        "a whole experiment on SLURM: the members, then the evaluation after them",
    ),
    "readme-table": (
        "window_cascades.commands.readme_table:main argv",
        "the README's results table from a run",
    ),
}
PROGRAM = "window-cascades"


def usage() -> str:
    """The top-level help: the subcommands, one line each."""
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [
        f"usage: {PROGRAM} SUBCOMMAND [options]   ({PROGRAM} SUBCOMMAND --help for its options)",
        "",
        "Window-based early-exit cascades of deep ensembles.",
        "",
        "subcommands:",
    ]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += [
        "",
        f"Every subcommand takes {OPTION} PATH_OR_MODULE (repeatable): a Python file or module",
        "that registers your own policies or metrics, loaded before the options are read;",
        "installed packages' plugins (entry-point group window_cascades.plugins) load too.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run ``SUBCOMMAND`` with the rest of the arguments; returns the exit status (141 without
    a traceback when the reader of its output went away, e.g. ``| head``)."""
    return quiet_on_closed_pipe(lambda: _dispatch(argv))


def _dispatch(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    try:
        plugins, others = load_command_plugins(argv)
    except PluginError as err:
        return plugin_error(err, argv)
    if not others:
        print(usage())
        return 2
    # the subcommand gets the plugins too (loaded once; ``submit`` forwards them to its jobs)
    name, rest = others[0], [f"{OPTION}={p}" for p in plugins] + others[1:]
    if name not in SUBCOMMANDS:
        import difflib

        close = difflib.get_close_matches(name, SUBCOMMANDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        print(
            f"error: unknown subcommand {name!r}{hint}; expected one of {', '.join(SUBCOMMANDS)}",
            file=sys.stderr,
        )
        return 2
    target, _ = SUBCOMMANDS[name]
    target, _, mode = target.partition(" ")
    module, function = target.split(":")
    run = getattr(importlib.import_module(module), function)
    if mode == "argv":  # no process of its own to start: its name and arguments in sys.argv
        sys.argv = [f"{PROGRAM} {name}", *rest]
        return run() or 0
    return run(rest, f"{PROGRAM} {name}") or 0


if __name__ == "__main__":
    sys.exit(main())
