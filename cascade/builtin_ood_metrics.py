"""The built-in metrics of the OOD sets (docs/concepts/metrics.md), each one registry entry
naming its plain form and, beside it, its resampled form (B bootstrap values at once).

Against the ID test set under the same policy: ``auroc``, ``aupr``, ``fpr@P`` (P the ID
acceptance rate), and the SCOD metrics of the fixed-seed ID + OOD mixture (``scod_aurc``,
``scod_augrc``, ``scod_risk@C``; an accepted OOD sample costs beta). ``scod_augrc`` uses the
standard (tie-aware) curve under both definitions. Values are fractions. ``fpr@P`` follows
the chosen definitions; its resampled form returns None under the paper definitions, so the
bootstrap computes the plain form on each resample instead.
"""

from __future__ import annotations

from window_cascades.cascade.metric_registry import MetricInputs, percent_key, register_metric
from window_cascades.cascade.resampled import Resampled, ResampledValues
from window_cascades.uncertainty.ood_detection import aupr, auroc
from window_cascades.uncertainty.scod import scod_augrc, scod_aurc, scod_risk_at_coverage

OOD = ("ood",)


def _auroc_resampled(r: Resampled) -> ResampledValues:
    return {"auroc": r.ood_counts.auroc()}


@register_metric(
    "auroc", True, OOD, "AUROC of OOD (positive) vs ID by -confidence", _auroc_resampled
)
def _auroc(i: MetricInputs) -> dict[str, float]:
    return {"auroc": auroc(i.id_outputs.confidence, i.outputs.confidence)}


def _aupr_resampled(r: Resampled) -> ResampledValues:
    return {"aupr": r.ood_counts.aupr()}


@register_metric("aupr", True, OOD, "average precision, OOD positive", _aupr_resampled)
def _aupr(i: MetricInputs) -> dict[str, float]:
    return {"aupr": aupr(i.id_outputs.confidence, i.outputs.confidence)}


def _fpr_resampled(r: Resampled) -> ResampledValues:
    if not r.standard:
        return None
    tpr = r.inputs.settings.ood_tpr
    return {percent_key("fpr", tpr): r.ood_counts.fpr(tpr)}


@register_metric(
    "fpr@P",
    False,
    OOD,
    "fraction of OOD accepted at the threshold accepting P of ID",
    resampled=_fpr_resampled,
)
def _fpr(i: MetricInputs) -> dict[str, float]:
    tpr = i.settings.ood_tpr
    value = i.definitions.fpr(i.id_outputs.confidence, i.outputs.confidence, tpr)
    return {percent_key("fpr", tpr): value}


def _scod_aurc_resampled(r: Resampled) -> ResampledValues:
    return {"scod_aurc": r.scod_curve.area}


@register_metric(
    "scod_aurc",
    False,
    OOD,
    "AURC of the ID + OOD mixture, accepted OOD = error",
    resampled=_scod_aurc_resampled,
)
def _scod_aurc(i: MetricInputs) -> dict[str, float]:
    return {"scod_aurc": scod_aurc(*i.scod, beta=i.settings.scod_beta)}


def _scod_augrc_resampled(r: Resampled) -> ResampledValues:
    return {"scod_augrc": r.scod_curve.generalized_area()}


@register_metric(
    "scod_augrc",
    False,
    OOD,
    "AUGRC of the ID + OOD mixture, accepted OOD = error",
    resampled=_scod_augrc_resampled,
)
def _scod_augrc(i: MetricInputs) -> dict[str, float]:
    return {"scod_augrc": scod_augrc(*i.scod, beta=i.settings.scod_beta)}


def _scod_risk_resampled(r: Resampled) -> ResampledValues:
    cs = r.inputs.settings.coverages
    return {percent_key("scod_risk", c): r.scod_curve.risk_at_coverage(c) for c in cs}


@register_metric("scod_risk@C", False, OOD, "SCOD risk at ID coverage C", _scod_risk_resampled)
def _scod_risk(i: MetricInputs) -> dict[str, float]:
    beta = i.settings.scod_beta
    return {
        percent_key("scod_risk", c): scod_risk_at_coverage(*i.scod, c, beta=beta)
        for c in i.settings.coverages
    }
