"""The built-in metrics of DESIGN.md, each one function plus one registry entry.

Labelled roles (heldout, id, shift): ``acc``, ``nll``, ``ece``, ``brier``, ``aurc``, ``augrc``,
``e_aurc``, ``cov@R`` for each risk R, ``risk@C`` for each coverage C, failure detection
``fail_auroc`` and ``fail_fpr@P`` (correct vs wrong predictions, P = the OOD TPR). OOD sets,
against the ID set under the same policy: ``auroc``, ``aupr``, ``fpr@P``, and the SCOD metrics
of the ID + OOD mixture (``scod_aurc``, ``scod_augrc``, ``scod_risk@C``). ``augrc``/
``scod_augrc`` use the standard (tie-aware) curve under both definitions (the paper has no
AUGRC). Every dataset: ``expected_macs`` and ``exit_frac@K``. Values are fractions; ``nll`` in
nats; MACs in MACs. ``aurc``, ``e_aurc``, ``cov@R``, ``risk@C``, ``fpr@P`` and ``fail_fpr@P``
follow the chosen definitions.
"""

from __future__ import annotations

import torch

from cascade.cost import exit_fractions, expected_macs
from cascade.metric_registry import MetricInputs, percent_key, register_metric
from uncertainty.failure_detection import failure_auroc, failure_fpr_at_tpr
from uncertainty.ood_detection import aupr, auroc
from uncertainty.probability_metrics import (
    brier_from_statistics,
    calibration_error,
    nll_from_target_probability,
)
from uncertainty.scod import scod_augrc, scod_aurc, scod_risk_at_coverage
from uncertainty.selective import augrc, excess_aurc
from vocabulary.roles import LABELLED_ROLES, ROLES

OOD = ("ood",)


@register_metric("acc", True, LABELLED_ROLES, "fraction of samples whose arg-max is the target")
def _acc(i: MetricInputs) -> dict[str, float]:
    return {"acc": float(i.outputs.correct.double().mean())}


@register_metric("nll", False, LABELLED_ROLES, "mean -log p(target), nats")
def _nll(i: MetricInputs) -> dict[str, float]:
    return {"nll": nll_from_target_probability(i.outputs.target_prob)}


@register_metric("ece", False, LABELLED_ROLES, "top-label ECE, 15 equal-width bins")
def _ece(i: MetricInputs) -> dict[str, float]:
    return {"ece": calibration_error(i.outputs.top_prob, i.outputs.correct)}


@register_metric("brier", False, LABELLED_ROLES, "mean sum_c (p_c - 1[c = y])^2")
def _brier(i: MetricInputs) -> dict[str, float]:
    return {"brier": brier_from_statistics(i.outputs.sum_sq, i.outputs.target_prob)}


@register_metric("aurc", False, LABELLED_ROLES, "area under the risk-coverage curve")
def _aurc(i: MetricInputs) -> dict[str, float]:
    return {"aurc": i.definitions.aurc(i.outputs.confidence, i.outputs.correct)}


@register_metric(
    "augrc", False, LABELLED_ROLES, "area under the generalized risk (accepted and wrong / all)"
)
def _augrc(i: MetricInputs) -> dict[str, float]:
    return {"augrc": augrc(i.outputs.confidence, i.outputs.correct)}


@register_metric("e_aurc", False, LABELLED_ROLES, "AURC minus the oracle ranking's AURC")
def _e_aurc(i: MetricInputs) -> dict[str, float]:
    return {"e_aurc": excess_aurc(i.outputs.confidence, i.outputs.correct, i.definitions.aurc)}


@register_metric(
    "cov@R", True, LABELLED_ROLES, "largest coverage with selective risk <= R (0 if none)"
)
def _cov(i: MetricInputs) -> dict[str, float]:
    conf, correct, defs = i.outputs.confidence, i.outputs.correct, i.definitions
    return {
        percent_key("cov", r): defs.coverage_at_risk_or_zero(conf, correct, r)
        for r in i.settings.risks
    }


@register_metric("risk@C", False, LABELLED_ROLES, "selective risk at coverage C")
def _risk(i: MetricInputs) -> dict[str, float]:
    conf, correct, defs = i.outputs.confidence, i.outputs.correct, i.definitions
    return {
        percent_key("risk", c): defs.risk_at_coverage(conf, correct, c)[0]
        for c in i.settings.coverages
    }


@register_metric(
    "fail_auroc", True, LABELLED_ROLES,
    "failure detection: AUROC of correct (positive) vs wrong predictions by confidence",
)  # fmt: skip
def _fail_auroc(i: MetricInputs) -> dict[str, float]:
    return {"fail_auroc": failure_auroc(i.outputs.confidence, i.outputs.correct)}


@register_metric(
    "fail_fpr@P", False, LABELLED_ROLES,
    "failure detection: fraction of wrong predictions accepted at the threshold accepting P of "
    "the correct ones",
)  # fmt: skip
def _fail_fpr(i: MetricInputs) -> dict[str, float]:
    tpr, threshold = i.settings.ood_tpr, i.definitions.fpr_threshold
    value = failure_fpr_at_tpr(i.outputs.confidence, i.outputs.correct, tpr, threshold)
    return {percent_key("fail_fpr", tpr): value}


