"""The built-in metrics of the labelled sets (docs/concepts/metrics.md), each one registry
entry naming its plain form and, beside it, its resampled form (B bootstrap values at once).

Labelled roles (heldout, id, shift): ``acc``, ``nll``, ``ece``, ``brier``, ``aurc``, ``augrc``,
``e_aurc``, ``cov@R`` for each risk R, ``risk@C`` for each coverage C, failure detection
``fail_auroc`` and ``fail_fpr@P`` (correct vs wrong predictions, P = the OOD TPR). ``augrc``
uses the standard (tie-aware) curve under both definitions (the paper has no AUGRC). Values are
fractions; ``nll`` in nats. ``aurc``, ``e_aurc``, ``cov@R``, ``risk@C`` and ``fail_fpr@P``
follow the chosen definitions; their resampled forms return None under the paper definitions
(their per-sample curves count every repeat as its own point), so the bootstrap computes the
plain form on each resample instead. The OOD and SCOD metrics are in
``window_cascades.cascade.builtin_ood_metrics``, the operating point and cost in
``window_cascades.cascade.builtin_operating_metrics``; ``cascade/__init__.py`` imports the three in
this order, which is the order of the rows in ``metrics.csv``.
"""

from __future__ import annotations

from window_cascades.cascade.metric_registry import MetricInputs, percent_key, register_metric
from window_cascades.cascade.resampled import Resampled, ResampledValues
from window_cascades.uncertainty.failure_detection import failure_auroc, failure_fpr_at_tpr
from window_cascades.uncertainty.probability_metrics import (
    brier_from_statistics,
    calibration_error,
    nll_from_target_probability,
)
from window_cascades.uncertainty.selective import augrc, excess_aurc, oracle_aurc_from_counts
from window_cascades.uncertainty.weighted_curve import failure_from_counts
from window_cascades.vocabulary.roles import LABELLED_ROLES


def _acc_resampled(r: Resampled) -> ResampledValues:
    return {"acc": r.means["correct"]}


@register_metric(
    "acc",
    True,
    LABELLED_ROLES,
    "fraction of samples whose arg-max is the target",
    resampled=_acc_resampled,
)
def _acc(i: MetricInputs) -> dict[str, float]:
    return {"acc": float(i.outputs.correct.double().mean())}


def _nll_resampled(r: Resampled) -> ResampledValues:
    return {"nll": r.means["nll"]}


@register_metric("nll", False, LABELLED_ROLES, "mean -log p(target), nats", _nll_resampled)
def _nll(i: MetricInputs) -> dict[str, float]:
    return {"nll": nll_from_target_probability(i.outputs.target_prob)}


def _ece_resampled(r: Resampled) -> ResampledValues:
    return {"ece": r.calibration_gaps.abs().sum(1)}


@register_metric(
    "ece",
    False,
    LABELLED_ROLES,
    "top-label ECE, 15 equal-width bins",
    _ece_resampled,
    interval="median-recentred",  # its resampled values run above it (see INTERVAL_METHODS)
)
def _ece(i: MetricInputs) -> dict[str, float]:
    return {"ece": calibration_error(i.outputs.top_prob, i.outputs.correct)}


def _brier_resampled(r: Resampled) -> ResampledValues:
    return {"brier": r.means["brier"]}


@register_metric("brier", False, LABELLED_ROLES, "mean sum_c (p_c - 1[c = y])^2", _brier_resampled)
def _brier(i: MetricInputs) -> dict[str, float]:
    return {"brier": brier_from_statistics(i.outputs.sum_sq, i.outputs.target_prob)}


def _aurc_resampled(r: Resampled) -> ResampledValues:
    return {"aurc": r.curve.area} if r.standard else None


@register_metric(
    "aurc", False, LABELLED_ROLES, "area under the risk-coverage curve", _aurc_resampled
)
def _aurc(i: MetricInputs) -> dict[str, float]:
    return {"aurc": i.definitions.aurc(i.outputs.confidence, i.outputs.correct)}


