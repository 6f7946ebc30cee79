"""Failure (misclassification) detection: how well the confidence tells correct predictions
from wrong ones, as fd-shifts ("failauroc", "fpr@95tpr") and TorchUncertainty report it.

Correct predictions are the positive class and the score is the confidence; a wrong
prediction should have a lower confidence than a correct one. Both metrics are tie-aware and
undefined (NaN) when the sample holds no correct or no wrong prediction.

Each metric's weighted form (``weighted_*``: B bootstrap resamples at once, see
``window_cascades.uncertainty.weighted_curve``) sits beside its plain form.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from window_cascades.uncertainty.ood_detection import (
    auroc,
    fpr_at_threshold,
    id_acceptance_threshold,
)
from window_cascades.uncertainty.weighted_curve import SortedGroups, failure_from_counts


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

    Args:
        confidence: N confidence scores of the predictions (higher is more confident).
        correct: N bools, whether each prediction is correct (the positive class).
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

    Args:
        confidence: N confidence scores of the predictions (higher is more confident).
        correct: N bools, whether each prediction is correct (the positive class).
        tpr: the fraction of correct predictions to accept, in (0, 1].
        threshold: the rule ``(confidence of the correct predictions, tpr) -> threshold``; default:
            the largest threshold accepting at least ``tpr`` of them.
    """
    right, wrong = _split(confidence, correct)
    if right.numel() == 0 or wrong.numel() == 0:
        return float("nan")
    return fpr_at_threshold(wrong, threshold(right, tpr))


def _counts(confidence: torch.Tensor, correct: torch.Tensor, weights: torch.Tensor):
    """(cumulative draws, cumulative wrong draws) over the confidences, most confident first."""
    groups = SortedGroups(confidence)
    sorted_counts = weights.double().index_select(1, groups.order)
    wrong = groups.sorted_mask(~correct.bool(), torch.float64)
    return groups.cumulate_sorted(sorted_counts), groups.cumulate_sorted(sorted_counts, wrong)


def weighted_failure_auroc(
    confidence: torch.Tensor, correct: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """B values of [`window_cascades.uncertainty.failure_detection.failure_auroc`][], sample i
    counted W[b, i] times: sum over wrong j and correct i of W_j W_i (1[c_i > c_j] + 0.5 1[c_i =
    c_j]), over (sum_wrong W)(sum_correct W); NaN for a resample with no correct or no wrong draw.

    Args:
        confidence: N confidences.
        correct: N bools (the positive class).
        weights: B x N float64 counts W[b, i] (how often sample i is in resample b).

    Returns:
        B AUROC values (fractions, float64).
    """
    return failure_from_counts(*_counts(confidence, correct, weights))


def weighted_failure_fpr(
    confidence: torch.Tensor, correct: torch.Tensor, weights: torch.Tensor, tpr: float
) -> torch.Tensor:
    """B values of [`window_cascades.uncertainty.failure_detection.failure_fpr_at_tpr`][] (the
    standard threshold: the largest accepting at least ``tpr`` of the resample's correct
    draws), sample i counted W[b, i] times; NaN for a resample with no correct or no wrong draw.

    Args:
        confidence: N confidences.
        correct: N bools (the positive class).
        weights: B x N float64 counts W[b, i] (how often sample i is in resample b).
        tpr: the fraction of correct draws to accept, in (0, 1].

    Returns:
        B fractions of the wrong draws accepted (float64).
    """
    return failure_from_counts(*_counts(confidence, correct, weights), tpr)
