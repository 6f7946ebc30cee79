"""Failure (misclassification) detection: how well the confidence tells correct predictions
from wrong ones, as fd-shifts ("failauroc", "fpr@95tpr") and TorchUncertainty report it.

Correct predictions are the positive class and the score is the confidence; a wrong
prediction should have a lower confidence than a correct one. Both metrics are tie-aware and
undefined (NaN) when the sample holds no correct or no wrong prediction.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from uncertainty.ood_detection import auroc, fpr_at_threshold, id_acceptance_threshold


def _split(confidence: torch.Tensor, correct: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    conf, ok = confidence.double().flatten(), correct.bool().flatten()
    if conf.numel() != ok.numel():
        raise ValueError(f"{conf.numel()} confidences but {ok.numel()} correctness flags")
    return conf[ok], conf[~ok]


def failure_auroc(confidence: torch.Tensor, correct: torch.Tensor) -> float:
    """Area under the ROC curve of separating correct (positive) from wrong predictions by
    confidence: P(conf_correct > conf_wrong) + 0.5 P(conf_correct = conf_wrong).

    Higher is better: 1 when every wrong prediction is less confident than every correct one,
    0.5 for a confidence that says nothing about correctness. NaN when all predictions are
    correct or all are wrong.
    """
    right, wrong = _split(confidence, correct)
    if right.numel() == 0 or wrong.numel() == 0:
        return float("nan")
    # the same Mann-Whitney statistic as OOD detection, with the wrong predictions as "OOD"
    return auroc(right, wrong)


def failure_fpr_at_tpr(
    confidence: torch.Tensor,
    correct: torch.Tensor,
    tpr: float = 0.95,
    threshold: Callable[[torch.Tensor, float], float] = id_acceptance_threshold,
) -> float:
    """Fraction of wrong predictions accepted (confidence >= t) at the threshold t that
    accepts a fraction ``tpr`` of the correct ones (by default the largest t accepting at
    least ``tpr`` of them; ``threshold`` may be another definition's rule).

    Lower is better: 0 when the correct predictions' top ``tpr`` all lie above every wrong
    one. NaN when all predictions are correct or all are wrong.
    """
    right, wrong = _split(confidence, correct)
    if right.numel() == 0 or wrong.numel() == 0:
        return float("nan")
    return fpr_at_threshold(wrong, threshold(right, tpr))
