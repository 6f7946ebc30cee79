"""Offline driver: the same policies and decisions over in-memory logits (no model is run).

Loading (``window_cascades.artifacts.experiment_logits``) is separate from evaluating, so a sweep
over widths, targets or definitions reads the logits once. Per dataset, the per-sample outputs of
every ensemble prefix (``SampleOutputs``: confidence, top probability, correctness, ...) are
computed once; a policy then only decides exit stages from the prefixes' confidences
(``window_cascades.cascade.engine.exit_stages``, the decisions ``run_cascade`` makes online) and
gathers each sample's outputs at its exit stage, so each setting of a sweep costs O(N), not O(N x
C). The preparation itself is ``window_cascades.cascade.prepared_experiment`` (its names are
importable from here too).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from window_cascades.cascade.bootstrap import Bootstrap
from window_cascades.cascade.cost_to_target import CostToTarget, cost_to_target, has_cost_knob
from window_cascades.cascade.engine import exit_stages
from window_cascades.cascade.evaluation import policy_rows
from window_cascades.cascade.fitted import FittedCascade
from window_cascades.cascade.headroom import policy_headroom
from window_cascades.cascade.metric_registry import MetricSettings
from window_cascades.cascade.operating_point import policy_operating_points
from window_cascades.cascade.policies import CascadePolicy
from window_cascades.cascade.policy_registry import (
    FitInputs,
    PolicySettings,
    fit_policies,
    policy_entry,
)
from window_cascades.cascade.prepared_experiment import (
    EnsembleLogits,
    PreparedExperiment,
    dataset_prefix_outputs,
    mixture_logits,
    prefix_outputs,
    prepare_experiment,
    prepare_from_outputs,
)
from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.cascade.stage_scores import (
    Temperatures,
)
from window_cascades.uncertainty.probability_metrics import reliability_bins
from window_cascades.uncertainty.selective import risk_coverage_curve
from window_cascades.vocabulary.roles import DatasetRoles

__all__ = [
    "EnsembleLogits",
    "PreparedExperiment",
    "dataset_prefix_outputs",
    "mixture_logits",
    "prefix_outputs",
    "prepare_experiment",
    "prepare_from_outputs",
    "fit_inputs",
    "evaluate_policies",
    "evaluate_cost_to_target",
    "evaluate_headroom",
    "evaluate_fitted",
    "test_curves",
    "evaluate_experiment",
    "fitted_cascade",
    "fit_cascade",
]


def fit_inputs(
    prepared: PreparedExperiment, policies: list[str], policy_settings: PolicySettings
) -> FitInputs:
    """What the policies are fitted on: the held-out stage scores, the full ensemble's held-out
    outputs, the members' MACs, and the test mixture's scores when a policy needs them."""
    mixture = None
    if any(policy_entry(p).needs_mixture for p in policies):
        mixture = prepared.mixture_confidence(policy_settings.seed)
    final = prepared.prefix_outputs[prepared.roles.heldout][-1]  # the full ensemble
    return FitInputs(
        prepared.heldout_confidence,
        prepared.heldout_correct,
        mixture,
        prepared.roles.heldout,
        final.confidence,
        final.correct,
        prepared.stage_macs,
    )


def evaluate_policies(
    prepared: PreparedExperiment,
    policies: list[str],
    policy_settings: PolicySettings | None = None,
    metric_settings: MetricSettings | None = None,
    id_curves: dict | None = None,
    bootstrap: Bootstrap | None = None,
) -> tuple[list[dict], dict[str, CascadePolicy]]:
    """Fit the policies on the held-out dataset and evaluate every dataset.

    Args:
        prepared: the members' logits, roles and stage scores on every dataset
            (``window_cascades.cascade.prepared_experiment``).
        policies: the registered policies to fit and evaluate, by name.
        policy_settings: the target and the policies' parameters; None: the defaults (``cov@5``).
        metric_settings: the operating points to report; None: the defaults.
        id_curves: when given, filled with (policy, setting, score, "") (the rows'
            ``window_cascades.artifacts.results.run_key`` with an empty member order) -> {dataset:
            (coverage, risk)}, the risk-coverage curves of the policy's output on the ID and shifted
            sets.
        bootstrap: when given, collects every row's resampled values
            (``window_cascades.cascade.bootstrap``).
    """
    policy_settings = policy_settings or PolicySettings()
    inputs = fit_inputs(prepared, policies, policy_settings)
    fitted = fit_policies(policies, inputs, policy_settings)
    rows = evaluate_fitted(
        prepared, list(fitted.values()), policy_settings, metric_settings, id_curves, bootstrap
    )
    return rows, fitted


def evaluate_cost_to_target(
    prepared: PreparedExperiment,
    policies: list[str],
    shares: list[float],
    policy_settings: PolicySettings | None = None,
    metric_settings: MetricSettings | None = None,
    bootstrap: Bootstrap | None = None,
) -> tuple[list[dict], list[CostToTarget]]:
    """For every family among ``policies`` with a held-out cost knob, the cheapest setting that
    keeps each of ``shares`` of the ensemble's held-out gain
    (``window_cascades.cascade.cost_to_target``), evaluated on every dataset; its rows' ``policy``
    is ``<family>@gain<percent>``."""
    policy_settings = policy_settings or PolicySettings()
    families = [p for p in policies if has_cost_knob(p)]
    if not shares or not families:
        return [], []
    inputs = fit_inputs(prepared, families, policy_settings)
    found = [c for p in families for c in cost_to_target(p, inputs, policy_settings, shares)]
    reached = [c.fitted for c in found if c.fitted is not None]
    rows = evaluate_fitted(prepared, reached, policy_settings, metric_settings, None, bootstrap)
    return rows, found


def evaluate_headroom(
    prepared: PreparedExperiment,
    fitted: dict[str, CascadePolicy],
    policy_settings: PolicySettings,
) -> list[dict]:
    """For each fitted policy with a held-out cost knob, what a deferral rule that sees member
    1's logits reaches at the same held-out cost (``window_cascades.cascade.headroom``); two members
    only."""
    costed = [p for name, p in fitted.items() if has_cost_knob(name)]
    if not costed or len(prepared.stage_macs) != 2:
        return []
    if prepared.data is None:
        raise ValueError(
            "--headroom reads member 1's held-out logits: it is not available when the "
            "evaluation reads the outputs cache (--outputs-cache)"
        )
    inputs = fit_inputs(prepared, [], policy_settings)
    first_logits = prepared.data[prepared.roles.heldout].logits[0]
    found, cache = [], {}  # the learned rule once per pass fraction (policies often share one)
    for p in costed:
        f = policy_headroom(
            inputs, first_logits, p, policy_settings.target, policy_settings.seed, cache
        )
        if f is not None:
            found.append(f)
    return found


def evaluate_fitted(
    prepared: PreparedExperiment,
    fitted: list[CascadePolicy],
    policy_settings: PolicySettings,
    metric_settings: MetricSettings | None = None,
    id_curves: dict | None = None,
    bootstrap: Bootstrap | None = None,
) -> list[dict]:
    """Every dataset's metric rows under each fitted policy (see [`evaluate_policies`][])."""
    metric_settings = replace(
        metric_settings or MetricSettings(),
        target=policy_settings.target,
        guarantee=policy_settings.guarantee,
        guarantee_method=policy_settings.guarantee_method,
    )  # the operating point of the policies' target, as online
    targets = prepared.targets
    rows = []
    for policy in fitted:
        results = {}
        for name, stages in prepared.prefix_outputs.items():
            exits = exit_stages([s.confidence for s in stages], policy)
            results[name] = SampleOutputs.by_exit_stage(stages, exits)
        if id_curves is not None:  # members: set by the caller
            key = (policy.name, policy.setting, prepared.score_label, "")
            id_curves[key] = test_curves(results, prepared.roles)
        rows.extend(
            policy_rows(
                policy,
                prepared.score_label,
                results,
                targets,
                prepared.roles,
                prepared.stage_macs,
                metric_settings,
                bootstrap,
            )
        )
    return rows


