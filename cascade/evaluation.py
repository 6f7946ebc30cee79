"""Cascade outputs -> tidy metric rows (one value per row), shared by online and offline runs.

Row fields: ``dataset``, ``role``, ``policy``, ``setting``, ``score``, ``metric``, ``value``.
Labelled datasets (roles heldout, id, shift) get ``acc``, ``nll``, ``ece``, ``brier``, ``aurc``,
``cov@R`` for each risk R and ``risk@C`` for each coverage C; OOD datasets get ``auroc``,
``aupr`` and ``fpr@95`` against the ID dataset under the same policy; every dataset gets
``expected_macs`` and ``exit_frac@k`` for k = 1..M. Values are fractions, MACs are MACs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cascade.cost import exit_fractions, expected_macs
from cascade.engine import CascadeResult
from cascade.policies import IntervalPolicy
from uncertainty.calibration import (
    accuracy,
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
)
from uncertainty.ood import aupr, auroc, fpr_at_tpr
from uncertainty.selective import UnreachableTargetError, aurc, coverage_at_risk, risk_at_coverage

ROW_FIELDS = ("dataset", "role", "policy", "setting", "score", "metric", "value")


@dataclass
class MetricSettings:
    """Which operating points to report.

    Attributes:
        risks: selective risks r for ``cov@r`` (fractions).
        coverages: coverages c for ``risk@c`` (fractions).
        ood_tpr: ID acceptance rate p for ``fpr@p``.
    """

    risks: tuple[float, ...] = (0.05,)
    coverages: tuple[float, ...] = (0.8,)
    ood_tpr: float = 0.95


def _pct(x: float) -> str:
    return f"{x * 100:g}"


def labelled_metrics(
    result: CascadeResult, targets: torch.Tensor, settings: MetricSettings
) -> dict[str, float]:
    """Accuracy, calibration and selective-classification metrics of a labelled dataset."""
    probs, conf = result.probs, result.confidence
    correct = probs.argmax(dim=-1) == targets
    out = {
        "acc": accuracy(probs, targets),
        "nll": negative_log_likelihood(probs, targets),
        "ece": expected_calibration_error(probs, targets),
        "brier": brier_score(probs, targets),
        "aurc": aurc(conf, correct),
    }
    for r in settings.risks:
        try:
            out[f"cov@{_pct(r)}"] = coverage_at_risk(conf, correct, r)[0]
        except UnreachableTargetError:
            out[f"cov@{_pct(r)}"] = 0.0  # no coverage keeps the risk that low
    for c in settings.coverages:
        out[f"risk@{_pct(c)}"] = risk_at_coverage(conf, correct, c)[0]
    return out


def ood_metrics(
    id_result: CascadeResult, ood_result: CascadeResult, settings: MetricSettings
) -> dict[str, float]:
    """OOD detection metrics (OOD positive, score = -confidence)."""
    id_conf, ood_conf = id_result.confidence, ood_result.confidence
    return {
        "auroc": auroc(id_conf, ood_conf),
        "aupr": aupr(id_conf, ood_conf),
        f"fpr@{_pct(settings.ood_tpr)}": fpr_at_tpr(id_conf, ood_conf, settings.ood_tpr),
    }


def cost_metrics(result: CascadeResult, stage_macs: list[float]) -> dict[str, float]:
    """Expected MACs per sample and the fraction of samples leaving after each stage."""
    out = {"expected_macs": expected_macs(result.exit_stage, stage_macs)}
    for k, frac in enumerate(exit_fractions(result.exit_stage, len(stage_macs)).tolist()):
        out[f"exit_frac@{k + 1}"] = frac
    return out


def policy_rows(
    policy: IntervalPolicy,
    score: str,
    results: dict[str, CascadeResult],
    targets: dict[str, torch.Tensor],
    roles: dict[str, str],
    stage_macs: list[float],
    settings: MetricSettings | None = None,
) -> list[dict]:
    """All metric rows of one policy over every dataset (``roles``: name -> role)."""
    settings = settings or MetricSettings()
    id_name = next(n for n, r in roles.items() if r == "id")
    rows = []
    for name, role in roles.items():
        result = results[name]
        values = (
            ood_metrics(results[id_name], result, settings)
            if role == "ood"
            else labelled_metrics(result, targets[name], settings)
        )
        values.update(cost_metrics(result, stage_macs))
        for metric, value in values.items():
            rows.append(
                {
                    "dataset": name,
                    "role": role,
                    "policy": policy.name,
                    "setting": policy.setting,
                    "score": score,
                    "metric": metric,
                    "value": float(value),
                }
            )
    return rows
