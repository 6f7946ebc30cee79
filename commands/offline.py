"""The offline evaluator command (``scripts/evaluate_logits.py``, ``window-cascades
evaluate-logits``): cached logits in, results out as one unit. Its options and usage are in
``window_cascades.commands.offline_options``, the plan they make in
``window_cascades.commands.offline_plan``, the sweep in
``window_cascades.commands.offline_sweep``."""

from __future__ import annotations

import argparse
import sys
import time

from window_cascades.artifacts.folder_claim import release_output_folder
from window_cascades.commands.console import apply_console_options
from window_cascades.commands.interrupts import exit_on_sigterm
from window_cascades.commands.offline_options import parse_base, parse_policy_options
from window_cascades.commands.offline_preflight import preflight
from window_cascades.commands.plugins import PluginError, load_command_plugins, plugin_error


def run(args: argparse.Namespace) -> list[dict]:
    """Check the options and the output folder, evaluate the sweep, write the results as one
    unit; returns the rows. The output folder is claimed here unless this process holds it
    already (``main`` claims it before torch is imported)."""
    from window_cascades.artifacts.experiment_logits import MEMBER_UNITS
    from window_cascades.artifacts.folder_claim import claimed, release_output_folder
    from window_cascades.artifacts.output_paths import check_output_dir
    from window_cascades.artifacts.results import write_results
    from window_cascades.artifacts.run_folder import check_output_folder, staged_run_folder
    from window_cascades.cascade.cost_to_target import is_cost_to_target
    from window_cascades.cascade.metric_registry import bootstrap_record
    from window_cascades.commands.offline_plan import offline_plan
    from window_cascades.commands.offline_sweep import evaluate_sweep

    plan = offline_plan(args)
    if not claimed(args.out):
        check_output_dir(args.out, "--out", [("--logits-dir", args.logits_dir)])
        check_output_folder(args.out, args.overwrite)
    try:
        found = evaluate_sweep(args, plan)
        rows, bootstrap = found.rows, plan.bootstrap
        deltas = None
        if bootstrap.num:
            rows = bootstrap.annotate(rows)
            # the cost-to-target settings are a choice among the sweep's kind of settings: their
            # intervals are in metrics.csv; paired differences (and the report's family of tested
            # differences) stay those of the policies asked for
            asked = [r for r in rows if not is_cost_to_target(r["policy"])]
            deltas = bootstrap.delta_rows(asked)
        with staged_run_folder(args.out) as staging:
            write_results(
                staging,
                rows,
                deltas=deltas,
                policies=found.fitted,
                members=[
                    {"member": m, "macs": macs}
                    for m, macs in zip(args.members, found.member_cost, strict=True)
                ],
                orders=found.orders,
                samples=found.samples,
                curves=found.curves or None,
                extra={
                    "cost_unit": found.cost_unit,
                    "score": args.score[0] if len(args.score) == 1 else args.score,
                    "target": args.target,
                    "guarantee": args.guarantee,
                    "guarantee_method": args.guarantee_method,
                    "definitions": args.definitions,
                    "bootstrap": bootstrap_record(args.bootstrap, args.bootstrap_seed),
                    "temperatures": found.temperatures.to_dict() if found.temperatures else None,
                    "cost_to_target": found.costs or None,
                    "headroom": found.headrooms or None,
                    **({"score_parameters": found.scores} if found.scores else {}),
                },
                quiet=args.quiet,
                shown_dir=args.out,
            )
        if found.cost_unit == MEMBER_UNITS and not args.quiet:
            print(f"note: costs are in {MEMBER_UNITS}; pass --macs MEMBER=MACS to weigh them")
        return rows
    finally:  # an error before the swap: a process that goes on may claim the folder again
        release_output_folder(args.out)


def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()
    if argv is None:  # the command, not a test calling main(): SIGTERM exits 143, no debris
        exit_on_sigterm("evaluation")
    argv = sys.argv[1:] if argv is None else list(argv)
    try:  # before the parser: a plugin policy's parameters are options
        _, argv = load_command_plugins(argv)
    except PluginError as err:
        return plugin_error(err, argv)
    if "--list-policies" in argv:
        from window_cascades.cascade.policy_registry import policy_table

        print(policy_table())
        return 0
    if "--list-scores" in argv:
        from window_cascades.uncertainty.score_registry import score_table

        print(score_table())
        return 0
    args, rest = parse_base(argv)  # no torch yet: the refusals that need no data come first
    apply_console_options(args)
    try:
        preflight(args)
    except (ValueError, FileNotFoundError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        parse_policy_options(args, rest)
        run(args)
    except (ValueError, FileNotFoundError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        release_output_folder(args.out)
    if not args.quiet:
        print(f"evaluated in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
