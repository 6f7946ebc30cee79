"""Submit a whole experiment to SLURM (``window-cascades submit``, ``scripts/slurm/submit.sh``).

    window-cascades submit EXPERIMENT.yaml [options] [-- pipeline options]

The members go as a job array (member i = task i; or, with ``--parallel-members``, one job of
<members> tasks each training its own member), then calibration + cascade evaluation once all
members succeeded (``--dependency=afterok``; cancelled if a member fails:
``--kill-on-invalid-dep=yes``). Prints the two job ids. The jobs
(``train_members.sbatch``, ``evaluate.sbatch``: ``scripts/slurm/`` of a checkout, shipped in
the package too) run ``window-cascades pipeline --step member|evaluate`` in the folder this
command ran in, with this Python (``$PYTHON`` when set). Logs:
``<out>/slurm/members_<job>_<task>.out`` and ``<out>/slurm/evaluate_<job>.out``.
``--dry-run`` prints the two ``sbatch`` commands instead (no Slurm needed, nothing written).
``--plugin`` files and modules are loaded here (an error stops the submission) and passed to
both jobs (files by their absolute path).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from window_cascades.commands.plugins import (
    PluginError,
    add_plugin_option,
    forwarded_plugins,
    load_command_plugins,
    plugin_error,
)

HERE = Path(__file__).resolve().parent
# a checkout's scripts/slurm/, else the copy shipped in the package (pyproject: package-dir)
JOB_FOLDERS = (HERE.parent / "scripts" / "slurm", HERE / "slurm_jobs")
MEMBERS_PLACEHOLDER = "<members job>"
"""Stands for the members job's id in a dry run, before it is submitted."""


def job_script(name: str) -> Path:
    """The job script ``name`` (``train_members.sbatch`` or ``evaluate.sbatch``)."""
    for folder in JOB_FOLDERS:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"job script {name} not found in {', '.join(map(str, JOB_FOLDERS))}")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        usage="%(prog)s EXPERIMENT [options] [-- pipeline options]",
        description="Submit a whole experiment to SLURM: the members, then the evaluation "
        "after all of them succeeded. Options default to the cluster's; arguments after -- go "
        "to every job's `window-cascades pipeline` (e.g. --member-arg=--trainer.max_epochs=10, "
        "--overwrite).",
    )
    parser.add_argument(
        "config",
        metavar="EXPERIMENT",
        help="the experiment's YAML, or a shipped config's name (e.g. quickstart)",
    )
    where = parser.add_argument_group("where the jobs run (sbatch options, both jobs)")
    for option in ("--partition", "--account", "--qos", "--cpus-per-task", "--mem"):
        where.add_argument(option, metavar=option.lstrip("-").split("-")[0].upper())
    where.add_argument("--time", help="member time limit (e.g. 2-00:00:00)")
    where.add_argument("--eval-time", metavar="TIME", help="the evaluation job's time limit")
    members = parser.add_argument_group("members")
    members.add_argument(
        "--nodes",
        type=positive,
        default=1,
        help="nodes per member (DDP across nodes: --trainer.num_nodes)",
    )
    members.add_argument(
        "--gpus-per-node",
        type=positive_or_zero,
        default=0,
        metavar="G",
        help="GPUs per member node: --gres=gpu:G, --ntasks-per-node=G, --trainer.devices=G",
    )
    members.add_argument(
        "--tasks-per-node",
        type=positive_or_zero,
        default=0,
        metavar="T",
        help="DDP processes per member node without GPUs (CPU/gloo): --ntasks-per-node=T, "
        "--trainer.devices=T (add --member-arg=--trainer.strategy=ddp after --)",
    )
    members.add_argument(
        "--parallel-members",
        action="store_true",
        help="one job of <members> tasks, each training its own member on one device",
    )
    run = parser.add_argument_group("the run")
    run.add_argument("--out", help="override the experiment's output folder")
    run.add_argument("--logger", choices=["csv", "wandb"], help="override the logger")
    run.add_argument(
        "--wait",
        action="store_true",
        help="stay until every job has ended, then print each job's state and log; exit status "
        "0 only when all completed (1 otherwise). $SUBMIT_POLL: seconds between checks (10)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the sbatch commands; submit nothing, write nothing",
    )
    add_plugin_option(parser)
    return parser