def _augrc_resampled(r: Resampled) -> ResampledValues:
    return {"augrc": r.curve.generalized_area()}


@register_metric(
    "augrc",
    False,
    LABELLED_ROLES,
    "area under the generalized risk (accepted and wrong / all)",
    resampled=_augrc_resampled,
)
def _augrc(i: MetricInputs) -> dict[str, float]:
    return {"augrc": augrc(i.outputs.confidence, i.outputs.correct)}


def _e_aurc_resampled(r: Resampled) -> ResampledValues:
    if not r.standard:
        return None
    count, errors = r.curve.total.squeeze(1), r.curve.loss[:, -1]
    return {"e_aurc": r.curve.area - oracle_aurc_from_counts(count, count - errors)}


@register_metric(
    "e_aurc", False, LABELLED_ROLES, "AURC minus the oracle ranking's AURC", _e_aurc_resampled
)
def _e_aurc(i: MetricInputs) -> dict[str, float]:
    return {"e_aurc": excess_aurc(i.outputs.confidence, i.outputs.correct, i.definitions.aurc)}


def _cov_resampled(r: Resampled) -> ResampledValues:
    if not r.standard:
        return None
    return {percent_key("cov", x): r.curve.coverage_at_risk(x) for x in r.inputs.settings.risks}


@register_metric(
    "cov@R",
    True,
    LABELLED_ROLES,
    "largest coverage with selective risk <= R (0 if none)",
    resampled=_cov_resampled,
)
def _cov(i: MetricInputs) -> dict[str, float]:
    conf, correct, defs = i.outputs.confidence, i.outputs.correct, i.definitions
    return {
        percent_key("cov", r): defs.coverage_at_risk_or_zero(conf, correct, r)
        for r in i.settings.risks
    }


def _risk_resampled(r: Resampled) -> ResampledValues:
    if not r.standard:
        return None
    cs = r.inputs.settings.coverages
    return {percent_key("risk", c): r.curve.risk_at_coverage(c) for c in cs}


@register_metric("risk@C", False, LABELLED_ROLES, "selective risk at coverage C", _risk_resampled)
def _risk(i: MetricInputs) -> dict[str, float]:
    conf, correct, defs = i.outputs.confidence, i.outputs.correct, i.definitions
    return {
        percent_key("risk", c): defs.risk_at_coverage(conf, correct, c)[0]
        for c in i.settings.coverages
    }


def _fail_auroc_resampled(r: Resampled) -> ResampledValues:
    return {"fail_auroc": failure_from_counts(r.curve.count, r.curve.loss)}


@register_metric(
    "fail_auroc",
    True,
    LABELLED_ROLES,
    "failure detection: AUROC of correct (positive) vs wrong predictions by confidence",
    resampled=_fail_auroc_resampled,
)
def _fail_auroc(i: MetricInputs) -> dict[str, float]:
    return {"fail_auroc": failure_auroc(i.outputs.confidence, i.outputs.correct)}


def _fail_fpr_resampled(r: Resampled) -> ResampledValues:
    if not r.standard:
        return None
    tpr = r.inputs.settings.ood_tpr
    return {percent_key("fail_fpr", tpr): failure_from_counts(r.curve.count, r.curve.loss, tpr)}


@register_metric(
    "fail_fpr@P",
    False,
    LABELLED_ROLES,
    "failure detection: fraction of wrong predictions accepted at the threshold accepting P of "
    "the correct ones",
    resampled=_fail_fpr_resampled,
)
def _fail_fpr(i: MetricInputs) -> dict[str, float]:
    tpr, threshold = i.settings.ood_tpr, i.definitions.fpr_threshold
    value = failure_fpr_at_tpr(i.outputs.confidence, i.outputs.correct, tpr, threshold)
    return {percent_key("fail_fpr", tpr): value}
