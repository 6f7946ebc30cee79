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


def _by_correctness(
    confidence: torch.Tensor, correct: torch.Tensor, weights: torch.Tensor, descending: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sorted correct confidences, their B x n weights in that order, wrong confidences, their
    B x m weights)."""
    conf, ok = confidence.double().flatten(), correct.bool().flatten()
    right, order = torch.sort(conf[ok], descending=descending, stable=True)
    return right, weights[:, ok][:, order], conf[~ok], weights[:, ~ok]


def _nan_where_undefined(value: torch.Tensor, w_right: torch.Tensor, w_wrong: torch.Tensor):
    defined = (w_right.sum(1) > 0) & (w_wrong.sum(1) > 0)
    return torch.where(defined, value, torch.full_like(value, float("nan")))


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
    right, w_right, wrong, w_wrong = _by_correctness(confidence, correct, weights, False)
    cum = torch.cat([w_right.new_zeros(w_right.shape[0], 1), w_right.cumsum(1)], 1)
    below = torch.searchsorted(right, wrong, right=False)  # correct with conf < a wrong one's
    upto = torch.searchsorted(right, wrong, right=True)  # ... <= it
    total = cum[:, -1:]
    wins = total - 0.5 * (cum[:, upto] + cum[:, below])  # correct weight above, half the ties
    value = (wins * w_wrong).sum(1) / (total.squeeze(1) * w_wrong.sum(1)).clamp_min(1e-300)
    return _nan_where_undefined(value, w_right, w_wrong)


def weighted_failure_fpr(
    confidence: torch.Tensor, correct: torch.Tensor, weights: torch.Tensor, tpr: float
) -> torch.Tensor:
    """B values of [`window_cascades.uncertainty.failure_detection.failure_fpr_at_tpr`][] (the
    standard
    threshold: the largest accepting at least ``tpr`` of the resample's correct draws), sample
    i counted W[b, i] times; NaN for a resample with no correct or no wrong draw.

    Args:
        confidence: N confidences.
        correct: N bools (the positive class).
        weights: B x N float64 counts W[b, i] (how often sample i is in resample b).
        tpr: the fraction of correct draws to accept, in (0, 1].

    Returns:
        B fractions of the wrong draws accepted (float64).
    """
    right, w_right, wrong, w_wrong = _by_correctness(confidence, correct, weights, True)
    if right.numel() == 0 or wrong.numel() == 0:
        return torch.full((weights.shape[0],), float("nan"), dtype=torch.float64)
    cum = torch.cumsum(w_right, 1)
    need = torch.ceil(tpr * cum[:, -1:] - 1e-9).clamp_min(1)
    first = (cum < need).sum(1).clamp_max(right.numel() - 1)  # first position reaching it
    threshold = right[first]
    accepted = (w_wrong * (wrong[None, :] >= threshold[:, None]).double()).sum(1)
    value = accepted / w_wrong.sum(1).clamp_min(1e-300)
    return _nan_where_undefined(value, w_right, w_wrong)
