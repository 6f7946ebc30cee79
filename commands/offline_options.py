"""The offline evaluator's command-line options, parsed before torch is imported (the plan
they make: ``window_cascades.commands.offline_plan``)."""

from __future__ import annotations

import argparse
import sys

from window_cascades.commands.console import add_console_options
from window_cascades.commands.plugins import add_plugin_option
from window_cascades.uncertainty.names import DEFINITION_NAMES

USAGE = """Evaluate cascade policies offline, on cached logits (no model is run).

    python scripts/evaluate_logits.py --logits-dir DIR --members m0 m1 [m2 ...] \\
      --heldout NAME --id NAME [--shift NAME ...] [--ood NAME ...] \\
      [--train NAME] [--ood-val NAME ...] --scores SCORE[,SCORE...] \\
      --target {cov@R,risk@C,fpr@P} \\
      [--policies NAME,NAME,...] [--PARAMETER VALUE [VALUE ...] ...] \\
      [--definitions {standard,paper}] --out OUT

Every parameter a registered policy declares is an option (``--list-policies`` shows the
policies, their parameters and the one each sweeps). Several values of a policy's swept
parameter sweep that policy, one set of rows per setting; a policy without a swept parameter
is evaluated once per score. Several scores (``--scores msp,energy,vim``; ``--list-scores``
shows every registered one) evaluate everything once per score (the logits are read once).
A feature score (react, ash, scale, vim, knn, mds, rmds, fdbd) reads the members' cached
features; those with statistics of the training split need ``--train`` (fitted once, cached in
``<member>/stats/``). Its parameters are chosen by ``--score-selection`` on the held-out split
or the ``--ood-val`` sets (never a test set), or pinned with ``--score-param knn.k=10`` (several
values, ``knn.k=10,50``: one set of rows each, the score column ``knn(k=10)``). Writes
OUT/metrics.csv (tidy), OUT/summary.json and the plots of the online run
(``risk_coverage.png``, ``macs_vs_cov<R>.png``) as one unit, and prints a compact table.
"""


def add_policy_parameter_options(parser: argparse.ArgumentParser) -> None:
    """One option per parameter the registered policies declare (``--width``, ``--budget``,
    ...; a list option for a parameter some policy sweeps), from the declarations. Imports
    the policy registry (and torch)."""
    from window_cascades.cascade.policy_parameters import declared_parameters, parameter_users
    from window_cascades.cascade.policy_registry import swept_parameters

    group = parser.add_argument_group("policy parameters (declared by the policies)")
    swept = swept_parameters()
    for name, declared in declared_parameters().items():
        users = ", ".join(parameter_users(name))
        sweep = " (several values: one set of rows each)" if name in swept else ""
        group.add_argument(
            "--" + name.replace("_", "-"),
            type=declared.kind,
            nargs="+" if name in swept else None,
            default=[declared.default] if name in swept else declared.default,
            choices=declared.choices,
            help=f"{declared.help}; used by {users}{sweep}"
            + ("" if declared.default is None else f" (default {declared.default})"),
        )


def score_list(text: str) -> list[str]:
    """``msp,vim`` -> the registered scores named (argparse type; torch is not imported)."""
    from window_cascades.uncertainty.score_registry import score_names

    names = [n.strip() for n in text.split(",") if n.strip()]
    known = score_names()
    for name in names:
        if name not in known:
            choices = ", ".join(known)
            raise argparse.ArgumentTypeError(f"invalid choice: {name!r} (choose from {choices})")
    if not names:
        raise argparse.ArgumentTypeError(f"no score in {text!r}")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options in two steps: the command's own first (one-line errors before torch is
    imported), then the policies' parameters, derived from the registered declarations."""
    args, rest = parse_base(argv)
    return parse_policy_options(args, rest)


