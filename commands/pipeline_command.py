"""Run an experiment: train the members, cache their logits, calibrate and evaluate.

    python scripts/run_pipeline.py --config configs/quickstart/pipeline.yaml [--logger wandb]
    python scripts/run_pipeline.py --config CFG --step member --member 1   # one member only
    python scripts/run_pipeline.py --config CFG --step evaluate            # after all members
    window-cascades pipeline --config quickstart     # a shipped config by name, from any folder

Steps (``--step all`` runs them in order; the SLURM scripts run them as separate jobs;
``--stage`` is the option's old name, still taken with a notice):

1. ``member``: train member i (seed ``seeds[i]``; resumes from its newest checkpoint, skipped
   when finished) -> ``<out>/members/m<i>/checkpoints/last.ckpt``, then cache its logits ->
   ``<out>/logits/m<i>/<dataset>.safetensors``;
2. ``evaluate``: calibration + cascade test -> ``<out>/results/``: ``fitted_cascade.json``,
   ``metrics.csv``, ``summary.json``, plots, and ``cascade.ckpt`` (the members plus the fitted
   cascade), written as one unit; an earlier evaluation there is refused (before any training)
   unless ``--overwrite``, or replaced with a one-line notice when the config says
   ``replace_results: true`` (the quick start's does: it runs again).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from window_cascades.artifacts.run_folder import check_output_folder
from window_cascades.commands.cli_entry import CASCADE, MEMBER, USER_ERRORS, report_error
from window_cascades.commands.console import add_console_options, apply_console_options
from window_cascades.commands.pipeline_config import load_pipeline_config
from window_cascades.commands.plugins import (
    PluginError,
    add_plugin_option,
    load_command_plugins,
    plugin_error,
)
from window_cascades.commands.precheck import precheck

STEPS = ["all", "member", "evaluate"]


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the requested steps; returns the exit status (2: an input error, printed as one
    line; ``--traceback`` shows the traceback instead). ``prog``: the name help shows."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:  # every step of this process registers with them (sys.argv keeps them for DDP)
        _, argv = load_command_plugins(argv)
    except PluginError as err:
        return plugin_error(err, argv)
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument(
        "--config",
        default="quickstart",
        help="the experiment's YAML, or a shipped config's name (default: quickstart, i.e. "
        "configs/quickstart/pipeline.yaml of the package; outputs go under the current folder)",
    )
    parser.add_argument("--out", help="override the output folder")
    parser.add_argument("--logger", choices=["csv", "wandb"], help="override the logger")
    parser.add_argument(
        "--step",
        choices=STEPS,
        help="the pipeline step to run: member (train one member and cache its logits), "
        "evaluate (calibrate and evaluate the cascade, after all members), or all (default)",
    )
    parser.add_argument("--stage", choices=STEPS, help=argparse.SUPPRESS)  # --step's old name
    parser.add_argument(
        "--member",
        type=int,
        help="member index for --step member (default: $SLURM_ARRAY_TASK_ID)",
    )
    parser.add_argument(
        "--parallel-members",
        action="store_true",
        help="this process is one of N launched together (srun/torchrun): it trains member "
        "$SLURM_PROCID (or $RANK) alone on its own device, with no gradient sync",
    )
    parser.add_argument(
        "--member-arg", action="append", default=[], help="extra LightningCLI arg for members"
    )
    parser.add_argument(
        "--cascade-arg", action="append", default=[], help="extra LightningCLI arg for the cascade"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier evaluation in <out>/results, and retrain members whose recipe "
        "(model, data, trainer, optimiser settings, seed) changed",
    )
    parser.add_argument("--traceback", action="store_true", help="full tracebacks on errors")
    add_console_options(parser)
    add_plugin_option(parser)
    args = parser.parse_args(argv)
    step_option(parser, args)
    apply_console_options(args)
    try:
        run(parser, args)
    except USER_ERRORS as err:
        return report_error(
            err, args.traceback or os.environ.get("WINDOW_CASCADES_TRACEBACK") == "1"
        )
    return 0


def step_option(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``args.step`` from ``--step``, or from its old name ``--stage`` with a one-line notice
    (job scripts written before the rename keep working); both at once is an error."""
    if args.stage is not None:
        if args.step is not None:
            parser.error("give --step only (--stage is its old name)")
        print("note: --stage is now --step", file=sys.stderr)
        args.step = args.stage
    args.step = args.step or "all"


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check the experiment config (before the heavy imports), then run the steps."""
    cfg = load_pipeline_config(args.config)
    if args.out:
        cfg["out"] = args.out
    if args.logger:
        cfg["logger"] = args.logger
    member_index_given = args.parallel_members or args.member is not None
    if args.step == "member" and not (member_index_given or "SLURM_ARRAY_TASK_ID" in os.environ):
        raise ValueError("--step member needs --member I, an array task or --parallel-members")
    precheck(["fit", "--config", str(cfg["member_config"]), *args.member_arg], MEMBER)
    precheck(["test", "--config", str(cfg["cascade_config"]), *args.cascade_arg], CASCADE)
    if args.step in ("all", "evaluate"):  # before any training
        results = Path(cfg["out"]) / "results"
        earlier = results.is_dir() and any(not p.name.startswith(".") for p in results.iterdir())
        replace = args.overwrite or cfg["replace_results"]
        check_output_folder(results, replace, "results folder", "--overwrite")
        if earlier and not args.overwrite and cfg["replace_results"]:
            print(
                f"note: replacing the earlier results in {results} (replace_results: true in "
                f"{args.config}); finished members are reused, not retrained",
                file=sys.stderr,
            )
    from window_cascades.commands.experiment import (
        cache_member_logits,
        evaluate,
        own_device_args,
        process_index,
        run_all,
        train_member,
    )

    if args.step == "all":
        run_all(cfg, args.member_arg, args.cascade_arg, args.overwrite)
    elif args.step == "member":
        member_args = list(args.member_arg)
        if args.parallel_members:
            index = process_index()
            member_args += own_device_args()
        elif args.member is not None:
            index = args.member
        else:
            index = int(os.environ["SLURM_ARRAY_TASK_ID"])
        train_member(
            cfg, index, member_args, sole_process=args.parallel_members, overwrite=args.overwrite
        )
        cache_member_logits(cfg, index, member_args)
    else:
        evaluate(cfg, args.cascade_arg, args.overwrite)


if __name__ == "__main__":
    sys.exit(main())