def positive(text: str) -> int:
    value = positive_or_zero(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_or_zero(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def sbatch_commands(
    args: argparse.Namespace, config: str, members: int, out: str, pipeline: list[str]
) -> tuple[list[str], list[str]]:
    """The members' and the evaluation's ``sbatch`` command lines (the evaluation's dependency
    names [`MEMBERS_PLACEHOLDER`][], replaced by the members' job id once submitted)."""
    common = [
        f"--{name.replace('_', '-')}={value}"
        for name in ("partition", "account", "qos", "cpus_per_task", "mem")
        if (value := getattr(args, name)) is not None
    ]
    member = [f"--time={args.time}"] if args.time else []
    evaluation = [f"--time={args.eval_time}"] if args.eval_time else []
    pipeline = [
        *(["--out", args.out] if args.out else []),
        *(["--logger", args.logger] if args.logger else []),
        *pipeline,
    ]
    logs = f"{out}/slurm"
    nodes, gpus, tasks = args.nodes, args.gpus_per_node, args.tasks_per_node
    if args.parallel_members:
        member += [
            f"--ntasks={members}",
            f"--nodes={nodes}",
            f"--ntasks-per-node={(members + nodes - 1) // nodes}",
        ]
        member += ["--gpus-per-task=1"] if gpus > 0 else []
        member += ["--export=ALL,MEMBERS_IN_PARALLEL=1", f"--output={logs}/members_%j.out"]
    else:
        per_node = gpus if gpus > 0 else (tasks if tasks > 0 else 1)
        member += [
            f"--array=0-{members - 1}",
            f"--nodes={nodes}",
            f"--ntasks-per-node={per_node}",
            f"--output={logs}/members_%A_%a.out",
        ]
        member += [f"--gres=gpu:{gpus}"] if gpus > 0 else []
        pipeline.append(f"--member-arg=--trainer.num_nodes={nodes}")
        if per_node > 1 or gpus > 0:
            pipeline.append(f"--member-arg=--trainer.devices={per_node}")
    evaluation += ["--gres=gpu:1"] if gpus > 0 else []
    train = [
        "sbatch",
        "--parsable",
        *common,
        *member,
        str(job_script("train_members.sbatch")),
        config,
        *pipeline,
    ]
    evaluate = [
        "sbatch",
        "--parsable",
        *common,
        *evaluation,
        f"--dependency=afterok:{MEMBERS_PLACEHOLDER}",
        "--kill-on-invalid-dep=yes",
        f"--output={logs}/evaluate_%j.out",
        str(job_script("evaluate.sbatch")),
        config,
        *pipeline,
    ]
    return train, evaluate


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Check the experiment, submit its jobs (or print them); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:  # loaded here to fail now, not in the jobs; the jobs load them again
        plugins, argv = load_command_plugins(argv)
    except PluginError as err:
        return plugin_error(err, argv)
    pipeline: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pipeline = argv[:cut], argv[cut + 1 :]
    # every job runs `window-cascades pipeline` with them (file paths made absolute)
    pipeline = [*forwarded_plugins(plugins), *pipeline]
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    from window_cascades.commands.pipeline_config import load_pipeline_config

    try:  # the member count and output folder, read and checked as the pipeline does
        cfg = load_pipeline_config(args.config)
        out, members = args.out or str(cfg["out"]), len(cfg["seeds"])
        train, evaluate = sbatch_commands(args, args.config, members, out, pipeline)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(shlex.join(train))
        print(shlex.join(evaluate))
        return 0
    if shutil.which("sbatch") is None:
        print(
            "error: sbatch not found: submit from a SLURM login node (or --dry-run)",
            file=sys.stderr,
        )
        return 2
    Path(out, "slurm").mkdir(parents=True, exist_ok=True)
    # the jobs run `$PYTHON -m window_cascades pipeline` in this folder
    env = {**os.environ, "PYTHON": os.environ.get("PYTHON", sys.executable)}
    train_id = submit(train, env)
    evaluate = [a.replace(MEMBERS_PLACEHOLDER, train_id) for a in evaluate]
    evaluate_id = submit(evaluate, env)
    print(
        f"members: job {train_id} ({members} members)  "
        f"evaluation: job {evaluate_id} (after members succeed)"
    )
    print(
        f"logs: {out}/slurm/   results: {out}/   watch: squeue -j {train_id},{evaluate_id}",
        flush=True,
    )
    if not args.wait:
        return 0
    from window_cascades.commands.slurm_wait import wait_for_jobs

    return wait_for_jobs(train_id, evaluate_id)


def submit(command: list[str], env: dict) -> str:
    """Run ``sbatch --parsable``; returns the job id (sbatch's own error ends the command)."""
    proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(proc.returncode)
    return proc.stdout.strip().split(";")[0]


if __name__ == "__main__":
    sys.exit(main(prog="submit.sh"))
