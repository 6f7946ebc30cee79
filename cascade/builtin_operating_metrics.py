"""The built-in metrics of the operating point and the cost (docs/concepts/metrics.md), each
one registry entry naming its plain form and, beside it, its resampled form (B bootstrap
values at once).

With a target (``cov@R``, ``risk@C`` or ``fpr@P``), the operating point is the policy's
threshold fitted on its held-out outputs (``window_cascades.cascade.operating_point``):
``op_risk``/``op_cov`` (labelled sets, cov/risk targets), ``op_fpr``/``op_tpr`` (OOD sets, fpr
targets), ``op_threshold`` and, with a guarantee, ``op_bound`` (held-out split; settings of the
policy, not quality measures, constant under resampling). Every dataset: ``expected_macs`` (MACs)
and ``exit_frac@K`` (fractions).
"""

from __future__ import annotations

import torch

from window_cascades.cascade.cost import exit_fractions, expected_macs
from window_cascades.cascade.metric_registry import MetricInputs, register_metric
from window_cascades.cascade.resampled import Resampled, ResampledValues
from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.uncertainty.weighted_curve import weighted_mean
from window_cascades.vocabulary.roles import LABELLED_ROLES, ROLES

OOD = ("ood",)


def _acceptance(i: MetricInputs, outputs: SampleOutputs, fpr_target: bool) -> torch.Tensor | None:
    """Which samples of ``outputs`` the operating point accepts; None without a point, or when
    the run's target is of the other kind (fpr@P vs cov@R / risk@C)."""
    point = i.operating_point
    if point is None or point.target.startswith("fpr") != fpr_target:
        return None
    return outputs.confidence.double() >= point.threshold


def _has_point(r: Resampled, fpr_target: bool) -> bool:
    """Whether the run has an operating point of this kind (fpr@P or cov@R / risk@C)."""
    point = r.inputs.operating_point
    return point is not None and point.target.startswith("fpr") == fpr_target


def _op_risk_resampled(r: Resampled) -> ResampledValues:
    if not _has_point(r, fpr_target=False):
        return {}
    accepted, wrong = r.means["accepted"], r.means["accepted_wrong"]
    count = r.weights.sum(1)
    return {"op_risk": wrong * count / (accepted * count).clamp_min(1)}


@register_metric(
    "op_risk",
    False,
    LABELLED_ROLES,
    "selective risk at the policy's held-out threshold for the target (cov/risk targets)",
    resampled=_op_risk_resampled,
)
def _op_risk(i: MetricInputs) -> dict[str, float]:
    accepted = _acceptance(i, i.outputs, fpr_target=False)
    if accepted is None:
        return {}
    errors = int((~i.outputs.correct.bool() & accepted).sum())
    return {"op_risk": errors / max(int(accepted.sum()), 1)}


def _op_cov_resampled(r: Resampled) -> ResampledValues:
    return {"op_cov": r.means["accepted"]} if _has_point(r, fpr_target=False) else {}


@register_metric(
    "op_cov",
    True,
    LABELLED_ROLES,
    "coverage at the policy's held-out threshold for the target (cov/risk targets)",
    resampled=_op_cov_resampled,
)
def _op_cov(i: MetricInputs) -> dict[str, float]:
    accepted = _acceptance(i, i.outputs, fpr_target=False)
    return {} if accepted is None else {"op_cov": float(accepted.double().mean())}


def _op_fpr_resampled(r: Resampled) -> ResampledValues:
    return {"op_fpr": r.means["accepted"]} if _has_point(r, fpr_target=True) else {}


@register_metric(
    "op_fpr",
    False,
    OOD,
    "fraction of the OOD set accepted at the policy's held-out threshold",
    resampled=_op_fpr_resampled,
)
def _op_fpr(i: MetricInputs) -> dict[str, float]:
    accepted = _acceptance(i, i.outputs, fpr_target=True)
    return {} if accepted is None else {"op_fpr": float(accepted.double().mean())}


def _op_tpr_resampled(r: Resampled) -> ResampledValues:
    accepted = _acceptance(r.inputs, r.inputs.id_outputs, fpr_target=True)
    return {} if accepted is None else {"op_tpr": weighted_mean(accepted, r.id_weights)}


@register_metric(
    "op_tpr",
    True,
    OOD,
    "fraction of the ID test set accepted at the policy's held-out threshold",
    resampled=_op_tpr_resampled,
)
def _op_tpr(i: MetricInputs) -> dict[str, float]:
    accepted = _acceptance(i, i.id_outputs, fpr_target=True)
    return {} if accepted is None else {"op_tpr": float(accepted.double().mean())}


def _op_threshold_resampled(r: Resampled) -> ResampledValues:
    point = r.inputs.operating_point
    return {} if point is None else {"op_threshold": r.constant(point.threshold)}


@register_metric(
    "op_threshold",
    False,
    ("heldout",),
    "the operating point's confidence threshold (inf: nothing accepted); not a quality measure",
    resampled=_op_threshold_resampled,
)
def _op_threshold(i: MetricInputs) -> dict[str, float]:
    point = i.operating_point
    return {} if point is None else {"op_threshold": point.threshold}


def _op_bound_resampled(r: Resampled) -> ResampledValues:
    point = r.inputs.operating_point
    return {} if point is None or point.bound is None else {"op_bound": r.constant(point.bound)}


@register_metric(
    "op_bound",
    False,
    ("heldout",),
    "with a guarantee: the certified risk bound (cov targets; lower is better) or the certified "
    "acceptance (risk/fpr targets) of the operating point",
    resampled=_op_bound_resampled,
)
def _op_bound(i: MetricInputs) -> dict[str, float]:
    point = i.operating_point
    return {} if point is None or point.bound is None else {"op_bound": point.bound}


def _macs_resampled(r: Resampled) -> ResampledValues:
    return {"expected_macs": r.means["macs"]}


@register_metric(
    "expected_macs", False, ROLES, "sum over stages of reach fraction x MACs", _macs_resampled
)
def _macs(i: MetricInputs) -> dict[str, float]:
    return {"expected_macs": expected_macs(i.outputs.exit_stage, i.stage_macs)}


def _exit_resampled(r: Resampled) -> ResampledValues:
    stages = range(1, len(r.inputs.stage_macs) + 1)
    return {f"exit_frac@{k}": r.means[f"exit@{k}"] for k in stages}


@register_metric(
    "exit_frac@K", False, ROLES, "fraction of samples leaving after stage K", _exit_resampled
)
def _exit(i: MetricInputs) -> dict[str, float]:
    fractions = exit_fractions(i.outputs.exit_stage, len(i.stage_macs)).tolist()
    return {f"exit_frac@{k + 1}": frac for k, frac in enumerate(fractions)}
