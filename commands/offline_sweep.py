"""The offline evaluator's sweep: every member order, score and setting of a plan evaluated on
logits read once, with the cost-to-target settings and the headroom (nothing written here)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from window_cascades.commands.offline_plan import OfflinePlan


@dataclass
class SweepResults:
    """What a sweep found: metric rows (cost-to-target rows last), fitted policies by run key,
    risk-coverage curves, temperatures, ``cost_to_target`` and ``headroom`` records, the member
    orders' labels (None for one order), MACs per member, the cost unit and each dataset's
    sample count (``{"n": N, "of": N}``: cached logits are evaluated whole)."""

    rows: list[dict]
    fitted: dict
    curves: dict
    temperatures: object
    costs: list[dict]
    headrooms: list[dict]
    orders: list[str] | None
    member_cost: list[float]
    cost_unit: str
    samples: dict | None = None


def evaluate_sweep(args: argparse.Namespace, plan: OfflinePlan) -> SweepResults:
    """Read the logits once, then evaluate every member order, score and setting of the sweep,
    the cost-to-target settings and the headroom; writes nothing."""
    from window_cascades.artifacts.experiment_logits import load_experiment, member_macs
    from window_cascades.cascade.offline import (
        EnsembleLogits,
        evaluate_cost_to_target,
        evaluate_headroom,
        evaluate_policies,
        prepare_experiment,
    )
    from window_cascades.cascade.orders import member_orders, order_label
    from window_cascades.cascade.progress import progress

    roles, metric_settings, bootstrap = plan.roles, plan.metric_settings, plan.bootstrap
    macs = plan.macs
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
                plan.plan,
                f"evaluating {tag or 'policies'} [{score}]",
                len(plan.plan),
                unit="setting",
            )
            for policy_settings, names in steps:
                part_curves = {}
                part, fitted = evaluate_policies(
                    prepared,
                    names,
                    policy_settings,
                    metric_settings,
                    None if args.no_plots else part_curves,
                    bootstrap,
                )
                rows.extend({**r, "members": tag} if tag else r for r in part)
                curves.update({(*k[:3], tag): v for k, v in part_curves.items()})
                fitted_all.update(
                    {(p.name, p.setting, score, tag): p.to_dict() for p in fitted.values()}
                )
                if not args.no_headroom:  # at each family's first setting
                    first = {n: p for n, p in fitted.items() if plan.is_first(n, policy_settings)}
                    headrooms.extend(
                        {**h, "score": score, "members": tag}
                        for h in evaluate_headroom(prepared, first, policy_settings)
                    )
            part, found = evaluate_cost_to_target(
                prepared, plan.policies, plan.shares, plan.base, metric_settings, bootstrap
            )
            cost_rows.extend({**r, "members": tag} if tag else r for r in part)
            costs.extend({**cost_record(c), "score": score, "members": tag} for c in found)
    rows.extend(cost_rows)
    return SweepResults(
        rows,
        fitted_all,
        curves,
        temperatures,
        costs,
        headrooms,
        [order_label(o) for o in orders] if len(orders) > 1 else None,
        member_cost,
        cost_unit,
        {name: {"n": d.num_samples, "of": d.num_samples} for name, d in data.items()},
    )


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
