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
    pairs += [(args.train, "train")] if getattr(args, "train", None) else []
    pairs += [(n, "ood_val") for n in getattr(args, "ood_val", [])]
    return DatasetRoles.from_pairs(pairs)


@dataclass(frozen=True)
class ScoreRun:
    """One score of the sweep at its pinned parameters (several values of a pinned parameter
    give one run each).

    Attributes:
        score: the registered score.
        pinned: the parameters fixed by ``--score-param`` (the others are chosen by the rule).
        label: the rows' ``score`` column (``knn(k=10)``; the name alone when nothing is pinned).
    """

    score: str
    pinned: tuple[tuple[str, object], ...] = ()
    label: str = ""


def parse_score_params(items: list[str], scores: list[str]) -> dict[str, dict[str, list]]:
    """``["knn.k=10,50", "ash.variant=s"]`` -> {score: {parameter: [values]}}, every value
    checked by the parameter's declaration (raises ValueError naming the option)."""
    from window_cascades.uncertainty.score_registry import score_entry

    out: dict[str, dict[str, list]] = {}
    for item in items:
        key, _, text = item.partition("=")
        score, _, name = key.partition(".")
        if not (score and name and text):
            raise ValueError(f"--score-param {item!r}: expected SCORE.NAME=VALUE, e.g. knn.k=10")
        if score not in scores:
            raise ValueError(f"--score-param {item!r}: {score!r} is not one of --scores {scores}")
        declared = score_entry(score).parameter(name)
        try:
            values = [declared.validate(v.strip()) for v in text.split(",")]
        except ValueError as err:
            raise ValueError(f"--score-param {item!r}: {err}") from None
        if name in out.setdefault(score, {}):
            raise ValueError(f"--score-param: {score}.{name} is given twice")
        out[score][name] = values
    return out


def score_runs(scores: list[str], params: dict[str, dict[str, list]]) -> list[ScoreRun]:
    """The sweep's scores: each score once per combination of its pinned values."""
    import itertools

    from window_cascades.cascade.member_scores import score_label

    runs = []
    for score in scores:
        pinned = params.get(score, {})
        names = list(pinned)
        for values in itertools.product(*(pinned[n] for n in names)):
            fixed = dict(zip(names, values, strict=True))
            runs.append(ScoreRun(score, tuple(fixed.items()), score_label(score, fixed)))
    return runs


def check_score_inputs(scores: list[str], roles: DatasetRoles) -> None:
    """Refuse, before any file is read, a score whose statistics need a training split when
    no ``--train`` is given."""
    from window_cascades.uncertainty.score_registry import score_entry

    for score in scores:
        if score_entry(score).statistics and roles.train is None:
            raise ValueError(
                f"--scores {score}: it fits statistics of the training split; give --train NAME "
                "(the dataset holding the members' training features, e.g. cached from a data "
                "config entry with role: train, source: train)"
            )


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
        macs: MACs per member from ``--macs``; bootstrap: the resamples;
        scores: the scores of the sweep at their pinned parameters.
    """

    policies: list[str]
    roles: DatasetRoles
    metric_settings: MetricSettings
    base: PolicySettings
    plan: list[tuple[PolicySettings, list[str]]]
    shares: list[float]
    macs: dict[str, float]
    bootstrap: Bootstrap
    scores: list[ScoreRun] = None

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
        raise ValueError(f"--scores {','.join(args.score)}: a score is given twice")
    roles = dataset_roles(args)
    check_score_inputs(args.score, roles)
    runs = score_runs(args.score, parse_score_params(args.score_param, args.score))
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
        runs,
    )
