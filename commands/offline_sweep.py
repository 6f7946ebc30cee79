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
    from window_cascades.cascade.offline import EnsembleLogits, prepare_experiment
    from window_cascades.cascade.orders import member_orders, order_label

    data, member_cost = load_experiment(args.logits_dir, args.members, plan.roles, plan.macs)
    orders = member_orders(args.members, args.orders)
    _, cost_unit = member_macs(args.logits_dir, args.members, plan.macs)
    found = SweepResults([], {}, {}, None, [], [], None, member_cost, cost_unit)
    found.samples = {name: {"n": d.num_samples, "of": d.num_samples} for name, d in data.items()}
    cost_rows = []  # after every other row: earlier rows keep their places
    for order in orders:
        picked = [args.members.index(m) for m in order]
        tag = order_label(order) if len(orders) > 1 else ""
        plan.bootstrap.members = tag
        stage_macs = [member_cost[i] for i in picked]
        subset = {
            name: EnsembleLogits([d.logits[i] for i in picked], d.targets)
            for name, d in data.items()
        }
        for score in args.score:
            prepared = prepare_experiment(
                subset, plan.roles, stage_macs, score, args.temperature_scaling
            )
            found.temperatures = prepared.temperatures  # on logits: the same for every score
            _evaluate_settings(args, plan, prepared, score, tag, found)
            cost_rows += _evaluate_costs(plan, prepared, score, tag, found)
    found.rows.extend(cost_rows)
    found.orders = [order_label(o) for o in orders] if len(orders) > 1 else None
    return found


def _tagged(rows: list[dict], tag: str) -> list[dict]:
    """Rows with their member order (``members``) when several orders are evaluated."""
    return [{**r, "members": tag} for r in rows] if tag else list(rows)


def _evaluate_settings(
    args, plan: OfflinePlan, prepared, score: str, tag: str, found: SweepResults
) -> None:
    """Every setting of the plan on one prepared order and score: rows, fitted policies and
    curves into ``found``, and the headroom at each family's first setting."""
    from window_cascades.cascade.offline import evaluate_headroom, evaluate_policies
    from window_cascades.cascade.progress import progress

    label = f"evaluating {tag or 'policies'} [{score}]"
    for policy_settings, names in progress(plan.plan, label, len(plan.plan), unit="setting"):
        part_curves = {}
        part, fitted = evaluate_policies(
            prepared,
            names,
            policy_settings,
            plan.metric_settings,
            None if args.no_plots else part_curves,
            plan.bootstrap,
        )
        found.rows.extend(_tagged(part, tag))
        found.curves.update({(*k[:3], tag): v for k, v in part_curves.items()})
        found.fitted.update({(p.name, p.setting, score, tag): p.to_dict() for p in fitted.values()})
        if args.headroom:  # at each family's first setting
            first = {n: p for n, p in fitted.items() if plan.is_first(n, policy_settings)}
            found.headrooms.extend(
                {**h, "score": score, "members": tag}
                for h in evaluate_headroom(prepared, first, policy_settings)
            )


def _evaluate_costs(
    plan: OfflinePlan, prepared, score: str, tag: str, found: SweepResults
) -> list[dict]:
    """The cost-to-target settings of one prepared order and score: their records into
    ``found``; returns their rows (appended after every other row)."""
    from window_cascades.cascade.offline import evaluate_cost_to_target

    part, costs = evaluate_cost_to_target(
        prepared, plan.policies, plan.shares, plan.base, plan.metric_settings, plan.bootstrap
    )
    found.costs.extend({**cost_record(c), "score": score, "members": tag} for c in costs)
    return _tagged(part, tag)


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
