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

Any ``sbatch`` option passes through: given as it is (``--constraint a100``, ``--exclude=n1``,
``--mail-type=END``; both jobs), or as ``--sbatch-arg=--OPTION=VALUE`` (both jobs),
``--member-sbatch-arg=...`` / ``--eval-sbatch-arg=...`` (one job); a pass-through option comes
after submit's own, so sbatch takes it over them. The options submit sets itself (the array,
the dependency, the log files) are refused, naming the submit option to use. The jobs are named
``<name>-members`` and ``<name>-evaluate``, ``<name>`` = ``--job-name`` or ``wc-<experiment>``.
The evaluation job runs on one node, one task (one GPU when the members use GPUs) with its own
time limit (``--eval-time``, default ``DEFAULT_EVAL_TIME``); the members' device and node
counts go to the members' job only. ``%`` in the output folder reaches sbatch's log paths as
``%%`` (sbatch would read it as one of its patterns).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from window_cascades.commands.extras import require_extra
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

#: the evaluation job's time limit unless ``--eval-time`` is given (calibration and the cascade
#: test: the members' inference over the held-out and test sets, no training)
DEFAULT_EVAL_TIME = "04:00:00"

#: sbatch's long options (Slurm 22.05, ``man sbatch``), passed through as given
SBATCH_OPTIONS = frozenset(
    """account acctg-freq array batch bb bbf begin chdir cluster-constraint clusters comment
    constraint container contiguous core-spec cores-per-socket cpu-freq cpus-per-gpu
    cpus-per-task deadline delay-boot dependency distribution error exclude exclusive export
    export-file extra-node-info get-user-env gid gpu-bind gpu-freq gpus gpus-per-node
    gpus-per-socket gpus-per-task gres gres-flags hint hold ignore-pbs input job-name
    kill-on-invalid-dep licenses mail-type mail-user mcs-label mem mem-bind mem-per-cpu
    mem-per-gpu mincpus network nice no-kill no-requeue nodefile nodelist nodes ntasks
    ntasks-per-core ntasks-per-gpu ntasks-per-node ntasks-per-socket open-mode output
    overcommit oversubscribe parsable partition power prefer priority profile propagate qos
    quiet reboot requeue reservation signal sockets-per-node spread-job switches test-only
    thread-spec threads-per-core time time-min tmp uid use-min-nodes wait wait-all-nodes wckey
    wrap""".split()
)
#: sbatch options that take no value (or only an ``=VALUE``): never followed by their value
SBATCH_FLAGS = frozenset(
    """contiguous exclusive get-user-env hold ignore-pbs no-kill no-requeue overcommit
    oversubscribe parsable quiet reboot requeue spread-job test-only use-min-nodes wait
    wait-all-nodes""".split()
)
#: sbatch options submit sets itself -> what to use instead
OWNED_OPTIONS = {
    "array": "the member count is the experiment's seeds",
    "dependency": "the evaluation waits for the members itself",
    "kill-on-invalid-dep": "set for the evaluation job",
    "output": "logs go to <out>/slurm/ (--out)",
    "error": "logs go to <out>/slurm/ (--out)",
    "parsable": "set to read the job ids",
    "wrap": "the jobs run the job scripts",
    "ntasks-per-node": "use --gpus-per-node or --tasks-per-node",
    "wait": "use submit's --wait",
}
PASS_THROUGH = ("--sbatch-arg", "--member-sbatch-arg", "--eval-sbatch-arg")