RELIABILITY = ("reliability",)
"""The curves' key of the ID set's reliability bins (a tuple, so no dataset name can equal it)."""


def test_curves(
    outputs: dict[str, SampleOutputs], roles: DatasetRoles
) -> dict[str | tuple, tuple[torch.Tensor, ...]]:
    """{dataset: (coverage, risk)}: the risk-coverage curves of the ID set (first) and the
    shifted sets under one policy (online and offline plots); and under the key
    [`RELIABILITY`][], the ID set's reliability bins (mean top-label probability, accuracy,
    count; see [`window_cascades.uncertainty.probability_metrics.reliability_bins`][])."""
    names = [roles.id, *roles.names("shift")]
    curves: dict[str | tuple, tuple[torch.Tensor, ...]] = {}
    for name in names:
        curve = risk_coverage_curve(outputs[name].confidence, outputs[name].correct)
        curves[name] = (curve.coverage, curve.risk)
    ids = outputs[roles.id]
    curves[RELIABILITY] = reliability_bins(ids.top_prob, ids.correct)
    return curves


def evaluate_experiment(
    data: dict[str, EnsembleLogits],
    roles: DatasetRoles,
    stage_macs: list[float],
    policies: list[str],
    score: str = "msp",
    policy_settings: PolicySettings | None = None,
    metric_settings: MetricSettings | None = None,
    temperature_scaling: bool = False,
) -> tuple[list[dict], dict[str, CascadePolicy], Temperatures | None]:
    """Prepare and evaluate in one call.

    Returns:
        (tidy metric rows, fitted policies by name, fitted temperatures or None).
    """
    prepared = prepare_experiment(data, roles, stage_macs, score, temperature_scaling)
    rows, fitted = evaluate_policies(prepared, policies, policy_settings, metric_settings)
    return rows, fitted, prepared.temperatures


