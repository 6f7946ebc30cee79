"""The offline evaluator's sweep: every member order, score and setting of a plan evaluated on
logits read once, with the cost-to-target settings and the headroom (nothing written here)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

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
    scores: dict | None = None
    samples: dict | None = None


def member_scores_of(args, plan: OfflinePlan, data: dict) -> dict:
    """Per score run that needs them, every member's own scores (parameters chosen, held-out
    standardised), computed once for all member orders; features and training statistics are
    read only when a feature score is asked."""
    from window_cascades.artifacts.experiment_features import (
        evaluated_logits,
        feature_scores_asked,
        load_member_features,
    )
    from window_cascades.cascade.member_scores import score_members
    from window_cascades.cascade.prepared_experiment import needs_member_scores
    from window_cascades.uncertainty.score_registry import score_entry

    asked = [(r.score, dict(r.pinned)) for r in plan.scores]
    features = None
    if feature_scores_asked(asked):
        features = load_member_features(args.logits_dir, args.members, plan.roles, data, asked)
    logits, targets = evaluated_logits(data, plan.roles)
    out = {}
    for run in plan.scores:
        if needs_member_scores(score_entry(run.score)):
            out[run] = score_members(
                run.score,
                logits,
                targets,
                plan.roles,
                args.members,
                features,
                args.score_selection,
                dict(run.pinned),
            )
    return out


def _selection_record(run, prepared, order: str) -> dict | None:
    """What ``summary.json`` records of a run's parameter choice (None: nothing chosen)."""
    if prepared.member_scores is not None:
        return {"members": prepared.member_scores.summary()}
    if prepared.probs_choices is not None:
        return {"stages": [c.to_dict() for c in prepared.probs_choices], "members": order}
    return None


def evaluate_sweep(args: argparse.Namespace, plan: OfflinePlan) -> SweepResults:
    """Read the logits once, then evaluate every member order, score and setting of the sweep,
    the cost-to-target settings and the headroom; writes nothing."""
    from window_cascades.artifacts.experiment_logits import load_experiment, member_macs
    from window_cascades.cascade.offline import EnsembleLogits, prepare_experiment
    from window_cascades.cascade.orders import member_orders, order_label

    if args.outputs_cache is not None:
        return evaluate_sweep_from_cache(args, plan)
    memory_note(args.logits_dir, args.members, list(plan.roles))
    data, member_cost = load_experiment(args.logits_dir, args.members, plan.roles, plan.macs)
    check_distinct_sets(data, plan.roles)
    orders = member_orders(args.members, args.orders)
    _, cost_unit = member_macs(args.logits_dir, args.members, plan.macs)
    found = SweepResults([], {}, {}, None, [], [], None, member_cost, cost_unit)
    found.samples = {
        name: {"n": d.num_samples, "of": d.num_samples}
        for name, d in data.items()
        if name in plan.roles.evaluated()
    }
    scored = member_scores_of(args, plan, data)
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
        for run in plan.scores:
            prepared = prepare_experiment(
                subset,
                plan.roles,
                stage_macs,
                run.score,
                args.temperature_scaling,
                member_scores=scored[run].subset(picked) if run in scored else None,
                selection=args.score_selection,
                pinned=dict(run.pinned),
            )
            found.temperatures = prepared.temperatures  # on logits: the same for every score
            record = _selection_record(run, prepared, tag)
            if record is not None:
                found.scores = found.scores or {}
                found.scores.setdefault(run.label, {"rule": args.score_selection, "orders": {}})
                found.scores[run.label]["orders"][tag or "given"] = record
            _evaluate_settings(args, plan, prepared, run.label, tag, found)
            cost_rows += _evaluate_costs(plan, prepared, run.label, tag, found)
    found.rows.extend(cost_rows)
    found.orders = [order_label(o) for o in orders] if len(orders) > 1 else None
    return found


def evaluate_sweep_from_cache(args: argparse.Namespace, plan: OfflinePlan) -> SweepResults:
    """The sweep of [`evaluate_sweep`][] from the outputs cache
    (``window_cascades.artifacts.outputs_cache``): per member order and score, every
    evaluated dataset's prefix outputs are read from the cache, or computed from the logits a
    block of rows at a time and written there first; no logits are held."""
    from window_cascades.artifacts.experiment_logits import member_macs
    from window_cascades.artifacts.outputs_cache import default_cache_dir, prepare_from_cache
    from window_cascades.cascade.orders import member_orders, order_label

    cache_dir = args.outputs_cache or default_cache_dir(args.logits_dir)
    member_cost, cost_unit = member_macs(args.logits_dir, args.members, plan.macs)
    orders = member_orders(args.members, args.orders)
    found = SweepResults([], {}, {}, None, [], [], None, member_cost, cost_unit)
    cost_rows, temperatures = [], {}
    written = set()
    for order in orders:
        picked = [args.members.index(m) for m in order]
        tag = order_label(order) if len(orders) > 1 else ""
        plan.bootstrap.members = tag
        stage_macs = [member_cost[i] for i in picked]
        for run in plan.scores:
            prepared, stats = prepare_from_cache(
                args.logits_dir,
                list(order),
                plan.roles,
                stage_macs,
                run.score,
                cache_dir,
                args.temperature_scaling,
                temperatures=temperatures.get(tuple(order)),
            )
            temperatures[tuple(order)] = prepared.temperatures
            found.temperatures = prepared.temperatures
            written.update(str(r.path) for r in stats.values() if not r.reused)
            found.samples = found.samples or {
                name: {"n": r.targets.numel(), "of": r.targets.numel()} for name, r in stats.items()
            }
            _evaluate_settings(args, plan, prepared, run.label, tag, found)
            cost_rows += _evaluate_costs(plan, prepared, run.label, tag, found)
    found.rows.extend(cost_rows)
    found.orders = [order_label(o) for o in orders] if len(orders) > 1 else None
    if not args.quiet:
        print(
            f"outputs cache {cache_dir}: {len(written)} file(s) written from the logits"
            if written
            else f"outputs cache {cache_dir}: read, no logits read"
        )
    return found


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's ``MemAvailable``), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_note(logits_dir: str, members: list[str], datasets: list[str]) -> None:
    """Print a note (standard error) when the logits about to be held take more than half the
    available memory: ``--outputs-cache`` evaluates them a block of rows at a time."""
    from window_cascades.artifacts.cached_logits import find_logits_file

    try:
        total = sum(
            find_logits_file(logits_dir, m, name).stat().st_size
            for m in members
            for name in datasets
        )
    except (OSError, ValueError):
        return  # the loading names the problem
    available = available_memory()
    if available is not None and total > available / 2:
        print(
            f"note: the logits take {total / 1e9:.1f} GB and {available / 1e9:.1f} GB of memory "
            "is available; --outputs-cache evaluates them a block of rows at a time and keeps a "
            "few numbers per sample",
            file=sys.stderr,
        )


def check_distinct_sets(data: dict, roles) -> None:
    """Refuse an ``ood_val`` set whose logits are those of an evaluated set: parameters would
    be chosen on a test set."""
    import torch

    for name in roles.ood_val:
        for other in roles.evaluated():
            a, b = data[name].logits[0], data[other].logits[0]
            if a.shape == b.shape and torch.equal(a, b):
                raise ValueError(
                    f"--ood-val {name}: its logits are those of {other!r} ({roles[other]}); "
                    "parameters are never chosen on a set that is evaluated: give another "
                    "OOD validation set"
                )


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