def job_script(name: str) -> Path:
    """The job script ``name`` (``train_members.sbatch`` or ``evaluate.sbatch``)."""
    for folder in JOB_FOLDERS:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"job script {name} not found in {', '.join(map(str, JOB_FOLDERS))}")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        usage="%(prog)s EXPERIMENT [options] [sbatch options] [-- pipeline options]",
        description="Submit a whole experiment to SLURM: the members, then the evaluation "
        "after all of them succeeded. Options default to the cluster's; any other sbatch "
        "option (e.g. --constraint a100, --exclude=node7, --mail-type=END) goes to both jobs; "
        "arguments after -- go to every job's `window-cascades pipeline` (e.g. "
        "--member-arg=--trainer.max_epochs=10, --overwrite).",
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
    where.add_argument(
        "--eval-time",
        metavar="TIME",
        default=DEFAULT_EVAL_TIME,
        help=f"the evaluation job's time limit (default {DEFAULT_EVAL_TIME})",
    )
    where.add_argument(
        "--job-name",
        metavar="NAME",
        help="the jobs are NAME-members and NAME-evaluate (default: wc-<experiment>)",
    )
    where.add_argument(
        "--sbatch-arg",
        action="append",
        default=[],
        metavar="OPTION",
        help="an sbatch option for both jobs, e.g. --sbatch-arg=--reservation=r1 (repeatable; "
        "any sbatch option given as it is does the same)",
    )
    where.add_argument(
        "--member-sbatch-arg",
        action="append",
        default=[],
        metavar="OPTION",
        help="an sbatch option for the members' job only (repeatable)",
    )
    where.add_argument(
        "--eval-sbatch-arg",
        action="append",
        default=[],
        metavar="OPTION",
        help="an sbatch option for the evaluation job only (repeatable)",
    )
    members = parser.add_argument_group("members")
    members.add_argument(
        "--nodes",
        type=positive,
        default=1,
        help="nodes per member (DDP across nodes: --trainer.num_nodes)",
    )
    members.add_argument(
        "--gpus-per-node",
        type=gpu_spec,
        default=(None, 0),
        metavar="[TYPE:]G",
        help="GPUs per member node, optionally of a type (a100:4): --gres=gpu:[TYPE:]G, "
        "--ntasks-per-node=G, --trainer.devices=G; the evaluation job gets one of that type",
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


def gpu_spec(text: str) -> tuple[str | None, int]:
    """``--gpus-per-node`` as (GPU type or None, count): ``4`` or ``a100:4``."""
    kind, _, count = text.rpartition(":")
    if kind and not re.fullmatch(r"[A-Za-z0-9_.-]+", kind):
        raise argparse.ArgumentTypeError(f"expected [TYPE:]COUNT such as a100:4, got {text!r}")
    try:
        value = positive_or_zero(count)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected [TYPE:]COUNT such as 4 or a100:4, got {text!r}"
        ) from None
    return (kind or None), value


def split_sbatch_options(
    argv: list[str], parser: argparse.ArgumentParser
) -> tuple[list[str], list[str]]:
    """``argv`` without the sbatch options given as they are, and those options (each as one
    ``--name=value`` or ``--name`` word); submit's own options are left for the parser.

    ``--sbatch-arg --x=y`` (the value as a separate word) is read as ``--sbatch-arg=--x=y``.

    Raises:
        ValueError: an sbatch option that submit sets itself, or an option that is neither
            submit's nor sbatch's (with the closest known one).
    """
    own = set(parser._option_string_actions)
    kept, passed, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in PASS_THROUGH and not eq and i + 1 < len(argv):
            kept.append(f"{name}={argv[i + 1]}")
            i += 2
            continue
        if not arg.startswith("--") or arg == "--" or name in own:
            kept.append(arg)
            if name in own and not eq and _takes_value(parser, name) and i + 1 < len(argv):
                kept.append(argv[i + 1])
                i += 1
            i += 1
            continue
        option = name[2:]
        if option in OWNED_OPTIONS:
            raise ValueError(f"{name}: set by submit itself ({OWNED_OPTIONS[option]})")
        if option not in SBATCH_OPTIONS:
            known = sorted(own | {f"--{o}" for o in SBATCH_OPTIONS})
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(f"{name}: not a submit or sbatch option{hint}")
        if not eq and option not in SBATCH_FLAGS and i + 1 < len(argv):
            value, i = argv[i + 1], i + 1
            eq = "="
        passed.append(f"{name}{eq}{value}")
        i += 1
    return kept, passed


def _takes_value(parser: argparse.ArgumentParser, option: str) -> bool:
    action = parser._option_string_actions[option]
    return action.nargs != 0