def fitted_cascade(
    prepared: PreparedExperiment,
    fitted: dict[str, CascadePolicy],
    policy_settings: PolicySettings,
    ood_tpr: float = 0.95,
) -> FittedCascade:
    """The fitted policies as a deployable cascade: with the prepared temperatures, how they
    were fitted (held-out split and size, score, target, definitions, guarantee, every policy
    parameter's value) and each policy's operating points on its held-out output
    (``window_cascades.cascade.operating_point.policy_operating_points``), as the calibration
    callback records them online.

    Args:
        prepared: the experiment the policies were fitted on.
        fitted: the fitted policies by name ([`evaluate_policies`][]' second value).
        policy_settings: the settings they were fitted with.
        ood_tpr: the share of the held-out output the OOD threshold accepts (fraction).
    """
    s, heldout = policy_settings, prepared.roles.heldout
    info = {
        "heldout": heldout,
        "heldout_size": prepared.prefix_outputs[heldout][0].num_samples,
        "score": prepared.score,
        "definitions": s.definitions,
        "target": s.target,
        "guarantee": s.guarantee,
        "guarantee_method": s.guarantee_method,
        "parameters": s.resolved(),
        "operating_points": policy_operating_points(
            prepared.prefix_outputs[heldout],
            fitted,
            s.target,
            s.definitions,
            s.guarantee,
            s.guarantee_method,
            ood_tpr,
        ),
    }
    return FittedCascade(dict(fitted), prepared.temperatures, info)


def fit_cascade(
    prepared: PreparedExperiment,
    policies: list[str],
    policy_settings: PolicySettings | None = None,
    ood_tpr: float = 0.95,
) -> FittedCascade:
    """Fit the named policies on the held-out split, as a deployable cascade (see
    [`fitted_cascade`][]); nothing is evaluated."""
    policy_settings = policy_settings or PolicySettings()
    inputs = fit_inputs(prepared, policies, policy_settings)
    fitted = fit_policies(policies, inputs, policy_settings)
    return fitted_cascade(prepared, fitted, policy_settings, ood_tpr)
