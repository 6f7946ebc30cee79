"""Cascade outputs -> tidy metric rows (one value per row), shared by online and offline runs.

Row fields: ``dataset``, ``role``, ``policy``, ``setting``, ``score``, ``metric``, ``value``.
Labelled datasets (roles heldout, id, shift) get ``acc``, ``nll``, ``ece``, ``brier``, ``aurc``,
``cov@R`` for each risk R and ``risk@C`` for each coverage C; OOD datasets get ``auroc``,
``aupr`` and ``fpr@P`` against the ID dataset under the same policy, and the SCOD metrics of
the ID + OOD mixture (``scod_aurc``, ``scod_risk@C``); every dataset gets ``expected_macs`` and
``exit_frac@k`` for k = 1..M. Values are fractions, MACs are MACs. ``aurc``, ``cov@R``,
``risk@C`` and ``fpr@P`` follow the chosen definitions (standard or paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cascade.cost import exit_fractions, expected_macs
from cascade.engine import CascadeResult
from cascade.policies import CascadePolicy
from uncertainty.calibration import (
    accuracy,
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
)
from uncertainty.definitions import get_definitions
from uncertainty.ood import aupr, auroc
from uncertainty.scod import scod_aurc, scod_mixture, scod_risk_at_coverage
from uncertainty.selective import UnreachableTargetError

ROW_FIELDS = ("dataset", "role", "policy", "setting", "score", "metric", "value")


@dataclass
class MetricSettings:
    """Which operating points to report.

    Attributes:
        risks: selective risks r for ``cov@r`` (fractions).
        coverages: coverages c for ``risk@c`` (fractions).
        ood_tpr: ID acceptance rate p for ``fpr@p``.
        definitions: ``standard`` or ``paper``.
        scod_ratio: OOD : ID mixing ratio of SCOD.
        scod_beta: cost of an accepted OOD sample in SCOD.
        scod_seed: seed of the SCOD subsampling.
    """

    risks: tuple[float, ...] = (0.05,)
    coverages: tuple[float, ...] = (0.8,)
    ood_tpr: float = 0.95
    definitions: str = "standard"
    scod_ratio: float = 1.0
    scod_beta: float = 1.0
    scod_seed: int = 0


def _pct(x: float) -> str:
    return f"{x * 100:g}"


def labelled_metrics(
    result: CascadeResult, targets: torch.Tensor, settings: MetricSettings
) -> dict[str, float]:
    """Accuracy, calibration and selective-classification metrics of a labelled dataset."""
    defs = get_definitions(settings.definitions)
    probs, conf = result.probs, result.confidence
    correct = probs.argmax(dim=-1) == targets
    out = {
        "acc": accuracy(probs, targets),
        "nll": negative_log_likelihood(probs, targets),
        "ece": expected_calibration_error(probs, targets),
        "brier": brier_score(probs, targets),
        "aurc": defs.aurc(conf, correct),
    }
    for r in settings.risks:
        try:
            out[f"cov@{_pct(r)}"] = defs.coverage_at_risk(conf, correct, r)[0]
        except UnreachableTargetError:
            out[f"cov@{_pct(r)}"] = 0.0  # no coverage keeps the risk that low
    for c in settings.coverages:
        out[f"risk@{_pct(c)}"] = defs.risk_at_coverage(conf, correct, c)[0]
    return out


def ood_metrics(
    id_result: CascadeResult,
    id_targets: torch.Tensor,
    ood_result: CascadeResult,
    settings: MetricSettings,
) -> dict[str, float]:
    """OOD detection (OOD positive, score = -confidence) and SCOD metrics of one OOD set."""
    defs = get_definitions(settings.definitions)
    id_conf, ood_conf = id_result.confidence, ood_result.confidence
    out = {
        "auroc": auroc(id_conf, ood_conf),
        "aupr": aupr(id_conf, ood_conf),
        f"fpr@{_pct(settings.ood_tpr)}": defs.fpr(id_conf, ood_conf, settings.ood_tpr),
    }
    keep_id, keep_ood = scod_mixture(
        id_conf.numel(), ood_conf.numel(), settings.scod_ratio, settings.scod_seed
    )
    correct = (id_result.probs.argmax(dim=-1) == id_targets)[keep_id]
    args = (id_conf[keep_id], correct, ood_conf[keep_ood])
    out["scod_aurc"] = scod_aurc(*args, beta=settings.scod_beta)
    for c in settings.coverages:
        out[f"scod_risk@{_pct(c)}"] = scod_risk_at_coverage(*args, c, beta=settings.scod_beta)
    return out


def cost_metrics(result: CascadeResult, stage_macs: list[float]) -> dict[str, float]:
    """Expected MACs per sample and the fraction of samples leaving after each stage."""
    out = {"expected_macs": expected_macs(result.exit_stage, stage_macs)}
    for k, frac in enumerate(exit_fractions(result.exit_stage, len(stage_macs)).tolist()):
        out[f"exit_frac@{k + 1}"] = frac
    return out


def policy_rows(
    policy: CascadePolicy,
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
            ood_metrics(results[id_name], targets[id_name], result, settings)
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
