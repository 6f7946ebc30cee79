"""The offline evaluator command (``scripts/evaluate_logits.py``): cached logits in, results out.

    python scripts/evaluate_logits.py --logits-dir DIR --members m0 m1 [m2 ...] \\
      --heldout NAME --id NAME [--shift NAME ...] [--ood NAME ...] \\
      --score {msp,entropy,max_logit,energy,mutual_information} [...] \\
      --target {cov@R,risk@C,fpr@P} \\
      --policies single,ensemble,single_threshold,window[,...] [--width 0.1 [0.2 ...]] \\
      [--pass-fraction 0.2 [...]] [--definitions {standard,paper}] --out OUT

Several ``--width`` (``--pass-fraction``, ``--budget``) values sweep the window
(single-threshold, budget_window) policies, one set of rows per setting; ``single`` and
``ensemble`` are evaluated once per score. Several ``--score`` values evaluate everything
once per score (the logits are read once). Writes OUT/metrics.csv (tidy), OUT/summary.json
and the plots of the online run (``risk_coverage.png``, ``macs_vs_cov<R>.png``) as one unit,
and prints a compact table.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from commands.console import add_console_options, apply_console_options
from commands.interrupts import exit_on_sigterm
from uncertainty.names import DEFINITION_NAMES, SCORES

if TYPE_CHECKING:  # the arguments are parsed before torch and the rest are imported
    from cascade.policy_registry import PolicySettings
    from vocabulary.roles import DatasetRoles


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
    p.add_argument("--heldout", required=True, help="held-out (calibration) dataset")
    p.add_argument("--id", required=True, help="in-distribution test dataset")
    p.add_argument("--shift", nargs="*", default=[], help="shifted (labelled) datasets")
    p.add_argument("--ood", nargs="*", default=[], help="out-of-distribution datasets")
    p.add_argument(
        "--score", nargs="+", default=["msp"], choices=SCORES, help="confidence score(s)"
    )
    p.add_argument("--target", default="cov@5", help="cov@R, risk@C or fpr@P (percent)")
    p.add_argument(
        "--policies",
        default="single,ensemble,single_threshold,window",
        help="comma-separated registered policies (--list-policies shows them)",
    )
    p.add_argument("--list-policies", action="store_true", help="print the policies and exit")
    p.add_argument("--width", type=float, nargs="+", default=[0.1], help="window half-width(s) w")
    p.add_argument(
        "--pass-fraction",
        type=float,
        nargs="+",
        default=[0.2],
        help="fraction(s) passed on by single_threshold",
    )
    p.add_argument(
        "--budget",
        type=float,
        nargs="+",
        default=[1.2],
        help="budget_window's expected cost(s) per sample, in first-member MACs",
    )
    p.add_argument("--budget-grid", type=int, default=200, help="budget_window's quantile grid")
    p.add_argument(
        "--gain-shares",
        type=float,
        nargs="*",
        default=None,
        help="for each policy with a cost knob, the cheapest setting keeping these shares of "
        "the ensemble's held-out gain, evaluated on test (default 0.5 0.75 0.9; none: off)",
    )
    p.add_argument(
        "--budget-objective",
        default="target",
        choices=("target", "augrc"),
        help="what budget_window optimises on held-out: the target (cov@R, risk@C) or AUGRC",
    )
    p.add_argument(
        "--no-headroom",
        action="store_true",
        help="skip the headroom estimate (a deferral rule learned on member 1's logits, "
        "cross-fitted, at each costed policy's held-out cost; two members only)",
    )
    p.add_argument("--random-fraction", type=float, default=None, help="random policy (default 2w)")
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
        "and paired differences against single and ensemble in deltas.csv (0: off)",
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
    p.add_argument("--out", required=True, help="output folder (new, empty, or an earlier run)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an earlier run in --out (as a whole)"
    )
    p.add_argument("--quiet", action="store_true", help="do not print the table")
    add_console_options(p)
    p.add_argument("--no-plots", action="store_true", help="write no plots (faster)")
    return p.parse_args(argv)


def parse_macs(items: list[str]) -> dict[str, float]:
    """``["m0=0.39e9", ...]`` -> {member: MACs}; a clear error for anything else."""
    out: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            macs = float(value)
        except ValueError:
            macs = None
        if not name or macs is None:
            raise ValueError(f"--macs {item!r}: expected MEMBER=MACS, e.g. m0=0.39e9")
        if name in out:
            raise ValueError(f"--macs: member {name!r} given twice")
        out[name] = macs
    return out


def dataset_roles(args: argparse.Namespace) -> DatasetRoles:
    """Dataset name -> role, refusing a name given twice."""
    from vocabulary.roles import DatasetRoles

    pairs = [(args.heldout, "heldout"), (args.id, "id")]
    pairs += [(n, "shift") for n in args.shift] + [(n, "ood") for n in args.ood]
    return DatasetRoles.from_pairs(pairs)


SWEPT = ("width", "pass_fraction", "budget")  # PolicySettings fields with a list option


def sweep_plan(
    policies: list[str], base: PolicySettings, args: argparse.Namespace
) -> list[tuple[PolicySettings, list[str]]]:
    """(settings, policies) pairs: the policies without a sweep once (at ``base``), then each
    swept family over its own values (the other settings at their first value)."""
    from cascade.policy_registry import policy_entry

    swept_by = {p: policy_entry(p).sweep for p in policies}
    plan = [(base, [p for p in policies if swept_by[p] is None])]
    for field in SWEPT:
        names = [p for p in policies if swept_by[p] == field]
        plan += [(replace(base, **{field: v}), names) for v in getattr(args, field)]
    return [(s, names) for s, names in plan if names]


def run(args: argparse.Namespace) -> list[dict]:
    """Load once, evaluate every setting of the sweep, write the results; returns the rows."""
    from artifacts.experiment_logits import MEMBER_UNITS, load_experiment, member_macs
    from artifacts.output_paths import check_output_dir
    from artifacts.results import write_results
    from artifacts.run_folder import check_output_folder, staged_run_folder
    from cascade.bootstrap import Bootstrap
    from cascade.cost_to_target import GAIN_SHARES, check_gain_shares, is_cost_to_target
    from cascade.metric_registry import MetricSettings, check_report_points
    from cascade.offline import (
        EnsembleLogits,
        evaluate_cost_to_target,
        evaluate_headroom,
        evaluate_policies,
        prepare_experiment,
    )
    from cascade.orders import member_orders, order_label
    from cascade.policy_registry import PolicySettings, check_policies, policy_entry
    from cascade.progress import progress

    policies = check_policies([p.strip() for p in args.policies.split(",") if p.strip()])
    if len(set(args.score)) != len(args.score):
        raise ValueError(f"--score {' '.join(args.score)}: a score is given twice")
    roles = dataset_roles(args)
    check_report_points(
        args.risks, args.coverages, args.ood_tpr, args.scod_ratio, args.scod_beta, prefix="--"
    )
    risks, coverages = reported_with_target(args.target, args.risks, args.coverages)
    metric_settings = MetricSettings(
        risks,
        coverages,
        args.ood_tpr,
        args.definitions,
        args.scod_ratio,
        args.scod_beta,
        args.seed,
    )  # target and guarantee: from the policy settings
    base = PolicySettings(
        args.target, args.width[0], args.pass_fraction[0], args.random_fraction, args.seed,
        args.definitions, args.guarantee, args.guarantee_method, args.budget[0],
        args.budget_grid, args.budget_objective,
    )  # fmt: skip
    plan = sweep_plan(policies, base, args)
    for field in SWEPT:  # every value validated (by constructing it) before any work
        for value in getattr(args, field):
            replace(base, **{field: value})

    def is_first(name: str, settings: PolicySettings) -> bool:
        knob = policy_entry(name).sweep
        return knob is not None and getattr(settings, knob) == getattr(base, knob)

    shares = check_gain_shares(GAIN_SHARES if args.gain_shares is None else args.gain_shares)
    macs = parse_macs(args.macs)
    bootstrap = Bootstrap(args.bootstrap, args.bootstrap_seed)
    check_output_dir(args.out, "--out", [("--logits-dir", args.logits_dir)])
    check_output_folder(args.out, args.overwrite)
    data, member_cost = load_experiment(args.logits_dir, args.members, roles, macs)
    orders = member_orders(args.members, args.orders)
    _, cost_unit = member_macs(args.logits_dir, args.members, macs)
    rows, fitted_all, curves, temperatures = [], {}, {}, None
    cost_rows, costs = [], []  # after every other row: earlier rows keep their places
    headrooms = []
    for order in orders:
        picked = [args.members.index(m) for m in order]
        tag = order_label(order) if len(orders) > 1 else ""
        bootstrap.members = tag
        stage_macs = [member_cost[i] for i in picked]
        subset = {
            name: EnsembleLogits([d.logits[i] for i in picked], d.targets)
            for name, d in data.items()
        }
        for score in args.score:
            prepared = prepare_experiment(
                subset, roles, stage_macs, score, args.temperature_scaling
            )
            temperatures = prepared.temperatures  # fitted on logits: the same for every score
            steps = progress(
                plan, f"evaluating {tag or 'policies'} [{score}]", len(plan), unit="setting"
            )
            for policy_settings, names in steps:
                part_curves = {}
                part, fitted = evaluate_policies(
                    prepared, names, policy_settings, metric_settings,
                    None if args.no_plots else part_curves, bootstrap,
                )  # fmt: skip
                rows.extend({**r, "members": tag} if tag else r for r in part)
                curves.update({(*k[:3], tag): v for k, v in part_curves.items()})
                fitted_all.update(
                    {(p.name, p.setting, score, tag): p.to_dict() for p in fitted.values()}
                )
                if not args.no_headroom:  # at each family's first setting
                    first = {n: p for n, p in fitted.items() if is_first(n, policy_settings)}
                    headrooms.extend(
                        {**h, "score": score, "members": tag}
                        for h in evaluate_headroom(prepared, first, policy_settings)
                    )
            part, found = evaluate_cost_to_target(
                prepared, policies, shares, base, metric_settings, bootstrap
            )
            cost_rows.extend({**r, "members": tag} if tag else r for r in part)
            costs.extend({**cost_record(c), "score": score, "members": tag} for c in found)
    rows.extend(cost_rows)
    deltas = None
    if bootstrap.num:
        rows = bootstrap.annotate(rows)
        # the cost-to-target settings are a choice among the sweep's kind of settings: their
        # intervals are in metrics.csv; paired differences (and the report's family of tested
        # differences) stay those of the policies asked for
        deltas = bootstrap.delta_rows([r for r in rows if not is_cost_to_target(r["policy"])])
    with staged_run_folder(args.out) as staging:
        write_results(
            staging,
            rows,
            deltas=deltas,
            policies=fitted_all,
            members=[
                {"member": m, "macs": macs}
                for m, macs in zip(args.members, member_cost, strict=True)
            ],
            orders=[order_label(o) for o in orders] if len(orders) > 1 else None,
            curves=curves or None,
            extra={
                "cost_unit": cost_unit,
                "score": args.score[0] if len(args.score) == 1 else args.score,
                "target": args.target,
                "guarantee": args.guarantee,
                "guarantee_method": args.guarantee_method,
                "definitions": args.definitions,
                "bootstrap": {"resamples": args.bootstrap, "seed": args.bootstrap_seed}
                if args.bootstrap
                else None,
                "temperatures": temperatures.to_dict() if temperatures else None,
                "cost_to_target": costs or None,
                "headroom": headrooms or None,
            },
            quiet=args.quiet,
            shown_dir=args.out,
        )
    if cost_unit == MEMBER_UNITS and not args.quiet:
        print(f"note: costs are in {MEMBER_UNITS}; pass --macs MEMBER=MACS to weigh them")
    return rows


def reported_with_target(
    target: str, risks: list[float], coverages: list[float]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The reported risks and coverages, with the target's own point added when missing (a
    cov@R target reports cov@R, risk@C reports risk@C), so every table that shows the target
    (the cost-to-target section, the trade-off plot) has it."""
    from uncertainty.targets import parse_target

    goal = parse_target(target)
    risks, coverages = list(risks), list(coverages)
    if goal.task == "cov" and not any(abs(r - goal.value) < 1e-12 for r in risks):
        risks.append(goal.value)
    if goal.task == "risk" and not any(abs(c - goal.value) < 1e-12 for c in coverages):
        coverages.append(goal.value)
    return tuple(risks), tuple(coverages)


def cost_record(found) -> dict:
    """One ``summary.json`` entry of ``cost_to_target``: the family, the share asked, the knob
    value chosen on held-out (None: not reached), its held-out cost and share, and the
    ``policy`` (name) and ``setting`` its rows carry in ``metrics.csv``."""
    return {
        "policy": found.policy,
        "name": found.fitted.name if found.fitted is not None else None,
        "share": found.share,
        "knob": found.knob,
        "value": found.value,
        "heldout_cost": found.heldout_cost,
        "heldout_share": found.heldout_share,
        "setting": found.fitted.setting if found.fitted is not None else None,
    }


def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()
    if argv is None:  # the command, not a test calling main(): SIGTERM exits 143, no debris
        exit_on_sigterm("evaluation")
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--list-policies" in argv:
        from cascade.policy_registry import policy_table

        print(policy_table())
        return 0
    args = parse_args(argv)
    apply_console_options(args)
    try:
        run(args)
    except (ValueError, FileNotFoundError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"evaluated in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
