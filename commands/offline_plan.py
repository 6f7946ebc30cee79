"""The offline evaluator's plan: every option checked and turned into what the sweep follows
(policies, dataset roles, reported metrics, settings per step, cost-to-target shares) before any
logits are read."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from window_cascades.cascade.bootstrap import Bootstrap
    from window_cascades.cascade.metric_registry import MetricSettings
    from window_cascades.cascade.policy_registry import PolicySettings
    from window_cascades.vocabulary.roles import DatasetRoles


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
    from window_cascades.vocabulary.roles import DatasetRoles

    pairs = [(args.heldout, "heldout"), (args.id, "id")]
    pairs += [(n, "shift") for n in args.shift] + [(n, "ood") for n in args.ood]
    return DatasetRoles.from_pairs(pairs)


def sweep_plan(
    policies: list[str], base: PolicySettings, args: argparse.Namespace
) -> list[tuple[PolicySettings, list[str]]]:
    """(settings, policies) pairs: the policies without a sweep once (at ``base``), then each
    swept family over its own values (the other settings at their first value). The swept
    parameters are the ones the registered policies declare as their sweep."""
    from window_cascades.cascade.policy_registry import policy_entry, swept_parameters

    swept_by = {p: policy_entry(p).sweep for p in policies}
    plan = [(base, [p for p in policies if swept_by[p] is None])]
    for field in swept_parameters():
        names = [p for p in policies if swept_by[p] == field]
        plan += [(base.replace(**{field: v}), names) for v in getattr(args, field)]
    return [(s, names) for s, names in plan if names]


def policy_settings(args: argparse.Namespace) -> PolicySettings:
    """The settings at the first value of every swept parameter, every value of a swept
    parameter checked (by building it) before any work."""
    from window_cascades.cascade.policy_parameters import declared_parameters
    from window_cascades.cascade.policy_registry import PolicySettings, swept_parameters

    swept = swept_parameters()
    values = {
        name: getattr(args, name)[0] if name in swept else getattr(args, name)
        for name in declared_parameters()
    }
    base = PolicySettings(
        args.target,
        seed=args.seed,
        definitions=args.definitions,
        guarantee=args.guarantee,
        guarantee_method=args.guarantee_method,
        **values,
    )
    for name in swept:
        for value in getattr(args, name)[1:]:
            base.replace(**{name: value})
    return base


def reported_with_target(
    target: str, risks: list[float], coverages: list[float]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The reported risks and coverages, with the target's own point added when missing (a
    cov@R target reports cov@R, risk@C reports risk@C), so every table that shows the target
    (the cost-to-target section, the trade-off plot) has it."""
    from window_cascades.uncertainty.targets import parse_target

    goal = parse_target(target)
    risks, coverages = list(risks), list(coverages)
    if goal.task == "cov" and not any(abs(r - goal.value) < 1e-12 for r in risks):
        risks.append(goal.value)
    if goal.task == "risk" and not any(abs(c - goal.value) < 1e-12 for c in coverages):
        coverages.append(goal.value)
    return tuple(risks), tuple(coverages)


@dataclass
class OfflinePlan:
    """What a run evaluates, checked before any logits are read.

    Attributes:
        policies: the registered policies asked for; roles: dataset -> role;
        metric_settings: what is reported; base: the policies' settings (first sweep values);
        plan: (settings, policies) per step of the sweep; shares: the cost-to-target shares;
        macs: MACs per member from ``--macs``; bootstrap: the resamples.
    """

    policies: list[str]
    roles: DatasetRoles
    metric_settings: MetricSettings
    base: PolicySettings
    plan: list[tuple[PolicySettings, list[str]]]
    shares: list[float]
    macs: dict[str, float]
    bootstrap: Bootstrap

    def is_first(self, name: str, settings: PolicySettings) -> bool:
        """Whether ``settings`` is the first of ``name``'s sweep (where headroom is given)."""
        from window_cascades.cascade.policy_registry import policy_entry

        knob = policy_entry(name).sweep
        return knob is not None and getattr(settings, knob) == getattr(self.base, knob)


def offline_plan(args: argparse.Namespace) -> OfflinePlan:
    """Check every option and build the plan (raises ValueError naming the option)."""
    from window_cascades.cascade.bootstrap import Bootstrap
    from window_cascades.cascade.cost_to_target import GAIN_SHARES, check_gain_shares
    from window_cascades.cascade.metric_registry import MetricSettings, check_report_points
    from window_cascades.cascade.policy_registry import check_policies, default_policies

    asked = default_policies() if args.policies is None else args.policies.split(",")
    policies = check_policies([p.strip() for p in asked if p.strip()])
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
    base = policy_settings(args)
    plan = sweep_plan(policies, base, args)
    shares = check_gain_shares(GAIN_SHARES if args.gain_shares is None else args.gain_shares)
    return OfflinePlan(
        policies,
        roles,
        metric_settings,
        base,
        plan,
        shares,
        parse_macs(args.macs),
        Bootstrap(args.bootstrap, args.bootstrap_seed),
    )