@register_metric("auroc", True, OOD, "AUROC of OOD (positive) vs ID by -confidence")
def _auroc(i: MetricInputs) -> dict[str, float]:
    return {"auroc": auroc(i.id_outputs.confidence, i.outputs.confidence)}


@register_metric("aupr", True, OOD, "average precision, OOD positive")
def _aupr(i: MetricInputs) -> dict[str, float]:
    return {"aupr": aupr(i.id_outputs.confidence, i.outputs.confidence)}


@register_metric("fpr@P", False, OOD, "fraction of OOD accepted at the threshold accepting P of ID")
def _fpr(i: MetricInputs) -> dict[str, float]:
    tpr = i.settings.ood_tpr
    value = i.definitions.fpr(i.id_outputs.confidence, i.outputs.confidence, tpr)
    return {percent_key("fpr", tpr): value}


@register_metric("scod_aurc", False, OOD, "AURC of the ID + OOD mixture, accepted OOD = error")
def _scod_aurc(i: MetricInputs) -> dict[str, float]:
    return {"scod_aurc": scod_aurc(*i.scod, beta=i.settings.scod_beta)}


@register_metric("scod_augrc", False, OOD, "AUGRC of the ID + OOD mixture, accepted OOD = error")
def _scod_augrc(i: MetricInputs) -> dict[str, float]:
    return {"scod_augrc": scod_augrc(*i.scod, beta=i.settings.scod_beta)}


@register_metric("scod_risk@C", False, OOD, "SCOD risk at ID coverage C")
def _scod_risk(i: MetricInputs) -> dict[str, float]:
    beta = i.settings.scod_beta
    return {
        percent_key("scod_risk", c): scod_risk_at_coverage(*i.scod, c, beta=beta)
        for c in i.settings.coverages
    }


def _acceptance(i: MetricInputs, outputs, fpr_target: bool) -> torch.Tensor | None:
    """Which samples of ``outputs`` the operating point accepts; None without a point, or when
    the run's target is of the other kind (fpr@P vs cov@R / risk@C)."""
    point = i.operating_point
    if point is None or point.target.startswith("fpr") != fpr_target:
        return None
    return outputs.confidence.double() >= point.threshold


@register_metric(
    "op_risk", False, LABELLED_ROLES,
    "selective risk at the policy's held-out threshold for the target (cov/risk targets)",
)  # fmt: skip
def _op_risk(i: MetricInputs) -> dict[str, float]:
    accepted = _acceptance(i, i.outputs, fpr_target=False)
    if accepted is None:
        return {}
    errors = int((~i.outputs.correct.bool() & accepted).sum())
    return {"op_risk": errors / max(int(accepted.sum()), 1)}


@register_metric(
    "op_cov", True, LABELLED_ROLES,
    "coverage at the policy's held-out threshold for the target (cov/risk targets)",
)  # fmt: skip
def _op_cov(i: MetricInputs) -> dict[str, float]:
    accepted = _acceptance(i, i.outputs, fpr_target=False)
    return {} if accepted is None else {"op_cov": float(accepted.double().mean())}


@register_metric(
    "op_fpr", False, OOD, "fraction of the OOD set accepted at the policy's held-out threshold"
)
def _op_fpr(i: MetricInputs) -> dict[str, float]:
    accepted = _acceptance(i, i.outputs, fpr_target=True)
    return {} if accepted is None else {"op_fpr": float(accepted.double().mean())}


@register_metric(
    "op_tpr", True, OOD, "fraction of the ID test set accepted at the policy's held-out threshold"
)
def _op_tpr(i: MetricInputs) -> dict[str, float]:
    accepted = _acceptance(i, i.id_outputs, fpr_target=True)
    return {} if accepted is None else {"op_tpr": float(accepted.double().mean())}


@register_metric(
    "op_threshold", False, ("heldout",),
    "the operating point's confidence threshold (inf: nothing accepted); not a quality measure",
)  # fmt: skip
def _op_threshold(i: MetricInputs) -> dict[str, float]:
    point = i.operating_point
    return {} if point is None else {"op_threshold": point.threshold}


@register_metric(
    "op_bound", False, ("heldout",),
    "with a guarantee: the certified risk bound (cov targets; lower is better) or the certified "
    "acceptance (risk/fpr targets) of the operating point",
)  # fmt: skip
def _op_bound(i: MetricInputs) -> dict[str, float]:
    point = i.operating_point
    return {} if point is None or point.bound is None else {"op_bound": point.bound}


@register_metric("expected_macs", False, ROLES, "sum over stages of reach fraction x MACs")
def _macs(i: MetricInputs) -> dict[str, float]:
    return {"expected_macs": expected_macs(i.outputs.exit_stage, i.stage_macs)}


@register_metric("exit_frac@K", False, ROLES, "fraction of samples leaving after stage K")
def _exit(i: MetricInputs) -> dict[str, float]:
    fractions = exit_fractions(i.outputs.exit_stage, len(i.stage_macs)).tolist()
    return {f"exit_frac@{k + 1}": frac for k, frac in enumerate(fractions)}