def parse_base(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The command's own options, without importing torch: ``(args, rest)``, ``rest`` the
    arguments left for [`parse_policy_options`][]. ``-h`` prints the whole help (and
    imports the policy registry to list their parameters) and exits."""
    p = base_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if "-h" in argv or "--help" in argv:
        add_policy_parameter_options(p)
        p.parse_args(argv)
    args, rest = p.parse_known_args(argv)
    args.score = [name for names in (args.score or [["msp"]]) for name in names]
    return args, rest


def parse_policy_options(args: argparse.Namespace, rest: list[str]) -> argparse.Namespace:
    """The policies' parameters among ``rest`` (imports the policy registry, and torch) set on
    ``args``; an unknown option is refused as argparse refuses one."""
    policy_options = argparse.ArgumentParser(prog=base_parser().prog, add_help=False)
    add_policy_parameter_options(policy_options)
    parameters, unknown = policy_options.parse_known_args(rest)
    if unknown:
        base_parser().error(f"unrecognized arguments: {' '.join(unknown)}")
    for name, value in vars(parameters).items():
        setattr(args, name, value)
    return args


def base_parser() -> argparse.ArgumentParser:
    """The evaluator's own options (everything but the policies' parameters)."""
    p = argparse.ArgumentParser(
        description=USAGE.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--logits-dir", required=True, help="<dir>/<member>/<dataset>.safetensors")
    p.add_argument("--members", nargs="+", required=True, help="member folders, cascade order")
    p.add_argument(
        "--orders",
        default="given",
        choices=("given", "all", "pairs"),
        help="cascades to evaluate: the given order, every permutation of the members (all), "
        "or every ordered pair (pairs); rows gain a 'members' column (e.g. m1>m0) and "
        "orders.csv the mean and spread of every figure across the orders",
    )
    p.add_argument(
        "--macs",
        nargs="+",
        default=[],
        metavar="MEMBER=MACS",
        help="MACs per sample of members without meta.json (or overriding it), e.g. m0=0.39e9; "
        "with none anywhere every member counts 1",
    )
    p.add_argument(
        "--heldout",
        required=True,
        help="held-out split (the policies and temperatures are fitted on it)",
    )
    p.add_argument("--id", required=True, help="in-distribution test dataset")
    p.add_argument("--shift", nargs="*", default=[], help="shifted (labelled) datasets")
    p.add_argument("--ood", nargs="*", default=[], help="out-of-distribution datasets")
    p.add_argument(
        "--scores",
        "--score",
        dest="score",
        nargs="+",
        action="extend",
        type=score_list,
        default=None,
        metavar="SCORE[,SCORE...]",
        help="confidence score(s), comma- or space-separated (default msp; --list-scores)",
    )
    p.add_argument("--list-scores", action="store_true", help="print the scores and exit")
    p.add_argument(
        "--train",
        default=None,
        metavar="NAME",
        help="the members' training split (features cached): feature scores fit their "
        "statistics on it; never evaluated",
    )
    p.add_argument(
        "--ood-val",
        nargs="*",
        default=[],
        metavar="NAME",
        help="OOD validation sets: --score-selection chooses parameters on them; never evaluated",
    )
    p.add_argument(
        "--score-selection",
        default="auto",
        choices=("auto", "heldout", "ood_val", "default"),
        help="how a score's parameters are chosen per member: lowest held-out AURC (heldout), "
        "highest AUROC of held-out against --ood-val (ood_val), the declared defaults; auto: "
        "ood_val when given, else heldout",
    )
    p.add_argument(
        "--score-param",
        action="append",
        default=[],
        metavar="SCORE.NAME=V[,V...]",
        help="pin a score parameter (knn.k=10); several values: one set of rows each",
    )
    p.add_argument("--target", default="cov@5", help="cov@R, risk@C or fpr@P (percent)")
    p.add_argument(
        "--policies",
        default=None,
        help="comma-separated registered policies (--list-policies shows them; default: "
        "those it marks 'by default')",
    )
    p.add_argument("--list-policies", action="store_true", help="print the policies and exit")
    p.add_argument(
        "--gain-shares",
        type=float,
        nargs="*",
        default=None,
        help="for each policy with a cost knob, the cheapest setting keeping these shares of "
        "the ensemble's held-out gain, evaluated on test (default 0.5 0.75 0.9; none: off)",
    )
    p.add_argument(
        "--headroom",
        action="store_true",
        help="add the headroom estimate (a deferral rule learned on member 1's logits, "
        "cross-fitted, at each costed policy's held-out cost; two members only): off by "
        "default, it trains small networks and reads member 1's logits, about as long as the "
        "rest of a plain run",
    )
    p.add_argument(
        "--no-headroom",
        action="store_true",
        help=argparse.SUPPRESS,  # the default since headroom became opt-in; kept for scripts
    )
    p.add_argument("--definitions", default="standard", choices=DEFINITION_NAMES)
    p.add_argument(
        "--risks", type=float, nargs="+", default=[0.05], help="cov@r reported, fractions"
    )
    p.add_argument(
        "--coverages",
        type=float,
        nargs="+",
        default=[0.8],
        help="risk@c and scod_risk@c reported, fractions",
    )
    p.add_argument("--ood-tpr", type=float, default=0.95, help="fpr@p reported")
    p.add_argument(
        "--guarantee",
        type=float,
        default=None,
        metavar="DELTA",
        help="certify the target's threshold with probability >= 1 - DELTA (window tau and "
        "each policy's operating point)",
    )
    p.add_argument("--guarantee-method", default="ltt", choices=("ltt", "sgr"))
    p.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="N",
        help="N resamples of every test set: 95%% intervals in metrics.csv (ci_low, ci_high) "
        "and paired differences against member 1 alone and the full ensemble in deltas.csv "
        "(0: off)",
    )
    p.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the resamples")
    p.add_argument("--scod-ratio", type=float, default=1.0, help="OOD : ID ratio of SCOD")
    p.add_argument("--scod-beta", type=float, default=1.0, help="cost of an accepted OOD sample")
    p.add_argument("--seed", type=int, default=0, help="random policy and mixture subsampling")
    p.add_argument(
        "--temperature-scaling",
        action="store_true",
        help="fit temperatures per member and ensemble on the held-out split",
    )
    p.add_argument(
        "--outputs-cache",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="evaluate from the outputs cache (a few numbers per sample and member prefix, "
        "written once from the logits block by block, then reused): logits larger than memory "
        "are evaluated and later runs read no logits. DIR: its folder (default "
        "<logits-dir>/.outputs). Scores with parameters and --headroom read logits: refused",
    )
    p.add_argument("--out", required=True, help="output folder (new, empty, or an earlier run)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an earlier run in --out (as a whole)"
    )
    p.add_argument("--quiet", action="store_true", help="do not print the table")
    add_console_options(p)
    p.add_argument("--no-plots", action="store_true", help="write no plots (faster)")
    add_plugin_option(p)
    return p