def check_passed_through(options: list[str], where: str) -> list[str]:
    """The ``--sbatch-arg``-style options: each an sbatch long option, none that submit sets."""
    for arg in options:
        name = arg.partition("=")[0]
        if not name.startswith("--") or name[2:] not in SBATCH_OPTIONS:
            close = difflib.get_close_matches(name, [f"--{o}" for o in SBATCH_OPTIONS], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(
                f"{where} {arg}: expected an sbatch long option such as --constraint=a100{hint}"
            )
        if name[2:] in OWNED_OPTIONS:
            raise ValueError(f"{where} {arg}: set by submit itself ({OWNED_OPTIONS[name[2:]]})")
    return options


def job_name(args: argparse.Namespace, experiment: str) -> str:
    """The jobs' common name: ``--job-name``, else ``wc-<experiment>`` (characters other than
    letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``)."""
    return args.job_name or "wc-" + re.sub(r"[^\w.-]", "_", str(experiment))


def _member_resources(
    args: argparse.Namespace, members: int, logs: str
) -> tuple[list[str], list[str]]:
    """The members' job's nodes, tasks, GPUs and log file (sbatch options), and the members'
    own devices and nodes for their pipeline (``--member-arg``; not the evaluation's)."""
    nodes, tasks = args.nodes, args.tasks_per_node
    gpu_type, gpus = args.gpus_per_node
    gres = f"gpu:{gpu_type}:" if gpu_type else "gpu:"
    if args.parallel_members:
        member = [
            f"--ntasks={members}",
            f"--nodes={nodes}",
            f"--ntasks-per-node={(members + nodes - 1) // nodes}",
        ]
        if gpus > 0:
            member += [f"--gpus-per-task={gpu_type}:1" if gpu_type else "--gpus-per-task=1"]
        member += ["--export=ALL,MEMBERS_IN_PARALLEL=1", f"--output={logs}/members_%j.out"]
        return member, []
    per_node = gpus if gpus > 0 else (tasks if tasks > 0 else 1)
    member = [
        f"--array=0-{members - 1}",
        f"--nodes={nodes}",
        f"--ntasks-per-node={per_node}",
        f"--output={logs}/members_%A_%a.out",
    ]
    member += [f"--gres={gres}{gpus}"] if gpus > 0 else []
    member_pipeline = [f"--member-arg=--trainer.num_nodes={nodes}"]
    if per_node > 1 or gpus > 0:
        member_pipeline.append(f"--member-arg=--trainer.devices={per_node}")
    return member, member_pipeline


def sbatch_commands(
    args: argparse.Namespace,
    config: str,
    members: int,
    out: str,
    pipeline: list[str],
    experiment: str = "experiment",
    passed: tuple[list[str], list[str], list[str]] = ([], [], []),
) -> tuple[list[str], list[str]]:
    """The members' and the evaluation's ``sbatch`` command lines (the evaluation's dependency
    names ``MEMBERS_PLACEHOLDER``, replaced by the members' job id once submitted).

    ``passed``: the pass-through sbatch options for both jobs, the members' job and the
    evaluation job; they come after submit's own, so sbatch takes them over submit's.
    """
    both, member_only, eval_only = passed
    common = [
        f"--{name.replace('_', '-')}={value}"
        for name in ("partition", "account", "qos", "cpus_per_task", "mem")
        if (value := getattr(args, name)) is not None
    ]
    name = job_name(args, experiment)
    member = [f"--job-name={name}-members", *([f"--time={args.time}"] if args.time else [])]
    evaluation = [
        f"--job-name={name}-evaluate",
        f"--time={args.eval_time}",
        "--nodes=1",
        "--ntasks=1",
    ]
    pipeline = [
        *(["--out", args.out] if args.out else []),
        *(["--logger", args.logger] if args.logger else []),
        *pipeline,
    ]
    logs = f"{out}/slurm".replace("%", "%%")  # sbatch reads % in --output as a pattern
    resources, member_pipeline = _member_resources(args, members, logs)
    member += resources
    gpu_type, gpus = args.gpus_per_node
    evaluation += [f"--gres=gpu:{gpu_type}:1" if gpu_type else "--gres=gpu:1"] if gpus > 0 else []
    train = [
        "sbatch",
        "--parsable",
        *common,
        *member,
        *both,
        *member_only,
        str(job_script("train_members.sbatch")),
        config,
        *pipeline,
        *member_pipeline,
    ]
    evaluate = [
        "sbatch",
        "--parsable",
        *common,
        *evaluation,
        f"--dependency=afterok:{MEMBERS_PLACEHOLDER}",
        "--kill-on-invalid-dep=yes",
        f"--output={logs}/evaluate_%j.out",
        *both,
        *eval_only,
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
    try:
        argv, given = split_sbatch_options(argv, parser)
    except ValueError as err:
        parser.error(str(err))
    args = parser.parse_args(argv)
    try:
        passed = (
            [*given, *check_passed_through(args.sbatch_arg, "--sbatch-arg")],
            check_passed_through(args.member_sbatch_arg, "--member-sbatch-arg"),
            check_passed_through(args.eval_sbatch_arg, "--eval-sbatch-arg"),
        )
    except ValueError as err:
        parser.error(str(err))
    from window_cascades.commands.pipeline_config import load_pipeline_config

    try:  # the member count and output folder, read and checked as the pipeline does
        cfg = load_pipeline_config(args.config)
        if (args.logger or cfg["logger"]) == "wandb":  # the jobs run with this Python
            require_extra("wandb")
        out, members = args.out or str(cfg["out"]), len(cfg["seeds"])
        train, evaluate = sbatch_commands(
            args, args.config, members, out, pipeline, cfg["experiment"], passed
        )
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(shlex.join(train))
        print(shlex.join(evaluate))
        return 0
    return _submit_jobs(args, cfg, out, members, train, evaluate)


def _submit_jobs(
    args: argparse.Namespace,
    cfg: dict,
    out: str,
    members: int,
    train: list[str],
    evaluate: list[str],
) -> int:
    """Submit the members' job, then the evaluation's after it; say which and where, and with
    ``--wait`` wait for both. Returns the exit status."""
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
    name = job_name(args, cfg["experiment"])
    print(
        f"members: job {train_id} ({members} members, {name}-members)  "
        f"evaluation: job {evaluate_id} (after members succeed, {name}-evaluate)"
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
