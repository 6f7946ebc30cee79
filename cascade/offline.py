"""Offline driver: the same policies and decisions over in-memory logits (no model is run).

Loading (``artifacts.experiment_logits``) is separate from evaluating, so a sweep over widths,
targets or definitions reads the logits once. Per dataset, the per-sample outputs of every
ensemble prefix (``SampleOutputs``: confidence, top probability, correctness, ...) are computed
once; a policy then only decides exit stages from the prefixes' confidences
(``cascade.engine.exit_stages``, the decisions ``run_cascade`` makes online) and gathers each
sample's outputs at its exit stage, so each setting of a sweep costs O(N), not O(N x C).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from cascade.bootstrap import Bootstrap
from cascade.cost_to_target import CostToTarget, cost_to_target, has_cost_knob
from cascade.engine import exit_stages
from cascade.evaluation import policy_rows
from cascade.headroom import policy_headroom
from cascade.metric_registry import MetricSettings
from cascade.policies import CascadePolicy
from cascade.policy_registry import FitInputs, PolicySettings, fit_policies, policy_entry
from cascade.sample_outputs import SampleOutputs
from cascade.stage_scores import (
    Temperatures,
    fit_temperatures,
    member_states,
    prefix_states,
    stage_confidences,
)
from uncertainty.probability_metrics import reliability_bins
from uncertainty.scod import scod_mixture
from uncertainty.scores import EnsembleState, check_score
from uncertainty.selective import risk_coverage_curve
from vocabulary.roles import DatasetRoles


@dataclass
class EnsembleLogits:
    """Cached logits of every member on one dataset (same samples, same order)."""

    logits: list[torch.Tensor]
    targets: torch.Tensor

    @property
    def num_samples(self) -> int:
        return self.targets.numel()


def mixture_logits(
    data: dict[str, EnsembleLogits], roles: DatasetRoles, ratio: float = 1.0, seed: int = 0
) -> list[torch.Tensor]:
    """Per member, logits of the unlabelled test mixture: ID test + pooled OOD sets at ``ratio``."""
    id_name, oods = roles.id, roles.ood
    if not oods:
        raise ValueError("window_adjusted needs at least one dataset with role 'ood'")
    pooled = [
        torch.cat([data[n].logits[k] for n in oods]) for k in range(len(data[id_name].logits))
    ]
    keep_id, keep_ood = scod_mixture(data[id_name].num_samples, pooled[0].shape[0], ratio, seed)
    return [
        torch.cat([z[keep_id], p[keep_ood]])
        for z, p in zip(data[id_name].logits, pooled, strict=True)
    ]


@dataclass
class PreparedExperiment:
    """Everything a sweep shares: logits, held-out stage scores and per-sample outputs.

    Attributes:
        data: logits per dataset (in their stored float dtype).
        roles: dataset -> role.
        stage_macs: MACs per member.
        score: the confidence score.
        temperatures: fitted temperatures or None.
        heldout_confidence: held-out scores of the ensembles of the first 1..M-1 members.
        heldout_correct: held-out correctness of the same ensembles.
        prefix_outputs: per dataset, the per-sample outputs of the ensembles of the first
            1..M members.
    """

    data: dict[str, EnsembleLogits]
    roles: DatasetRoles
    stage_macs: list[float]
    score: str
    temperatures: Temperatures | None
    heldout_confidence: list[torch.Tensor]
    heldout_correct: list[torch.Tensor]
    prefix_outputs: dict[str, list[SampleOutputs]]
    mixture_ratio: float = 1.0
    _mixture: dict = None

    def mixture_confidence(self, seed: int) -> list[torch.Tensor]:
        """Stage scores on the unlabelled test mixture (ID + pooled OOD), cached per seed."""
        self._mixture = self._mixture or {}
        if seed not in self._mixture:
            mix = mixture_logits(self.data, self.roles, self.mixture_ratio, seed)
            self._mixture[seed] = stage_confidences(mix, self.score, None, self.temperatures)[0]
        return self._mixture[seed]


ROWS_PER_CHUNK = 16384  # samples whose N x C softmax statistics are held at once


def dataset_prefix_outputs(
    member_logits: list[torch.Tensor],
    targets: torch.Tensor,
    score: str,
    temperatures: Temperatures | None = None,
    rows: int = ROWS_PER_CHUNK,
) -> list[SampleOutputs]:
    """Per-sample outputs of the ensembles of the first 1..M members on one dataset, computed
    ``rows`` samples at a time: every quantity is per sample, so only ``rows`` x C softmax
    statistics per member are held at once (a 270,000 x 1,000 dataset needed 7 x its logits'
    size when all were held), and the results equal one pass over all samples."""
    n = targets.numel()
    if n <= rows:
        return prefix_outputs(member_states(member_logits, temperatures, score), score,
                              targets)  # fmt: skip
    parts = [
        prefix_outputs(
            member_states([z[a : a + rows] for z in member_logits], temperatures, score),
            score,
            targets[a : a + rows],
        )  # fmt: skip
        for a in range(0, n, rows)
    ]
    return [SampleOutputs.concat([p[k] for p in parts]) for k in range(len(member_logits))]


def prepare_experiment(
    data: dict[str, EnsembleLogits],
    roles: DatasetRoles,
    stage_macs: list[float],
    score: str = "msp",
    temperature_scaling: bool = False,
    mixture_ratio: float = 1.0,
) -> PreparedExperiment:
    """Compute what every policy setting shares (once per sweep), one dataset at a time."""
    roles = DatasetRoles(roles)
    check_score(score)
    heldout = roles.heldout
    held = data[heldout]
    temperatures = fit_temperatures(held.logits, held.targets) if temperature_scaling else None
    outputs = {
        name: dataset_prefix_outputs(d.logits, d.targets, score, temperatures)
        for name, d in data.items()
    }
    # the held-out stage scores are the prefixes' outputs before the last member (the same
    # float32 confidences, stored as float64, and the same arg-max == target)
    confidence = [o.confidence.float() for o in outputs[heldout][:-1]]
    correct = [o.correct for o in outputs[heldout][:-1]]
    return PreparedExperiment(
        data, roles, stage_macs, score, temperatures, confidence, correct, outputs,
        mixture_ratio,
    )  # fmt: skip


def prefix_outputs(
    states: list[EnsembleState], score: str, targets: torch.Tensor
) -> list[SampleOutputs]:
    """Per-sample outputs of the ensembles of the first 1..M members (stage k exits)."""
    out = []
    for k, state in enumerate(prefix_states(states)):
        exit_stage = torch.full((targets.numel(),), k + 1, dtype=torch.long)
        conf = state.confidence(score)
        out.append(SampleOutputs.from_probs(state.probs.float(), conf, exit_stage, targets))
    return out


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
        prepared.heldout_confidence, prepared.heldout_correct, mixture, prepared.roles.heldout,
        final.confidence, final.correct, prepared.stage_macs,
    )  # fmt: skip


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
        id_curves: when given, filled with (policy, setting, score, "") (the rows'
            ``artifacts.results.run_key`` with an empty member order) -> {dataset: (coverage,
            risk)}, the risk-coverage curves of the policy's output on the ID and shifted sets.
        bootstrap: when given, collects every row's resampled values (``cascade.bootstrap``).
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
    keeps each of ``shares`` of the ensemble's held-out gain (``cascade.cost_to_target``),
    evaluated on every dataset; its rows' ``policy`` is ``<family>@gain<percent>``."""
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
    1's logits reaches at the same held-out cost (``cascade.headroom``); two members only."""
    costed = [p for name, p in fitted.items() if has_cost_knob(name)]
    if not costed or len(prepared.stage_macs) != 2:
        return []
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
    """Every dataset's metric rows under each fitted policy (see :func:`evaluate_policies`)."""
    metric_settings = replace(
        metric_settings or MetricSettings(),
        target=policy_settings.target,
        guarantee=policy_settings.guarantee,
        guarantee_method=policy_settings.guarantee_method,
    )  # the operating point of the policies' target, as online
    targets = {name: d.targets for name, d in prepared.data.items()}
    rows = []
    for policy in fitted:
        results = {}
        for name, stages in prepared.prefix_outputs.items():
            exits = exit_stages([s.confidence for s in stages], policy)
            results[name] = SampleOutputs.by_exit_stage(stages, exits)
        if id_curves is not None:
            key = (policy.name, policy.setting, prepared.score, "")  # members: set by the caller
            id_curves[key] = test_curves(results, prepared.roles)
        rows.extend(
            policy_rows(
                policy,
                prepared.score,
                results,
                targets,
                prepared.roles,
                prepared.stage_macs,
                metric_settings,
                bootstrap,
            )  # fmt: skip
        )
    return rows


RELIABILITY = ("reliability",)  # the curves' key of the ID set's reliability bins (no name)


def test_curves(
    outputs: dict[str, SampleOutputs], roles: DatasetRoles
) -> dict[str | tuple, tuple[torch.Tensor, ...]]:
    """{dataset: (coverage, risk)}: the risk-coverage curves of the ID set (first) and the
    shifted sets under one policy (online and offline plots); and under the key
    :data:`RELIABILITY`, the ID set's reliability bins (mean top-label probability, accuracy,
    count; see :func:`uncertainty.probability_metrics.reliability_bins`)."""
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
