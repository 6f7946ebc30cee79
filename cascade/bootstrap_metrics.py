"""Resampled versions of the built-in metrics: B bootstrap values in one pass.

Each function here takes a :class:`Resampled` (one dataset's outputs under one policy and the
B resamples' index draws) and returns {key: B values}, equal to the registered metric of the
same name (``cascade.builtin_metrics``) evaluated on each resample's repeated samples. A metric
without an entry here, or one that returns None (the ``paper`` definitions, whose per-sample
curves count every repeat as its own point), is bootstrapped by evaluating it on every
resample in turn: slower, the same values. Adding one::

    @register_resampled_metric("my_metric")
    def _my_metric(r: Resampled) -> dict[str, torch.Tensor] | None: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch

from cascade.metric_registry import MetricInputs, percent_key
from uncertainty.failure_detection import weighted_failure_auroc, weighted_failure_fpr
from uncertainty.ood_detection import weighted_aupr, weighted_auroc, weighted_fpr
from uncertainty.probability_metrics import weighted_calibration_error
from uncertainty.scod import scod_mixture
from uncertainty.selective import weighted_oracle_aurc
from uncertainty.weighted_curve import WeightedCurve, draw_counts, weighted_mean


@dataclass
class Resampled:
    """One dataset under one policy, and B resamples of it and of the ID test set.

    Attributes:
        inputs: the metric inputs of the whole sample (outputs, ID outputs, settings, ...).
        index: B x N draws (indices into the dataset) of the dataset's resamples.
        id_index: B x N_id draws of the ID set's resamples (the ones of the ID set's rows).
    """

    inputs: MetricInputs
    index: torch.Tensor
    id_index: torch.Tensor

    @cached_property
    def weights(self) -> torch.Tensor:
        return draw_counts(self.index, self.inputs.outputs.num_samples)

    @cached_property
    def id_weights(self) -> torch.Tensor:
        return draw_counts(self.id_index, self.inputs.id_outputs.num_samples)

    @cached_property
    def curve(self) -> WeightedCurve:
        out = self.inputs.outputs
        return WeightedCurve(out.confidence, ~out.correct.bool(), self.index)

    @cached_property
    def scod_curve(self) -> WeightedCurve:
        """The SCOD mixture of each resample: the fixed-seed subsample taken of its draws."""
        s, ids, ood = self.inputs.settings, self.inputs.id_outputs, self.inputs.outputs
        n_id, n_ood = ids.num_samples, ood.num_samples
        keep_id, keep_ood = scod_mixture(n_id, n_ood, s.scod_ratio, s.scod_seed)
        draws = torch.cat([self.id_index[:, keep_id], self.index[:, keep_ood] + n_id], 1)
        conf = torch.cat([ids.confidence, ood.confidence])
        loss = torch.cat(
            [(~ids.correct.bool()).double(), torch.full((ood.num_samples,), s.scod_beta).double()]
        )
        is_id = torch.cat([torch.ones(ids.num_samples), torch.zeros(ood.num_samples)]).bool()
        return WeightedCurve(conf, loss, draws, coverage_mask=is_id)

    @property
    def standard(self) -> bool:
        return self.inputs.definitions.name == "standard"

    def constant(self, value: float) -> torch.Tensor:
        return torch.full((self.index.shape[0],), float(value), dtype=torch.float64)


ResampledMetric = Callable[[Resampled], "dict[str, torch.Tensor] | None"]
_RESAMPLED: dict[str, ResampledMetric] = {}


def register_resampled_metric(name: str) -> Callable:
    """Decorator: the resampled version of the registered metric ``name``."""

    def add(fn: ResampledMetric) -> ResampledMetric:
        _RESAMPLED[name] = fn
        return fn

    return add


def resampled_metric(name: str) -> ResampledMetric | None:
    return _RESAMPLED.get(name)


@register_resampled_metric("acc")
def _acc(r: Resampled):
    return {"acc": weighted_mean(r.inputs.outputs.correct, r.weights)}


@register_resampled_metric("nll")
def _nll(r: Resampled):
    nll = -torch.log(r.inputs.outputs.target_prob.double().clamp_min(1e-12))
    return {"nll": weighted_mean(nll, r.weights)}


@register_resampled_metric("ece")
def _ece(r: Resampled):
    out = r.inputs.outputs
    return {"ece": weighted_calibration_error(out.top_prob, out.correct, r.weights)}


@register_resampled_metric("brier")
def _brier(r: Resampled):
    out = r.inputs.outputs
    return {"brier": weighted_mean(out.sum_sq - 2 * out.target_prob + 1, r.weights)}


@register_resampled_metric("aurc")
def _aurc(r: Resampled):
    return {"aurc": r.curve.area} if r.standard else None


@register_resampled_metric("augrc")
def _augrc(r: Resampled):
    return {"augrc": r.curve.generalized_area()}


@register_resampled_metric("e_aurc")
def _e_aurc(r: Resampled):
    if not r.standard:
        return None
    oracle = weighted_oracle_aurc(r.inputs.outputs.correct, r.weights)
    return {"e_aurc": r.curve.area - oracle}


@register_resampled_metric("cov@R")
def _cov(r: Resampled):
    if not r.standard:
        return None
    return {percent_key("cov", x): r.curve.coverage_at_risk(x) for x in r.inputs.settings.risks}


@register_resampled_metric("risk@C")
def _risk(r: Resampled):
    if not r.standard:
        return None
    cs = r.inputs.settings.coverages
    return {percent_key("risk", c): r.curve.risk_at_coverage(c) for c in cs}


@register_resampled_metric("fail_auroc")
def _fail_auroc(r: Resampled):
    out = r.inputs.outputs
    return {"fail_auroc": weighted_failure_auroc(out.confidence, out.correct, r.weights)}


@register_resampled_metric("fail_fpr@P")
def _fail_fpr(r: Resampled):
    if not r.standard:
        return None
    out, tpr = r.inputs.outputs, r.inputs.settings.ood_tpr
    value = weighted_failure_fpr(out.confidence, out.correct, r.weights, tpr)
    return {percent_key("fail_fpr", tpr): value}


@register_resampled_metric("auroc")
def _auroc(r: Resampled):
    i = r.inputs
    ids, ood = i.id_outputs.confidence, i.outputs.confidence
    return {"auroc": weighted_auroc(ids, ood, r.id_index, r.index)}


@register_resampled_metric("aupr")
def _aupr(r: Resampled):
    i = r.inputs
    ids, ood = i.id_outputs.confidence, i.outputs.confidence
    return {"aupr": weighted_aupr(ids, ood, r.id_index, r.index)}


@register_resampled_metric("fpr@P")
def _fpr(r: Resampled):
    if not r.standard:
        return None
    i, tpr = r.inputs, r.inputs.settings.ood_tpr
    ids, ood = i.id_outputs.confidence, i.outputs.confidence
    value = weighted_fpr(ids, ood, r.id_index, r.index, tpr)
    return {percent_key("fpr", tpr): value}


@register_resampled_metric("scod_aurc")
def _scod_aurc(r: Resampled):
    return {"scod_aurc": r.scod_curve.area}


@register_resampled_metric("scod_augrc")
def _scod_augrc(r: Resampled):
    curve = r.scod_curve
    return {"scod_augrc": curve.generalized_area()}


@register_resampled_metric("scod_risk@C")
def _scod_risk(r: Resampled):
    cs = r.inputs.settings.coverages
    return {percent_key("scod_risk", c): r.scod_curve.risk_at_coverage(c) for c in cs}


def _accepted(r: Resampled, confidence: torch.Tensor, fpr_target: bool) -> torch.Tensor | None:
    point = r.inputs.operating_point
    if point is None or point.target.startswith("fpr") != fpr_target:
        return None
    return (confidence.double() >= point.threshold).double()


@register_resampled_metric("op_risk")
def _op_risk(r: Resampled):
    out = r.inputs.outputs
    accepted = _accepted(r, out.confidence, fpr_target=False)
    if accepted is None:
        return {}
    errors = r.weights @ (accepted * (~out.correct.bool()).double())
    return {"op_risk": errors / (r.weights @ accepted).clamp_min(1)}


@register_resampled_metric("op_cov")
def _op_cov(r: Resampled):
    accepted = _accepted(r, r.inputs.outputs.confidence, fpr_target=False)
    return {} if accepted is None else {"op_cov": weighted_mean(accepted, r.weights)}


@register_resampled_metric("op_fpr")
def _op_fpr(r: Resampled):
    accepted = _accepted(r, r.inputs.outputs.confidence, fpr_target=True)
    return {} if accepted is None else {"op_fpr": weighted_mean(accepted, r.weights)}


@register_resampled_metric("op_tpr")
def _op_tpr(r: Resampled):
    accepted = _accepted(r, r.inputs.id_outputs.confidence, fpr_target=True)
    return {} if accepted is None else {"op_tpr": weighted_mean(accepted, r.id_weights)}


@register_resampled_metric("op_threshold")
def _op_threshold(r: Resampled):
    point = r.inputs.operating_point
    return {} if point is None else {"op_threshold": r.constant(point.threshold)}


@register_resampled_metric("op_bound")
def _op_bound(r: Resampled):
    point = r.inputs.operating_point
    if point is None or point.bound is None:
        return {}
    return {"op_bound": r.constant(point.bound)}


@register_resampled_metric("expected_macs")
def _macs(r: Resampled):
    stage = r.inputs.outputs.exit_stage
    reach = torch.stack([(stage >= k + 1).double() for k in range(len(r.inputs.stage_macs))], 1)
    macs = torch.tensor(r.inputs.stage_macs, dtype=torch.float64)
    return {"expected_macs": weighted_mean(reach @ macs, r.weights)}


@register_resampled_metric("exit_frac@K")
def _exit(r: Resampled):
    stage = r.inputs.outputs.exit_stage
    return {
        f"exit_frac@{k + 1}": weighted_mean((stage == k + 1).double(), r.weights)
        for k in range(len(r.inputs.stage_macs))
    }
